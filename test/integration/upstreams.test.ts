import { request as httpRequest } from 'node:http';
import * as client from 'openid-client';
import { decodeProtectedHeader } from 'jose';
import { defaultGitHubUser, startFakeGitHub, type FakeGitHub } from '../support/upstreams/fake-github.js';
import { defaultOidcUser, startFakeOidc, type FakeOidc } from '../support/upstreams/fake-oidc.js';
import { openIdConnect } from '../../src/federation/oidc.js';
import { gitHub } from '../../src/federation/github.js';
import { UpstreamError, type Upstream } from '../../src/federation/upstream.js';
import { freePort } from '../support/processes.js';

// The stand-ins are exercised the way Gatehouse will use them: openid-client as the
// relying party, fetch as the browser. Nobody listens on the redirect URI; the browser
// stops when it is told to go there and hands the URL to the relying party.
const REDIRECT_URI = 'http://127.0.0.1:9/callback';

/** Cookies by name only: like a browser, it does not separate 127.0.0.1 ports. */
class CookieJar {
  readonly cookies = new Map<string, string>();
  store(res: Response) {
    for (const line of res.headers.getSetCookie()) {
      const [pair, ...attrs] = line.split(';');
      const i = pair.indexOf('=');
      const name = pair.slice(0, i).trim();
      const expired = attrs.some((a) => /^\s*max-age=0\s*$/i.test(a) || (/^\s*expires=/i.test(a) && Date.parse(a.split('=')[1]) < Date.now()));
      if (expired) this.cookies.delete(name);
      else this.cookies.set(name, pair.slice(i + 1).trim());
    }
  }
  header() {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }
}

/** Follows redirects like a browser until one points at the redirect URI. */
async function browse(start: URL | string, jar = new CookieJar()): Promise<URL> {
  let url = new URL(start);
  for (let hop = 0; hop < 10; hop++) {
    if (url.href.startsWith(REDIRECT_URI)) return url;
    const res = await fetch(url, { redirect: 'manual', headers: { cookie: jar.header() } });
    jar.store(res);
    const location = res.headers.get('location');
    if (res.status < 300 || res.status > 399 || !location) {
      throw new Error(`stopped at ${url.href}: HTTP ${res.status} ${await res.text()}`);
    }
    url = new URL(location, url);
  }
  throw new Error('too many redirects');
}

async function rejection(promise: Promise<unknown>): Promise<any> {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  throw new Error('expected a rejection');
}

/** GitHub's error body out of openid-client's ClientError → OperationProcessingError chain. */
function gitHubError(err: any): Record<string, string> {
  return err?.cause?.cause?.body;
}

