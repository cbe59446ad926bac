/**
 * oidcc-dynamic-certification-test-plan (Dynamic OP), module by module as published in
 * openid-certification/conformance-suite (OIDCCDynamicTestPlan.java and the module classes
 * it lists, net.openid.conformance.openid): response_type=code, private_key_jwt,
 * dynamic_client, server_metadata=discovery, response_mode default.
 *
 * Every client here registers itself at the registration endpoint (RFC 7591) with an
 * initial access token (Gatehouse's default REGISTRATION=initial-access-token), the way
 * the suite's OIDCCCreateDynamicClientRegistrationRequest does: client_name,
 * grant_types, an RS256 public key in `jwks` (or at a `jwks_uri`),
 * token_endpoint_auth_method=private_key_jwt, response_types=[code], redirect_uris,
 * contacts. Clients authenticate at the token endpoint with private_key_jwt.
 *
 * Differences from the hosted suite, by Gatehouse's decisions:
 * - PKCE: every self-registered client must use it, so these authorization requests send
 *   S256 PKCE (the hosted suite sends none: its modules that reach the login page or the
 *   token endpoint fail against Gatehouse for that reason alone).
 * - jwks_uri: Gatehouse fetches a self-registered client's jwks_uri only outside private
 *   networks. The RP's jwks_uri here is a loopback server of this test's, so the operator
 *   vouches for it as ALLOW_PRIVATE_NETWORK_REQUESTS=true plus an admin-created client with
 *   that jwks_uri (the hosted suite publishes its jwks_uri on a public host instead).
 * - oidcc-discovery-endpoint-verification: the dynamic profile's response_types
 *   (code, id_token, "token id_token") and grant_types (authorization_code, implicit)
 *   checks cannot pass with response_type=code only; asserted: code / authorization_code
 *   offered, the implicit ones not. Every other check of the module is made.
 * The issuer is https (behind the harness's forwarding edge): the suite checks https endpoints.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createLocalJWKSet, decodeProtectedHeader, exportJWK, generateKeyPair, jwtVerify, SignJWT, type CryptoKey, type JWK } from 'jose';
import { browserAvailable } from '../support/browser.js';
import { PLANS } from './plans.js';
import {
  authorizationParams, discovery, earlyClients, expectCode, jwks, launchConformanceBrowser, startConformanceOp, userinfo, validateIdToken,
  DEFAULT_REDIRECT_URI, RP_ORIGIN,
  type AuthorizationOutcome, type BrowserSession, type ConformanceBrowser, type ConformanceClient, type ConformanceOp, type HttpResult, type RequestOptions,
} from './support/index.js';

const PLAN = 'oidcc-dynamic-certification-test-plan';
const describeIf = browserAvailable() ? describe : describe.skip;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface RpKey {
  privateKey: CryptoKey;
  publicJwk: JWK;
  kid: string;
}

interface DynamicClient extends ConformanceClient {
  key: RpKey;
  registration: Record<string, any>;
}

/** GenerateRS256ClientJWKs(WithKeyID) */
async function rpKey(): Promise<RpKey> {
  const { privateKey, publicKey } = await generateKeyPair('RS256');
  const kid = randomUUID();
  return { privateKey, publicJwk: { ...(await exportJWK(publicKey)), kid, use: 'sig', alg: 'RS256' }, kid };
}

