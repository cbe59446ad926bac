import * as oidc from 'openid-client';
import { calculateJwkThumbprint, createRemoteJWKSet, decodeJwt, exportJWK, generateKeyPair, jwtVerify, SignJWT } from 'jose';
import { TOKEN_EXCHANGE_GRANT } from '../../src/common/protocol.js';
// Test data goes in through the same services the CLI calls.
import { createApi } from '../../src/services/apis.js';
import { createClient } from '../../src/services/clients.js';
import { withdrawConsents } from '../../src/services/consents.js';
import { CHAIN_TOO_LONG, MANAGEMENT_API_REFUSED, MAX_EXCHANGE_CHAIN } from '../../src/services/token-exchange.js';
import {
  databaseKinds, exchangeCode, fakeUpstream, relyingParty, signIn, startInProcess,
  type FakeUpstream, type InProcess, type TestClient,
} from '../support/in-process.js';

/**
 * RFC 8693 token exchange over HTTP. Gatehouse runs in this process
 * (startInProcess: createApp on a real database of each kind, real HTTP), and
 * the person's tokens come from a real authorization-code sign-in through a
 * fake upstream. The exchanging APIs use openid-client's genericGrantRequest.
 *
 * The person signs in to the app Shop for ORDERS, LEDGER, STOCK (stock:read
 * only), WAREHOUSE, TOOLS and the management API: that grant is what an
 * exchange may carry to a target API. ORDERS, LEDGER and TOOLS define scopes
 * with the names of other APIs' scopes (stock:write, admin:write), which never
 * count at those other APIs.
 */

const GRANT = TOKEN_EXCHANGE_GRANT;
const ACCESS_TOKEN = 'urn:ietf:params:oauth:token-type:access_token';
/** the person's app calls these; their credentials exchange */
const ORDERS = 'https://orders.example.com'; // JWT tokens
const LEDGER = 'https://ledger.example.com'; // opaque tokens
/** downstream APIs */
const STOCK = 'https://stock.example.com'; // JWT, lives longer than the person's tokens
const WAREHOUSE = 'https://warehouse.example.com'; // opaque, 2 minutes
const PAYROLL = 'https://payroll.example.com'; // no exchanging client may get it
const MAIL = 'https://mail.example.com'; // orders-api may get it; the person granted nothing there
const TOOLS = 'https://tools.example.com'; // defines scopes named like the management API's

type Credential = { clientId: string; clientSecret: string };