describe('fake GitHub', () => {
  const clientId = 'Iv1.gatehouse-test';
  const clientSecret = 'github-secret';
  let gh: FakeGitHub;
  let config: client.Configuration;

  beforeAll(async () => {
    gh = await startFakeGitHub({ clientId, clientSecret });
    config = new client.Configuration(
      { issuer: gh.baseUrl, authorization_endpoint: `${gh.baseUrl}/login/oauth/authorize`, token_endpoint: `${gh.baseUrl}/login/oauth/access_token` },
      clientId,
      clientSecret,
    );
    client.allowInsecureRequests(config);
  });
  afterAll(() => gh.close());
  beforeEach(() => gh.setBehaviour({}));

  async function startFlow(scope = 'read:user user:email') {
    const pkceCodeVerifier = client.randomPKCECodeVerifier();
    const expectedState = client.randomState();
    const url = client.buildAuthorizationUrl(config, {
      redirect_uri: REDIRECT_URI,
      scope,
      state: expectedState,
      code_challenge: await client.calculatePKCECodeChallenge(pkceCodeVerifier),
      code_challenge_method: 'S256',
    });
    return { pkceCodeVerifier, expectedState, callback: await browse(url) };
  }

  function lastRequest(path: string) {
    return gh.log.filter((r) => r.path === path).at(-1)!;
  }

  async function api(path: string, authorization?: string, headers: Record<string, string> = {}) {
    const res = await fetch(`${gh.apiUrl}${path}`, { headers: { ...(authorization && { authorization }), ...headers } });
    return { status: res.status, headers: res.headers, body: (await res.json()) as any };
  }

  test('web flow with state and PKCE yields a token for /user and /user/emails', async () => {
    const { pkceCodeVerifier, expectedState, callback } = await startFlow();
    expect(callback.searchParams.get('state')).toBe(expectedState);
    expect(callback.searchParams.get('code')).toMatch(/^[0-9a-f]{20}$/);
    const authorize = lastRequest('/login/oauth/authorize');
    expect(authorize.query).toMatchObject({ client_id: clientId, code_challenge_method: 'S256', scope: 'read:user user:email' });
    expect(authorize.query.code_challenge).toBe(await client.calculatePKCECodeChallenge(pkceCodeVerifier));

    const tokens = await client.authorizationCodeGrant(config, callback, { pkceCodeVerifier, expectedState });
    expect(tokens.access_token).toMatch(/^gho_[A-Za-z0-9]{36}$/);
    expect(tokens.token_type).toBe('bearer');
    expect(tokens.scope).toBe('read:user,user:email');
    expect(lastRequest('/login/oauth/access_token').body).toMatchObject({ code_verifier: pkceCodeVerifier });

    const userRes = await client.fetchProtectedResource(config, tokens.access_token, new URL(`${gh.apiUrl}/user`), 'GET');
    expect(userRes.status).toBe(200);
    expect(userRes.headers.get('x-oauth-scopes')).toBe('read:user, user:email');
    expect(await userRes.json()).toMatchObject({ login: 'octocat', id: 583231, node_id: 'MDQ6VXNlcjU4MzIzMQ==', type: 'User', email: null });

    const emails = await api('/user/emails', `token ${tokens.access_token}`);
    expect(emails.status).toBe(200);
    expect(emails.body).toEqual([
      { email: 'octocat@github.com', primary: true, verified: true, visibility: 'private' },
      { email: 'octocat@example.org', primary: false, verified: false, visibility: null },
    ]);
  });

  test('tokens belong to the user who signed in; /user/emails needs the user:email scope', async () => {
    gh.setUser({ id: 7, login: 'mona', name: null, avatarUrl: 'https://example.test/mona.png', publicEmail: 'mona@example.com', emails: [{ email: 'mona@example.com', primary: true, verified: true }] });
    try {
      const { pkceCodeVerifier, expectedState, callback } = await startFlow('read:user');
      const { access_token } = await client.authorizationCodeGrant(config, callback, { pkceCodeVerifier, expectedState });
      const user = await api('/user', `Bearer ${access_token}`);
      expect(user.body).toMatchObject({ login: 'mona', id: 7, name: null, email: 'mona@example.com', avatar_url: 'https://example.test/mona.png' });
      expect((await api('/user/emails', `Bearer ${access_token}`)).status).toBe(404);
    } finally {
      gh.setUser(defaultGitHubUser);
    }
  });

  test('without Accept: application/json the token endpoint answers form-encoded, errors included', async () => {
    // Without PKCE, which GitHub leaves optional.
    const authorize = new URL(`${gh.baseUrl}/login/oauth/authorize`);
    authorize.search = new URLSearchParams({ client_id: clientId, redirect_uri: REDIRECT_URI, scope: 'read:user' }).toString();
    const code = (await browse(authorize)).searchParams.get('code')!;
    const exchange = () => fetch(`${gh.baseUrl}/login/oauth/access_token`, {
      method: 'POST',
      body: new URLSearchParams({ client_id: clientId, client_secret: clientSecret, code, redirect_uri: REDIRECT_URI }),
    });

    const res = await exchange();
    expect(res.headers.get('content-type')).toMatch(/^application\/x-www-form-urlencoded/);
    const fields = Object.fromEntries(new URLSearchParams(await res.text()));
    expect(fields).toEqual({ access_token: expect.stringMatching(/^gho_/), token_type: 'bearer', scope: 'read:user' });

    const replay = await exchange();
    expect(replay.status).toBe(200);
    expect(Object.fromEntries(new URLSearchParams(await replay.text()))).toMatchObject({ error: 'bad_verification_code' });
  });

  test('deny redirects back with error=access_denied and the state', async () => {
    gh.setBehaviour({ deny: true });
    const { expectedState, pkceCodeVerifier, callback } = await startFlow();
    expect(Object.fromEntries(callback.searchParams)).toEqual({
      error: 'access_denied',
      error_description: 'The user has denied your application access.',
      error_uri: 'https://docs.github.com/apps/managing-oauth-apps/troubleshooting-authorization-request-errors/#access-denied',
      state: expectedState,
    });
    const err = await rejection(client.authorizationCodeGrant(config, callback, { pkceCodeVerifier, expectedState }));
    expect(err).toBeInstanceOf(client.AuthorizationResponseError);
    expect(err.error).toBe('access_denied');
  });

  // GitHub reports token errors with HTTP 200, so openid-client does not see an OAuth
  // error response: it throws ClientError(OAUTH_INVALID_RESPONSE) for the missing
  // access_token, and GitHub's body is two causes down.
  test('a replayed code is refused with bad_verification_code (HTTP 200)', async () => {
    const { pkceCodeVerifier, expectedState, callback } = await startFlow();
    await client.authorizationCodeGrant(config, callback, { pkceCodeVerifier, expectedState });
    const err = await rejection(client.authorizationCodeGrant(config, callback, { pkceCodeVerifier, expectedState }));
    expect(err).toBeInstanceOf(client.ClientError);
    expect(err.code).toBe('OAUTH_INVALID_RESPONSE');
    expect(gitHubError(err)).toEqual({
      error: 'bad_verification_code',
      error_description: 'The code passed is incorrect or expired.',
      error_uri: 'https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors/#bad-verification-code',
    });
  });

  test('a wrong code_verifier is refused', async () => {
    const { expectedState, callback } = await startFlow();
    const err = await rejection(client.authorizationCodeGrant(config, callback, { pkceCodeVerifier: client.randomPKCECodeVerifier(), expectedState }));
    expect(gitHubError(err).error).toBe('bad_verification_code');
  });

  test('a wrong client secret is refused, whether sent in the body or with HTTP Basic', async () => {
    const { pkceCodeVerifier, expectedState, callback } = await startFlow();
    const code = callback.searchParams.get('code')!;
    const res = await fetch(`${gh.baseUrl}/login/oauth/access_token`, {
      method: 'POST',
      headers: { accept: 'application/json' },
      body: new URLSearchParams({ client_id: clientId, client_secret: 'wrong', code, code_verifier: pkceCodeVerifier }),
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ error: 'incorrect_client_credentials' });

    const basic = new client.Configuration(config.serverMetadata(), clientId, undefined, client.ClientSecretBasic('wrong'));
    client.allowInsecureRequests(basic);
    const err = await rejection(client.authorizationCodeGrant(basic, callback, { pkceCodeVerifier, expectedState }));
    expect(gitHubError(err).error).toBe('incorrect_client_credentials');

    // The failed attempts did not burn the code, and Basic with the right secret works.
    const good = new client.Configuration(config.serverMetadata(), clientId, undefined, client.ClientSecretBasic(clientSecret));
    client.allowInsecureRequests(good);
    const tokens = await client.authorizationCodeGrant(good, callback, { pkceCodeVerifier, expectedState });
    expect(tokens.access_token).toMatch(/^gho_/);
  });

  test('a redirect_uri other than the authorize one is refused', async () => {
    const { pkceCodeVerifier, callback } = await startFlow();
    const res = await fetch(`${gh.baseUrl}/login/oauth/access_token`, {
      method: 'POST',
      headers: { accept: 'application/json' },
      body: new URLSearchParams({ client_id: clientId, client_secret: clientSecret, code: callback.searchParams.get('code')!, code_verifier: pkceCodeVerifier, redirect_uri: 'http://127.0.0.1:9/elsewhere' }),
    });
    expect(await res.json()).toMatchObject({ error: 'redirect_uri_mismatch' });
  });

  test('an unknown client_id gets a 404 page, not a redirect', async () => {
    const res = await fetch(`${gh.baseUrl}/login/oauth/authorize?client_id=nope&redirect_uri=${encodeURIComponent(REDIRECT_URI)}`, { redirect: 'manual' });
    expect(res.status).toBe(404);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
  });

  test('the REST API refuses bad, missing and User-Agent-less credentials, and can fail on demand', async () => {
    expect(await api('/user', 'Bearer gho_not-a-real-token')).toMatchObject({ status: 401, body: { message: 'Bad credentials' } });
    expect(await api('/user')).toMatchObject({ status: 401, body: { message: 'Requires authentication' } });

    const { pkceCodeVerifier, expectedState, callback } = await startFlow();
    const { access_token } = await client.authorizationCodeGrant(config, callback, { pkceCodeVerifier, expectedState });
    const status = await new Promise<number>((resolve, reject) => {
      // node:http sends no User-Agent unless told to, unlike fetch.
      httpRequest(`${gh.apiUrl}/user`, { headers: { authorization: `Bearer ${access_token}` } }, (res) => {
        res.resume();
        resolve(res.statusCode!);
      }).on('error', reject).end();
    });
    expect(status).toBe(403);

    gh.setBehaviour({ failApi: true });
    expect((await api('/user', `Bearer ${access_token}`)).status).toBe(500);
    gh.setBehaviour({});
    expect((await api('/user', `Bearer ${access_token}`)).status).toBe(200);
  });
});

