import { randomUUID } from 'node:crypto';
import Koa from 'koa';
import * as oidc from 'openid-client';
import { decodeJwt, exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import { createClient } from '../../src/services/clients.js';
import { createApi } from '../../src/services/apis.js';
import { ServiceError } from '../../src/services/errors.js';
import { requireToken } from '../../src/resource-kit/index.js';
import {
  chooseUpstream, csrfOf, databaseKinds, exchangeCode, fakeUpstream, listen, signIn, startInProcess, testClock,
  type FakeUpstream, type InProcess, type TestClient, type TestClock,
} from '../support/in-process.js';

/**
 * The FAPI 2.0 profile per client, and the refresh-token grace period, over
 * HTTP against an in-process Gatehouse with openid-client as the app.
 */

const API = 'https://payments.example.com';
const REDIRECT = 'https://bank-app.example.com/cb';

interface Key {
  privateKey: CryptoKey;
  jwk: JWK;
  kid: string;
  alg: string;
}

async function key(alg: string): Promise<Key> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const kid = `${alg}-${randomUUID()}`;
  return { privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' }, kid, alg };
}

function clientAssertion(k: Key, clientId: string, aud: string) {
  return new SignJWT({ jti: randomUUID() })
    .setProtectedHeader({ alg: k.alg, kid: k.kid })
    .setIssuer(clientId).setSubject(clientId).setAudience(aud)
    .setIssuedAt().setExpirationTime('1m')
    .sign(k.privateKey);
}

async function post(url: string, body: Record<string, string>, headers: Record<string, string> = {}) {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers }, body: new URLSearchParams(body) });
  return { status: res.status, body: (await res.json()) as Record<string, string> };
}