describe.each(databaseKinds())('token exchange (RFC 8693) on %s', (kind) => {
  let server: InProcess;
  let acme: FakeUpstream;
  let app: TestClient;
  const creds: Record<string, Credential> = {};
  const rps: Record<string, oidc.Configuration> = {};
  /** the person's access tokens, from a sign-in each */
  let ordersToken: string;
  let ledgerToken: string;
  let toolsToken: string;
  let person: string;
  /** the management API: `${ISSUER}/admin/v1` */
  let ADMIN: string;

  async function credential(clientId: string, fields: Record<string, unknown>): Promise<void> {
    const { secret } = await createClient(server.database.prisma, { clientId, name: clientId, grantTypes: [GRANT], ...fields });
    creds[clientId] = { clientId, clientSecret: secret! };
  }

  const rp = async (clientId: string) =>
    (rps[clientId] ??= await oidc.discovery(new URL(server.url), clientId, undefined, oidc.ClientSecretBasic(creds[clientId].clientSecret), {
      execute: [oidc.allowInsecureRequests],
    }));

  const exchange = async (clientId: string, params: Record<string, string>, options?: oidc.DPoPOptions) =>
    oidc.genericGrantRequest(await rp(clientId), GRANT, { subject_token_type: ACCESS_TOKEN, ...params }, options);

  /** The answer of a refused exchange (openid-client throws with the body's error). */
  async function refusal(clientId: string, params: Record<string, string>, options?: oidc.DPoPOptions): Promise<{ error: string; error_description?: string }> {
    try {
      await exchange(clientId, params, options);
    } catch (err) {
      const e = err as { error?: string; error_description?: string };
      if (e.error) return { error: e.error, error_description: e.error_description };
      throw err;
    }
    throw new Error('the exchange was not refused');
  }

  /** Signs the person in to an app (Shop unless said) for one API and returns the access token the app gets. */
  async function personToken(resource: string, scope: string, to: TestClient = app): Promise<{ accessToken: string; sub: string }> {
    const { authorization, callback } = await signIn(server.browser(), to, acme, { scope: `openid ${scope}`, resource });
    const { tokens } = await exchangeCode(server, authorization, callback);
    return { accessToken: tokens.access_token, sub: tokens.claims()!.sub };
  }

  /** The same, with the app's token bound to a DPoP key (RFC 9449) of the app's. */
  async function dpopBoundPersonToken(resource: string, scope: string, keyPair: CryptoKeyPair): Promise<string> {
    const { authorization, callback } = await signIn(server.browser(), app, acme, { scope: `openid ${scope}`, resource });
    const appRp = await relyingParty(server, app);
    const tokens = await oidc.authorizationCodeGrant(appRp, callback, {
      pkceCodeVerifier: authorization.codeVerifier, expectedState: authorization.state, expectedNonce: authorization.nonce,
    }, undefined, { DPoP: oidc.getDPoPHandle(appRp, keyPair) });
    expect(tokens.token_type.toLowerCase()).toBe('dpop');
    return tokens.access_token;
  }

  const storedTokens = () => server.database.prisma.oidcPayload.count({ where: { type: { in: ['AccessToken', 'Grant'] } } });

  beforeAll(async () => {
    acme = fakeUpstream('acme', 'Acme SSO');
    server = await startInProcess({ kind, upstreams: [acme] });
    ADMIN = `${server.url}/admin/v1`;
    const db = server.database.prisma;
    await createApi(db, { identifier: ORDERS, scopes: ['orders:read', 'stock:read', 'stock:write'], introspectors: ['orders-api'] });
    await createApi(db, { identifier: LEDGER, scopes: ['ledger:read', 'stock:read', 'stock:write'], tokenFormat: 'opaque', introspectors: ['ledger-api'] });
    await createApi(db, { identifier: STOCK, scopes: ['stock:read', 'stock:write'], accessTokenTtl: 3600, introspectors: ['stock-api'] });
    await createApi(db, { identifier: WAREHOUSE, scopes: ['stock:read', 'stock:write'], accessTokenTtl: 120, tokenFormat: 'opaque', introspectors: ['warehouse-api'] });
    await createApi(db, { identifier: PAYROLL, scopes: ['stock:read'] });
    await createApi(db, { identifier: MAIL, scopes: ['mail:send'] });
    await createApi(db, { identifier: TOOLS, scopes: ['admin:read', 'admin:write'], introspectors: ['tools-api'] });
    await credential('orders-api', { resources: [STOCK, WAREHOUSE, MAIL] });
    // may get only stock:read downstream
    await credential('ledger-api', { resources: [STOCK, WAREHOUSE], scopes: ['stock:read'] });
    await credential('stock-api', { resources: [WAREHOUSE] });
    // with stock-api, a chain that goes back and forth
    await credential('warehouse-api', { resources: [STOCK, WAREHOUSE] });
    // an admin gave the tools API's credential the management API
    await credential('tools-api', { resources: [ADMIN] });
    // an API credential of nothing: may get tokens for STOCK, but exchange no one's
    await credential('intruder', { resources: [STOCK, WAREHOUSE] });
    // the orders API's credential for introspection only: no token exchange grant
    await credential('orders-reader', { grantTypes: ['client_credentials'], resources: [STOCK] });
    await credential('billing', { grantTypes: ['client_credentials'], resources: [ORDERS, LEDGER] });
    await db.resourceServer.update({ where: { identifier: ORDERS }, data: { introspectors: ['orders-api', 'orders-reader'] } });
    app = await server.createClient({ name: 'Shop', resources: [ORDERS, LEDGER, STOCK, WAREHOUSE, TOOLS, ADMIN] });

    acme.signInAs({ subject: 'acme-ada', name: 'Ada' });
    const orders = await personToken(ORDERS, 'orders:read stock:read stock:write');
    const ledger = await personToken(LEDGER, 'ledger:read stock:read stock:write');
    const tools = await personToken(TOOLS, 'admin:read admin:write');
    // what the person lets Shop have downstream: STOCK read only, WAREHOUSE both, and even the management API
    await personToken(STOCK, 'stock:read');
    await personToken(WAREHOUSE, 'stock:read stock:write');
    await personToken(ADMIN, 'admin:write');
    expect(ledger.sub).toBe(orders.sub);
    [ordersToken, ledgerToken, toolsToken, person] = [orders.accessToken, ledger.accessToken, tools.accessToken, orders.sub];
  });
  afterAll(() => server?.close());

  it('advertises the grant type in discovery', async () => {
    expect((await rp('orders-api')).serverMetadata().grant_types_supported).toContain(GRANT);
  });

  it("exchanges a person's JWT for a JWT to a downstream API: sub is the person, act the exchanging API, no longer-lived", async () => {
    const subject = decodeJwt(ordersToken);
    expect(subject).toMatchObject({ aud: ORDERS, sub: person, client_id: app.clientId, scope: 'orders:read stock:read stock:write' });

    // without scope: what the person granted Shop at STOCK (stock:read), not ORDERS' scopes of the same names
    const tokens = await exchange('orders-api', { subject_token: ordersToken, resource: STOCK });
    expect(tokens).toMatchObject({ issued_token_type: ACCESS_TOKEN, scope: 'stock:read' });
    expect(tokens.token_type.toLowerCase()).toBe('bearer');
    const { payload, protectedHeader } = await jwtVerify(tokens.access_token, createRemoteJWKSet(new URL(`${server.url}/jwks`)), {
      issuer: server.url, audience: STOCK, typ: 'at+jwt',
    });
    expect(protectedHeader.alg).toBe('ES256');
    expect(payload).toMatchObject({ sub: person, client_id: 'orders-api', scope: 'stock:read', act: { sub: 'orders-api' }, gatehouse_app: app.clientId });
    // STOCK tokens live an hour; this one ends with the subject token
    expect(payload.exp).toBe(subject.exp);
    expect(tokens.expires_in).toBeLessThanOrEqual(subject.exp! - subject.iat!);
  });

  it('refuses a JWT subject token the app revoked (RFC 7009)', async () => {
    // another person: revoking a token ends its grant, which Ada's tokens of the other tests share
    acme.signInAs({ subject: 'acme-grace', name: 'Grace' });
    try {
      await personToken(STOCK, 'stock:read');
      const { accessToken } = await personToken(ORDERS, 'orders:read stock:read');
      expect((await exchange('orders-api', { subject_token: accessToken, resource: STOCK })).scope).toBe('stock:read');
      await oidc.tokenRevocation(await relyingParty(server, app), accessToken);
      expect(await refusal('orders-api', { subject_token: accessToken, resource: STOCK })).toMatchObject({ error: 'invalid_request', error_description: 'subject token was revoked' });
    } finally {
      acme.signInAs({ subject: 'acme-ada', name: 'Ada' });
    }
  });

  it('puts each exchange in the audit trail: the exchanging client, the person, the APIs and the app, never a token', async () => {
    const jwt = await exchange('orders-api', { subject_token: ordersToken, resource: STOCK });
    const opaque = await exchange('ledger-api', { subject_token: ledgerToken, resource: WAREHOUSE });
    const trail = await server.database.prisma.auditEvent.findMany({ where: { action: 'token.exchanged' }, orderBy: { id: 'desc' }, take: 2 });
    expect(trail.reverse()).toEqual([
      expect.objectContaining({
        actorType: 'client', actorId: 'orders-api', targetType: 'account', targetId: person,
        details: { target: STOCK, scope: 'stock:read', act: { sub: 'orders-api' }, app: app.clientId, subjectApis: [ORDERS], subjectClientId: app.clientId },
      }),
      expect.objectContaining({
        actorType: 'client', actorId: 'ledger-api', targetType: 'account', targetId: person,
        details: { target: WAREHOUSE, scope: 'stock:read', act: { sub: 'ledger-api' }, app: app.clientId, subjectApis: [LEDGER], subjectClientId: app.clientId },
      }),
    ]);
    for (const token of [jwt.access_token, opaque.access_token, ordersToken, ledgerToken]) expect(JSON.stringify(trail)).not.toContain(token);
  });

  it('exchanges an opaque token for an opaque one whose introspection shows sub and act, and stores it', async () => {
    const before = await storedTokens();
    const tokens = await exchange('ledger-api', { subject_token: ledgerToken, resource: WAREHOUSE, scope: 'stock:read' });
    expect(tokens.access_token.split('.')).toHaveLength(1);
    expect(tokens).toMatchObject({ issued_token_type: ACCESS_TOKEN, scope: 'stock:read', expires_in: 120 });
    expect(await storedTokens()).toBe(before + 1);
    const introspected = await oidc.tokenIntrospection(await rp('ledger-api'), tokens.access_token);
    expect(introspected).toMatchObject({
      active: true, sub: person, client_id: 'ledger-api', aud: WAREHOUSE, scope: 'stock:read', act: { sub: 'ledger-api' }, token_type: 'Bearer',
    });
    expect(introspected.exp! - introspected.iat!).toBe(120);
  });

  it('exchanges a JWT for an opaque token and an opaque one for a JWT (format follows the target API)', async () => {
    const opaque = await exchange('orders-api', { subject_token: ordersToken, resource: WAREHOUSE });
    expect(opaque.access_token.split('.')).toHaveLength(1);
    // everything the person granted Shop at WAREHOUSE
    expect(opaque.scope).toBe('stock:read stock:write');
    const jwt = await exchange('ledger-api', { subject_token: ledgerToken, audience: STOCK });
    expect(decodeJwt(jwt.access_token)).toMatchObject({ aud: STOCK, sub: person, act: { sub: 'ledger-api' }, scope: 'stock:read' });
  });

  it('nests act when an exchanged token is exchanged again', async () => {
    const first = await exchange('orders-api', { subject_token: ordersToken, resource: STOCK });
    const second = await exchange('stock-api', { subject_token: first.access_token, resource: WAREHOUSE });
    // the second hop is still held to what the person granted Shop, at WAREHOUSE
    expect(second.scope).toBe('stock:read stock:write');
    const introspected = await oidc.tokenIntrospection(await rp('stock-api'), second.access_token);
    expect(introspected).toMatchObject({ active: true, sub: person, act: { sub: 'stock-api', act: { sub: 'orders-api' } }, gatehouse_app: app.clientId });
  });

  it(`says "exchange chain too long" past ${MAX_EXCHANGE_CHAIN} actors, not "malformed act"`, async () => {
    // back and forth between STOCK (stock-api) and WAREHOUSE (warehouse-api), one actor more each time
    let token = (await exchange('orders-api', { subject_token: ordersToken, resource: STOCK, scope: 'stock:read' })).access_token;
    let onStock = true;
    for (let actors = 1; actors < MAX_EXCHANGE_CHAIN; actors += 1) {
      const [exchanger, resource] = onStock ? ['stock-api', WAREHOUSE] : ['warehouse-api', STOCK];
      token = (await exchange(exchanger, { subject_token: token, resource, scope: 'stock:read' })).access_token;
      onStock = !onStock;
    }
    const introspected = await oidc.tokenIntrospection(await rp(onStock ? 'stock-api' : 'warehouse-api'), token);
    let depth = 0;
    for (let act = introspected.act as { act?: unknown } | undefined; act; act = act.act as typeof act) depth += 1;
    expect(depth).toBe(MAX_EXCHANGE_CHAIN);
    const before = await storedTokens();
    const refused = await refusal(onStock ? 'stock-api' : 'warehouse-api', { subject_token: token, resource: onStock ? WAREHOUSE : STOCK, scope: 'stock:read' });
    expect(refused).toEqual({ error: 'invalid_request', error_description: CHAIN_TOO_LONG });
    expect(refused.error_description).toContain(`at most ${MAX_EXCHANGE_CHAIN}`);
    expect(await storedTokens()).toBe(before);
  });

  it('binds the new token to the DPoP key of the exchanging request', async () => {
    const keyPair = await oidc.randomDPoPKeyPair('ES256');
    const DPoP = oidc.getDPoPHandle(await rp('orders-api'), keyPair);
    const tokens = await exchange('orders-api', { subject_token: ordersToken, resource: STOCK }, { DPoP });
    expect(tokens.token_type.toLowerCase()).toBe('dpop');
    const jkt = await calculateJwkThumbprint(await exportJWK(keyPair.publicKey));
    expect(decodeJwt(tokens.access_token)).toMatchObject({ cnf: { jkt }, act: { sub: 'orders-api' } });
  });

  it("exchanges a DPoP-bound subject token only with a proof of that token's key, and binds the new token to it", async () => {
    const appKey = await oidc.randomDPoPKeyPair('ES256');
    const otherKey = await oidc.randomDPoPKeyPair('ES256');
    const jkt = await calculateJwkThumbprint(await exportJWK(appKey.publicKey));
    const boundJwt = await dpopBoundPersonToken(ORDERS, 'orders:read stock:read', appKey);
    expect(decodeJwt(boundJwt)).toMatchObject({ cnf: { jkt } });
    const boundOpaque = await dpopBoundPersonToken(LEDGER, 'ledger:read stock:read', appKey);
    for (const [exchanger, subjectToken] of [['orders-api', boundJwt], ['ledger-api', boundOpaque]]) {
      const params = { subject_token: subjectToken, resource: STOCK, scope: 'stock:read' };
      const before = await storedTokens();
      expect(await refusal(exchanger, params)).toEqual({
        error: 'invalid_request', error_description: "the subject token is DPoP-bound: the exchange needs a DPoP proof of the subject token's key",
      });
      expect(await refusal(exchanger, params, { DPoP: oidc.getDPoPHandle(await rp(exchanger), otherKey) })).toEqual({
        error: 'invalid_dpop_proof', error_description: "the DPoP proof is not of the subject token's key",
      });
      expect(await storedTokens()).toBe(before);
      const tokens = await exchange(exchanger, params, { DPoP: oidc.getDPoPHandle(await rp(exchanger), appKey) });
      expect(tokens.token_type.toLowerCase()).toBe('dpop');
      expect(decodeJwt(tokens.access_token)).toMatchObject({ sub: person, aud: STOCK, cnf: { jkt }, act: { sub: exchanger } });
    }
  });

  it("narrows only when the target is the subject token's own API", async () => {
    const narrow = await exchange('ledger-api', { subject_token: ledgerToken, resource: WAREHOUSE, scope: 'stock:read' });
    // the person granted Shop both scopes at WAREHOUSE and warehouse-api may get both, but this token has stock:read only
    expect(await exchange('warehouse-api', { subject_token: narrow.access_token, resource: WAREHOUSE })).toMatchObject({ scope: 'stock:read' });
    expect(await refusal('warehouse-api', { subject_token: narrow.access_token, resource: WAREHOUSE, scope: 'stock:write' })).toEqual({
      error: 'invalid_scope', error_description: "scope stock:write is wider than the subject token's scopes",
    });
  });

  describe('refusals store nothing', () => {
    let before: number;
    beforeEach(async () => {
      before = await storedTokens();
    });
    afterEach(async () => {
      expect(await storedTokens()).toBe(before);
    });

    it("refuses a client that is not the subject token's API's credential: unauthorized_client", async () => {
      expect(await refusal('intruder', { subject_token: ordersToken, resource: WAREHOUSE })).toMatchObject({ error: 'unauthorized_client' });
      // the ledger API's credential may not exchange the orders API's tokens
      expect(await refusal('ledger-api', { subject_token: ordersToken, resource: WAREHOUSE })).toMatchObject({ error: 'unauthorized_client' });
    });

    it('refuses a target API the client may not get, and an unknown one, alike: invalid_target', async () => {
      const forbidden = await refusal('orders-api', { subject_token: ordersToken, resource: PAYROLL });
      const unknown = await refusal('orders-api', { subject_token: ordersToken, resource: 'https://nowhere.example.com' });
      expect(forbidden.error).toBe('invalid_target');
      expect(unknown).toEqual(forbidden);
      // the subject token's own API is not among orders-api's resources either
      expect(await refusal('orders-api', { subject_token: ordersToken, resource: ORDERS })).toEqual(forbidden);
      const both = new URLSearchParams({ subject_token: ordersToken, subject_token_type: ACCESS_TOKEN, resource: STOCK });
      both.append('resource', WAREHOUSE);
      await expect(oidc.genericGrantRequest(await rp('orders-api'), GRANT, both)).rejects.toMatchObject({ error: 'invalid_target' });
    });

    it("refuses a scope the person did not grant the app at the target API, whatever the subject token's scope names: invalid_scope", async () => {
      // the orders token carries ORDERS' stock:write; at STOCK the person granted Shop stock:read only
      expect(decodeJwt(ordersToken).scope).toContain('stock:write');
      expect(await refusal('orders-api', { subject_token: ordersToken, resource: STOCK, scope: 'stock:read stock:write' })).toEqual({
        error: 'invalid_scope', error_description: 'scope stock:write was not granted by the person to the app at the target API',
      });
      // a scope of another API
      expect(await refusal('orders-api', { subject_token: ordersToken, resource: STOCK, scope: 'orders:read' })).toMatchObject({ error: 'invalid_scope' });
      // granted at WAREHOUSE, but the ledger API's credential may only get stock:read
      expect(await refusal('ledger-api', { subject_token: ledgerToken, resource: WAREHOUSE, scope: 'stock:write' })).toEqual({
        error: 'invalid_scope', error_description: 'scope stock:write is not one this client may get at the target API',
      });
    });

    it('never makes a token for the management API, even from admin:write of another API and with the person\'s consent: invalid_target', async () => {
      // TOOLS' own admin:write, and the person did grant Shop admin:write at the management API
      expect(decodeJwt(toolsToken)).toMatchObject({ aud: TOOLS, sub: person, scope: 'admin:read admin:write' });
      const refused = { error: 'invalid_target', error_description: MANAGEMENT_API_REFUSED };
      expect(await refusal('tools-api', { subject_token: toolsToken, resource: ADMIN })).toEqual(refused);
      expect(await refusal('tools-api', { subject_token: toolsToken, audience: ADMIN, scope: 'admin:write' })).toEqual(refused);
    });

    it('refuses an exchange without scope that has nothing to carry, instead of a token with no scope: invalid_scope', async () => {
      // orders-api may get MAIL tokens, but the person granted Shop nothing there
      expect(await refusal('orders-api', { subject_token: ordersToken, resource: MAIL })).toEqual({
        error: 'invalid_scope', error_description: 'no scope of the target API to exchange for: the person granted the app none there that this client may get',
      });
    });

    it('refuses garbage, foreign, expired and personless subject tokens: invalid_request (RFC 8693 §2.2.2)', async () => {
      const garbage = await refusal('orders-api', { subject_token: 'not-a-token', resource: WAREHOUSE });
      expect(garbage.error).toBe('invalid_request');

      // signed like Gatehouse's, by a key that is not Gatehouse's
      const { privateKey } = await generateKeyPair('ES256');
      const forged = await new SignJWT({ client_id: app.clientId, scope: 'orders:read stock:read' })
        .setProtectedHeader({ alg: 'ES256', typ: 'at+jwt' })
        .setIssuer(server.url).setAudience(ORDERS).setSubject(person).setIssuedAt().setExpirationTime('5m').setJti('forged')
        .sign(privateKey);
      expect(await refusal('orders-api', { subject_token: forged, resource: WAREHOUSE })).toMatchObject({ error: 'invalid_request' });

      // tokens Gatehouse made itself, through its own models, that expired a minute ago
      const { provider } = server.app;
      const client = (await provider.Client.find(app.clientId))!;
      const past = Math.floor(Date.now() / 1000) - 60;
      const expired = (resource: string, format: 'jwt' | 'opaque', scope: string) =>
        new provider.AccessToken({
          accountId: person, client, gty: 'authorization_code', scope, iat: past - 600, exp: past,
          resourceServer: new (provider as any).ResourceServer(resource, { scope, audience: resource, accessTokenFormat: format, ...(format === 'jwt' ? { jwt: { sign: { alg: 'ES256' } } } : {}) }),
        } as any).save();
      const expiredJwt = await expired(ORDERS, 'jwt', 'orders:read stock:read');
      expect(decodeJwt(expiredJwt)).toMatchObject({ sub: person, aud: ORDERS, exp: past });
      expect(await refusal('orders-api', { subject_token: expiredJwt, resource: WAREHOUSE })).toEqual({ error: 'invalid_request', error_description: 'subject token has expired' });
      const expiredOpaque = await expired(LEDGER, 'opaque', 'stock:read');
      before = await storedTokens(); // the expired token itself is a row
      expect(await refusal('ledger-api', { subject_token: expiredOpaque, resource: WAREHOUSE })).toMatchObject({ error: 'invalid_request' });

      // an API's own client_credentials tokens, JWT and opaque, have no person
      const billing = await rp('billing');
      for (const resource of [ORDERS, LEDGER]) {
        const machine = (await oidc.clientCredentialsGrant(billing, { resource, scope: 'stock:read' })).access_token;
        before = await storedTokens();
        const exchanger = resource === ORDERS ? 'orders-api' : 'ledger-api';
        expect(await refusal(exchanger, { subject_token: machine, resource: WAREHOUSE })).toEqual({ error: 'invalid_request', error_description: 'subject token has no subject person' });
      }
    });

    it('refuses a missing or unsupported subject_token_type, an actor token and other requested token types: invalid_request', async () => {
      const cases: Record<string, string>[] = [
        { subject_token_type: 'urn:ietf:params:oauth:token-type:id_token' },
        { subject_token_type: 'urn:ietf:params:oauth:token-type:refresh_token' },
        { actor_token: ordersToken, actor_token_type: ACCESS_TOKEN },
        { requested_token_type: 'urn:ietf:params:oauth:token-type:refresh_token' },
        { requested_token_type: 'urn:ietf:params:oauth:token-type:jwt' },
      ];
      for (const extra of cases) {
        expect(await refusal('orders-api', { subject_token: ordersToken, resource: WAREHOUSE, ...extra })).toMatchObject({ error: 'invalid_request' });
      }
      const missingType = await oidc.genericGrantRequest(await rp('orders-api'), GRANT, { subject_token: ordersToken, resource: WAREHOUSE }).catch((err) => err);
      expect(missingType).toMatchObject({ error: 'invalid_request', error_description: 'missing required parameter subject_token_type' });
      expect(await refusal('orders-api', { resource: WAREHOUSE })).toMatchObject({ error: 'invalid_request' });
      expect(await refusal('orders-api', { subject_token: ordersToken })).toMatchObject({ error: 'invalid_request' });
      // the same request with the right type is accepted (below, outside the "stores nothing" block)
    });

    it("answers a client without the grant type with oidc-provider's own refusal", async () => {
      // orders-reader is the orders API's credential too, but the admin gave it no token exchange
      expect(await refusal('orders-reader', { subject_token: ordersToken, resource: STOCK })).toEqual({
        error: 'invalid_request', error_description: 'requested grant type is not allowed for this client',
      });
    });
  });

  it('accepts the refused requests once they are right', async () => {
    await expect(exchange('orders-api', { subject_token: ordersToken, resource: WAREHOUSE, requested_token_type: ACCESS_TOKEN })).resolves.toMatchObject({ scope: 'stock:read stock:write' });
    await expect(exchange('ledger-api', { subject_token: ledgerToken, resource: WAREHOUSE, scope: 'stock:read' })).resolves.toMatchObject({ scope: 'stock:read' });
  });

  it("counts only the person's grant to the app they signed in to, and only while it is in force", async () => {
    const kiosk = await server.createClient({ name: 'Kiosk', resources: [ORDERS, STOCK] });
    const kioskOrders = (await personToken(ORDERS, 'orders:read stock:read', kiosk)).accessToken;
    // the person granted Shop stock:read at STOCK, Kiosk nothing there (yet)
    expect(await refusal('orders-api', { subject_token: kioskOrders, resource: STOCK })).toMatchObject({ error: 'invalid_scope' });
    await personToken(STOCK, 'stock:read', kiosk);
    await expect(exchange('orders-api', { subject_token: kioskOrders, resource: STOCK })).resolves.toMatchObject({ scope: 'stock:read' });
    // consent withdrawn: the JWT still verifies, but it is exchanged no more
    await withdrawConsents(server.database.prisma, { accountId: person, clientId: kiosk.clientId });
    expect(await refusal('orders-api', { subject_token: kioskOrders, resource: STOCK })).toEqual({
      error: 'invalid_scope', error_description: 'the person has no grant in force for the app they signed in to: nothing to exchange',
    });
  });
});
