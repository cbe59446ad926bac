import * as oidc from 'openid-client';
import { decodeJwt } from 'jose';
import Koa from 'koa';
import { once } from 'node:events';
import { requireToken } from '../../src/resource-kit/index.js';
import type { Browser, Page } from 'playwright-core';
import { databaseKinds, createTestDatabase, type TestDatabase } from '../support/databases.js';
import { freePort, runCli, startServer, type RunningServer } from '../support/processes.js';
import { createApi, createClient } from '../support/gatehouse.js';
import { browserAvailable, launchBrowser } from '../support/browser.js';
import { startApi, startApp, type AppServer } from '../support/apps.js';
import { startFakeGitHub, defaultGitHubUser, type FakeGitHub } from '../support/upstreams/fake-github.js';
import { startFakeOidc, type FakeOidc } from '../support/upstreams/fake-oidc.js';

const API = 'https://api.example.com';
const describeIf = browserAvailable() ? describe.each(databaseKinds()) : describe.skip.each(databaseKinds());

describeIf('sign-in in a real browser on %s', (kind) => {
  let db: TestDatabase;
  let gatehouse: RunningServer;
  let github: FakeGitHub;
  let google: FakeOidc;
  let acme: FakeOidc;
  let app: AppServer;
  let api: { url: string; close(): Promise<void> };
  let browser: Browser;
  let closeBrowser: () => Promise<void>;
  let webapp: { clientId: string; clientSecret: string };
  let rp: oidc.Configuration;

  beforeAll(async () => {
    db = await createTestDatabase(kind);
    const port = await freePort();
    const issuer = `http://localhost:${port}`;
    app = await startApp();
    github = await startFakeGitHub({ clientId: 'gh-client', clientSecret: 'gh-secret' });
    google = await startFakeOidc({ clientId: 'google-client', clientSecret: 'google-secret', redirectUris: [`${issuer}/oauth2/google/callback`], name: 'Google' });
    acme = await startFakeOidc({ clientId: 'acme-client', clientSecret: 'acme-secret', redirectUris: [`${issuer}/oauth2/acme/callback`], name: 'Acme' });
    const closedPort = await freePort();

    createApi(db.url, ['--identifier', API, '--name', 'Things API', '--scope', 'read:things']);
    webapp = createClient(db.url, [
      '--name', 'Sample App', '--id', 'sample-app',
      '--grant-type', 'authorization_code', '--grant-type', 'refresh_token',
      '--redirect-uri', `${app.url}/cb`, '--post-logout-redirect-uri', `${app.url}/bye`,
      '--backchannel-logout-uri', `${app.url}/backchannel`,
      '--resource', API,
    ]);
    gatehouse = await startServer({
      DATABASE_URL: db.url,
      PORT: String(port),
      GITHUB_CLIENT_ID: 'gh-client',
      GITHUB_CLIENT_SECRET: 'gh-secret',
      // short, so the test can wait it out (two tabs refreshing at once)
      REFRESH_REUSE_GRACE_SECONDS: '2',
      GITHUB_BASE_URL: github.baseUrl,
      GITHUB_API_URL: github.apiUrl,
      GOOGLE_CLIENT_ID: 'google-client',
      GOOGLE_CLIENT_SECRET: 'google-secret',
      GOOGLE_ISSUER: google.issuer,
      OIDC_PROVIDERS: 'acme,offline',
      OIDC_ACME_NAME: 'Acme SSO',
      OIDC_ACME_ISSUER: acme.issuer,
      OIDC_ACME_CLIENT_ID: 'acme-client',
      OIDC_ACME_CLIENT_SECRET: 'acme-secret',
      // an upstream that is down: nothing listens there
      OIDC_OFFLINE_NAME: 'Offline IdP',
      OIDC_OFFLINE_ISSUER: `http://127.0.0.1:${closedPort}`,
      OIDC_OFFLINE_CLIENT_ID: 'x',
      OIDC_OFFLINE_CLIENT_SECRET: 'y',
      ACCOUNT_LINKING: 'verified-email',
      // the app's back-channel endpoint is on 127.0.0.1
      ALLOW_PRIVATE_NETWORK_REQUESTS: 'true',
    });
    api = await startApi(gatehouse.url, API);
    rp = await oidc.discovery(new URL(gatehouse.url), webapp.clientId, undefined, oidc.ClientSecretBasic(webapp.clientSecret), {
      execute: [oidc.allowInsecureRequests],
    });
    ({ browser, close: closeBrowser } = await launchBrowser());
  });

  afterAll(async () => {
    await closeBrowser?.();
    await gatehouse?.stop();
    await Promise.all([github?.close(), google?.close(), acme?.close(), app?.close(), api?.close()]);
    await db?.drop();
  });

  /** Starts code + PKCE as the app would; returns what the app keeps. */
  async function authorize(extra: Record<string, string> = {}) {
    const codeVerifier = oidc.randomPKCECodeVerifier();
    const state = oidc.randomState();
    const nonce = oidc.randomNonce();
    const url = oidc.buildAuthorizationUrl(rp, {
      redirect_uri: `${app.url}/cb`,
      scope: 'openid email profile offline_access read:things',
      prompt: 'consent',
      resource: API,
      state,
      nonce,
      code_challenge: await oidc.calculatePKCECodeChallenge(codeVerifier),
      code_challenge_method: 'S256',
      ...extra,
    });
    return { url, codeVerifier, state, nonce };
  }

  /** The browser walks through login (and consent); returns the URL the app was sent back to. */
  async function signIn(page: Page, provider: string, options: { consent?: 'allow' | 'deny' | 'none'; extra?: Record<string, string> } = {}) {
    const request = await authorize(options.extra);
    const before = app.hits.length;
    await page.goto(request.url.href);
    await page.getByRole('button', { name: `Continue with ${provider}` }).click();
    if (options.consent !== 'none') {
      await page.getByRole('heading', { name: 'Allow Sample App?' }).waitFor();
      await page.getByRole('button', { name: options.consent === 'deny' ? 'Deny' : 'Allow' }).click();
    }
    try {
      const callback = await app.waitFor('/cb', before);
      return { ...request, callback };
    } catch (err) {
      // say where the browser got stuck
      throw new Error(`${(err as Error).message}; the browser is at ${page.url()}: ${(await page.textContent('body'))?.trim().slice(0, 300)}`);
    }
  }

  async function exchange(r: Awaited<ReturnType<typeof signIn>>) {
    return oidc.authorizationCodeGrant(rp, r.callback, { pkceCodeVerifier: r.codeVerifier, expectedState: r.state, expectedNonce: r.nonce }, { resource: API });
  }

  async function callApi(accessToken: string) {
    const res = await fetch(`${api.url}/things`, { headers: { authorization: `Bearer ${accessToken}` } });
    return { status: res.status, body: res.status === 200 ? ((await res.json()) as { sub: string; scope: string }) : undefined };
  }

  it('signs in with GitHub: consent, code + PKCE, ID token, API call, refresh with rotation', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    const login = await authorize();
    await page.goto(login.url.href);
    // the login page lists exactly the configured providers, by name
    const buttons = await page.getByRole('button', { name: /^Continue with/ }).allTextContents();
    expect(buttons.map((b) => b.trim())).toEqual(['Continue with GitHub', 'Continue with Google', 'Continue with Acme SSO', 'Continue with Offline IdP']);
    await context.close();

    const ctx2 = await browser.newContext();
    const r = await signIn(await ctx2.newPage(), 'GitHub');
    // GitHub was asked with state and PKCE
    const authorizeHit = github.log.filter((l) => l.path === '/login/oauth/authorize').at(-1)!;
    expect(authorizeHit.query.code_challenge_method).toBe('S256');
    expect(authorizeHit.query.state).toEqual(expect.any(String));

    const tokens = await exchange(r);
    const claims = tokens.claims()!;
    expect(claims.iss).toBe(gatehouse.url);
    expect(claims.aud).toBe('sample-app');
    expect(claims.sub).not.toBe(String(defaultGitHubUser.id)); // our own sub, not GitHub's id
    expect(claims).toMatchObject({ email: 'octocat@github.com', email_verified: true, name: 'The Octocat', preferred_username: 'octocat' });
    expect(decodeJwt(tokens.access_token)).toMatchObject({ aud: API, sub: claims.sub, client_id: 'sample-app' });
    expect(tokens.refresh_token).toEqual(expect.any(String));
    expect(await callApi(tokens.access_token)).toEqual({ status: 200, body: { sub: claims.sub, scope: 'read:things' } });

    const refreshed = await oidc.refreshTokenGrant(rp, tokens.refresh_token!, { resource: API });
    expect(refreshed.refresh_token).toEqual(expect.any(String));
    expect(refreshed.refresh_token).not.toBe(tokens.refresh_token);
    expect((await callApi(refreshed.access_token)).status).toBe(200);

    // a second tab presenting the same token at once gets the same answer
    const secondTab = await oidc.refreshTokenGrant(rp, tokens.refresh_token!, { resource: API });
    expect({ refresh: secondTab.refresh_token, access: secondTab.access_token }).toEqual({ refresh: refreshed.refresh_token, access: refreshed.access_token });
    // once the grace period is over, reusing the rotated refresh token fails and revokes the whole grant
    await new Promise((r) => setTimeout(r, 2500));
    await expect(oidc.refreshTokenGrant(rp, tokens.refresh_token!, { resource: API })).rejects.toMatchObject({ error: 'invalid_grant' });
    await expect(oidc.refreshTokenGrant(rp, refreshed.refresh_token!, { resource: API })).rejects.toMatchObject({ error: 'invalid_grant' });
    await ctx2.close();
  });

  it('signs in with Google (OIDC) and remembers consent for the next sign-in', async () => {
    google.setUser({ sub: 'google-user-1', email: 'grace@example.com', email_verified: true, name: 'Grace Hopper' });
    const context = await browser.newContext();
    const page = await context.newPage();
    const first = await signIn(page, 'Google');
    const tokens = await exchange(first);
    expect(tokens.claims()).toMatchObject({ email: 'grace@example.com', name: 'Grace Hopper' });
    expect((await callApi(tokens.access_token)).body?.sub).toBe(tokens.claims()!.sub);

    // a new browser, the same person: no consent screen this time
    const again = await browser.newContext();
    const second = await signIn(await again.newPage(), 'Google', { consent: 'none', extra: { prompt: 'login' } });
    const tokens2 = await exchange(second);
    expect(tokens2.claims()!.sub).toBe(tokens.claims()!.sub);
    await Promise.all([context.close(), again.close()]);
  });

  it('signs in with a generic OIDC provider, and links accounts only on verified emails', async () => {
    // Acme asserts GitHub's verified email: linked to the GitHub account
    acme.setUser({ sub: 'acme-42', email: 'octocat@github.com', email_verified: true, name: 'Octo at Acme' });
    const linked = await exchange(await signIn(await (await browser.newContext()).newPage(), 'Acme SSO'));
    const githubAgain = await exchange(await signIn(await (await browser.newContext()).newPage(), 'GitHub', { consent: 'none', extra: { prompt: 'login' } }));
    expect(linked.claims()!.sub).toBe(githubAgain.claims()!.sub);

    // Google claims the same email, unverified: a separate account
    google.setUser({ sub: 'google-mallory', email: 'octocat@github.com', email_verified: false, name: 'Mallory' });
    const separate = await exchange(await signIn(await (await browser.newContext()).newPage(), 'Google'));
    expect(separate.claims()!.sub).not.toBe(githubAgain.claims()!.sub);
    expect(separate.claims()!.email_verified).not.toBe(true);
  });

  it('skips consent for first-party clients', async () => {
    const first = createClient(db.url, ['--name', 'First Party', '--grant-type', 'authorization_code', '--redirect-uri', `${app.url}/cb`, '--first-party']);
    const fp = await oidc.discovery(new URL(gatehouse.url), first.clientId, undefined, oidc.ClientSecretBasic(first.clientSecret), { execute: [oidc.allowInsecureRequests] });
    const codeVerifier = oidc.randomPKCECodeVerifier();
    const url = oidc.buildAuthorizationUrl(fp, { redirect_uri: `${app.url}/cb`, scope: 'openid email', code_challenge: await oidc.calculatePKCECodeChallenge(codeVerifier), code_challenge_method: 'S256', state: 's1' });
    await new Promise((r) => setTimeout(r, 600)); // the new client reaches the server within CHANGE_POLL_MS
    const before = app.hits.length;
    const page = await (await browser.newContext()).newPage();
    await page.goto(url.href);
    await page.getByRole('button', { name: 'Continue with GitHub' }).click();
    const callback = await app.waitFor('/cb', before);
    expect(callback.searchParams.get('code')).toEqual(expect.any(String));
    const tokens = await oidc.authorizationCodeGrant(fp, callback, { pkceCodeVerifier: codeVerifier, expectedState: 's1' });
    // no API requested: the access token is for userinfo, which has the claims
    const userinfo = await oidc.fetchUserInfo(fp, tokens.access_token, tokens.claims()!.sub);
    expect(userinfo).toMatchObject({ email: 'octocat@github.com', email_verified: true });

    // the grant made without asking is remembered like any consent...
    const listed = runCli(['grants', 'list', '--client', first.clientId, '--json'], db.url).json() as { accountId: string }[];
    expect(listed).toEqual([expect.objectContaining({ accountId: tokens.claims()!.sub })]);
    // ...and withdrawn when the client stops being first-party: the same browser is asked now
    const demoted = runCli(['clients', 'update', '--third-party', '--json', '--', first.clientId], db.url);
    expect(demoted.code).toBe(0);
    expect(demoted.json()).toMatchObject({ firstParty: false, withdrawnGrants: 1 });
    await new Promise((r) => setTimeout(r, 600));
    await page.goto(oidc.buildAuthorizationUrl(fp, { redirect_uri: `${app.url}/cb`, scope: 'openid email', code_challenge: await oidc.calculatePKCECodeChallenge(codeVerifier), code_challenge_method: 'S256', state: 's2' }).href);
    await page.getByRole('heading', { name: 'Allow First Party?' }).waitFor();
  });

  it('sends access_denied to the app when consent is denied', async () => {
    const r = await signIn(await (await browser.newContext()).newPage(), 'GitHub', { consent: 'deny' });
    expect(r.callback.searchParams.get('error')).toBe('access_denied');
    expect(r.callback.searchParams.get('state')).toBe(r.state);
    expect(r.callback.searchParams.get('code')).toBeNull();
  });

  it('shows a clear page with a way back when the person cancels at GitHub', async () => {
    github.setBehaviour({ deny: true });
    try {
      const page = await (await browser.newContext()).newPage();
      await page.goto((await authorize()).url.href);
      await page.getByRole('button', { name: 'Continue with GitHub' }).click();
      await page.getByRole('heading', { name: 'Sign-in cancelled' }).waitFor();
      expect(await page.textContent('main')).toContain('You cancelled signing in with GitHub.');
      github.setBehaviour({});
      await page.getByRole('link', { name: 'Go back' }).click();
      await page.getByRole('button', { name: 'Continue with Google' }).waitFor();
    } finally {
      github.setBehaviour({});
    }
  });

  it('refuses a callback whose state does not match, and a replayed callback', async () => {
    const page = await (await browser.newContext()).newPage();
    await page.goto((await authorize()).url.href);
    // submit "Continue with GitHub" from the browser's own cookie jar, but keep the redirect
    const form = page.locator('form', { has: page.getByRole('button', { name: 'Continue with GitHub' }) });
    const action = new URL((await form.getAttribute('action'))!, gatehouse.url).href;
    const csrf = (await form.locator('input[name=csrf]').getAttribute('value'))!;
    const started = await page.request.post(action, { form: { csrf }, maxRedirects: 0 });
    expect(started.status()).toBe(302);
    const toGitHub = new URL(started.headers().location);
    expect(toGitHub.searchParams.get('state')).toEqual(expect.any(String));
    // the state changed on the way: GitHub sends back a state this sign-in never issued
    toGitHub.searchParams.set('state', 'forged-state');
    const landed = await page.goto(toGitHub.href);
    expect(landed!.status()).toBe(502);
    expect(await page.textContent('main')).toContain('Signing in with GitHub did not work');

    // a successful sign-in, then the same upstream callback again
    const okPage = await (await browser.newContext()).newPage();
    const callbacks: string[] = [];
    okPage.on('request', (req) => { if (req.url().includes('/oauth2/github/callback')) callbacks.push(req.url()); });
    await signIn(okPage, 'GitHub');
    expect(callbacks).toHaveLength(1);
    const replay = await okPage.goto(callbacks[0]);
    expect(replay!.status()).toBe(400);
    expect(await okPage.textContent('main')).toContain('This sign-in link has expired');
  });

  it('shows a clear page when an upstream cannot be reached', async () => {
    const page = await (await browser.newContext()).newPage();
    await page.goto((await authorize()).url.href);
    await page.getByRole('button', { name: 'Continue with Offline IdP' }).click();
    await page.getByRole('heading', { name: 'Sign-in failed' }).waitFor();
    expect(await page.textContent('main')).toContain('Offline IdP could not be reached');
  });

  it('refuses a form without its CSRF token', async () => {
    const page = await (await browser.newContext()).newPage();
    await page.goto((await authorize()).url.href);
    await page.getByRole('button', { name: 'Continue with GitHub' }).click();
    await page.getByRole('heading', { name: 'Allow Sample App?' }).waitFor();
    await page.evaluate(() => document.querySelectorAll('input[name=csrf]').forEach((e) => e.remove()));
    const response = page.waitForResponse((res) => res.url().endsWith('/confirm'));
    await page.getByRole('button', { name: 'Allow' }).click();
    expect((await response).status()).toBe(403);
    await page.getByRole('heading', { name: 'This form has expired' }).waitFor();
  });

  it('lets exactly one of 20 concurrent redemptions of a code succeed', async () => {
    const r = await signIn(await (await browser.newContext()).newPage(), 'GitHub');
    const code = r.callback.searchParams.get('code')!;
    const auth = `Basic ${Buffer.from(`${webapp.clientId}:${webapp.clientSecret}`).toString('base64')}`;
    const results = await Promise.all(Array.from({ length: 20 }, async () => {
      const res = await fetch(`${gatehouse.url}/token`, {
        method: 'POST',
        headers: { authorization: auth, 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ grant_type: 'authorization_code', code, code_verifier: r.codeVerifier, redirect_uri: `${app.url}/cb` }),
      });
      return { status: res.status, body: (await res.json()) as { error?: string } };
    }));
    expect(results.filter((x) => x.status === 200)).toHaveLength(1);
    const failures = results.filter((x) => x.status !== 200);
    expect(failures).toHaveLength(19);
    for (const f of failures) expect(f).toEqual({ status: 400, body: expect.objectContaining({ error: 'invalid_grant' }) });
  });

  it('logs out through RP-initiated logout with a confirmation page, and notifies the app over the back channel', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    const tokens = await exchange(await signIn(page, 'GitHub'));
    const posts = app.posts.length;
    const logoutUrl = oidc.buildEndSessionUrl(rp, { id_token_hint: tokens.id_token!, post_logout_redirect_uri: `${app.url}/bye`, state: 'bye-state' });
    const before = app.hits.length;
    await page.goto(logoutUrl.href);
    await page.getByRole('heading', { name: 'Sign out?' }).waitFor();
    await page.getByRole('button', { name: 'Yes, sign me out' }).click();
    const bye = await app.waitFor('/bye', before);
    expect(bye.searchParams.get('state')).toBe('bye-state');

    // back-channel logout token for this session
    const deadline = Date.now() + 10_000;
    while (app.posts.length === posts && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    const post = app.posts.at(-1)!;
    expect(post.path).toBe('/backchannel');
    const logoutToken = decodeJwt(new URLSearchParams(post.body).get('logout_token')!);
    expect(logoutToken).toMatchObject({ iss: gatehouse.url, aud: 'sample-app', sub: tokens.claims()!.sub, events: { 'http://schemas.openid.net/event/backchannel-logout': {} } });

    // signed out: the next authorization asks to sign in again
    await page.goto((await authorize()).url.href);
    await page.getByRole('button', { name: 'Continue with GitHub' }).waitFor();
  });

  it('forgets remembered consent when an admin revokes it', async () => {
    google.setUser({ sub: 'google-revoke', email: 'rev@example.com', email_verified: true });
    const tokens = await exchange(await signIn(await (await browser.newContext()).newPage(), 'Google'));
    const sub = tokens.claims()!.sub;
    const listed = runCli(['grants', 'list', '--account', sub, '--json'], db.url);
    expect(listed.code).toBe(0);
    expect(listed.json()).toEqual([expect.objectContaining({ accountId: sub, clientId: 'sample-app' })]);
    expect(runCli(['grants', 'revoke', '--account', sub, '--client', 'sample-app'], db.url).code).toBe(0);
    // the grant's refresh token is gone
    await expect(oidc.refreshTokenGrant(rp, tokens.refresh_token!, { resource: API })).rejects.toMatchObject({ error: 'invalid_grant' });
    // and the next sign-in asks for consent again
    await signIn(await (await browser.newContext()).newPage(), 'Google', { extra: { prompt: 'login' } });
  });

  it('completes the device flow through the code and confirmation pages, with sign-in in between', async () => {
    const device = createClient(db.url, [
      '--name', 'TV App', '--auth-method', 'none',
      '--grant-type', 'urn:ietf:params:oauth:grant-type:device_code', '--grant-type', 'refresh_token',
    ]);
    await new Promise((r) => setTimeout(r, 600)); // the new client reaches the server within CHANGE_POLL_MS
    const tv = await oidc.discovery(new URL(gatehouse.url), device.clientId, undefined, oidc.None(), { execute: [oidc.allowInsecureRequests] });
    const started = await oidc.initiateDeviceAuthorization(tv, { scope: 'openid email' });
    expect(started.user_code).toMatch(/^[A-Z]{4}-[A-Z]{4}$/);
    const polling = oidc.pollDeviceAuthorizationGrant(tv, started);

    const page = await (await browser.newContext()).newPage();
    // a wrong code first: a clear message, and the form again
    await page.goto(started.verification_uri);
    await page.getByLabel('Code from your device').fill('BCDF-GHJK');
    await page.getByRole('button', { name: 'Continue' }).click();
    await page.getByText('That code is not right').waitFor();
    await page.getByLabel('Code from your device').fill(started.user_code);
    await page.getByRole('button', { name: 'Continue' }).click();
    await page.getByRole('heading', { name: 'Is this your device?' }).waitFor();
    expect(await page.textContent('main')).toContain(started.user_code);
    await page.getByRole('button', { name: 'Continue' }).click();
    await page.getByRole('button', { name: 'Continue with GitHub' }).click();
    await page.getByRole('heading', { name: 'Allow TV App?' }).waitFor();
    await page.getByRole('button', { name: 'Allow' }).click();
    await page.getByRole('heading', { name: 'Your device is connected' }).waitFor();

    const tokens = await polling;
    expect(tokens.claims()).toMatchObject({ iss: gatehouse.url, aud: device.clientId });
    const userinfo = await oidc.fetchUserInfo(tv, tokens.access_token, tokens.claims()!.sub);
    expect(userinfo.email).toBe('octocat@github.com');
  });

  it('lets a third-party app register itself, then run code + PKCE + PAR + DPoP against an API using the kit', async () => {
    const iat = runCli(['registration-tokens', 'create', '--single-use', '--json'], db.url).json().token as string;
    const registered = (await (await fetch(`${gatehouse.url}/reg`, {
      method: 'POST',
      headers: { authorization: `Bearer ${iat}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        client_name: 'Partner App',
        redirect_uris: [`${app.url}/cb`],
        grant_types: ['authorization_code', 'refresh_token'],
        require_pushed_authorization_requests: true,
        dpop_bound_access_tokens: true,
      }),
    })).json()) as Record<string, string>;
    expect(registered.client_secret).toEqual(expect.any(String));
    // an admin lets the new app call the API
    expect(runCli(['clients', 'update', '--resource', API, '--', registered.client_id], db.url).code).toBe(0);
    await new Promise((r) => setTimeout(r, 600)); // the change reaches the server within CHANGE_POLL_MS

    const partner = await oidc.discovery(new URL(gatehouse.url), registered.client_id, undefined, oidc.ClientSecretBasic(registered.client_secret), {
      execute: [oidc.allowInsecureRequests],
    });
    const dpop = oidc.getDPoPHandle(partner, await oidc.randomDPoPKeyPair());
    const codeVerifier = oidc.randomPKCECodeVerifier();
    const state = oidc.randomState();
    const url = await oidc.buildAuthorizationUrlWithPAR(partner, {
      redirect_uri: `${app.url}/cb`, scope: 'openid read:things', resource: API, state,
      code_challenge: await oidc.calculatePKCECodeChallenge(codeVerifier), code_challenge_method: 'S256',
    }, { DPoP: dpop });
    expect(url.searchParams.get('request_uri')).toMatch(/^urn:ietf:params:oauth:request_uri:/);

    const before = app.hits.length;
    const page = await (await browser.newContext()).newPage();
    await page.goto(url.href);
    await page.getByRole('button', { name: 'Continue with GitHub' }).click();
    // a registered app is third-party: always asked
    await page.getByRole('heading', { name: 'Allow Partner App?' }).waitFor();
    expect(await page.textContent('main')).toContain('Things API');
    await page.getByRole('button', { name: 'Allow' }).click();
    const callback = await app.waitFor('/cb', before);

    const tokens = await oidc.authorizationCodeGrant(partner, callback, { pkceCodeVerifier: codeVerifier, expectedState: state }, { resource: API }, { DPoP: dpop });
    expect(tokens.token_type.toLowerCase()).toBe('dpop');
    const claims = decodeJwt(tokens.access_token) as { aud: string; cnf?: { jkt?: string } };
    expect(claims.aud).toBe(API);
    expect(claims.cnf?.jkt).toEqual(expect.any(String));

    const kit = new Koa();
    kit.use(requireToken({ issuer: gatehouse.url, audience: API, scopes: ['read:things'] }));
    kit.use((ctx) => {
      ctx.body = { sub: (ctx.state as { auth: { subject: string } }).auth.subject };
    });
    const server = kit.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const kitUrl = `http://127.0.0.1:${(server.address() as { port: number }).port}/things`;
    try {
      const ok = await oidc.fetchProtectedResource(partner, tokens.access_token, new URL(kitUrl), 'GET', undefined, undefined, { DPoP: dpop });
      expect(ok.status).toBe(200);
      expect(((await ok.json()) as { sub: string }).sub).toBe(tokens.claims()!.sub);
      // the same token without its proof is refused
      const stolen = await fetch(kitUrl, { headers: { authorization: `Bearer ${tokens.access_token}` } });
      expect(stolen.status).toBe(401);
    } finally {
      server.close();
    }
  });
});