/** The RP's jwks_uri: a loopback server serving whatever `keys` holds now. */
async function startJwksServer(): Promise<{ server: Server; url: string; keys: JWK[]; fetches: number[] }> {
  const state = { keys: [] as JWK[], fetches: [] as number[] };
  const server = createServer((req, res) => {
    if (req.url !== '/client1_jwks') {
      res.writeHead(404).end();
      return;
    }
    state.fetches.push(Date.now());
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: state.keys }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { server, url: `http://127.0.0.1:${port}/client1_jwks`, get keys() { return state.keys; }, set keys(k) { state.keys = k; }, fetches: state.fetches };
}

const PNG = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==', 'base64');

/** Shannon estimate of a string's entropy in bits (the suite's AbstractEnsureMinimumEntropy, roughly). */
function entropyBits(value: string): number {
  const counts = new Map<string, number>();
  for (const c of value) counts.set(c, (counts.get(c) ?? 0) + 1);
  let perChar = 0;
  for (const n of counts.values()) perChar -= (n / value.length) * Math.log2(n / value.length);
  return perChar * value.length;
}

function describeOutcome(outcome: AuthorizationOutcome): string {
  return outcome.kind === 'page' ? `a page (${outcome.status}) "${outcome.heading}": ${outcome.text.slice(0, 200)}` : `a redirect to ${outcome.url.href} with ${outcome.params}`;
}

/** The suite's ExpectRedirectUri*ErrorPage modules: an error page at the OP, nothing at the client. */
function expectErrorPage(outcome: AuthorizationOutcome, heading: string | RegExp) {
  if (outcome.kind !== 'page') throw new Error(`the authorization server called the redirect uri: ${describeOutcome(outcome)}`);
  expect(outcome.at).toBe('error');
  expect(outcome.status).toBe(400);
  expect(outcome.heading).toMatch(heading);
}

describeIf(PLAN, () => {
  let op: ConformanceOp;
  let browser: ConformanceBrowser;
  let jwksServer: Awaited<ReturnType<typeof startJwksServer>>;
  let initialAccessToken: string;
  const sessions: BrowserSession[] = [];
  const registered: DynamicClient[] = [];

  beforeAll(async () => {
    jwksServer = await startJwksServer();
    op = await startConformanceOp({
      https: true,
      env: { ALLOW_PRIVATE_NETWORK_REQUESTS: 'true' },
      // the operator vouches for the RP's loopback jwks_uri (see the file comment)
      clients: [{ name: 'Operator-vouched jwks_uri', authMethod: 'private_key_jwt', extraArgs: ['--jwks-uri', jwksServer.url] }],
    });
    expect(earlyClients(op)).toHaveLength(1);
    initialAccessToken = op.registrationToken();
    browser = await launchConformanceBrowser(op);
  });
  afterEach(async () => {
    await Promise.all(sessions.splice(0).map((s) => s.close()));
  });
  afterAll(async () => {
    await browser?.close();
    await op?.stop();
    await new Promise((r) => jwksServer?.server.close(r));
  });

  const session = async () => {
    const s = await browser.newSession();
    sessions.push(s);
    return s;
  };

  async function register(body: Record<string, unknown>): Promise<HttpResult & { contentType: string }> {
    const res = await op.fetch((await discovery(op)).registration_endpoint, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json', authorization: `Bearer ${initialAccessToken}` },
      body: JSON.stringify(body),
    });
    const text = await res.text();
    let parsed: any = text;
    try { parsed = JSON.parse(text); } catch { /* not JSON */ }
    return { status: res.status, headers: res.headers, contentType: res.headers.get('content-type') ?? '', body: parsed };
  }

  /** OIDCCCreateDynamicClientRegistrationRequest, then `extra` (undefined removes a member). */
  function registrationRequest(key: RpKey, extra: Record<string, unknown> = {}): Record<string, unknown> {
    const body: Record<string, unknown> = {
      client_name: 'Conformance dynamic RP',
      grant_types: ['authorization_code'],
      jwks: { keys: [key.publicJwk] },
      token_endpoint_auth_method: 'private_key_jwt',
      response_types: ['code'],
      redirect_uris: [DEFAULT_REDIRECT_URI],
      contacts: ['certification@oidf.org'],
    };
    for (const [k, v] of Object.entries(extra)) {
      if (v === undefined) delete body[k];
      else body[k] = v;
    }
    return body;
  }

  /** CallDynamicRegistrationEndpointAndVerifySuccessfulResponse */
  async function registerClient(extra: Record<string, unknown> = {}, key?: RpKey): Promise<DynamicClient> {
    const k = key ?? (await rpKey());
    const res = await register(registrationRequest(k, extra));
    if (res.status !== 201) throw new Error(`registration answered ${res.status}: ${JSON.stringify(res.body)}`);
    expect(res.contentType).toMatch(/^application\/json/);
    expect(res.body.error).toBeUndefined();
    expect(typeof res.body.client_id).toBe('string');
    // VerifyClientManagementCredentials: both or neither, the URI on https
    expect(typeof res.body.registration_access_token).toBe('string');
    expect(res.body.registration_access_token.length).toBeGreaterThan(0);
    expect(new URL(res.body.registration_client_uri).protocol).toBe('https:');
    // VerifyDynamicRegistrationResponseClientCredentials: a secret comes with client_secret_expires_at
    if (res.body.client_secret !== undefined) expect(typeof res.body.client_secret_expires_at).toBe('number');
    const redirectUris = res.body.redirect_uris as string[];
    const client: DynamicClient = {
      clientId: res.body.client_id, clientSecret: '', redirectUri: redirectUris[0], redirectUris, authMethod: 'private_key_jwt', key: k, registration: res.body,
    };
    registered.push(client);
    return client;
  }

  /** UnregisterDynamicallyRegisteredClient (RFC 7592 DELETE) */
  async function unregister(client: DynamicClient): Promise<number> {
    const res = await op.fetch(client.registration.registration_client_uri, { method: 'DELETE', headers: { authorization: `Bearer ${client.registration.registration_access_token}` } });
    return res.status;
  }

  /** CreateClientAuthenticationAssertionClaims + sign: aud is the token endpoint unless given. */
  async function clientAssertion(client: DynamicClient, options: { aud?: string; key?: RpKey } = {}): Promise<string> {
    const now = Math.floor(Date.now() / 1000);
    const key = options.key ?? client.key;
    return new SignJWT({ iss: client.clientId, sub: client.clientId, aud: options.aud ?? (await discovery(op)).token_endpoint, jti: randomUUID(), nbf: now, iat: now, exp: now + 60 })
      .setProtectedHeader({ alg: 'RS256', kid: key.kid })
      .sign(key.privateKey);
  }

  async function tokenRequest(client: DynamicClient, body: Record<string, string>, options: { aud?: string; key?: RpKey } = {}): Promise<HttpResult> {
    const res = await op.fetch((await discovery(op)).token_endpoint, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      body: new URLSearchParams({
        ...body, client_id: client.clientId,
        client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: await clientAssertion(client, options),
      }),
    });
    const text = await res.text();
    let parsed: any = text;
    try { parsed = JSON.parse(text); } catch { /* not JSON */ }
    return { status: res.status, headers: res.headers, body: parsed };
  }

  /** CheckTokenEndpointHttpStatus200, ...ReturnedJsonContentType, ...CacheHeaders, CheckTokenTypeIsBearer */
  function expectTokenResponse(token: HttpResult) {
    if (token.status !== 200) throw new Error(`token endpoint answered ${token.status}: ${JSON.stringify(token.body)}`);
    expect(token.headers.get('content-type')).toMatch(/^application\/json/);
    expect(token.headers.get('cache-control')).toMatch(/no-store/);
    expect(token.headers.get('pragma')).toMatch(/no-cache/);
    expect(token.body.token_type).toMatch(/^bearer$/i);
    expect(typeof token.body.access_token).toBe('string');
    // EnsureAccessTokenContainsAllowedCharactersOnly (RFC 6749 A.12: VSCHAR)
    expect(token.body.access_token).toMatch(/^[\x20-\x7e]+$/);
  }

  /** The suite's code flow for a dynamic client: authorize (with PKCE), redeem with private_key_jwt, validate the ID token. */
  async function flow(s: BrowserSession, client: DynamicClient, options: RequestOptions & { assertionAud?: string } = {}) {
    const request = await authorizationParams(client, { pkce: true, ...options });
    if (typeof request.params.nonce === 'string') request.nonce = request.params.nonce;
    const outcome = await s.authorize({ params: request.params });
    const code = expectCode(outcome, request, op);
    const token = await tokenRequest(client, { grant_type: 'authorization_code', code, redirect_uri: client.redirectUri, code_verifier: request.verifier! }, { aud: options.assertionAud });
    expectTokenResponse(token);
    expect(typeof token.body.id_token).toBe('string');
    const { header, claims } = await validateIdToken(op, token.body.id_token, {
      clientId: client.clientId, nonce: request.nonce, accessToken: token.body.access_token, code, requireAuthTime: 'max_age' in request.params,
    });
    return { request, outcome, code, token, header, claims, accessToken: token.body.access_token as string, idToken: token.body.id_token as string };
  }

  /** requestProtectedResource: userinfo with the access token, JSON with the ID token's sub. */
  async function expectUserinfo(accessToken: string, sub: string | undefined) {
    const info = await userinfo(op, accessToken);
    expect(info.status).toBe(200);
    expect(info.contentType).toMatch(/^application\/json/);
    expect(typeof sub).toBe('string');
    expect(info.body.sub).toBe(sub);
  }

  /** RefreshTokenRequestSteps + CompareIdTokenClaims */
  async function refresh(client: DynamicClient, refreshToken: string, first: { claims: Record<string, any>; accessToken: string }, scope?: string, key?: RpKey) {
    expect(refreshToken).toMatch(/^[\x20-\x7e]+$/); // EnsureRefreshTokenContainsAllowedCharactersOnly
    await sleep(1000); // WaitForOneSecond: iat values must differ
    const token = await tokenRequest(client, { grant_type: 'refresh_token', refresh_token: refreshToken, ...(scope ? { scope } : {}) }, { key });
    expectTokenResponse(token);
    expect(token.body.access_token).not.toBe(first.accessToken);
    if (token.body.refresh_token !== undefined) expect(token.body.refresh_token.length).toBeGreaterThanOrEqual(16);
    if (token.body.id_token !== undefined) {
      const { claims } = await validateIdToken(op, token.body.id_token, { clientId: client.clientId, nonce: first.claims.nonce, accessToken: token.body.access_token });
      expect(claims.iss).toBe(first.claims.iss);
      expect(claims.sub).toBe(first.claims.sub);
      expect(claims.iat).not.toBe(first.claims.iat);
      expect(claims.aud).toEqual(first.claims.aud);
      if (claims.auth_time !== undefined) expect(claims.auth_time).toBe(first.claims.auth_time);
      expect(claims.azp).toEqual(first.claims.azp);
    }
    return token;
  }

  /** Registration-page modules: the login page (fresh browser, no cookies) for a client registered with `extra`. */
  async function loginPageOf(extra: Record<string, unknown>, check: (page: import('playwright-core').Page) => Promise<void>) {
    const client = await registerClient(extra);
    const s = await session();
    const logoRequests: string[] = [];
    await s.context.route((u) => u.origin === RP_ORIGIN && u.pathname === '/logo.png', async (route) => {
      logoRequests.push(route.request().url());
      await route.fulfill({ status: 200, contentType: 'image/png', body: PNG });
    });
    const request = await authorizationParams(client, { pkce: true });
    let checked = false;
    const outcome = await s.authorize({
      params: request.params, login: false,
      onPage: async (which, page) => {
        if (which !== 'login') return;
        await check(page);
        checked = true;
      },
    });
    expect(outcome.kind === 'page' && outcome.at).toBe('login');
    expect(checked).toBe(true);
    return { logoRequests };
  }

  const modules: Record<string, () => Promise<void>> = {
    async 'oidcc-idtoken-rs256'() {
      const client = await registerClient({ id_token_signed_response_alg: 'RS256' });
      expect(client.registration.id_token_signed_response_alg).toBe('RS256');
      const { header } = await flow(await session(), client);
      // EnsureIdTokenContainsKid, CheckIdTokenSignatureAlgorithm
      expect(typeof header.kid).toBe('string');
      expect(header.alg).toBe('RS256');
      expect((await jwks(op)).keys.find((k) => k.kid === header.kid)?.kty).toBe('RSA');
    },

    async 'oidcc-idtoken-unsigned'() {
      // OIDCCCheckIdTokenSigningAlgValuesSupportedAlgNone: not offered, so the suite skips; and registration refuses it
      expect((await discovery(op)).id_token_signing_alg_values_supported).not.toContain('none');
      const res = await register(registrationRequest(await rpKey(), { id_token_signed_response_alg: 'none' }));
      expect(res.status).toBe(400);
      expect(res.contentType).toMatch(/^application\/json/);
      expect(res.body.error).toBe('invalid_client_metadata');
    },

    async 'oidcc-userinfo-rs256'() {
      // CheckDiscEndpointUserinfoSigningAlgValuesSupportedContainsRS256
      expect((await discovery(op)).userinfo_signing_alg_values_supported).toContain('RS256');
      const client = await registerClient({ userinfo_signed_response_alg: 'RS256' });
      const { accessToken, claims } = await flow(await session(), client);
      const info = await userinfo(op, accessToken);
      expect(info.status).toBe(200);
      // EnsureContentTypeApplicationJwt
      expect(info.contentType).toMatch(/^application\/jwt/);
      expect(typeof info.body).toBe('string');
      // ValidateUserInfoResponseSignature, ValidateUserInfoSigningAlgIsRS256
      expect(decodeProtectedHeader(info.body).alg).toBe('RS256');
      const { payload } = await jwtVerify(info.body as string, createLocalJWKSet(await jwks(op)), { algorithms: ['RS256'] });
      // ValidateSignedUserInfoResponseStandardJWTClaims, the same sub, EnsureUserInfoDoesNotContainNonce
      expect(payload.iss).toBe(op.issuer);
      expect(Array.isArray(payload.aud) ? payload.aud : [payload.aud]).toContain(client.clientId);
      const now = Math.floor(Date.now() / 1000);
      if (payload.exp !== undefined) expect(payload.exp).toBeGreaterThan(now - 300);
      if (payload.iat !== undefined) expect(payload.iat).toBeLessThanOrEqual(now + 300);
      expect(payload.sub).toBe(claims.sub);
      expect(payload).not.toHaveProperty('nonce');
    },

    async 'oidcc-ensure-redirect-uri-in-authorization-request'() {
      // AddMultipleRedirectUriToDynamicRegistrationRequest, RemoveRedirectUriFromAuthorizationEndpointRequest
      const client = await registerClient({ redirect_uris: [DEFAULT_REDIRECT_URI, 'https://example.org/redirect'] });
      const request = await authorizationParams(client, { pkce: true, extra: { redirect_uri: null } });
      expect(request.params).not.toHaveProperty('redirect_uri');
      const outcome = await (await session()).authorize({ params: request.params });
      expectErrorPage(outcome, /not valid/);
      expect(outcome.kind === 'page' && outcome.text).toMatch(/redirect_uri/);
    },

    async 'oidcc-redirect-uri-query-OK'() {
      const redirectUri = `${DEFAULT_REDIRECT_URI}?bar=foo`; // AddQueryToRedirectUri
      const client = await registerClient({ redirect_uris: [redirectUri] });
      expect(client.redirectUri).toBe(redirectUri);
      const { outcome } = await flow(await session(), client);
      // the registered query is kept next to the response parameters
      expect(outcome.kind === 'redirect' && outcome.url.searchParams.get('bar')).toBe('foo');
      expect(outcome.kind === 'redirect' && `${outcome.url.origin}${outcome.url.pathname}`).toBe(DEFAULT_REDIRECT_URI);
    },

    async 'oidcc-redirect-uri-query-mismatch'() {
      const client = await registerClient({ redirect_uris: [`${DEFAULT_REDIRECT_URI}?bar=foo`] });
      // ReplaceRedirectUriQueryInAuthorizationRequest
      const request = await authorizationParams(client, { pkce: true, extra: { redirect_uri: `${DEFAULT_REDIRECT_URI}?foo=bar` } });
      expectErrorPage(await (await session()).authorize({ params: request.params }), 'Unknown return address');
    },

    async 'oidcc-redirect-uri-query-added'() {
      const client = await registerClient();
      // AddQueryToRedirectUriInAuthorizationRequest
      const request = await authorizationParams(client, { pkce: true, extra: { redirect_uri: `${DEFAULT_REDIRECT_URI}?foo=bar` } });
      expectErrorPage(await (await session()).authorize({ params: request.params }), 'Unknown return address');
    },

    async 'oidcc-redirect-uri-regfrag'() {
      // AddFragmentToRedirectUri: registration fails with JSON 400, invalid_redirect_uri or invalid_client_metadata
      const res = await register(registrationRequest(await rpKey(), { redirect_uris: [`${DEFAULT_REDIRECT_URI}#foobar`] }));
      expect(res.contentType).toMatch(/^application\/json/);
      expect(res.status).toBe(400);
      expect(res.body.error).toMatch(/^(invalid_redirect_uri|invalid_client_metadata)$/);
    },

    async 'oidcc-discovery-endpoint-verification'() {
      const url = `${op.issuer}/.well-known/openid-configuration`;
      const res = await op.fetch(url);
      // EnsureDiscoveryEndpointResponseStatusCodeIs200, CheckDiscoveryEndpointReturnedJsonContentType
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/^application\/json/);
      const doc = (await res.json()) as Record<string, any>;
      // the dynamic profile's response types and grant types: code only (see the file comment)
      expect(doc.response_types_supported).toContain('code');
      expect(doc.response_types_supported).not.toContain('id_token');
      expect(doc.grant_types_supported).toContain('authorization_code');
      expect(doc.grant_types_supported).not.toContain('implicit');
      // CheckDiscEndpointIssuer, CheckDiscEndpointIssuerIsValidUrl, CheckDiscEndpointDiscoveryUrl
      expect(doc.issuer).toBe(op.issuer);
      const issuer = new URL(doc.issuer);
      expect(issuer.protocol).toBe('https:');
      expect(issuer.search + issuer.hash).toBe('');
      expect(`${doc.issuer.replace(/\/$/, '')}/.well-known/openid-configuration`).toBe(url);
      // CheckDiscEndpointSubjectTypesSupported
      expect(Array.isArray(doc.subject_types_supported)).toBe(true);
      for (const t of doc.subject_types_supported) expect(['public', 'pairwise']).toContain(t);
      // OIDCCCheckDiscEndpointIdTokenSigningAlgValuesSupported: RS256 included
      expect(doc.id_token_signing_alg_values_supported).toContain('RS256');
      // OIDCCCheckDiscEndpointUserinfoSigningAlgValuesSupported
      for (const alg of doc.userinfo_signing_alg_values_supported ?? []) expect(alg).toMatch(/^(RS|PS|ES)(256|384|512)$|^EdDSA$|^ES256K$/);
      // CheckDiscEndpointAuthorizationEndpoint, ...TokenEndpoint, ...UserinfoEndpoint, ...RegistrationEndpoint, CheckJwksUri
      for (const key of ['authorization_endpoint', 'token_endpoint', 'userinfo_endpoint', 'registration_endpoint', 'jwks_uri']) {
        expect(new URL(doc[key]).protocol).toBe('https:');
      }
      // FetchServerKeys + ValidateJwksSequence: public keys only, each with kty and a distinct kid
      const set = await jwks(op);
      expect(set.keys.length).toBeGreaterThan(0);
      for (const key of set.keys) {
        expect(typeof key.kty).toBe('string');
        expect(typeof key.kid).toBe('string');
        for (const member of ['d', 'p', 'q', 'dp', 'dq', 'qi', 'k']) expect(key).not.toHaveProperty(member);
      }
      expect(new Set(set.keys.map((k) => k.kid)).size).toBe(set.keys.length);
      // CheckDiscEndpointRequestParameterSupported / ...RequestUriParameterSupported (info): not offered
      expect(doc.request_parameter_supported ?? false).toBe(false);
      expect(doc.request_uri_parameter_supported).toBe(false);
      // CheckDiscEndpointClaimsParameterSupported, OIDCCCheckDiscEndpointClaimsSupported
      expect(doc.claims_parameter_supported).toBe(true);
      expect(Array.isArray(doc.claims_supported)).toBe(true);
      expect(doc.claims_supported).toContain('sub');
      // CheckDiscEndpointScopesSupportedContainsOpenId, ...ScopesSupportedSyntax (RFC 6749 3.3)
      expect(doc.scopes_supported).toContain('openid');
      for (const scope of doc.scopes_supported) expect(scope).toMatch(/^[\x21\x23-\x5b\x5d-\x7e]+$/);
      // CheckDiscEndpointLocalesSyntax (BCP 47, when present)
      for (const key of ['ui_locales_supported', 'claims_locales_supported']) {
        for (const locale of doc[key] ?? []) expect(locale).toMatch(/^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*$/);
      }
      // CheckDiscEndpointAllEndpointsAreHttps
      for (const [key, value] of Object.entries(doc)) {
        if (key.endsWith('_endpoint')) expect(new URL(value as string).protocol).toBe('https:');
      }
      // EnsureServerConfigurationCodeChallengeMethodsSupportedIsAnArray
      expect(Array.isArray(doc.code_challenge_methods_supported)).toBe(true);
    },

    async 'oidcc-server'() {
      const client = await registerClient();
      const { code, token, claims, accessToken } = await flow(await session(), client);
      // ExtractExpiresInFromTokenEndpointResponse (RFC 6749 5.1 recommends it)
      expect(typeof token.body.expires_in).toBe('number');
      expect(token.body.expires_in).toBeGreaterThan(0);
      // EnsureMinimumAuthorizationCodeLength (128 bits), EnsureMinimumAuthorizationCodeEntropy (96 bits)
      expect(Buffer.byteLength(code) * 8).toBeGreaterThanOrEqual(128);
      expect(entropyBits(code)).toBeGreaterThanOrEqual(96);
      // EnsureIdTokenDoesNotContainName, EnsureIdTokenDoesNotContainNonRequestedClaims (scope=openid)
      expect(claims).not.toHaveProperty('name');
      const allowed = ['iss', 'sub', 'aud', 'exp', 'iat', 'auth_time', 'nonce', 'acr', 'amr', 'azp', 'at_hash', 'c_hash', 'nbf', 'jti', 'sid', 's_hash'];
      expect(Object.keys(claims).filter((c) => !allowed.includes(c))).toEqual([]);
      await expectUserinfo(accessToken, claims.sub);
      // UnregisterDynamicallyRegisteredClient (RFC 7592)
      expect(await unregister(client)).toBe(204);
      const gone = await tokenRequest(client, { grant_type: 'authorization_code', code: 'x', redirect_uri: client.redirectUri, code_verifier: 'x'.repeat(43) });
      expect(gone.status).toBe(401);
      expect(gone.body.error).toBe('invalid_client');
    },

    async 'oidcc-registration-logo-uri'() {
      const logo = `${RP_ORIGIN}/logo.png`; // CreateLogoUri
      let loaded = false;
      const { logoRequests } = await loginPageOf({ logo_uri: logo }, async (page) => {
        // ExpectLoginPageWithLogo: the login page shows the RP's logo (and the browser may load it)
        const img = page.locator(`img[src="${logo}"]`);
        expect(await img.count()).toBe(1);
        loaded = await img.evaluate(async (el: HTMLImageElement) => {
          if (!el.complete) await new Promise((r) => { el.onload = r; el.onerror = r; });
          return el.naturalWidth > 0;
        });
      });
      expect(loaded).toBe(true);
      expect(logoRequests).toContain(logo);
    },

    async 'oidcc-registration-policy-uri'() {
      const policy = `${RP_ORIGIN}/policy.html`; // CreatePolicyUri
      await loginPageOf({ policy_uri: policy }, async (page) => {
        // ExpectLoginPageWithPolicyLink
        expect(await page.locator(`a[href="${policy}"]`).count()).toBe(1);
      });
    },

    async 'oidcc-registration-tos-uri'() {
      const tos = `${RP_ORIGIN}/tos.html`; // CreateTosUri
      await loginPageOf({ tos_uri: tos }, async (page) => {
        // ExpectLoginPageWithTosLink
        expect(await page.locator(`a[href="${tos}"]`).count()).toBe(1);
      });
    },

    async 'oidcc-registration-jwks-uri'() {
      // CreateJwksUri + GenerateRS256ClientJWKsWithKeyID + AddJwksUriToDynamicRegistrationRequest
      const key = await rpKey();
      jwksServer.keys = [key.publicJwk];
      const fetchesBefore = jwksServer.fetches.length;
      const client = await registerClient({ jwks: undefined, jwks_uri: jwksServer.url }, key);
      expect(client.registration.jwks_uri).toBe(jwksServer.url);
      expect(client.registration).not.toHaveProperty('jwks');
      const { claims, accessToken } = await flow(await session(), client);
      // the assertion was verified with the key fetched from the jwks_uri
      expect(jwksServer.fetches.length).toBeGreaterThan(fetchesBefore);
      await expectUserinfo(accessToken, claims.sub);
    },

    async 'oidcc-registration-sector-bad'() {
      // the suite skips it (no pairwise in subject_types_supported); registration refuses sector_identifier_uri
      expect((await discovery(op)).subject_types_supported).not.toContain('pairwise');
      const res = await register(registrationRequest(await rpKey(), { subject_type: 'pairwise', sector_identifier_uri: `${RP_ORIGIN}/redirect_uris.json` }));
      expect(res.contentType).toMatch(/^application\/json/);
      expect(res.status).toBe(400);
      expect(res.body.error).toBe('invalid_client_metadata');
    },

    async 'oidcc-server-rotate-keys'() {
      const signing = (set: { keys: JWK[] }) => set.keys.filter((k) => k.use === undefined || k.use === 'sig');
      const validate = (set: { keys: JWK[] }) => {
        // CheckForKeyIdInServerJWKs, CheckDistinctKeyIdValueInServerJWKs
        for (const k of set.keys) expect(typeof k.kid).toBe('string');
        expect(new Set(set.keys.map((k) => k.kid)).size).toBe(set.keys.length);
      };
      const original = await jwks(op);
      validate(original);
      // "trigger a key rotation in your OP"
      const rotated = op.cli(['keys', 'rotate']);
      if (rotated.code !== 0) throw new Error(`keys rotate failed: ${rotated.stderr}`);
      const deadline = Date.now() + 15_000;
      let latest = await jwks(op);
      const originalKids = new Set(original.keys.map((k) => k.kid));
      while (!signing(latest).some((k) => !originalKids.has(k.kid)) && Date.now() < deadline) {
        await sleep(250);
        latest = await jwks(op);
      }
      validate(latest);
      // VerifyNewJwksHasNewSigningKey: a new kid with new key material
      const fresh = signing(latest).filter((k) => !originalKids.has(k.kid));
      expect(fresh.length).toBeGreaterThan(0);
      for (const k of fresh) {
        const field = k.kty === 'RSA' ? 'n' : 'x';
        expect(signing(original).map((o) => (o as Record<string, unknown>)[field])).not.toContain((k as Record<string, unknown>)[field]);
      }
      // VerifyNewJwksStillHasOldSigningKey
      const latestKids = new Set(latest.keys.map((k) => k.kid));
      for (const k of signing(original)) expect(latestKids.has(k.kid)).toBe(true);
    },

    async 'oidcc-refresh-token-rp-key-rotation'() {
      const first = await rpKey();
      jwksServer.keys = [first.publicJwk];
      // AddRefreshTokenGrantTypeToDynamicRegistrationRequest; keys at the jwks_uri
      const client = await registerClient({ jwks: undefined, jwks_uri: jwksServer.url, grant_types: ['authorization_code', 'refresh_token'] }, first);
      // SetScopeInClientConfigurationToOpenIdOfflineAccess + prompt=consent
      const f = await flow(await session(), client, { scope: 'openid offline_access', extra: { prompt: 'consent' } });
      const refreshToken = f.token.body.refresh_token as string;
      expect(typeof refreshToken).toBe('string');
      // cycle the RP's keys: a new key with a new kid replaces the old one at the jwks_uri
      const second = await rpKey();
      expect(second.kid).not.toBe(first.kid);
      jwksServer.keys = [second.publicJwk];
      // WaitForJWKSRefreshDelay: Gatehouse refetches a client's jwks_uri on an unknown kid at most every 5 s
      await sleep(5500);
      const fetchesBefore = jwksServer.fetches.length;
      const refreshed = await refresh(client, refreshToken, f, 'openid offline_access', second);
      expect(jwksServer.fetches.length).toBeGreaterThan(fetchesBefore);
      await expectUserinfo(refreshed.body.access_token, f.claims.sub);
      // EnsureServerConfigurationSupportsRefreshToken
      expect((await discovery(op)).grant_types_supported).toContain('refresh_token');
    },

    async 'oidcc-refresh-token'() {
      // two clients (AbstractOIDCCMultipleClient), both for the refresh_token grant
      const client1 = await registerClient({ grant_types: ['authorization_code', 'refresh_token'] });
      const client2 = await registerClient({ grant_types: ['authorization_code', 'refresh_token'] });
      // offline_access is in scopes_supported, so it is asked for, with prompt=consent
      expect((await discovery(op)).scopes_supported).toContain('offline_access');
      expect((await discovery(op)).grant_types_supported).toContain('refresh_token');
      const scope = 'openid offline_access';
      const browserSession = await session();
      const f1 = await flow(browserSession, client1, { scope, extra: { prompt: 'consent' } });
      expect(typeof f1.token.body.refresh_token).toBe('string');
      const r1 = await refresh(client1, f1.token.body.refresh_token, f1, scope);
      await expectUserinfo(r1.body.access_token, f1.claims.sub);
      // the second client, with a 43-character nonce; its refresh without scope
      const f2 = await flow(browserSession, client2, { scope, extra: { prompt: 'consent', nonce: 'n'.repeat(43) } });
      expect(f2.claims.nonce).toBe('n'.repeat(43));
      expect(typeof f2.token.body.refresh_token).toBe('string');
      const r2 = await refresh(client2, f2.token.body.refresh_token, f2);
      const client2Refresh = (r2.body.refresh_token ?? f2.token.body.refresh_token) as string;
      // RefreshTokenRequestExpectingErrorSteps: client 2's refresh token with client 1's authentication
      const wrong = await tokenRequest(client1, { grant_type: 'refresh_token', refresh_token: client2Refresh, scope });
      expect(wrong.status).toBe(400);
      expect(wrong.headers.get('content-type')).toMatch(/^application\/json/);
      expect(wrong.body.error).toBe('invalid_grant');
    },

    async 'oidcc-ensure-client-assertion-with-iss-aud-succeeds'() {
      const client = await registerClient();
      // UpdateClientAuthenticationAssertionClaimsWithISSAud: aud is the issuer, not the token endpoint
      const { token } = await flow(await session(), client, { assertionAud: op.issuer });
      expect(typeof token.body.id_token).toBe('string');
      if (token.body.expires_in !== undefined) expect(token.body.expires_in).toBeGreaterThan(0);
    },
  };

  const plan = PLANS.find((p) => p.name === PLAN);
  if (!plan) throw new Error(`no plan ${PLAN} in plans.ts`);
  for (const module of plan.modules.filter((m) => m.status === 'run')) {
    const body = modules[module.name];
    if (!body) throw new Error(`${PLAN}: no test for module ${module.name}`);
    test(module.name, body, 60_000);
  }
});
