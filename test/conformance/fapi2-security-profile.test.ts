/**
 * fapi2-security-profile-final-test-plan (FAPI 2.0 Security Profile, final), variant
 * client_auth_type=private_key_jwt, sender_constrain=dpop, openid=openid_connect,
 * fapi_profile=plain_fapi, fapi_request_method=unsigned, fapi_response_mode=plain_response.
 * One test per module of the plan (test/conformance/plans.ts), each asserting what the
 * module's condition sequence asserts (openid-certification/conformance-suite,
 * src/main/java/net/openid/conformance/fapi2spfinal). The modules' TLS checks need a real
 * TLS endpoint and are not made here (Gatehouse runs behind a TLS-ending proxy).
 *
 * Clients are `gatehouse clients create --profile fapi2 --auth-method private_key_jwt
 * --jwks-file …`: client 1 with an ES256 key, client 2 with a PS256 (RSA) key. The
 * protected resource is Gatehouse's UserInfo endpoint, called with DPoP.
 */
import { expect } from '@jest/globals';
import { exportJWK, importJWK } from 'jose';
import { browserAvailable } from '../support/browser.js';
import {
  discovery, earlyClients, expectRedirect, jwks, launchConformanceBrowser, randomValue, startConformanceOp, validateIdToken, RP_ORIGIN,
  type AuthorizationOutcome, type BrowserSession, type ConformanceBrowser, type ConformanceOp,
} from './support/index.js';
import {
  dpopProof, fapiClientSpec, fapiRequest, keyPair, now, par, resource, thumbprint, token,
  type FapiClient, type KeyPair, type ParOptions, type PreparedFapiRequest, type TokenOptions,
} from './fapi2/fapi2.js';

const describeIf = browserAvailable() ? describe : describe.skip;
const P = 'fapi2-security-profile-final-';
const FAPI_ALGS = ['PS256', 'ES256', 'EdDSA', 'Ed25519'];

