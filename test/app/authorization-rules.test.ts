import * as oidc from 'openid-client';
import { decodeJwt } from 'jose';
import { createApi } from '../../src/services/apis.js';
import { ACR_NO_ASSURANCE, ACR_UPSTREAM_AUTH_TIME } from '../../src/services/authentication.js';
import { createHash } from 'node:crypto';
import {
  authorize, chooseUpstream, databaseKinds, exchangeCode, fakeUpstream, signIn, startInProcess,
  type FakeUpstream, type InProcess, type TestClient,
} from '../support/in-process.js';

/**
 * Issue 19's protocol fixes over HTTP against an in-process Gatehouse:
 * re-authentication that is real (prompt=login, max_age and essential acr
 * checked against what the upstream reported), redirect_uri required, PKCE per
 * client, Pragma on token responses, and a reused code revoking only its own
 * tokens.
 */

const API = 'https://things.example.com';
const now = () => Math.floor(Date.now() / 1000);

async function form(url: string, body: Record<string, string>, auth?: TestClient) {
  const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded' };
  if (auth) headers.authorization = `Basic ${Buffer.from(`${auth.clientId}:${auth.clientSecret}`).toString('base64')}`;
  const res = await fetch(url, { method: 'POST', headers, body: new URLSearchParams(body) });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: (text ? JSON.parse(text) : {}) as Record<string, unknown> };
}

