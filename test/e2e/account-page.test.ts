import * as oidc from 'openid-client';
import type { Browser, Page } from 'playwright-core';
import { databaseKinds, createTestDatabase, type TestDatabase } from '../support/databases.js';
import { freePort, startServer, type RunningServer } from '../support/processes.js';
import { createApi, createClient } from '../support/gatehouse.js';
import { browserAvailable, launchBrowser, watchedContext } from '../support/browser.js';
import { startApp, type AppServer } from '../support/apps.js';
import { startFakeGitHub, type FakeGitHub } from '../support/upstreams/fake-github.js';
import { startFakeOidc, type FakeOidc } from '../support/upstreams/fake-oidc.js';

/**
 * The account page (/account) in headless Chromium against the built server:
 * signing in to it with GitHub, linking Google, withdrawing an app's access,
 * signing out everywhere; at a phone's width, with no CSP violation and
 * keyboard focus that shows.
 */

const API = 'https://api.example.com';
const PHONE = { width: 375, height: 700 };
const describeIf = browserAvailable() ? describe.each(databaseKinds()) : describe.skip.each(databaseKinds());

describeIf('the account page in a real browser on %s', (kind) => {
  let db: TestDatabase;
  let gatehouse: RunningServer;
  let github: FakeGitHub;
  let google: FakeOidc;
  let app: AppServer;
  let browser: Browser;
  let closeBrowser: () => Promise<void>;
  let rp: oidc.Configuration;

  beforeAll(async () => {
    db = await createTestDatabase(kind);
    const port = await freePort();
    const issuer = `http://localhost:${port}`;
    app = await startApp();
    github = await startFakeGitHub({ clientId: 'gh-client', clientSecret: 'gh-secret' });
    google = await startFakeOidc({ clientId: 'google-client', clientSecret: 'google-secret', redirectUris: [`${issuer}/oauth2/google/callback`], name: 'Google' });
    createApi(db.url, ['--identifier', API, '--name', 'Things API', '--scope', 'read:things']);
    const webapp = createClient(db.url, [
      '--name', 'Sample App', '--id', 'sample-app',
      '--grant-type', 'authorization_code', '--grant-type', 'refresh_token',
      '--redirect-uri', `${app.url}/cb`, '--resource', API,
    ]);
    gatehouse = await startServer({
      DATABASE_URL: db.url,
      PORT: String(port),
      GITHUB_CLIENT_ID: 'gh-client',
      GITHUB_CLIENT_SECRET: 'gh-secret',
      GITHUB_BASE_URL: github.baseUrl,
      GITHUB_API_URL: github.apiUrl,
      GOOGLE_CLIENT_ID: 'google-client',
      GOOGLE_CLIENT_SECRET: 'google-secret',
      GOOGLE_ISSUER: google.issuer,
    });
    rp = await oidc.discovery(new URL(gatehouse.url), webapp.clientId, undefined, oidc.ClientSecretBasic(webapp.clientSecret), {
      execute: [oidc.allowInsecureRequests],
    });
    ({ browser, close: closeBrowser } = await launchBrowser());
  });

  afterAll(async () => {
    await closeBrowser?.();
    await gatehouse?.stop();
    await Promise.all([github?.close(), google?.close(), app?.close()]);
    await db?.drop();
  });

  /** A phone-sized browser that reports every CSP violation and console error. */
  const phone = () => watchedContext(browser, PHONE);

  /** Nothing wider than the phone's screen. */
  async function fitsThePhone(page: Page): Promise<void> {
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(PHONE.width);
  }

  const identities = (page: Page) => page.locator('ul.identities > li > strong').allTextContents();

  it('signs in with GitHub, links Google, withdraws an app\'s access and signs out everywhere', async () => {
    const { context, page, problems } = await phone();

    // not signed in: through the login page and GitHub, back on the page
    const first = await page.goto(`${gatehouse.url}/account`);
    expect(new URL(page.url()).pathname).toMatch(/^\/interaction\//);
    expect(first!.status()).toBe(200);
    await page.getByRole('button', { name: 'Continue with GitHub' }).click();
    await page.getByRole('heading', { name: 'Your account', level: 1 }).waitFor();
    expect(page.url()).toBe(`${gatehouse.url}/account`);
    expect(await identities(page)).toEqual(['GitHub']);
    expect(await page.textContent('main')).toContain('octocat@github.com');
    expect(await page.getByRole('heading', { level: 2 }).allTextContents()).toEqual(['How you sign in', 'Apps with access', 'Sign out everywhere']);
    await fitsThePhone(page);
    const response = await page.reload();
    expect(response!.headers()['content-security-policy']).toContain("default-src 'none'");

    // keyboard focus lands on the page's controls, and shows
    let focused = '';
    for (let i = 0; i < 10 && !focused.startsWith('BUTTON'); i += 1) {
      await page.keyboard.press('Tab');
      focused = await page.evaluate(() => `${document.activeElement?.tagName} ${document.activeElement?.textContent?.trim()}`);
    }
    expect(focused).toBe('BUTTON Link another GitHub account');
    expect(await page.evaluate(() => getComputedStyle(document.activeElement!).outlineStyle)).toBe('solid');

    // link Google
    google.setUser({ sub: 'google-octo', email: 'octo@gmail.example', email_verified: true, name: 'Octo G' });
    await page.getByRole('button', { name: 'Link Google' }).click();
    await page.getByText('Google is now linked to your account.').waitFor();
    expect(await identities(page)).toEqual(['GitHub', 'Google']);
    expect(await page.textContent('main')).toContain('octo@gmail.example');
    await fitsThePhone(page);

    // an app with access: Sample App, allowed in this browser
    const codeVerifier = oidc.randomPKCECodeVerifier();
    const authorization = oidc.buildAuthorizationUrl(rp, {
      redirect_uri: `${app.url}/cb`, scope: 'openid email offline_access read:things', prompt: 'consent', resource: API, state: 'app-state',
      code_challenge: await oidc.calculatePKCECodeChallenge(codeVerifier), code_challenge_method: 'S256',
    });
    const before = app.hits.length;
    await page.goto(authorization.href);
    await page.getByRole('heading', { name: 'Allow Sample App?' }).waitFor();
    await page.getByRole('button', { name: 'Allow' }).click();
    const callback = await app.waitFor('/cb', before);
    const tokens = await oidc.authorizationCodeGrant(rp, callback, { pkceCodeVerifier: codeVerifier, expectedState: 'app-state' }, { resource: API });
    expect(tokens.refresh_token).toEqual(expect.any(String));

    await page.goto(`${gatehouse.url}/account`);
    const sampleApp = page.locator('li.app', { has: page.getByRole('heading', { name: 'Sample App' }) });
    await sampleApp.waitFor();
    expect(await sampleApp.textContent()).toContain('See your email address');
    expect((await sampleApp.textContent())?.replace(/\s+/g, ' ')).toContain('Use Things API on your behalf: read:things');
    await fitsThePhone(page);
    await page.getByRole('button', { name: 'Withdraw access of Sample App' }).click();
    await page.getByText('Access withdrawn.').waitFor();
    expect(await page.getByRole('heading', { name: 'Sample App' }).count()).toBe(0);
    expect(await page.textContent('main')).toContain('No app has access to your account.');
    await expect(oidc.refreshTokenGrant(rp, tokens.refresh_token!, { resource: API })).rejects.toMatchObject({ error: 'invalid_grant' });

    // sign out everywhere: this browser and another one
    const other = await browser.newContext();
    const otherPage = await other.newPage();
    await otherPage.goto(`${gatehouse.url}/account`);
    await otherPage.getByRole('button', { name: 'Continue with Google' }).click();
    await otherPage.getByRole('heading', { name: 'Your account', level: 1 }).waitFor();
    expect(await identities(otherPage)).toEqual(['GitHub', 'Google']);

    await page.getByRole('button', { name: 'Sign out everywhere' }).click();
    await page.getByRole('heading', { name: 'You are signed out' }).waitFor();
    expect(await page.textContent('main')).toContain('2 sessions ended');
    await fitsThePhone(page);
    for (const p of [page, otherPage]) {
      await p.goto(`${gatehouse.url}/account`);
      await p.getByRole('button', { name: 'Continue with GitHub' }).waitFor();
      expect(new URL(p.url()).pathname).toMatch(/^\/interaction\//);
    }

    expect(problems).toEqual([]);
    await Promise.all([context.close(), other.close()]);
  });
});