describeIf('fapi2-security-profile-final-test-plan', () => {
  let op: ConformanceOp;
  let browser: ConformanceBrowser;
  let client: FapiClient;
  let client2: FapiClient;
  /** only for user-rejects-authentication: no one ever consents to it */
  let client3: FapiClient;
  const sessions: BrowserSession[] = [];
  /** pushed at the start, used by par-attempt-to-use-expired-request_uri once it has expired */
  let early: { requestUri: string; expiresAt: number; request: PreparedFapiRequest };
  /** issued at the start, redeemed by ensure-token-endpoint-fails-with-expired-auth-code once it has expired */
  let earlyCode: { code: string; request: PreparedFapiRequest; key: KeyPair; issuedAt: number };

  /** the person's browser, signed in after the first flow (the suite keeps cookies between modules) */
  let main: BrowserSession;
  /** the main browser, or a fresh one (no cookies) closed after the test */
  async function session(fresh = false): Promise<BrowserSession> {
    if (!fresh) return main;
    const s = await browser.newSession();
    sessions.push(s);
    return s;
  }

  /** what the suite sends to the authorization endpoint with a request_uri: the required duplicates */
  const byReference = (c: FapiClient, request: PreparedFapiRequest, requestUri: string): Record<string, string> => ({
    client_id: c.clientId, request_uri: requestUri, response_type: 'code', scope: request.params.scope ?? 'openid', redirect_uri: c.redirectUri,
  });

  /** PAR as the suite checks it (processParResponse): 201, request_uri, expires_in, JSON */
  async function pushed(c: FapiClient, request: PreparedFapiRequest, o: ParOptions = {}): Promise<string> {
    const res = await par(op, c, request.params, o);
    if (res.status !== 201) throw new Error(`PAR answered ${res.status}: ${JSON.stringify(res.body)}`);
    expect(res.contentType).toMatch(/^application\/json/);
    expect(typeof res.body.request_uri).toBe('string');
    expect(res.body.request_uri).toMatch(/^urn:ietf:params:oauth:request_uri:/);
    expect(res.body.request_uri.split(':').pop().length).toBeGreaterThanOrEqual(22); // entropy: at least 128 bits
    expect(typeof res.body.expires_in).toBe('number');
    expect(res.body.expires_in).toBeGreaterThan(0);
    return res.body.request_uri;
  }

  /** the callback checks of onAuthorizationCallbackResponse: query only, state, iss, a code of enough entropy */
  function expectCallbackCode(outcome: AuthorizationOutcome, request: PreparedFapiRequest): string {
    expectRedirect(outcome);
    if (outcome.params.get('error')) throw new Error(`authorization error: ${outcome.params}`);
    expect(outcome.via).toBe('query');
    expect(outcome.params.get('state')).toBe(request.state ?? null);
    expect(outcome.params.get('iss')).toBe(op.issuer); // RequireIssInAuthorizationResponse
    const code = outcome.params.get('code');
    expect(code).toBeTruthy();
    expect(code!.length).toBeGreaterThanOrEqual(22);
    return code!;
  }

  function expectCallbackError(outcome: AuthorizationOutcome, request: PreparedFapiRequest, error: RegExp): URLSearchParams {
    expectRedirect(outcome);
    expect(outcome.params.get('code')).toBeNull();
    expect(outcome.params.get('error')).toMatch(error);
    if (request.state) expect(outcome.params.get('state')).toBe(request.state);
    return outcome.params;
  }

  interface AuthorizeOptions {
    par?: ParOptions;
    /** what the browser sends to the authorization endpoint */
    authParams?: (requestUri: string) => Record<string, string>;
    s?: BrowserSession;
    consent?: 'allow' | 'deny';
  }

  async function authorize(c: FapiClient, request: PreparedFapiRequest, o: AuthorizeOptions = {}) {
    const requestUri = await pushed(c, request, o.par);
    const s = o.s ?? (await session());
    const outcome = await s.authorize({ params: o.authParams?.(requestUri) ?? byReference(c, request, requestUri), consent: o.consent });
    return { requestUri, outcome, session: s };
  }

  const codeGrant = (c: FapiClient, request: PreparedFapiRequest, code: string, extra: Record<string, string | null> = {}) => {
    const body: Record<string, string> = { grant_type: 'authorization_code', code, redirect_uri: c.redirectUri };
    if (request.verifier) body.code_verifier = request.verifier;
    for (const [k, v] of Object.entries(extra)) {
      if (v === null) delete body[k];
      else body[k] = v;
    }
    return body;
  };

  /** processTokenEndpointResponse: 200, a DPoP access token, expires_in, a refresh token, a valid ID token */
  async function expectTokens(res: Awaited<ReturnType<typeof token>>, c: FapiClient, request: PreparedFapiRequest, code?: string) {
    if (res.status !== 200) throw new Error(`token endpoint answered ${res.status}: ${JSON.stringify(res.body)}`);
    expect(res.body.error).toBeUndefined();
    expect(typeof res.body.access_token).toBe('string');
    expect(res.body.access_token.length).toBeGreaterThanOrEqual(22);
    expect(res.body.token_type).toMatch(/^dpop$/i);
    expect(typeof res.body.expires_in).toBe('number');
    expect(res.body.expires_in).toBeGreaterThan(0);
    if (res.body.refresh_token !== undefined) {
      expect(res.body.refresh_token.length).toBeGreaterThanOrEqual(22);
      expect(res.body.refresh_token).toMatch(/^[\x20-\x7e]+$/); // RFC6749-A.17
    }
    expect(typeof res.body.id_token).toBe('string');
    const { header, claims } = await validateIdToken(op, res.body.id_token, { clientId: c.clientId, nonce: request.nonce, accessToken: res.body.access_token, code });
    expect(header.kid).toBeTruthy(); // EnsureIdTokenContainsKid
    expect(FAPI_ALGS).toContain(header.alg);
    return { accessToken: res.body.access_token as string, refreshToken: res.body.refresh_token as string | undefined, idToken: res.body.id_token as string, claims };
  }

  /** requestProtectedResource: 200 with a Date header */
  async function expectResource(accessToken: string, key: KeyPair, o: Parameters<typeof resource>[3] = {}) {
    const res = await resource(op, accessToken, key, o);
    if (res.status !== 200) throw new Error(`resource answered ${res.status}: ${res.headers.get('www-authenticate')} ${JSON.stringify(res.body)}`);
    expect(res.headers.get('date')).toBeTruthy();
    return res;
  }

  interface FlowOptions extends AuthorizeOptions {
    request?: PreparedFapiRequest;
    key?: KeyPair;
    tokenOptions?: TokenOptions;
  }

  /** the whole standard flow: PAR, sign-in, code, token with DPoP, the resource */
  async function fullFlow(c: FapiClient, o: FlowOptions = {}) {
    const request = o.request ?? (await fapiRequest(c));
    const key = o.key ?? (await keyPair('ES256'));
    const { outcome } = await authorize(c, request, o);
    const code = expectCallbackCode(outcome, request);
    const res = await token(op, c, codeGrant(c, request, code), { dpop: key, ...o.tokenOptions });
    const tokens = await expectTokens(res, c, request, code);
    await expectResource(tokens.accessToken, key);
    return { request, code, key, outcome, ...tokens };
  }

  /** a code for the client (PAR and sign-in), not yet redeemed */
  async function codeFor(c: FapiClient, o: FlowOptions = {}) {
    const request = o.request ?? (await fapiRequest(c));
    const { outcome } = await authorize(c, request, o);
    return { request, code: expectCallbackCode(outcome, request) };
  }

  /** CheckTokenEndpointHttpStatusIs400Allowing401ForInvalidClientError + JSON + the error among those allowed */
  function expectTokenError(res: Awaited<ReturnType<typeof token>>, errors: string[]) {
    expect(res.contentType).toMatch(/^application\/json/);
    expect(errors).toContain(res.body.error);
    if (res.body.error === 'invalid_client') expect([400, 401]).toContain(res.status);
    else expect(res.status).toBe(400);
    if (res.body.error_description !== undefined) expect(res.body.error_description).toMatch(/^[\x20-\x21\x23-\x5b\x5d-\x7e]*$/);
  }

  /** EnsurePARInvalidRequest…: a 400/401 JSON error from the PAR endpoint */
  function expectParError(res: Awaited<ReturnType<typeof par>>, errors: string[]) {
    expect([400, 401]).toContain(res.status);
    expect(res.contentType).toMatch(/^application\/json/);
    expect(errors).toContain(res.body.error);
  }

  beforeAll(async () => {
    const key1 = await keyPair('ES256', 'client-1');
    const key2 = await keyPair('PS256', 'client-2');
    const key3 = await keyPair('ES256', 'client-3');
    op = await startConformanceOp({
      https: true,
      clients: [fapiClientSpec('FAPI RP', key1), { ...fapiClientSpec('FAPI RP 2', key2), redirectUris: [`${RP_ORIGIN}/cb2`] }, fapiClientSpec('FAPI RP 3', key3)],
    });
    const [c1, c2, c3] = earlyClients(op);
    client3 = { ...c3, key: key3 };
    client = { ...c1, key: key1 };
    client2 = { ...c2, key: key2 };
    browser = await launchConformanceBrowser(op);
    main = await browser.newSession();
    // the two modules that wait for an expiry start their clocks now, and finish last
    const request = await fapiRequest(client);
    const res = await par(op, client, request.params);
    expect(res.status).toBe(201);
    early = { requestUri: res.body.request_uri, expiresAt: Date.now() + res.body.expires_in * 1000, request };
    const got = await codeFor(client);
    earlyCode = { ...got, key: await keyPair('ES256'), issuedAt: Date.now() };
  }, 120_000);
  afterEach(async () => {
    await Promise.all(sessions.splice(0).map((s) => s.close()));
  });
  afterAll(async () => {
    await main?.close();
    await browser?.close();
    await op?.stop();
  });

  test(`${P}discovery-end-point-verification`, async () => {
    const doc = await discovery(op);
    // CheckDiscEndpointDiscoveryUrl / CheckDiscEndpointIssuer / CheckDiscEndpointIssuerIsValidUrl
    expect(doc.issuer).toBe(op.issuer);
    expect(new URL(doc.issuer).protocol).toBe('https:');
    const oauth = await op.fetch(`${op.issuer}/.well-known/oauth-authorization-server`);
    expect(oauth.status).toBe(200);
    expect(((await oauth.json()) as Record<string, unknown>).issuer).toBe(op.issuer);
    for (const endpoint of ['authorization_endpoint', 'token_endpoint', 'jwks_uri', 'pushed_authorization_request_endpoint', 'userinfo_endpoint']) {
      expect(new URL(doc[endpoint]).protocol).toBe('https:');
    }
    expect(doc.response_types_supported).toContain('code'); // CheckDiscEndpointResponseTypeCodeSupported
    expect(doc.authorization_response_iss_parameter_supported).toBe(true); // FAPI2-SP-FINAL-5.3.2.2-7
    if (doc.require_pushed_authorization_requests !== undefined) expect(typeof doc.require_pushed_authorization_requests).toBe('boolean');
    expect(doc.scopes_supported).toContain('openid');
    expect(Array.isArray(doc.scopes_supported) && doc.scopes_supported.every((s: unknown) => typeof s === 'string' && /^[\x21\x23-\x5b\x5d-\x7e]+$/.test(s))).toBe(true);
    expect(Array.isArray(doc.subject_types_supported) && doc.subject_types_supported.length > 0).toBe(true);
    expect(doc.code_challenge_methods_supported).toContain('S256'); // FAPI2-SP-FINAL-5.3.2.2-5
    expect(doc.token_endpoint_auth_methods_supported).toContain('private_key_jwt');
    // FAPI2-SP-FINAL-5.4-1: at least one of PS256, ES256, EdDSA for each
    for (const field of ['id_token_signing_alg_values_supported', 'token_endpoint_auth_signing_alg_values_supported', 'dpop_signing_alg_values_supported']) {
      expect((doc[field] as string[]).filter((a) => FAPI_ALGS.includes(a)).length).toBeGreaterThanOrEqual(1);
    }
    if (doc.userinfo_signing_alg_values_supported) {
      expect((doc.userinfo_signing_alg_values_supported as string[]).filter((a) => FAPI_ALGS.includes(a)).length).toBeGreaterThanOrEqual(1);
    }
    // FetchServerKeys / CheckForKeyIdInServerJWKs / FAPI2FinalEnsureMinimumServerKeyLength
    const { keys } = await jwks(op);
    expect(keys.length).toBeGreaterThan(0);
    for (const k of keys) {
      expect(k.kid).toBeTruthy();
      expect(k.d).toBeUndefined();
      if (k.kty === 'RSA') expect(Buffer.from(k.n!, 'base64url').length * 8).toBeGreaterThanOrEqual(2048);
      if (k.kty === 'EC') expect(['P-256', 'P-384', 'P-521']).toContain(k.crv);
    }
  });

  test(`${P}happy-flow`, async () => {
    // first client: the standard flow
    const first = await fullFlow(client);
    // DisallowAccessTokenInQuery: the token in the query is not accepted
    const userinfoEndpoint = (await discovery(op)).userinfo_endpoint as string;
    const inQuery = await op.fetch(`${userinfoEndpoint}?access_token=${encodeURIComponent(first.accessToken)}`, {
      headers: { dpop: await dpopProof(first.key, 'GET', userinfoEndpoint) },
    });
    expect(inQuery.status).not.toBe(200);
    // utf-8 JSON accept headers, and a permissive accept header
    await expectResource(first.accessToken, first.key);
    const utf8 = await op.fetch(userinfoEndpoint, {
      headers: { authorization: `DPoP ${first.accessToken}`, accept: 'application/json; charset=utf-8', 'accept-charset': 'utf-8', dpop: await dpopProof(first.key, 'GET', userinfoEndpoint, first.accessToken) },
    });
    expect(utf8.status).toBe(200);
    const any = await op.fetch(userinfoEndpoint, {
      headers: { authorization: `DPoP ${first.accessToken}`, accept: '*/*', dpop: await dpopProof(first.key, 'GET', userinfoEndpoint, first.accessToken) },
    });
    expect(any.status).toBe(200);
    // second client (its own key, its own redirect URI, a 43-character nonce and a dpop_jkt)
    const key = await keyPair('ES256');
    const request = await fapiRequest(client2, { extra: { nonce: randomValue(32).slice(0, 43), state: randomValue(96).slice(0, 128), dpop_jkt: await thumbprint(key) } });
    expect(request.nonce!.length).toBe(43);
    const second = await fullFlow(client2, { request, key });
    expect(second.claims.aud).toEqual(client2.clientId);
    expect(second.claims.sub).toBe(first.claims.sub);
  });

  test(`${P}user-rejects-authentication`, async () => {
    // a client the person has not consented to yet, in a browser without a session
    const request = await fapiRequest(client3);
    const { outcome } = await authorize(client3, request, { consent: 'deny', s: await session(true) });
    expect(outcome.seen).toEqual(['login', 'consent']);
    expectCallbackError(outcome, request, /^access_denied$/);
    expect(outcome.kind === 'redirect' && outcome.params.get('iss')).toBe(op.issuer);
  });

  test(`${P}ensure-authorization-request-without-state-success`, async () => {
    const request = await fapiRequest(client, { extra: { state: null } });
    const { outcome } = await authorize(client, request);
    expectRedirect(outcome);
    expect(outcome.params.get('state')).toBeNull();
    const code = expectCallbackCode(outcome, { ...request, state: undefined });
    const key = await keyPair();
    const tokens = await expectTokens(await token(op, client, codeGrant(client, request, code), { dpop: key }), client, request, code);
    expect(tokens.claims.s_hash).toBeUndefined();
    await expectResource(tokens.accessToken, key);
  });

  test(`${P}ensure-authorization-request-without-nonce-success`, async () => {
    const request = await fapiRequest(client, { extra: { nonce: null } });
    const { claims } = await fullFlow(client, { request: { ...request, nonce: undefined } });
    expect(claims.nonce).toBeUndefined();
  });

  test(`${P}ensure-authorization-request-with-64-char-nonce-success`, async () => {
    const nonce = randomValue(48);
    expect(nonce.length).toBe(64);
    const request = await fapiRequest(client, { extra: { nonce } });
    const { claims } = await fullFlow(client, { request });
    expect(claims.nonce).toBe(nonce);
  });

  test(`${P}ensure-other-scope-order-succeeds`, async () => {
    // the client's scope ('openid email profile') reversed
    const request = await fapiRequest(client, { scope: 'profile email openid' });
    const { accessToken, key } = await fullFlow(client, { request });
    const info = await expectResource(accessToken, key);
    expect(info.body.sub).toBeTruthy();
  });

  test(`${P}test-claims-parameter-identity-claims`, async () => {
    const doc = await discovery(op);
    expect(doc.claims_parameter_supported).toBe(true);
    const supported = (doc.claims_supported as string[]).filter((c) => !['sub', 'iss', 'aud', 'exp', 'iat', 'auth_time', 'nonce', 'acr', 'amr', 'azp', 'at_hash', 'c_hash', 'sid'].includes(c));
    const wanted = (names: string[]) => Object.fromEntries([...names.map((n) => [n, null]), ['unknown_claim_' + randomValue(4), null]]);
    const claims = JSON.stringify({ id_token: wanted(supported), userinfo: wanted(supported) });
    const request = await fapiRequest(client, { extra: { claims } });
    const flow = await fullFlow(client, { request });
    const info = await expectResource(flow.accessToken, flow.key);
    // every claim the person has is returned in the ID token or at UserInfo; unknown ones are ignored
    expect(info.body.sub).toBe(flow.claims.sub);
    for (const name of ['email', 'name']) {
      if (supported.includes(name)) expect(flow.claims[name] ?? info.body[name]).toBeTruthy();
    }
    expect(Object.keys(flow.claims).some((k) => k.startsWith('unknown_claim_'))).toBe(false);
  });

  test(`${P}access-token-type-header-case-sensitivity`, async () => {
    const flow = await fullFlow(client);
    // SetAccessTokenTypeToInvertedCase: 'dPoP' instead of 'DPoP' (RFC 9110 §11.1: case-insensitive)
    const res = await resource(op, flow.accessToken, flow.key, { scheme: 'dPoP' });
    expect(res.status).toBe(200);
  });

  test(`${P}check-dpop-proof-nbf-exp`, async () => {
    const withNbfExp = { claims: (c: Record<string, unknown>) => Object.assign(c, { nbf: now(), exp: now() + 300 }) };
    const flow = await fullFlow(client, { tokenOptions: { dpopOptions: withNbfExp } });
    await expectResource(flow.accessToken, flow.key, { dpopOptions: withNbfExp });
  });

  const iatShift = (seconds: number) => ({ claims: (c: Record<string, unknown>) => { c.iat = now() + seconds; } });

  test(`${P}ensure-dpopproof-with-iat-10seconds-before-succeeds`, async () => {
    const key = await keyPair();
    const flow = await fullFlow(client, { key, par: { dpop: key, dpopOptions: iatShift(-10) }, tokenOptions: { dpopOptions: iatShift(-10) } });
    await expectResource(flow.accessToken, key, { dpopOptions: iatShift(-10) });
  });

  test(`${P}ensure-dpopproof-with-iat-10seconds-after-succeeds`, async () => {
    const key = await keyPair();
    const flow = await fullFlow(client, { key, par: { dpop: key, dpopOptions: iatShift(10) }, tokenOptions: { dpopOptions: iatShift(10) } });
    await expectResource(flow.accessToken, key, { dpopOptions: iatShift(10) });
  });

  test(`${P}ensure-mismatched-dpop-jkt-fails`, async () => {
    const key = await keyPair();
    const other = await keyPair();
    const request = await fapiRequest(client, { extra: { dpop_jkt: await thumbprint(other) } });
    const res = await par(op, client, request.params, { dpop: key });
    // EnsurePARInvalidRequestOrInvalidDpopProof
    expect(res.status).toBe(400);
    expect(['invalid_request', 'invalid_dpop_proof']).toContain(res.body.error);
  });

  test(`${P}ensure-token-endpoint-fails-with-mismatched-dpop-proof-jkt`, async () => {
    const key = await keyPair();
    const { request, code } = await codeFor(client, { par: { dpop: key } });
    const res = await token(op, client, codeGrant(client, request, code), { dpop: await keyPair() });
    expectTokenError(res, ['invalid_request', 'invalid_grant', 'invalid_dpop_proof']);
  });

  test(`${P}ensure-token-endpoint-fails-with-mismatched-dpop-jkt`, async () => {
    const request = await fapiRequest(client, { extra: { dpop_jkt: await thumbprint(await keyPair()) } });
    const { code } = await codeFor(client, { request });
    const res = await token(op, client, codeGrant(client, request, code), { dpop: await keyPair() });
    expectTokenError(res, ['invalid_request', 'invalid_grant', 'invalid_dpop_proof']);
  });

  test(`${P}ensure-dpopproof-at-par-endpoint-binding-success`, async () => {
    const key = await keyPair();
    await fullFlow(client, { key, par: { dpop: key } });
  });

  test(`${P}ensure-dpop-auth-code-binding-success`, async () => {
    const key = await keyPair();
    const request = await fapiRequest(client, { extra: { dpop_jkt: await thumbprint(key) } });
    await fullFlow(client, { key, request, par: { dpop: key } });
  });

  test(`${P}ensure-different-nonce-inside-and-outside-request-object`, async () => {
    // unsigned variant: the "request object" is what was pushed; a different nonce is added at /auth
    const request = await fapiRequest(client);
    const { outcome } = await authorize(client, request, { authParams: (uri) => ({ ...byReference(client, request, uri), nonce: randomValue() }) });
    expectRedirect(outcome);
    if (outcome.params.get('error')) {
      expectCallbackError(outcome, request, /^invalid_request$/);
      return;
    }
    const code = expectCallbackCode(outcome, request);
    const key = await keyPair();
    const tokens = await expectTokens(await token(op, client, codeGrant(client, request, code), { dpop: key }), client, request, code);
    expect(tokens.claims.nonce).toBe(request.nonce); // the pushed nonce, not the one outside
  });

  test(`${P}ensure-different-state-inside-and-outside-request-object`, async () => {
    const request = await fapiRequest(client);
    const { outcome } = await authorize(client, request, { authParams: (uri) => ({ ...byReference(client, request, uri), state: randomValue() }) });
    expectRedirect(outcome);
    if (outcome.params.get('error')) {
      expectCallbackError(outcome, request, /^invalid_request$/);
      return;
    }
    const code = expectCallbackCode(outcome, request); // the pushed state comes back
    const key = await keyPair();
    await expectTokens(await token(op, client, codeGrant(client, request, code), { dpop: key }), client, request, code);
  });

  test(`${P}ensure-authorization-request-with-long-nonce`, async () => {
    const nonce = randomValue(288);
    expect(nonce.length).toBe(384);
    const request = await fapiRequest(client, { extra: { nonce } });
    const res = await par(op, client, request.params);
    // Gatehouse takes it (the module also allows a refusal)
    expect(res.status).toBe(201);
    const s = await session();
    const outcome = await s.authorize({ params: byReference(client, request, res.body.request_uri) });
    expect(outcome.kind).toBe('redirect');
    if (outcome.kind !== 'redirect') return;
    expect(outcome.params.get('error')).toBeNull();
    const code = expectCallbackCode(outcome, request);
    const tokens = await expectTokens(await token(op, client, codeGrant(client, request, code), { dpop: await keyPair() }), client, request, code);
    expect(tokens.claims.nonce).toBe(nonce); // never corrupted or truncated
  });

  test(`${P}ensure-authorization-request-with-long-state`, async () => {
    const state = randomValue(288);
    expect(state.length).toBe(384);
    const request = await fapiRequest(client, { extra: { state } });
    const res = await par(op, client, request.params);
    // Gatehouse takes it (the module also allows a refusal)
    expect(res.status).toBe(201);
    const s = await session();
    const outcome = await s.authorize({ params: byReference(client, request, res.body.request_uri) });
    expect(outcome.kind).toBe('redirect');
    if (outcome.kind !== 'redirect') return;
    expect(outcome.params.get('error')).toBeNull();
    expect(outcome.params.get('state')).toBe(state); // returned exactly
    expectCallbackCode(outcome, request);
  });

  test(`${P}state-only-outside-request-object-not-used`, async () => {
    // pushed without state; a state only at /auth must not be used
    const request = await fapiRequest(client, { extra: { state: null } });
    const outside = randomValue();
    const { outcome } = await authorize(client, request, { authParams: (uri) => ({ ...byReference(client, request, uri), state: outside }) });
    // Gatehouse answers at the redirect URI (the module also allows an error page)
    expect(outcome.kind).toBe('redirect');
    if (outcome.kind !== 'redirect') return;
    if (outcome.params.get('error')) {
      expect(['invalid_request', 'invalid_request_object', 'access_denied']).toContain(outcome.params.get('error'));
      return;
    }
    expect(outcome.params.get('state')).toBeNull();
    const code = expectCallbackCode(outcome, { ...request, state: undefined });
    const tokens = await expectTokens(await token(op, client, codeGrant(client, request, code), { dpop: await keyPair() }), client, request, code);
    expect(tokens.claims.s_hash).toBeUndefined();
  });

  test(`${P}ensure-request-object-without-redirect-uri-fails`, async () => {
    const request = await fapiRequest(client, { extra: { redirect_uri: null } });
    const res = await par(op, client, request.params);
    // Gatehouse refuses it at PAR (the module also allows a refusal at the authorization endpoint)
    expectParError(res, ['invalid_request', 'invalid_request_object']);
  });

  test(`${P}plain-fapi-tolerate-unregistered-redirect-uri`, async () => {
    const unregistered = `${client.redirectUri}/${randomValue(6)}`;
    const request = await fapiRequest(client, { extra: { redirect_uri: unregistered } });
    const res = await par(op, client, request.params);
    // Gatehouse refuses it at PAR (the module also allows a refusal at the authorization endpoint)
    expectParError(res, ['invalid_request', 'invalid_request_object']);
  });

  test(`${P}ensure-unsigned-authorization-request-without-using-par-fails`, async () => {
    const request = await fapiRequest(client);
    const s = await session();
    const outcome = await s.authorize({ params: request.params });
    // Gatehouse answers at the redirect URI (the module also allows an error page)
    expect(outcome.kind).toBe('redirect');
    if (outcome.kind !== 'redirect') return;
    expect(outcome.params.get('code')).toBeNull();
    if (outcome.params.get('state')) expect(outcome.params.get('state')).toBe(request.state);
    expect(outcome.params.get('error')).toBe('invalid_request');
  });

  test(`${P}ensure-redirect-uri-in-authorization-request`, async () => {
    const request = await fapiRequest(client, { extra: { redirect_uri: null } });
    const res = await par(op, client, request.params);
    // Gatehouse refuses it at PAR (the module also allows a refusal at the authorization endpoint)
    expectParError(res, ['invalid_request', 'invalid_request_object']);
  });

  test(`${P}ensure-response-type-code-idtoken-fails`, async () => {
    const request = await fapiRequest(client, { extra: { response_type: 'code id_token' } });
    const res = await par(op, client, request.params);
    // Gatehouse refuses it at PAR (the module also allows a refusal at the authorization endpoint)
    expectParError(res, ['unsupported_response_type', 'invalid_request']);
  });

  test(`${P}ensure-response-type-token-fails`, async () => {
    const request = await fapiRequest(client, { extra: { response_type: 'token' } });
    const res = await par(op, client, request.params);
    // Gatehouse refuses it at PAR (the module also allows a refusal at the authorization endpoint)
    expectParError(res, ['unsupported_response_type', 'invalid_request']);
  });

  test(`${P}ensure-client-id-in-token-endpoint`, async () => {
    // client 1's code, client 2's client_id, an assertion for client 2 signed with client 1's key
    const { request, code } = await codeFor(client);
    const res = await token(op, client, codeGrant(client, request, code), { dpop: await keyPair(), auth: { clientId: client2.clientId } });
    expectTokenError(res, ['invalid_client', 'invalid_grant']);
  });

  test(`${P}ensure-holder-of-key-required`, async () => {
    // the token request without a DPoP proof (the module's TLS checks: out of scope here)
    const { request, code } = await codeFor(client);
    const res = await token(op, client, codeGrant(client, request, code), { dpop: null });
    expect(res.status).toBeGreaterThanOrEqual(400);
    expect(res.status).toBeLessThan(500);
    expectTokenError(res, ['invalid_request', 'invalid_grant', 'invalid_dpop_proof']);
  });

  test(`${P}ensure-authorization-code-is-bound-to-client`, async () => {
    const { request, code } = await codeFor(client);
    const res = await token(op, client2, codeGrant(client2, request, code, { redirect_uri: client.redirectUri }), { dpop: await keyPair() });
    expect(res.status).toBe(400);
    expectTokenError(res, ['invalid_grant']);
  });

  test(`${P}attempt-reuse-authorization-code-after-one-second`, async () => {
    const flow = await fullFlow(client);
    await new Promise((r) => setTimeout(r, 1000));
    const again = await token(op, client, codeGrant(client, flow.request, flow.code), { dpop: flow.key });
    expectTokenError(again, ['invalid_grant']);
    // the access token from the code 'should' be revoked (RFC 6749 §4.1.2)
    const after = await resource(op, flow.accessToken, flow.key);
    expect(after.status).toBe(401);
  });

  test(`${P}ensure-signed-client-assertion-with-RS256-fails`, async () => {
    // client 2 has an RSA (PS256) key: the same key, RS256
    const { request, code } = await codeFor(client2);
    const rs256 = { alg: 'RS256', publicJwk: client2.key.publicJwk, privateKey: (await importJWK(await exportJWK(client2.key.privateKey), 'RS256')) as CryptoKey };
    const res = await token(op, client2, codeGrant(client2, request, code), { dpop: await keyPair(), auth: { key: rs256 } });
    expectTokenError(res, ['invalid_client']);
    // and PS256 with it works
    const ok = await token(op, client2, codeGrant(client2, request, code), { dpop: await keyPair() });
    expect(ok.status).toBe(200);
  });

  test(`${P}ensure-client-assertion-in-token-endpoint`, async () => {
    const { request, code } = await codeFor(client);
    const res = await token(op, client, codeGrant(client, request, code), { dpop: await keyPair(), auth: false });
    expectTokenError(res, ['invalid_client', 'invalid_request']);
  });

  test(`${P}ensure-client-assertion-with-exp-is-5-minutes-in-past-fails`, async () => {
    const { request, code } = await codeFor(client);
    const res = await token(op, client, codeGrant(client, request, code), { dpop: await keyPair(), auth: { claims: { iat: now() - 360, exp: now() - 300 } } });
    expectTokenError(res, ['invalid_client']);
  });

  test(`${P}ensure-client-assertion-with-wrong-aud-fails`, async () => {
    const { request, code } = await codeFor(client);
    const res = await token(op, client, codeGrant(client, request, code), { dpop: await keyPair(), auth: { aud: `https://other.example.com/${randomValue(4)}` } });
    expectTokenError(res, ['invalid_client']);
  });

  test(`${P}ensure-client-assertion-with-no-sub-fails`, async () => {
    const { request, code } = await codeFor(client);
    const res = await token(op, client, codeGrant(client, request, code), { dpop: await keyPair(), auth: { omit: ['sub'] } });
    expectTokenError(res, ['invalid_client']);
  });

  test(`${P}dpop-negative-tests`, async () => {
    const { accessToken, key } = await fullFlow(client);
    const endpoint = (await discovery(op)).userinfo_endpoint as string;
    const fails = async (what: string, o: Parameters<typeof resource>[3]) => {
      const res = await resource(op, accessToken, key, o);
      if (![400, 401].includes(res.status)) throw new Error(`${what}: expected 400 or 401, got ${res.status}`);
    };
    const succeeds = async (what: string, o: Parameters<typeof resource>[3]) => {
      const res = await resource(op, accessToken, key, o);
      if (res.status !== 200) throw new Error(`${what}: expected 200, got ${res.status} ${res.headers.get('www-authenticate')}`);
    };
    const proof = (o: Parameters<typeof dpopProof>[4] = {}, htm = 'GET', htu = endpoint) => dpopProof(key, htm, htu, accessToken, o);
    await fails('two DPoP proofs', { rawDpop: [await proof(), await proof()] });
    await fails('a malformed proof', { rawDpop: `${await proof()}x.y` });
    await fails('no typ', { dpopOptions: { header: (h) => { delete h.typ; } } });
    const unsigned = (await proof()).split('.');
    const header = JSON.parse(Buffer.from(unsigned[0], 'base64url').toString());
    delete header.alg;
    await fails('no alg', { rawDpop: [Buffer.from(JSON.stringify(header)).toString('base64url'), unsigned[1], unsigned[2]].join('.') });
    await fails('no jwk', { dpopOptions: { header: (h) => { delete h.jwk; } } });
    for (const claim of ['jti', 'htm', 'htu', 'iat', 'ath']) await fails(`no ${claim}`, { dpopOptions: { claims: (c) => { delete c[claim]; } } });
    await fails('typ not dpop+jwt', { dpopOptions: { header: (h) => { h.typ = 'JWT'; } } });
    const none = [Buffer.from(JSON.stringify({ typ: 'dpop+jwt', alg: 'none', jwk: key.publicJwk })).toString('base64url'), unsigned[1], ''].join('.');
    await fails('alg none', { rawDpop: none });
    const good = (await proof()).split('.');
    const badSig = Buffer.from(good[2], 'base64url');
    badSig[0] ^= 0xff;
    await fails('an invalid signature', { rawDpop: [good[0], good[1], badSig.toString('base64url')].join('.') });
    const withPrivate = await keyPair();
    const privateJwk = await exportJWK(withPrivate.privateKey);
    await fails('the private key in the header', { dpop: withPrivate, dpopOptions: { header: (h) => { h.jwk = privateJwk; } } });
    await fails('htm PUT', { htm: 'PUT' });
    await succeeds('htu with query and fragment', { htu: `${endpoint}?foo=bar#baz` });
    await succeeds('htu without query and fragment', { htu: endpoint });
    await fails('htu of another URL', { htu: `${op.issuer}/other` });
    await fails('iat an hour ahead', { dpopOptions: { claims: (c) => { c.iat = now() + 3600; } } });
    await fails('iat an hour ago', { dpopOptions: { claims: (c) => { c.iat = now() - 3600; } } });
    const jti = randomValue();
    await succeeds('a fixed jti, first use', { dpopOptions: { claims: (c) => { c.jti = jti; } } });
    await fails('a wrong ath', { dpopOptions: { claims: (c) => { c.ath = Buffer.alloc(32, 1).toString('base64url'); } } });
    await fails('signed by another key', { dpopOptions: { signWith: await keyPair() } });
    await succeeds('extra claims in header and payload', { dpopOptions: { header: (h) => { h.extra = 'x'; }, claims: (c) => { c.extra = 'x'; } } });
    await fails('no DPoP header', { dpop: null });
    await fails('no DPoP header, Bearer scheme', { dpop: null, scheme: 'Bearer' });
    await succeeds('a normal request', {});
  });

  test(`${P}refresh-token`, async () => {
    // the suite's client scope with offline_access, and prompt=consent (AddPromptConsentToAuthorizationEndpointRequestIfScopeContainsOfflineAccess)
    const first = await fullFlow(client, { request: await fapiRequest(client, { scope: 'openid offline_access', extra: { prompt: 'consent' } }) });
    expect(typeof first.refreshToken).toBe('string');
    expect((await discovery(op)).grant_types_supported).toContain('refresh_token');
    const refresh = (c: FapiClient, rt: string, o: TokenOptions) => token(op, c, { grant_type: 'refresh_token', refresh_token: rt, scope: 'openid' }, o);
    const refreshed = await refresh(client, first.refreshToken!, { dpop: first.key });
    const tokens = await expectTokens(refreshed, client, { ...first.request, nonce: undefined }, undefined).catch(async (err) => {
      // a refreshed ID token keeps the original nonce (OIDC Core 12.2)
      if (!String(err).includes('nonce')) throw err;
      return expectTokens(refreshed, client, first.request);
    });
    expect(tokens.claims.sub).toBe(first.claims.sub);
    // not rotated (FAPI2-SP-FINAL-5.3.2.1-9): the same refresh token works again
    const rt = refreshed.body.refresh_token ?? first.refreshToken!;
    if (rt !== first.refreshToken) {
      const previous = await refresh(client, first.refreshToken!, { dpop: first.key });
      expect(previous.status).toBe(200);
    }
    // without client authentication
    const noAuth = await refresh(client, rt, { dpop: first.key, auth: false });
    expect([400, 401]).toContain(noAuth.status);
    expect(noAuth.contentType).toMatch(/^application\/json/);
    expect(['invalid_client', 'invalid_grant', 'invalid_request']).toContain(noAuth.body.error);
    // without a DPoP proof
    const noProof = await refresh(client, rt, { dpop: null });
    expect(noProof.status).toBe(400);
    expect(['invalid_request', 'invalid_grant', 'invalid_dpop_proof']).toContain(noProof.body.error);
    // second client: its own flow, then client 1 tries client 2's refresh token
    const second = await fullFlow(client2, { request: await fapiRequest(client2, { scope: 'openid offline_access', extra: { prompt: 'consent' } }) });
    expect(typeof second.refreshToken).toBe('string');
    const crossed = await refresh(client, second.refreshToken!, { dpop: second.key });
    expect([400, 401]).toContain(crossed.status);
    expect(['invalid_client', 'invalid_grant', 'invalid_request']).toContain(crossed.body.error);
    // client 1 with client 2's access token at the resource
    expect((await resource(op, second.accessToken, first.key)).status).toBe(401);
  });

  test(`${P}par-ensure-reused-request-uri-prior-to-auth-completion-succeeds`, async () => {
    const request = await fapiRequest(client);
    const requestUri = await pushed(client, request);
    const s = await session(true);
    // first visit: the login page, no sign-in
    const first = await s.authorize({ params: byReference(client, request, requestUri), login: false });
    expect(first.kind === 'page' && first.at).toBe('login');
    // second visit with the same request_uri: sign-in succeeds
    const second = await s.authorize({ params: byReference(client, request, requestUri) });
    const code = expectCallbackCode(second, request);
    const key = await keyPair();
    await expectTokens(await token(op, client, codeGrant(client, request, code), { dpop: key }), client, request, code);
  });

  test(`${P}par-attempt-reuse-request_uri`, async () => {
    const request = await fapiRequest(client);
    const { requestUri, outcome, session: s } = await authorize(client, request);
    const code = expectCallbackCode(outcome, request);
    const key = await keyPair();
    await expectTokens(await token(op, client, codeGrant(client, request, code), { dpop: key }), client, request, code);
    const again = await s.authorize({ params: byReference(client, request, requestUri) });
    // Gatehouse answers at the redirect URI (the module also allows an error page)
    expect(again.kind).toBe('redirect');
    if (again.kind !== 'redirect') return;
    expect(again.params.get('code')).toBeNull();
    expect(again.params.get('error')).toBe('invalid_request_uri');
  });

  test(`${P}par-ensure-jwt-client-assertions-nbf-8-seconds-in-the-future-is-accepted`, async () => {
    const request = await fapiRequest(client);
    const future = now() + 8;
    await fullFlow(client, { request, par: { auth: { claims: { iat: future, nbf: future, exp: future + 60 } } } });
  });

  test(`${P}par-ensure-jwt-client-assertions-nbf-over-60-seconds-in-the-future-fails`, async () => {
    const request = await fapiRequest(client);
    const future = now() + 70;
    const res = await par(op, client, request.params, { auth: { claims: { iat: future, nbf: future, exp: future + 60 } } });
    expectParError(res, ['invalid_request', 'invalid_client']);
  });

  test(`${P}par-attempt-to-use-request_uri-for-different-client`, async () => {
    const request = await fapiRequest(client);
    const requestUri = await pushed(client, request);
    const s = await session();
    const outcome = await s.authorize({ params: { ...byReference(client, request, requestUri), client_id: client2.clientId, redirect_uri: client2.redirectUri } });
    // Gatehouse answers at the redirect URI (the module also allows an error page)
    expect(outcome.kind).toBe('redirect');
    if (outcome.kind !== 'redirect') return;
    expect(outcome.params.get('code')).toBeNull();
    expect(['invalid_request', 'invalid_request_object', 'invalid_request_uri']).toContain(outcome.params.get('error'));
  });

  test(`${P}par-authorization-request-containing-request_uri-form-param`, async () => {
    const request = await fapiRequest(client, { extra: { request_uri: `urn:ietf:params:oauth:request_uri:${randomValue()}` } });
    const res = await par(op, client, request.params);
    expectParError(res, ['invalid_request', 'invalid_request_object', 'request_uri_not_supported']);
  });

  test(`${P}par-attempt-invalid-http-method`, async () => {
    const request = await fapiRequest(client);
    const res = await par(op, client, request.params, { method: 'PUT' });
    // EnsureParHTTPError: a 4xx or 5xx (PAR §2.3 suggests 405)
    expect(res.status).toBeGreaterThanOrEqual(400);
    expect(res.status).toBeLessThan(600);
  });

  test(`${P}par-ensure-pkce-required`, async () => {
    const request = await fapiRequest(client, { pkce: false });
    const res = await par(op, client, request.params);
    // Gatehouse refuses it at PAR (the module also allows a refusal at the authorization endpoint)
    expectParError(res, ['invalid_request']);
  });

  test(`${P}ensure-pkce-code-verifier-required`, async () => {
    const { request, code } = await codeFor(client);
    const res = await token(op, client, codeGrant(client, request, code, { code_verifier: null }), { dpop: await keyPair() });
    expectTokenError(res, ['invalid_grant']);
  });

  test(`${P}incorrect-pkce-code-verifier-rejected`, async () => {
    const { request, code } = await codeFor(client);
    const res = await token(op, client, codeGrant(client, request, code, { code_verifier: randomValue(32) }), { dpop: await keyPair() });
    expectTokenError(res, ['invalid_grant']);
  });

  test(`${P}par-plain-pkce-rejected`, async () => {
    const verifier = randomValue(32);
    const request = await fapiRequest(client, { extra: { code_challenge: verifier, code_challenge_method: 'plain' } });
    const res = await par(op, client, request.params);
    // Gatehouse refuses it at PAR (the module also allows a refusal at the authorization endpoint)
    expectParError(res, ['invalid_request']);
  });

  test(`${P}par-without-duplicate-parameters`, async () => {
    await fullFlow(client, { authParams: (uri) => ({ client_id: client.clientId, request_uri: uri }) });
  });

  test(`${P}par-test-array-as-audience-fails`, async () => {
    const request = await fapiRequest(client);
    const res = await par(op, client, request.params, { auth: { aud: [op.issuer, (await discovery(op)).pushed_authorization_request_endpoint] } });
    expectParError(res, ['invalid_request', 'invalid_client']);
  });

  test(`${P}par-test-par-endpoint-url-as-audience-fails`, async () => {
    const request = await fapiRequest(client);
    const res = await par(op, client, request.params, { auth: { aud: (await discovery(op)).pushed_authorization_request_endpoint } });
    expectParError(res, ['invalid_request', 'invalid_client']);
  });

  test(`${P}par-test-token-endpoint-url-as-audience-fails`, async () => {
    const request = await fapiRequest(client);
    const res = await par(op, client, request.params, { auth: { aud: (await discovery(op)).token_endpoint } });
    expectParError(res, ['invalid_request', 'invalid_client']);
  });

  // the two modules that wait for an expiry: their clocks started in beforeAll

  test(`${P}ensure-token-endpoint-fails-with-expired-auth-code`, async () => {
    // codes of fapi2 clients live 30 s; the module waits the lifetime plus 2 s of skew
    const wait = earlyCode.issuedAt + 32_000 - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const res = await token(op, client, codeGrant(client, earlyCode.request, earlyCode.code), { dpop: earlyCode.key });
    expectTokenError(res, ['invalid_grant']);
  }, 60_000);

  test(`${P}par-attempt-to-use-expired-request_uri`, async () => {
    const wait = early.expiresAt + 2000 - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const s = await session();
    const outcome = await s.authorize({ params: byReference(client, early.request, early.requestUri) });
    // Gatehouse answers at the redirect URI (the module also allows an error page)
    expect(outcome.kind).toBe('redirect');
    if (outcome.kind !== 'redirect') return;
    expect(outcome.params.get('code')).toBeNull();
    expect(['invalid_request_uri', 'invalid_request']).toContain(outcome.params.get('error'));
  }, 90_000);
});