describe.each(databaseKinds())('authorization rules on %s', (kind) => {
  let server: InProcess;
  let acme: FakeUpstream;
  /** an OpenID Connect upstream: it reports auth_time, so a sign-in without one after prompt=login is suspect */
  let corp: FakeUpstream;
  let app: TestClient;

  beforeAll(async () => {
    acme = fakeUpstream('acme', 'Acme SSO');
    corp = fakeUpstream('corp', 'Corp SSO', { reportsAuthTime: true });
    server = await startInProcess({ kind, upstreams: [acme, corp] });
    app = await server.createClient({ name: 'Rules App' });
  });
  afterAll(() => server?.close());

  const idTokenOf = async (authorization: Parameters<typeof exchangeCode>[1], callback: URL) =>
    (await exchangeCode(server, authorization, callback)).tokens.claims()!;

  describe('re-authentication', () => {
    it('passes prompt=login upstream, and takes the upstream auth_time only when it is newer than the request', async () => {
      const browser = server.browser();
      const old = now() - 3600;
      acme.signInAs({ subject: 'reauth-1', authentication: { authTime: old, amr: ['pwd'] } });
      const first = await signIn(browser, app, acme);
      const claims = await idTokenOf(first.authorization, first.callback);
      // the upstream's own time, not the click at Gatehouse
      expect(claims.auth_time).toBe(old);
      expect(claims.acr).toBe(ACR_UPSTREAM_AUTH_TIME);
      expect(claims.amr).toEqual(['acme', 'pwd']);
      expect(acme.started.at(-1)!.reauth).toBeUndefined();

      // the upstream did not authenticate again: refused, no code
      const stale = await signIn(browser, app, acme, { prompt: 'login' });
      expect(acme.started.at(-1)!.reauth).toEqual({ login: true, maxAge: undefined });
      expect(stale.callback.searchParams.get('error')).toBe('login_required');
      expect(stale.callback.searchParams.get('code')).toBeNull();

      const fresh = now();
      acme.signInAs({ subject: 'reauth-1', authentication: { authTime: fresh } });
      const again = await signIn(browser, app, acme, { prompt: 'login' });
      const reclaims = await idTokenOf(again.authorization, again.callback);
      expect(reclaims.auth_time).toBeGreaterThanOrEqual(fresh);
      expect(reclaims.sub).toBe(claims.sub);
    });

    it('passes max_age upstream and refuses an upstream authentication older than it', async () => {
      const browser = server.browser();
      acme.signInAs({ subject: 'reauth-2', authentication: { authTime: now() - 600 } });
      const refused = await signIn(browser, app, acme, { max_age: '60' });
      expect(acme.started.at(-1)!.reauth).toEqual({ login: false, maxAge: 60 });
      expect(refused.callback.searchParams.get('error')).toBe('login_required');

      const recent = now() - 10;
      acme.signInAs({ subject: 'reauth-2', authentication: { authTime: recent } });
      const ok = await signIn(server.browser(), app, acme, { max_age: '60' });
      expect((await idTokenOf(ok.authorization, ok.callback)).auth_time).toBe(recent);
    });

    it('says acr "0" for an upstream that reports no auth_time, and fails an essential acr it cannot meet', async () => {
      acme.signInAs({ subject: 'reauth-3' });
      const before = now();
      const plain = await signIn(server.browser(), app, acme, { prompt: 'login' });
      const claims = await idTokenOf(plain.authorization, plain.callback);
      expect(claims.acr).toBe(ACR_NO_ASSURANCE);
      expect(claims.auth_time).toBeGreaterThanOrEqual(before);
      expect(claims.amr).toEqual(['acme']);

      const essential = JSON.stringify({ id_token: { acr: { essential: true, values: [ACR_UPSTREAM_AUTH_TIME] } } });
      const unmet = await signIn(server.browser(), app, acme, { claims: essential });
      expect(unmet.callback.searchParams.get('error')).toBe('unmet_authentication_requirements');

      // an essential acr the sign-in does meet goes through
      acme.signInAs({ subject: 'reauth-3', authentication: { authTime: now() } });
      const met = await signIn(server.browser(), app, acme, { claims: essential });
      expect((await idTokenOf(met.authorization, met.callback)).acr).toBe(ACR_UPSTREAM_AUTH_TIME);
    });
  });

  describe('re-authentication, as an outside attacker tried it', () => {
    it('refuses a re-authentication an OpenID Connect upstream answered without auth_time (the request stripped on its way)', async () => {
      corp.signInAs({ subject: 'strip-1' });
      for (const ask of [{ prompt: 'login' }, { max_age: '0' }] as Record<string, string>[]) {
        const stripped = await signIn(server.browser(), app, corp, ask);
        expect(stripped.callback.searchParams.get('error')).toBe('login_required');
        expect(stripped.callback.searchParams.get('code')).toBeNull();
      }
      // without a demand for a fresh authentication, the same answer is a sign-in (acr "0")
      const plain = await signIn(server.browser(), app, corp);
      expect((await idTokenOf(plain.authorization, plain.callback)).acr).toBe(ACR_NO_ASSURANCE);
    });

    it('refuses a re-authentication by someone other than the person the id_token_hint names', async () => {
      const browser = server.browser();
      acme.signInAs({ subject: 'hint-alice', authentication: { authTime: now() } });
      const alice = await signIn(browser, app, acme);
      const { tokens } = await exchangeCode(server, alice.authorization, alice.callback);
      acme.signInAs({ subject: 'hint-bob', authentication: { authTime: now() } });
      const bob = await signIn(browser, app, acme, { prompt: 'login', id_token_hint: tokens.id_token! });
      expect(bob.callback.searchParams.get('error')).toBe('login_required');
      // the hinted person herself goes through
      acme.signInAs({ subject: 'hint-alice', authentication: { authTime: now() } });
      const again = await signIn(browser, app, acme, { prompt: 'login', id_token_hint: tokens.id_token! });
      expect((await idTokenOf(again.authorization, again.callback)).sub).toBe(tokens.claims()!.sub);
    });

    it('reads essential acr requests as oidc-provider does: an unmeetable one ends with an error, never a loop', async () => {
      const A = ACR_UPSTREAM_AUTH_TIME;
      acme.signInAs({ subject: 'acr-shapes' });
      for (const acr of [
        { essential: 'true', values: [A] }, { essential: 1, values: [A] }, { essential: true, values: [] },
        { essential: true, values: [[A]] }, { essential: true, value: 5 }, { essential: true, value: '0', values: [A] },
      ]) {
        const res = await signIn(server.browser(), app, acme, { claims: JSON.stringify({ id_token: { acr } }) });
        expect({ acr, error: res.callback.searchParams.get('error') }).toEqual({ acr, error: 'unmet_authentication_requirements' });
      }
    });

    it('refuses prompt=login and max_age in the device flow, which cannot honour them', async () => {
      const device = await server.createClient({ name: 'TV', grantTypes: ['urn:ietf:params:oauth:grant-type:device_code'] });
      for (const extra of [{ max_age: '0' }, { prompt: 'login' }] as Record<string, string>[]) {
        const res = await form(`${server.url}/device/auth`, { client_id: device.clientId, scope: 'openid', ...extra }, device);
        expect(res.status).toBe(400);
        expect(res.body).toMatchObject({ error: 'invalid_request', error_description: expect.stringContaining('device flow') });
      }
      // a repeated prompt (found by the outside attacker) counts too
      const repeated = new URLSearchParams([['client_id', device.clientId], ['scope', 'openid'], ['prompt', 'consent'], ['prompt', 'login']]);
      const twice = await fetch(`${server.url}/device/auth`, {
        method: 'POST', body: repeated,
        headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`${device.clientId}:${device.clientSecret}`).toString('base64')}` },
      });
      expect(twice.status).toBe(400);
      expect((await form(`${server.url}/device/auth`, { client_id: device.clientId, scope: 'openid' }, device)).status).toBe(200);
    });
  });

  describe('requests', () => {
    it("serves oidc-provider's form_post page with a policy that allows only its own script, and the page headers", async () => {
      acme.signInAs({ subject: 'form-post-1' });
      const browser = server.browser();
      const { uid } = await authorize(browser, app, { response_mode: 'form_post', prompt: 'consent' });
      await chooseUpstream(browser, uid, 'acme');
      let { last } = await browser.follow(await browser.get(acme.redirectBack()));
      if (/^\/interaction\//.test(new URL(last.url).pathname)) {
        const csrf = /name="csrf" value="([^"]+)"/.exec(last.text)![1];
        ({ last } = await browser.follow(await browser.post(`${new URL(last.url).pathname}/confirm`, { csrf })));
      }
      expect(last.text).toContain('<form method="post" action="https://app.example.com/cb">');
      const script = /<script>([\s\S]*?)<\/script>/.exec(last.text)![1];
      const csp = last.headers.get('content-security-policy')!;
      expect(csp).toContain(`script-src 'sha256-${createHash('sha256').update(script).digest('base64')}'`);
      expect(csp).toContain("frame-ancestors 'none'");
      expect(csp).toContain("default-src 'none'");
      expect(last.headers.get('x-content-type-options')).toBe('nosniff');
      expect(last.headers.get('referrer-policy')).toBe('no-referrer');
      expect(last.headers.get('cache-control')).toBe('no-store');
    });

    it('answers revocation with Cache-Control: no-store and Pragma: no-cache', async () => {
      const res = await form(`${server.url}/token/revocation`, { token: 'whatever' }, app);
      expect(res.status).toBe(200);
      expect(res.headers.get('cache-control')).toBe('no-store');
      expect(res.headers.get('pragma')).toBe('no-cache');
    });

    it('requires redirect_uri at /auth and /token, even with one registered URI', async () => {
      const browser = server.browser();
      const params = new URLSearchParams({ client_id: app.clientId, response_type: 'code', scope: 'openid', state: 's', code_challenge: 'x'.repeat(43), code_challenge_method: 'S256' });
      const page = await browser.get(`/auth?${params}`);
      // an error page at Gatehouse, never a redirect with a code
      expect(page.status).toBe(400);
      expect(page.location).toBeNull();
      expect(page.text).toContain('redirect_uri');

      acme.signInAs({ subject: 'rules-1' });
      const { authorization, callback } = await signIn(browser, app, acme);
      const res = await form(`${server.url}/token`, { grant_type: 'authorization_code', code: callback.searchParams.get('code')!, code_verifier: authorization.codeVerifier }, app);
      expect(res.status).toBe(400);
      expect(res.body).toMatchObject({ error: 'invalid_request', error_description: expect.stringContaining('redirect_uri') });
    });

    it('answers token requests with Cache-Control: no-store and Pragma: no-cache, errors too', async () => {
      acme.signInAs({ subject: 'rules-2' });
      const { authorization, callback } = await signIn(server.browser(), app, acme);
      const code = callback.searchParams.get('code')!;
      const ok = await form(`${server.url}/token`, { grant_type: 'authorization_code', code, redirect_uri: app.redirectUri, code_verifier: authorization.codeVerifier }, app);
      expect(ok.status).toBe(200);
      expect(ok.headers.get('cache-control')).toBe('no-store');
      expect(ok.headers.get('pragma')).toBe('no-cache');
      const error = await form(`${server.url}/token`, { grant_type: 'authorization_code', code: 'nope', redirect_uri: app.redirectUri }, app);
      expect(error.status).toBe(400);
      expect(error.headers.get('pragma')).toBe('no-cache');
    });

    it('requires PKCE unless an admin made the confidential client PKCE-optional', async () => {
      const optional = await server.createClient({ name: 'Legacy App', pkce: 'optional' });
      const without = { code_challenge: '', code_challenge_method: '' };
      const strip = (p: Record<string, string>) => Object.fromEntries(Object.entries(p).filter(([, v]) => v !== ''));
      acme.signInAs({ subject: 'rules-3' });
      const browser = server.browser();
      // the default: no PKCE, no code
      const refused = await browser.get(`/auth?${new URLSearchParams(strip({ client_id: app.clientId, response_type: 'code', redirect_uri: app.redirectUri, scope: 'openid', state: 's', ...without }))}`);
      expect(new URL(refused.location!).searchParams.get('error')).toBe('invalid_request');
      expect(new URL(refused.location!).searchParams.get('error_description')).toMatch(/PKCE/);

      // PKCE-optional: a code without a challenge, redeemed without a verifier
      const { authorization, callback } = await signIn(browser, optional, acme, without);
      expect(callback.searchParams.get('code')).toBeTruthy();
      const rp = await oidc.discovery(new URL(server.url), optional.clientId, undefined, oidc.ClientSecretBasic(optional.clientSecret), { execute: [oidc.allowInsecureRequests] });
      const tokens = await oidc.authorizationCodeGrant(rp, callback, { expectedState: authorization.state, expectedNonce: authorization.nonce });
      expect(tokens.access_token).toBeTruthy();
      // still PKCE when the app sends a challenge: its verifier is checked
      const withChallenge = await signIn(server.browser(), optional, acme);
      const wrong = await form(`${server.url}/token`, { grant_type: 'authorization_code', code: withChallenge.callback.searchParams.get('code')!, redirect_uri: optional.redirectUri, code_verifier: 'w'.repeat(43) }, optional);
      expect(wrong.body.error).toBe('invalid_grant');
    });
  });

  describe('a reused code', () => {
    let introspector: TestClient;
    beforeAll(async () => {
      introspector = await server.createClient({ name: 'Things API', grantTypes: ['client_credentials'] });
      await createApi(server.database.prisma, { identifier: API, name: 'Things', scopes: ['read:things'], introspectors: [introspector.clientId] });
    });

    it("revokes that code's tokens (opaque and JWT, and refreshes of them) and leaves the other authorization's alone", async () => {
      const things = await server.createClient({ name: 'Things App', resources: [API] });
      await server.app.cache.refresh();
      acme.signInAs({ subject: 'reuse-1' });
      const browser = server.browser();
      const ask = { scope: 'openid offline_access read:things', resource: API, prompt: 'consent' };
      const first = await signIn(browser, things, acme, ask);
      const { rp, tokens: firstTokens } = await exchangeCode(server, first.authorization, first.callback);
      // a refresh descending from the first code: its tokens are the code's too
      const refreshed = await oidc.refreshTokenGrant(rp, firstTokens.refresh_token!, { resource: API });
      // other sessions of the same person with the same app (one grant: the remembered consent)
      const second = await signIn(server.browser(), things, acme, ask);
      const { tokens: secondTokens } = await exchangeCode(server, second.authorization, second.callback);
      const third = await signIn(server.browser(), things, acme, { scope: 'openid offline_access' });
      const opaque = await exchangeCode(server, third.authorization, third.callback);
      expect(decodeJwt(firstTokens.access_token).grant_id).toBe(decodeJwt(secondTokens.access_token).grant_id);

      const reuse = await form(`${server.url}/token`, {
        grant_type: 'authorization_code', code: first.callback.searchParams.get('code')!, redirect_uri: things.redirectUri, code_verifier: first.authorization.codeVerifier,
      }, things);
      expect(reuse.body.error).toBe('invalid_grant');

      const active = async (token: string) => (await form(`${server.url}/token/introspection`, { token }, introspector)).body.active;
      expect(await active(firstTokens.access_token)).toBe(false);
      expect(await active(refreshed.access_token)).toBe(false);
      await expect(oidc.refreshTokenGrant(rp, refreshed.refresh_token!, { resource: API })).rejects.toMatchObject({ error: 'invalid_grant' });
      // the other authorizations of the same person and app stand
      expect(await active(secondTokens.access_token)).toBe(true);
      // the tag is Gatehouse's own: in the JWT, never repeated by introspection
      expect(decodeJwt(secondTokens.access_token).gatehouse_code).toEqual(expect.any(String));
      expect((await form(`${server.url}/token/introspection`, { token: secondTokens.access_token }, introspector)).body).not.toHaveProperty('gatehouse_code');
      expect((await oidc.refreshTokenGrant(rp, secondTokens.refresh_token!, { resource: API })).access_token).toBeTruthy();
      expect((await oidc.fetchUserInfo(rp, opaque.tokens.access_token, opaque.tokens.claims()!.sub)).sub).toBe(opaque.tokens.claims()!.sub);
    });

    it('revokes an opaque access token of the code it came from', async () => {
      acme.signInAs({ subject: 'reuse-2' });
      const browser = server.browser();
      const first = await signIn(browser, app, acme);
      const { rp, tokens } = await exchangeCode(server, first.authorization, first.callback);
      const sub = tokens.claims()!.sub;
      expect((await oidc.fetchUserInfo(rp, tokens.access_token, sub)).sub).toBe(sub);
      const other = await signIn(server.browser(), app, acme);
      const { tokens: otherTokens } = await exchangeCode(server, other.authorization, other.callback);
      await form(`${server.url}/token`, { grant_type: 'authorization_code', code: first.callback.searchParams.get('code')!, redirect_uri: app.redirectUri, code_verifier: first.authorization.codeVerifier }, app);
      await expect(oidc.fetchUserInfo(rp, tokens.access_token, sub)).rejects.toBeDefined();
      expect((await oidc.fetchUserInfo(rp, otherTokens.access_token, sub)).sub).toBe(sub);
    });
  });
});