describe('fake OIDC providers', () => {
  const google = { clientId: 'gatehouse.apps.googleusercontent.com', clientSecret: 'google-secret' };
  const acme = { clientId: 'gatehouse', clientSecret: 'acme-secret' };
  let googleIdp: FakeOidc;
  let acmeIdp: FakeOidc;

  beforeAll(async () => {
    // Both at once, as Gatehouse's tests will run them.
    [googleIdp, acmeIdp] = await Promise.all([
      startFakeOidc({ ...google, redirectUris: [REDIRECT_URI], name: 'Google' }),
      startFakeOidc({ ...acme, redirectUris: [REDIRECT_URI], name: 'Acme SSO' }),
    ]);
    acmeIdp.setUser({ sub: 'acme|42', email: 'grace@acme.test', email_verified: false, name: 'Grace Hopper' });
  });
  afterAll(() => Promise.all([googleIdp.close(), acmeIdp.close()]));
  beforeEach(() => googleIdp.setBehaviour({}));

  function discover(idp: FakeOidc, creds: { clientId: string; clientSecret: string }, auth?: client.ClientAuth) {
    return client.discovery(new URL(idp.issuer), creds.clientId, creds.clientSecret, auth, { execute: [client.allowInsecureRequests] });
  }

  async function signIn(config: client.Configuration, jar = new CookieJar(), extra: Record<string, string> = {}) {
    const pkceCodeVerifier = client.randomPKCECodeVerifier();
    const expectedState = client.randomState();
    const expectedNonce = client.randomNonce();
    const url = client.buildAuthorizationUrl(config, {
      redirect_uri: REDIRECT_URI,
      scope: 'openid email profile',
      state: expectedState,
      nonce: expectedNonce,
      code_challenge: await client.calculatePKCECodeChallenge(pkceCodeVerifier),
      code_challenge_method: 'S256',
      ...extra,
    });
    return { pkceCodeVerifier, expectedState, expectedNonce, callback: await browse(url, jar) };
  }

  test('code flow with PKCE and nonce yields an RS256 ID token with the user\'s claims', async () => {
    const config = await discover(googleIdp, google);
    expect(config.serverMetadata().code_challenge_methods_supported).toEqual(['S256']);
    const { callback, ...checks } = await signIn(config);
    expect(callback.searchParams.get('iss')).toBe(googleIdp.issuer);

    const tokens = await client.authorizationCodeGrant(config, callback, checks);
    expect(decodeProtectedHeader(tokens.id_token!).alg).toBe('RS256');
    expect(tokens.claims()).toMatchObject({
      iss: googleIdp.issuer,
      aud: google.clientId,
      sub: '110169484474386276334',
      nonce: checks.expectedNonce,
      email: 'ada@example.com',
      email_verified: true,
      name: 'Ada Lovelace',
      picture: 'https://lh3.googleusercontent.com/a/ada',
    });
    const userinfo = await client.fetchUserInfo(config, tokens.access_token, '110169484474386276334');
    expect(userinfo.email).toBe('ada@example.com');
  });

  test('discovery() defaults to client_secret_post; client_secret_basic is accepted too', async () => {
    const seen: string[] = [];
    const spy: client.CustomFetch = (url, init) => {
      if (url.endsWith('/token')) seen.push(new Headers(init.headers).get('authorization') ? 'basic' : String(init.body).includes('client_secret=') ? 'post' : 'none');
      return fetch(url, init as RequestInit);
    };
    for (const auth of [undefined, client.ClientSecretBasic(google.clientSecret)]) {
      const config = await discover(googleIdp, google, auth);
      config[client.customFetch] = spy;
      const { callback, ...checks } = await signIn(config);
      expect((await client.authorizationCodeGrant(config, callback, checks)).claims()!.sub).toBe('110169484474386276334');
    }
    expect(seen).toEqual(['post', 'basic']);
  });

  test('two providers side by side keep their own users, keys and cookies in one browser', async () => {
    const jar = new CookieJar();
    const [gConfig, aConfig] = await Promise.all([discover(googleIdp, google), discover(acmeIdp, acme)]);
    const g = await signIn(gConfig, jar);
    const googleCookies = [...jar.cookies.keys()];
    const a = await signIn(aConfig, jar);
    const acmeCookies = [...jar.cookies.keys()].filter((n) => !googleCookies.includes(n));
    // Session cookies must not be called `_session`, or they would clobber Gatehouse's.
    expect(googleCookies.some((n) => n.endsWith('_session') && n !== '_session')).toBe(true);
    expect(acmeCookies.some((n) => n.endsWith('_session') && n !== '_session')).toBe(true);

    const gClaims = (await client.authorizationCodeGrant(gConfig, g.callback, g)).claims()!;
    const aClaims = (await client.authorizationCodeGrant(aConfig, a.callback, a)).claims()!;
    expect(gClaims).toMatchObject({ iss: googleIdp.issuer, sub: '110169484474386276334' });
    expect(aClaims).toMatchObject({ iss: acmeIdp.issuer, sub: 'acme|42', email: 'grace@acme.test', email_verified: false });

    // Acme's callback carries Acme's iss (RFC 9207), so it can't be taken for Google's.
    const err = await rejection(client.authorizationCodeGrant(gConfig, a.callback, a));
    expect(err.cause.message).toMatch(/"iss"/);
  });

  test('setUser() switches who is signed in, even for a browser with a session', async () => {
    const jar = new CookieJar();
    const config = await discover(googleIdp, google);
    const first = await signIn(config, jar);
    expect((await client.authorizationCodeGrant(config, first.callback, first)).claims()!.sub).toBe('110169484474386276334');
    googleIdp.setUser({ sub: 'second-user', email: 'bob@example.com', email_verified: true });
    try {
      const second = await signIn(config, jar);
      const claims = (await client.authorizationCodeGrant(config, second.callback, second)).claims()!;
      expect(claims).toMatchObject({ sub: 'second-user', email: 'bob@example.com' });
      expect(claims.name).toBeUndefined();
    } finally {
      googleIdp.setUser(defaultOidcUser);
    }
  });

  test('deny sends error=access_denied back to the redirect URI', async () => {
    googleIdp.setBehaviour({ deny: true });
    const config = await discover(googleIdp, google);
    const { callback, ...checks } = await signIn(config);
    expect(callback.searchParams.get('error')).toBe('access_denied');
    expect(callback.searchParams.get('error_description')).toBe('The user denied the request');
    expect(callback.searchParams.get('state')).toBe(checks.expectedState);
    const err = await rejection(client.authorizationCodeGrant(config, callback, checks));
    expect(err).toBeInstanceOf(client.AuthorizationResponseError);
    expect(err.error).toBe('access_denied');
  });

  test('PKCE is required', async () => {
    const config = await discover(googleIdp, google);
    const url = client.buildAuthorizationUrl(config, { redirect_uri: REDIRECT_URI, scope: 'openid', state: 'xyz' });
    const callback = await browse(url);
    expect(callback.searchParams.get('error')).toBe('invalid_request');
    expect(callback.searchParams.get('error_description')).toMatch(/PKCE/);
  });

  test('a replayed code, a wrong code_verifier and a wrong secret are refused', async () => {
    const config = await discover(googleIdp, google);

    const first = await signIn(config);
    await client.authorizationCodeGrant(config, first.callback, first);
    const replay = await rejection(client.authorizationCodeGrant(config, first.callback, first));
    expect(replay).toBeInstanceOf(client.ResponseBodyError);
    expect(replay.error).toBe('invalid_grant');

    const second = await signIn(config);
    const verifier = await rejection(client.authorizationCodeGrant(config, second.callback, { ...second, pkceCodeVerifier: client.randomPKCECodeVerifier() }));
    expect(verifier).toBeInstanceOf(client.ResponseBodyError);
    expect(verifier.error).toBe('invalid_grant');

    const wrong = await discover(googleIdp, { ...google, clientSecret: 'wrong' });
    const third = await signIn(wrong);
    const secret = await rejection(client.authorizationCodeGrant(wrong, third.callback, third));
    expect(secret.error).toBe('invalid_client');
    expect(secret.status).toBe(401);
  });
});