describe.each(databaseKinds())('a FAPI 2.0 client on %s', (kind) => {
  let server: InProcess;
  let acme: FakeUpstream;
  let es256: Key;
  let rs256: Key;
  let api: { url: string; close(): Promise<void> };
  const fapiId = 'bank-app';

  beforeAll(async () => {
    acme = fakeUpstream('acme', 'Acme SSO');
    server = await startInProcess({ kind, upstreams: [acme] });
    es256 = await key('ES256');
    rs256 = await key('RS256');
    const db = server.database.prisma;
    await createApi(db, { identifier: API, scopes: ['payments:read'] });
    await createClient(db, {
      clientId: fapiId, name: 'Bank App', profile: 'fapi2', tokenEndpointAuthMethod: 'private_key_jwt',
      jwks: { keys: [es256.jwk, rs256.jwk] }, grantTypes: ['authorization_code', 'refresh_token', 'client_credentials'],
      redirectUris: [REDIRECT], resources: [API], firstParty: true,
    });
    // the same keys on an ordinary client: what FAPI refuses, it accepts
    await createClient(db, { clientId: 'plain-signer', name: 'Plain', tokenEndpointAuthMethod: 'private_key_jwt', jwks: { keys: [rs256.jwk] }, resources: [API] });
    await server.app.cache.refresh();

    // an API protected by the resource kit
    const app = new Koa();
    app.use(requireToken({ issuer: server.url, audience: API, scopes: ['payments:read'] }));
    app.use((ctx) => { ctx.body = { sub: ctx.state.auth.subject }; });
    const http = await listen(app.callback());
    api = { url: http.url, close: http.close };
  });
  afterAll(async () => {
    await api?.close();
    await server?.close();
  });

  const rpFor = (k: Key) => oidc.discovery(new URL(server.url), fapiId, undefined, oidc.PrivateKeyJwt({ key: k.privateKey, kid: k.kid }), {
    execute: [oidc.allowInsecureRequests],
  });

  /** PAR, sign-in through the upstream, and the redirect back with a code. */
  async function authorizeWithPar(rp: oidc.Configuration, dpop?: oidc.DPoPHandle) {
    const codeVerifier = oidc.randomPKCECodeVerifier();
    const state = oidc.randomState();
    const url = await oidc.buildAuthorizationUrlWithPAR(rp, {
      redirect_uri: REDIRECT, scope: 'openid offline_access payments:read', resource: API, state, prompt: 'consent',
      code_challenge: await oidc.calculatePKCECodeChallenge(codeVerifier), code_challenge_method: 'S256',
    }, dpop ? { DPoP: dpop } : undefined);
    expect([...url.searchParams.keys()].sort()).toEqual(['client_id', 'request_uri']);
    const b = server.browser();
    const start = await b.get(`${url.pathname}${url.search}`);
    const uid = /^\/interaction\/([^/?]+)$/.exec(start.location ?? '')?.[1];
    expect(uid).toBeDefined();
    await chooseUpstream(b, uid!, 'acme');
    let { last } = await b.follow(await b.get(acme.redirectBack()));
    if (last.status === 200) ({ last } = await b.follow(await b.post(`${new URL(last.url).pathname}/confirm`, { csrf: csrfOf(last) })));
    return { callback: new URL(last.location!), codeVerifier, state };
  }

  it('runs the whole flow: PAR, private_key_jwt, DPoP-bound tokens, iss in the response, refresh without rotation', async () => {
    acme.signInAs({ subject: 'fapi-1', email: 'fapi@example.com', emailVerified: true });
    const rp = await rpFor(es256);
    const dpop = oidc.getDPoPHandle(rp, await oidc.randomDPoPKeyPair('ES256'));
    const { callback, codeVerifier, state } = await authorizeWithPar(rp, dpop);
    // RFC 9207: the issuer in the authorization response
    expect(callback.searchParams.get('iss')).toBe(server.url);
    const tokens = await oidc.authorizationCodeGrant(rp, callback, { pkceCodeVerifier: codeVerifier, expectedState: state }, undefined, { DPoP: dpop });
    expect(tokens.token_type).toBe('dpop');
    const at = decodeJwt(tokens.access_token);
    expect(at).toMatchObject({ aud: API, cnf: { jkt: expect.any(String) } });
    // ID tokens signed with ES256 (FAPI 2.0 allows PS256, ES256, EdDSA)
    expect(JSON.parse(Buffer.from(tokens.id_token!.split('.')[0], 'base64url').toString()).alg).toBe('ES256');

    // the API accepts it with its proof, and refuses it as a plain bearer token
    const asBearer = await fetch(`${api.url}/`, { headers: { authorization: `Bearer ${tokens.access_token}` } });
    expect(asBearer.status).toBe(401);
    expect(asBearer.headers.get('www-authenticate')).toMatch(/DPoP-bound/);
    const withProof = await oidc.fetchProtectedResource(rp, tokens.access_token, new URL(`${api.url}/`), 'GET', undefined, undefined, { DPoP: dpop })
      .catch((e: { response?: Response }) => e.response);
    expect({ status: withProof?.status, challenge: withProof?.headers.get('www-authenticate') }).toEqual({ status: 200, challenge: null });

    // refresh: the same refresh token (no rotation), a new DPoP-bound access token
    const refreshed = await oidc.refreshTokenGrant(rp, tokens.refresh_token!, { resource: API }, { DPoP: dpop });
    expect(refreshed.refresh_token ?? tokens.refresh_token).toBe(tokens.refresh_token);
    expect(decodeJwt(refreshed.access_token).cnf).toEqual(at.cnf);
    // the refresh token is bound to the DPoP key: another key, or none, is refused
    const otherKey = oidc.getDPoPHandle(rp, await oidc.randomDPoPKeyPair('ES256'));
    await expect(oidc.refreshTokenGrant(rp, tokens.refresh_token!, { resource: API }, { DPoP: otherKey })).rejects.toMatchObject({ error: 'invalid_grant' });
    await expect(oidc.refreshTokenGrant(rp, tokens.refresh_token!, { resource: API })).rejects.toMatchObject({ error: 'invalid_grant' });
    // and still works with the right key afterwards: nothing was revoked
    expect((await oidc.refreshTokenGrant(rp, tokens.refresh_token!, { resource: API }, { DPoP: dpop })).access_token).toEqual(expect.any(String));
  });

  it('refuses an authorization request that was not pushed', async () => {
    const res = await server.browser().get(`/auth?${new URLSearchParams({
      client_id: fapiId, response_type: 'code', redirect_uri: REDIRECT, scope: 'openid', state: 's',
      code_challenge: await oidc.calculatePKCECodeChallenge(oidc.randomPKCECodeVerifier()), code_challenge_method: 'S256',
    })}`);
    expect(res.location ?? '').not.toMatch(/^\/interaction\//);
    const answer = res.location ? new URL(res.location).searchParams : undefined;
    expect(answer?.get('error') ?? res.text).toMatch(/invalid_request/);
    expect(answer?.get('error_description') ?? res.text).toMatch(/[Pp]ushed [Aa]uthorization [Rr]equest/);
  });

  it('refuses a client secret, tokens without DPoP, RS256 assertions and an audience other than the issuer', async () => {
    const tokenUrl = `${server.url}/token`;
    const grant = { grant_type: 'client_credentials', resource: API, scope: 'payments:read' };
    const assertionFields = async (k: Key, aud = server.url, clientId = fapiId) => ({
      client_id: clientId, client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: await clientAssertion(k, clientId, aud),
    });
    // a shared secret is not how this client authenticates
    expect(await post(tokenUrl, grant, { authorization: `Basic ${Buffer.from(`${fapiId}:some-secret`).toString('base64')}` }))
      .toEqual({ status: 401, body: expect.objectContaining({ error: 'invalid_client' }) });
    // no DPoP proof (oidc-provider says why only in its logs)
    expect(await post(tokenUrl, { ...grant, ...(await assertionFields(es256)) }))
      .toEqual({ status: 400, body: expect.objectContaining({ error: 'invalid_grant' }) });
    // RS256: refused for this client, accepted for an ordinary one with the same key
    expect(await post(tokenUrl, { ...grant, ...(await assertionFields(rs256)) }))
      .toEqual({ status: 401, body: expect.objectContaining({ error: 'invalid_client' }) });
    expect((await post(tokenUrl, { ...grant, ...(await assertionFields(rs256, server.url, 'plain-signer')) })).status).toBe(200);
    // FAPI 2.0: the audience is the issuer, not the token endpoint
    expect(await post(tokenUrl, { ...grant, ...(await assertionFields(es256, tokenUrl)) }))
      .toEqual({ status: 401, body: expect.objectContaining({ error: 'invalid_client' }) });
    expect((await post(tokenUrl, { ...grant, ...(await assertionFields(es256, tokenUrl, 'plain-signer')) })).status).not.toBe(500);

    // with a proof, the same request passes
    const rp = await rpFor(es256);
    const dpop = oidc.getDPoPHandle(rp, await oidc.randomDPoPKeyPair('ES256'));
    const tokens = await oidc.clientCredentialsGrant(rp, { resource: API, scope: 'payments:read' }, { DPoP: dpop });
    expect(tokens.token_type).toBe('dpop');
  });

  it('cannot be made with relaxations: the rules refuse a secret, no keys, or the device flow', async () => {
    const db = server.database.prisma;
    const refusal = (fields: Record<string, unknown>) => createClient(db, { name: 'Relaxed', profile: 'fapi2', resources: [API], ...fields }).then(() => undefined, (e: ServiceError) => e.problems.map((p) => `${p.path.join('.')}: ${p.message}`));
    expect(await refusal({ tokenEndpointAuthMethod: 'client_secret_basic' })).toEqual(['tokenEndpointAuthMethod: the fapi2 profile allows only private_key_jwt']);
    expect(await refusal({ tokenEndpointAuthMethod: 'private_key_jwt' })).toEqual(["jwks: private_key_jwt needs the client's public keys: jwks or jwksUri"]);
    expect(await refusal({ tokenEndpointAuthMethod: 'private_key_jwt', jwks: { keys: [es256.jwk] }, grantTypes: ['urn:ietf:params:oauth:grant-type:device_code'] }))
      .toEqual(['grantTypes: the fapi2 profile has no device flow (authorization requests must be pushed)']);
    expect(await db.client.count({ where: { name: 'Relaxed' } })).toBe(0);
  });
});

describe.each(databaseKinds())('refresh tokens in two tabs on %s', (kind) => {
  let server: InProcess;
  let acme: FakeUpstream;
  let client: TestClient;
  let other: TestClient;
  let clock: TestClock;

  beforeAll(async () => {
    acme = fakeUpstream('acme', 'Acme SSO');
    clock = testClock();
    server = await startInProcess({ kind, upstreams: [acme], now: clock.now, env: { REFRESH_REUSE_GRACE_SECONDS: '5' } });
    client = await server.createClient({ name: 'Two Tabs', firstParty: true });
    other = await server.createClient({ name: 'Other App', firstParty: true });
  });
  afterAll(() => server?.close());

  async function offlineTokens() {
    acme.signInAs({ subject: `tabs-${randomUUID()}`, email: 'tabs@example.com', emailVerified: true });
    const { authorization, callback } = await signIn(server.browser(), client, acme, { scope: 'openid offline_access', prompt: 'consent' });
    return exchangeCode(server, authorization, callback);
  }

  /** A counter of the app's own registry, 0 when it has no series yet. */
  async function counter(name: string, labels: Record<string, string> = {}): Promise<number> {
    const metric = (await server.app.metrics.registry.getMetricsAsJSON()).find((m) => m.name === name);
    const series = (metric?.values ?? []).filter((v) => Object.entries(labels).every(([k, want]) => String((v.labels as Record<string, unknown>)[k]) === want));
    return series.reduce((sum, v) => sum + Number(v.value), 0);
  }

  it('answers concurrent refreshes of one token with the same successor, and stores no usable token', async () => {
    const { rp, tokens } = await offlineTokens();
    const before = { issued: await counter('gatehouse_tokens_issued_total', { grant_type: 'refresh_token' }), repeats: await counter('gatehouse_refresh_token_grace_repeats_total') };
    const answers = await Promise.all([1, 2, 3].map(() => oidc.refreshTokenGrant(rp, tokens.refresh_token!)));
    const successors = new Set(answers.map((a) => a.refresh_token));
    expect(successors.size).toBe(1);
    expect(new Set(answers.map((a) => a.access_token)).size).toBe(1);
    expect([...successors][0]).not.toBe(tokens.refresh_token);
    // a later repeat within the grace period: the same answer again
    const again = await oidc.refreshTokenGrant(rp, tokens.refresh_token!);
    expect(again.refresh_token).toBe(answers[0].refresh_token);
    // one refresh issued tokens; three answers repeated it
    expect(await counter('gatehouse_tokens_issued_total', { grant_type: 'refresh_token' })).toBe(before.issued + 1);
    expect(await counter('gatehouse_refresh_token_grace_repeats_total')).toBe(before.repeats + 3);
    // the successor works, once: it rotates
    const next = await oidc.refreshTokenGrant(rp, answers[0].refresh_token!);
    expect(next.refresh_token).not.toBe(answers[0].refresh_token);

    // the kept answers are sealed: no token appears in any row
    const rows = await server.database.prisma.oidcPayload.findMany({ where: { type: 'RefreshGrace' } });
    expect(rows.length).toBeGreaterThanOrEqual(2);
    const stored = JSON.stringify(rows);
    for (const t of [tokens.refresh_token, answers[0].refresh_token, answers[0].access_token, next.refresh_token, next.access_token]) expect(stored).not.toContain(t);
  });

  it('keeps the whole grace period: a second tab 4.9 s after a rotation late in a second gets the same answer', async () => {
    const { rp, tokens } = await offlineTokens();
    // the rotation at .950 of a second: whole seconds would count 5.85 s at the repeat
    clock.advance(1950 - (clock.now() % 1000));
    const first = await oidc.refreshTokenGrant(rp, tokens.refresh_token!);
    clock.advance(4900);
    const repeat = await oidc.refreshTokenGrant(rp, tokens.refresh_token!);
    expect(repeat.refresh_token).toBe(first.refresh_token);
    expect((await oidc.refreshTokenGrant(rp, first.refresh_token!)).refresh_token).toEqual(expect.any(String));
  });

  describe('with APIs', () => {
    const ORDERS = 'https://orders.tabs.example.com';
    const LEDGER = 'https://ledger.tabs.example.com';
    let shop: TestClient;
    beforeAll(async () => {
      await createApi(server.database.prisma, { identifier: ORDERS, scopes: ['orders:read'] });
      await createApi(server.database.prisma, { identifier: LEDGER, scopes: ['ledger:read'] });
      shop = await server.createClient({ name: 'Shop', firstParty: true, resources: [ORDERS, LEDGER] });
    });

    async function ordersTokens() {
      acme.signInAs({ subject: `shop-${randomUUID()}`, email: 'shop@example.com', emailVerified: true });
      const { authorization, callback } = await signIn(server.browser(), shop, acme, { scope: 'openid offline_access orders:read', resource: ORDERS, prompt: 'consent' });
      return exchangeCode(server, authorization, callback);
    }

    it('refuses a refresh for an API the token was never granted without spending the token (no reuse, no revocation)', async () => {
      const { rp, tokens } = await ordersTokens();
      await expect(oidc.refreshTokenGrant(rp, tokens.refresh_token!, { resource: LEDGER })).rejects.toMatchObject({ error: 'invalid_target' });
      await expect(oidc.refreshTokenGrant(rp, tokens.refresh_token!, { resource: 'https://nowhere.example.com' })).rejects.toMatchObject({ error: 'invalid_target' });
      // the app's retry is no reuse: the token was never consumed
      clock.advance(6000);
      const next = await oidc.refreshTokenGrant(rp, tokens.refresh_token!, { resource: ORDERS });
      expect(decodeJwt(next.access_token).aud).toBe(ORDERS);
    });

    it('gives a second tab asking for another API within the grace period no answer made for the first, and revokes nothing', async () => {
      const { rp, tokens } = await ordersTokens();
      const first = await oidc.refreshTokenGrant(rp, tokens.refresh_token!, { resource: ORDERS });
      await expect(oidc.refreshTokenGrant(rp, tokens.refresh_token!, { resource: LEDGER })).rejects.toMatchObject({ error: 'invalid_grant' });
      // the same request again is still a repeat, and the successor lives
      expect((await oidc.refreshTokenGrant(rp, tokens.refresh_token!, { resource: ORDERS })).refresh_token).toBe(first.refresh_token);
      expect((await oidc.refreshTokenGrant(rp, first.refresh_token!, { resource: ORDERS })).refresh_token).toEqual(expect.any(String));
    });
  });

  it('revokes the grant on a reuse after the grace period', async () => {
    const { rp, tokens } = await offlineTokens();
    const successor = await oidc.refreshTokenGrant(rp, tokens.refresh_token!);
    clock.advance(6000);
    await expect(oidc.refreshTokenGrant(rp, tokens.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
    // the whole grant is gone: the successor too
    await expect(oidc.refreshTokenGrant(rp, successor.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
  });

  it('for a DPoP-bound public client: the same key gets the same answer, another key is refused and revokes nothing', async () => {
    await createClient(server.database.prisma, {
      clientId: 'spa', name: 'SPA', tokenEndpointAuthMethod: 'none', grantTypes: ['authorization_code', 'refresh_token'],
      redirectUris: ['https://spa.example.com/cb'], firstParty: true,
    });
    await server.app.cache.refresh();
    const spa: TestClient = { clientId: 'spa', clientSecret: '', name: 'SPA', redirectUri: 'https://spa.example.com/cb' };
    acme.signInAs({ subject: `spa-${randomUUID()}`, email: 'spa@example.com', emailVerified: true });
    const { authorization, callback } = await signIn(server.browser(), spa, acme, { scope: 'openid offline_access', prompt: 'consent' });
    const rp = await oidc.discovery(new URL(server.url), 'spa', undefined, oidc.None(), { execute: [oidc.allowInsecureRequests] });
    const dpop = oidc.getDPoPHandle(rp, await oidc.randomDPoPKeyPair('ES256'));
    const tokens = await oidc.authorizationCodeGrant(rp, callback, {
      pkceCodeVerifier: authorization.codeVerifier, expectedState: authorization.state, expectedNonce: authorization.nonce,
    }, undefined, { DPoP: dpop });
    expect(tokens.token_type).toBe('dpop');
    const [a, b] = await Promise.all([1, 2].map(() => oidc.refreshTokenGrant(rp, tokens.refresh_token!, undefined, { DPoP: dpop })));
    expect(b.refresh_token).toBe(a.refresh_token);
    expect(b.access_token).toBe(a.access_token);
    // the old token with another key: refused, and the grant lives on
    const thief = oidc.getDPoPHandle(rp, await oidc.randomDPoPKeyPair('ES256'));
    await expect(oidc.refreshTokenGrant(rp, tokens.refresh_token!, undefined, { DPoP: thief })).rejects.toMatchObject({ error: 'invalid_grant' });
    expect((await oidc.refreshTokenGrant(rp, a.refresh_token!, undefined, { DPoP: dpop })).refresh_token).toEqual(expect.any(String));
  });

  it('gives the kept answer to no other client', async () => {
    const { tokens } = await offlineTokens();
    const rp = await oidc.discovery(new URL(server.url), client.clientId, undefined, oidc.ClientSecretBasic(client.clientSecret), { execute: [oidc.allowInsecureRequests] });
    const otherRp = await oidc.discovery(new URL(server.url), other.clientId, undefined, oidc.ClientSecretBasic(other.clientSecret), { execute: [oidc.allowInsecureRequests] });
    const successor = await oidc.refreshTokenGrant(rp, tokens.refresh_token!);
    await expect(oidc.refreshTokenGrant(otherRp, tokens.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
    // and a wrong secret never reaches it
    const wrongSecret = await post(`${server.url}/token`, { grant_type: 'refresh_token', refresh_token: tokens.refresh_token! }, {
      authorization: `Basic ${Buffer.from(`${client.clientId}:not-the-secret-at-all-0123456789abcdef`).toString('base64')}`,
    });
    expect(wrongSecret).toEqual({ status: 401, body: expect.objectContaining({ error: 'invalid_client' }) });
    // the rightful client still gets its answer
    expect((await oidc.refreshTokenGrant(rp, tokens.refresh_token!)).refresh_token).toBe(successor.refresh_token);
  });
});
