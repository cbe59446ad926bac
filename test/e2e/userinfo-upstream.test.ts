import * as oidc from 'openid-client';
import type { Browser, Page } from 'playwright-core';
import { databaseKinds, createTestDatabase, type TestDatabase } from '../support/databases.js';
import { freePort, startServer, type RunningServer } from '../support/processes.js';
import { createClient } from '../support/gatehouse.js';
import { browserAvailable, launchBrowser } from '../support/browser.js';
import { startApp, type AppServer } from '../support/apps.js';
import { startFakeGitHub, defaultGitHubUser, type FakeGitHub } from '../support/upstreams/fake-github.js';
import { startFakeOidc, type FakeOidc } from '../support/upstreams/fake-oidc.js';

/**
 * An upstream OpenID Provider that gives the profile claims only at its UserInfo
 * endpoint (OIDC Core 5.4; oidc-provider's default): Gatehouse, as a real process,
 * must still get the person's email from it, and link by that email when it is verified.
 */

const describeIf = browserAvailable() ? describe.each(databaseKinds()) : describe.skip.each(databaseKinds());

describeIf('sign-in through an upstream with claims only at UserInfo, on %s', (kind) => {
  let db: TestDatabase;
  let gatehouse: RunningServer;
  let github: FakeGitHub;
  let workforce: FakeOidc;
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
    workforce = await startFakeOidc({
      clientId: 'wf-client', clientSecret: 'wf-secret', redirectUris: [`${issuer}/oauth2/workforce/callback`], name: 'Workforce', claimsAt: 'userinfo',
    });
    const webapp = createClient(db.url, [
      '--name', 'Sample App', '--id', 'sample-app', '--grant-type', 'authorization_code', '--redirect-uri', `${app.url}/cb`,
    ]);
    gatehouse = await startServer({
      DATABASE_URL: db.url,
      PORT: String(port),
      GITHUB_CLIENT_ID: 'gh-client',
      GITHUB_CLIENT_SECRET: 'gh-secret',
      GITHUB_BASE_URL: github.baseUrl,
      GITHUB_API_URL: github.apiUrl,
      OIDC_PROVIDERS: 'workforce',
      OIDC_WORKFORCE_NAME: 'Workforce SSO',
      OIDC_WORKFORCE_ISSUER: workforce.issuer,
      OIDC_WORKFORCE_CLIENT_ID: 'wf-client',
      OIDC_WORKFORCE_CLIENT_SECRET: 'wf-secret',
      ACCOUNT_LINKING: 'verified-email',
    });
    rp = await oidc.discovery(new URL(gatehouse.url), webapp.clientId, undefined, oidc.ClientSecretBasic(webapp.clientSecret), {
      execute: [oidc.allowInsecureRequests],
    });
    ({ browser, close: closeBrowser } = await launchBrowser());
  });

  afterAll(async () => {
    await closeBrowser?.();
    await gatehouse?.stop();
    await Promise.all([github?.close(), workforce?.close(), app?.close()]);
    await db?.drop();
  });

  afterEach(() => {
    workforce.setBehaviour({});
  });

  /** Starts code + PKCE as the app would, in a fresh browser; returns the page and what the app keeps. */
  async function startSignIn(provider: string, watch?: (page: Page) => void) {
    const codeVerifier = oidc.randomPKCECodeVerifier();
    const state = oidc.randomState();
    const nonce = oidc.randomNonce();
    const url = oidc.buildAuthorizationUrl(rp, {
      redirect_uri: `${app.url}/cb`,
      scope: 'openid email profile',
      prompt: 'consent',
      state,
      nonce,
      code_challenge: await oidc.calculatePKCECodeChallenge(codeVerifier),
      code_challenge_method: 'S256',
    });
    const page: Page = await (await browser.newContext()).newPage();
    watch?.(page);
    await page.goto(url.href);
    await page.getByRole('button', { name: `Continue with ${provider}` }).click();
    return { page, codeVerifier, state, nonce };
  }

  /** A whole sign-in with consent; returns the app's tokens. */
  async function signIn(provider: string) {
    const before = app.hits.length;
    const { page, ...request } = await startSignIn(provider);
    try {
      await page.getByRole('heading', { name: 'Allow Sample App?' }).waitFor();
      await page.getByRole('button', { name: 'Allow' }).click();
      const callback = await app.waitFor('/cb', before);
      return await oidc.authorizationCodeGrant(rp, callback, { pkceCodeVerifier: request.codeVerifier, expectedState: request.state, expectedNonce: request.nonce });
    } catch (err) {
      // say where the browser got stuck
      throw new Error(`${(err as Error).message}; the browser is at ${page.url()}: ${(await page.textContent('body'))?.trim().slice(0, 300)}`);
    } finally {
      await page.context().close();
    }
  }

  /**
   * The account's claims as the app sees them. No API was asked for, so Gatehouse's access
   * token is for its UserInfo, and (like the upstream) it keeps the profile claims there.
   */
  async function accountClaims(tokens: Awaited<ReturnType<typeof signIn>>) {
    const sub = tokens.claims()!.sub;
    return { ...(await oidc.fetchUserInfo(rp, tokens.access_token, sub)), sub };
  }

  it('gives the account the email and name the upstream tells only at UserInfo', async () => {
    workforce.setUser({ sub: 'wf-lin', email: 'lin@example.com', email_verified: true, name: 'Lin Workforce' });
    const asked = workforce.userinfoRequests();
    const tokens = await signIn('Workforce SSO');
    expect(workforce.userinfoRequests()).toBe(asked + 1);
    expect(tokens.claims()).toMatchObject({ iss: gatehouse.url, aud: 'sample-app' });
    const account = await accountClaims(tokens);
    expect(account).toMatchObject({ email: 'lin@example.com', email_verified: true, name: 'Lin Workforce' });
    expect(account.sub).not.toBe('wf-lin'); // our own sub
  });

  it('links to the GitHub account with the same verified email, and not on an unverified one', async () => {
    const githubEmail = defaultGitHubUser.emails.find((e) => e.primary && e.verified)!.email;
    const fromGitHub = await accountClaims(await signIn('GitHub'));
    expect(fromGitHub).toMatchObject({ email: githubEmail, email_verified: true, name: 'The Octocat' });

    // the same person at Workforce, whose UserInfo vouches for the same email: the same account
    workforce.setUser({ sub: 'wf-octo', email: githubEmail, email_verified: true, name: 'Octo at Workforce' });
    const linked = await accountClaims(await signIn('Workforce SSO'));
    expect(linked.sub).toBe(fromGitHub.sub);
    // the account now has the profile that came from Workforce's UserInfo
    expect(linked).toMatchObject({ email: githubEmail, email_verified: true, name: 'Octo at Workforce' });

    // someone else at Workforce claims the email without it being verified: a separate account
    workforce.setUser({ sub: 'wf-mallory', email: githubEmail, email_verified: false, name: 'Mallory' });
    const separate = await accountClaims(await signIn('Workforce SSO'));
    expect(separate.sub).not.toBe(fromGitHub.sub);
    expect(separate.email_verified).not.toBe(true);
    expect(separate.name).toBe('Mallory');
  });

  it('shows the error page, not a 500, when UserInfo answers about another person', async () => {
    workforce.setUser({ sub: 'wf-sam', email: 'sam@example.com', email_verified: true, name: 'Sam' });
    workforce.setBehaviour({ userinfoClaims: { sub: 'someone-else' } });
    const asked = workforce.userinfoRequests();
    const before = app.hits.length;
    const statuses: number[] = [];
    const { page } = await startSignIn('Workforce SSO', (p) => p.on('response', (res) => {
      if (/\/interaction\/[^/?]+\/callback\/workforce/.test(res.url())) statuses.push(res.status());
    }));
    try {
      await page.getByRole('heading', { name: 'Sign-in failed' }).waitFor();
      expect(workforce.userinfoRequests()).toBe(asked + 1);
      expect(statuses).toEqual([502]);
      expect(await page.textContent('main')).toContain('Signing in with Workforce SSO did not work');
      expect(app.hits.slice(before).some((h) => h.pathname === '/cb')).toBe(false);
    } finally {
      await page.context().close();
    }
  });
});