// Gatehouse's own OIDC upstream (federation/oidc.ts) against a provider that keeps the
// profile claims for UserInfo (OIDC Core 5.4), and against one that does not.
describe('openIdConnect with claims at UserInfo', () => {
  const creds = { clientId: 'userinfo-client', clientSecret: 'userinfo-secret' };
  const person = { sub: 'ui-7', email: 'lin@example.com', email_verified: true, name: 'Lin Userinfo', picture: 'https://example.test/lin.png' };
  let uiIdp: FakeOidc;
  let tokenIdp: FakeOidc;

  beforeAll(async () => {
    [uiIdp, tokenIdp] = await Promise.all([
      startFakeOidc({ ...creds, redirectUris: [REDIRECT_URI], name: 'Userinfo IdP', claimsAt: 'userinfo' }),
      startFakeOidc({ ...creds, redirectUris: [REDIRECT_URI], name: 'Token IdP' }),
    ]);
  });
  afterAll(() => Promise.all([uiIdp.close(), tokenIdp.close()]));
  beforeEach(() => {
    for (const idp of [uiIdp, tokenIdp]) {
      idp.setBehaviour({});
      idp.setUser(person);
    }
  });

  /** A fresh upstream (its own discovery), as Gatehouse configures one. */
  const upstream = (idp: FakeOidc, scopes = ['openid', 'email', 'profile']) =>
    openIdConnect({ id: 'acme', name: 'Acme SSO', issuer: idp.issuer, ...creds, scopes, timeout: 5 });

  /** The browser goes to the upstream and back; Gatehouse finishes. */
  async function signInThrough(up: Upstream) {
    const checks = { state: client.randomState(), nonce: client.randomNonce(), codeVerifier: client.randomPKCECodeVerifier() };
    const callback = await browse(await up.authorizationUrl(checks, REDIRECT_URI));
    return up.finish(callback, checks);
  }

  test('the stand-in with claimsAt: userinfo puts only sub in the ID token, the profile at UserInfo', async () => {
    const config = await client.discovery(new URL(uiIdp.issuer), creds.clientId, creds.clientSecret, undefined, { execute: [client.allowInsecureRequests] });
    const checks = { pkceCodeVerifier: client.randomPKCECodeVerifier(), expectedState: client.randomState(), expectedNonce: client.randomNonce() };
    const url = client.buildAuthorizationUrl(config, {
      redirect_uri: REDIRECT_URI, scope: 'openid email profile', state: checks.expectedState, nonce: checks.expectedNonce,
      code_challenge: await client.calculatePKCECodeChallenge(checks.pkceCodeVerifier), code_challenge_method: 'S256',
    });
    const tokens = await client.authorizationCodeGrant(config, await browse(url), checks);
    const claims = tokens.claims()!;
    expect(claims.sub).toBe('ui-7');
    for (const name of ['email', 'email_verified', 'name', 'picture']) expect(claims[name]).toBeUndefined();
    expect(await client.fetchUserInfo(config, tokens.access_token, 'ui-7')).toEqual(person);
  });

  test('finish takes email, email_verified, name and picture from UserInfo', async () => {
    const before = uiIdp.userinfoRequests();
    const profile = await signInThrough(upstream(uiIdp));
    expect(uiIdp.userinfoRequests()).toBe(before + 1);
    expect(profile).toMatchObject({
      provider: 'acme', subject: 'ui-7', email: 'lin@example.com', emailVerified: true,
      name: 'Lin Userinfo', picture: 'https://example.test/lin.png', username: null,
    });
    expect(profile.raw).toMatchObject({ iss: uiIdp.issuer, sub: 'ui-7', email: 'lin@example.com', email_verified: true, name: 'Lin Userinfo' });
    // claims only: no token travels into the stored profile
    for (const key of ['access_token', 'id_token', 'refresh_token']) expect(profile.raw).not.toHaveProperty(key);
  });

  test('an unverified email at UserInfo stays unverified', async () => {
    uiIdp.setUser({ ...person, email_verified: false });
    expect(await signInThrough(upstream(uiIdp))).toMatchObject({ email: 'lin@example.com', emailVerified: false });
  });

  test('UserInfo is not asked when the ID token has the email and the name', async () => {
    // it would fail if it were asked
    tokenIdp.setBehaviour({ failUserinfo: true });
    const before = tokenIdp.userinfoRequests();
    const profile = await signInThrough(upstream(tokenIdp));
    expect(profile).toMatchObject({ subject: 'ui-7', email: 'lin@example.com', emailVerified: true, name: 'Lin Userinfo' });
    expect(tokenIdp.userinfoRequests()).toBe(before);
  });

  test('UserInfo is not asked for claims of a scope that was not requested', async () => {
    uiIdp.setBehaviour({ failUserinfo: true });
    const before = uiIdp.userinfoRequests();
    const profile = await signInThrough(upstream(uiIdp, ['openid']));
    expect(profile).toMatchObject({ subject: 'ui-7', email: null, emailVerified: false, name: null });
    expect(uiIdp.userinfoRequests()).toBe(before);
  });

  test('the ID token wins; its email is never vouched for by UserInfo\'s email_verified', async () => {
    // the ID token has an email without email_verified, and no name: UserInfo is asked
    tokenIdp.setUser({ sub: 'ui-7', email: 'id-token@example.com' });
    tokenIdp.setBehaviour({ userinfoClaims: { email: 'userinfo@example.com', email_verified: true, name: 'From Userinfo' } });
    const before = tokenIdp.userinfoRequests();
    const profile = await signInThrough(upstream(tokenIdp));
    expect(tokenIdp.userinfoRequests()).toBe(before + 1);
    expect(profile).toMatchObject({ email: 'id-token@example.com', emailVerified: false, name: 'From Userinfo' });
    expect(profile.raw.email).toBe('id-token@example.com');
    expect(profile.raw).not.toHaveProperty('email_verified');
  });

  test('a UserInfo answer about someone else (another sub) is refused with a typed error', async () => {
    uiIdp.setBehaviour({ userinfoClaims: { sub: 'someone-else' } });
    const before = uiIdp.userinfoRequests();
    const err = await rejection(signInThrough(upstream(uiIdp)));
    expect(uiIdp.userinfoRequests()).toBe(before + 1);
    expect(err).toBeInstanceOf(UpstreamError);
    expect(err.kind).toBe('unexpected');
    expect(err.message).toBe('Acme SSO: UserInfo answered for another subject than the ID token\'s');
  });

  test('a UserInfo endpoint answering 500 gives a typed error', async () => {
    uiIdp.setBehaviour({ failUserinfo: true });
    const before = uiIdp.userinfoRequests();
    const err = await rejection(signInThrough(upstream(uiIdp)));
    expect(uiIdp.userinfoRequests()).toBe(before + 1);
    expect(err).toBeInstanceOf(UpstreamError);
    expect(err.kind).toBe('unexpected');
    expect(err.message).toBe('Acme SSO UserInfo: unexpected HTTP response status code');
  });

  test('a UserInfo endpoint nobody listens on gives a typed network error', async () => {
    uiIdp.setBehaviour({ userinfoEndpoint: `http://127.0.0.1:${await freePort()}/me` });
    const err = await rejection(signInThrough(upstream(uiIdp)));
    expect(err).toBeInstanceOf(UpstreamError);
    expect(err.kind).toBe('network');
    expect(err.message).toBe('Acme SSO could not be reached (ECONNREFUSED)');
  });

  test('without a userinfo_endpoint in discovery, the ID token is all there is', async () => {
    uiIdp.setBehaviour({ userinfoEndpoint: null });
    const before = uiIdp.userinfoRequests();
    const profile = await signInThrough(upstream(uiIdp));
    expect(profile).toMatchObject({ subject: 'ui-7', email: null, emailVerified: false, name: null });
    expect(uiIdp.userinfoRequests()).toBe(before);
  });

  test('prompt=login and max_age reach an OpenID Connect upstream, and its auth_time and amr come back', async () => {
    const up = upstream(tokenIdp);
    const checks = { state: client.randomState(), nonce: client.randomNonce(), codeVerifier: client.randomPKCECodeVerifier() };
    const start = Math.floor(Date.now() / 1000);
    const url = await up.authorizationUrl(checks, REDIRECT_URI, { login: true, maxAge: 30 });
    expect(url.searchParams.get('prompt')).toBe('login');
    expect(url.searchParams.get('max_age')).toBe('30');
    const profile = await up.finish(await browse(url), checks);
    expect(profile.authentication!.authTime).toBeGreaterThanOrEqual(start - 1);
    // without a demand for a fresh authentication, neither is sent
    const plain = await up.authorizationUrl(checks, REDIRECT_URI);
    expect(plain.searchParams.has('prompt')).toBe(false);
    expect(plain.searchParams.has('max_age')).toBe(false);
  });

  test('GitHub, which has neither, gets prompt=select_account for a fresh authentication', async () => {
    const gh = gitHub({ clientId: 'gh', clientSecret: 'gh-secret', baseUrl: 'https://github.example', apiUrl: 'https://api.github.example' });
    const checks = { state: 's', nonce: 'n', codeVerifier: client.randomPKCECodeVerifier() };
    expect((await gh.authorizationUrl(checks, REDIRECT_URI, { login: true })).searchParams.get('prompt')).toBe('select_account');
    expect((await gh.authorizationUrl(checks, REDIRECT_URI, { login: false, maxAge: 0 })).searchParams.get('prompt')).toBe('select_account');
    expect((await gh.authorizationUrl(checks, REDIRECT_URI)).searchParams.has('prompt')).toBe(false);
  });
});
