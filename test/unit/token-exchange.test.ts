import type { ApiRecord } from '../../src/services/apis.js';
import {
  ACCESS_TOKEN_TYPE, APP_CLAIM, CHAIN_TOO_LONG, chainLength, checkSubjectBinding, decideExchange, exchangedScopes, ExchangeRefused,
  isManagementApi, isSubjectApiCredential, MANAGEMENT_API_REFUSED, MAX_EXCHANGE_CHAIN, readActor, readExchangeRequest,
  subjectFromJwtClaims, subjectFromStoredToken, TARGET_REFUSED, type Actor, type SubjectToken,
} from '../../src/services/token-exchange.js';

/** The rules of RFC 8693 token exchange (services/token-exchange.ts). */

const ORDERS = 'https://orders.example.com';
const STOCK = 'https://stock.example.com';
const PAYROLL = 'https://payroll.example.com';
const ISSUER = 'https://id.example.com';
const ADMIN = `${ISSUER}/admin/v1`;
const NOW = 1_800_000_000;

function api(identifier: string, fields: Partial<ApiRecord> = {}): ApiRecord {
  return {
    identifier, name: identifier, scopes: ['stock:read', 'stock:write'], accessTokenTtl: 600, tokenFormat: 'jwt', signingAlg: 'ES256',
    introspectors: [], allowRegisteredClients: false, createdAt: new Date(0), updatedAt: new Date(0), ...fields,
  };
}

const orders = api(ORDERS, { scopes: ['orders:read', 'stock:read'], introspectors: ['orders-api'] });
const stock = api(STOCK, { accessTokenTtl: 3600 });
const payroll = api(PAYROLL);
const ordersApi = { clientId: 'orders-api', resources: [STOCK], scopes: [] };
const subject: SubjectToken = { accountId: 'person-1', clientId: 'shop', app: 'shop', audiences: [ORDERS], scopes: ['orders:read', 'stock:read'], exp: NOW + 300 };

/** An act chain of `length` actors. */
const chainOf = (length: number): Actor | undefined =>
  Array.from({ length }, (_, i) => `api-${i}`).reduceRight<Actor | undefined>((inner, sub) => ({ sub, ...(inner ? { act: inner } : {}) }), undefined);

/** The refusal a call throws, as code and message. */
function refusalOf(fn: () => unknown): { code: string; message: string } {
  try {
    fn();
  } catch (err) {
    if (err instanceof ExchangeRefused) return { code: err.code, message: err.message };
    throw err;
  }
  throw new Error('not refused');
}

/** By default the person granted the app stock:read at STOCK. */
const decide = (overrides: Partial<Parameters<typeof decideExchange>[0]> = {}) =>
  decideExchange({ client: ordersApi, subject, subjectApis: [orders], target: stock, granted: ['stock:read'], issuer: ISSUER, now: NOW, ...overrides });

describe('reading an exchange request', () => {
  const base = { subject_token: 'token', subject_token_type: ACCESS_TOKEN_TYPE, resource: STOCK };

  it('takes the subject token and the one target, from resource or audience', () => {
    expect(readExchangeRequest(base)).toEqual({ subjectToken: 'token', target: STOCK });
    expect(readExchangeRequest({ ...base, resource: undefined, audience: STOCK })).toEqual({ subjectToken: 'token', target: STOCK });
    // the same API named twice is one target
    expect(readExchangeRequest({ ...base, resource: [STOCK, STOCK], audience: STOCK })).toEqual({ subjectToken: 'token', target: STOCK });
    expect(readExchangeRequest({ ...base, requested_token_type: ACCESS_TOKEN_TYPE }).target).toBe(STOCK);
  });

  it.each([
    ['no subject token', { subject_token: undefined }, /subject_token$/],
    ['no subject token type', { subject_token_type: undefined }, /subject_token_type/],
    ['an ID token as subject', { subject_token_type: 'urn:ietf:params:oauth:token-type:id_token' }, /unsupported subject_token_type/],
    ['an actor token', { actor_token: 'other', actor_token_type: ACCESS_TOKEN_TYPE }, /actor_token is not supported/],
    ['an actor token type alone', { actor_token_type: ACCESS_TOKEN_TYPE }, /actor_token is not supported/],
    ['a refresh token requested', { requested_token_type: 'urn:ietf:params:oauth:token-type:refresh_token' }, /unsupported requested_token_type/],
    ['no target', { resource: undefined }, /resource \(or audience\)/],
  ])('refuses %s with invalid_request', (_, change, message) => {
    const refused = refusalOf(() => readExchangeRequest({ ...base, ...change }));
    expect(refused.code).toBe('invalid_request');
    expect(refused.message).toMatch(message);
  });

  it('refuses two targets with invalid_target', () => {
    expect(refusalOf(() => readExchangeRequest({ ...base, resource: [STOCK, PAYROLL] })).code).toBe('invalid_target');
    expect(refusalOf(() => readExchangeRequest({ ...base, audience: PAYROLL })).code).toBe('invalid_target');
  });
});

describe('reading subject tokens', () => {
  it('takes the person from a JWT, and none when sub is the client (client_credentials)', () => {
    const claims = { sub: 'person-1', client_id: 'shop', aud: ORDERS, scope: 'orders:read stock:read', exp: NOW };
    expect(subjectFromJwtClaims(claims)).toEqual({ accountId: 'person-1', clientId: 'shop', app: 'shop', audiences: [ORDERS], scopes: ['orders:read', 'stock:read'], exp: NOW });
    expect(subjectFromJwtClaims({ ...claims, sub: 'shop' }).accountId).toBeUndefined();
    expect(subjectFromJwtClaims({ ...claims, aud: [ORDERS, STOCK], scope: undefined })).toMatchObject({ audiences: [ORDERS, STOCK], scopes: [] });
    expect(refusalOf(() => subjectFromJwtClaims({ ...claims, client_id: undefined })).code).toBe('invalid_request');
  });

  it('takes the app the person granted: the client, or for an exchanged token the recorded one (none recorded: none)', () => {
    const exchanged = { sub: 'person-1', client_id: 'orders-api', aud: STOCK, scope: 'stock:read', exp: NOW, act: { sub: 'orders-api' } };
    expect(subjectFromJwtClaims({ ...exchanged, [APP_CLAIM]: 'shop' })).toMatchObject({ clientId: 'orders-api', app: 'shop', act: { sub: 'orders-api' } });
    expect(subjectFromJwtClaims(exchanged).app).toBeUndefined();
    // only an exchanged token's claim counts
    const { act: _, ...signedIn } = exchanged;
    expect(subjectFromJwtClaims({ ...signedIn, [APP_CLAIM]: 'elsewhere' }).app).toBe('orders-api');
  });

  it("takes a JWT's DPoP binding (cnf.jkt)", () => {
    const claims = { sub: 'person-1', client_id: 'shop', aud: ORDERS, exp: NOW };
    expect(subjectFromJwtClaims({ ...claims, cnf: { jkt: 'thumb' } }).jkt).toBe('thumb');
    expect(subjectFromJwtClaims({ ...claims, cnf: { 'x5t#S256': 'cert' } }).jkt).toBeUndefined();
  });

  it('takes a stored token, its grant and DPoP binding, and its act and app from extra', () => {
    const stored = { accountId: 'person-1', clientId: 'shop', grantId: 'grant-1', aud: ORDERS, scope: 'stock:read', exp: NOW, jkt: 'thumb' };
    expect(subjectFromStoredToken(stored)).toEqual({ accountId: 'person-1', clientId: 'shop', app: 'shop', grantId: 'grant-1', audiences: [ORDERS], scopes: ['stock:read'], exp: NOW, jkt: 'thumb' });
    const exchanged = { ...stored, clientId: 'b', grantId: undefined, extra: { act: { sub: 'b', act: { sub: 'a' } }, [APP_CLAIM]: 'shop' } };
    expect(subjectFromStoredToken(exchanged)).toMatchObject({ clientId: 'b', app: 'shop', act: { sub: 'b', act: { sub: 'a' } } });
    expect(subjectFromStoredToken({ ...stored, accountId: undefined, aud: undefined, jkt: undefined })).toMatchObject({ accountId: undefined, audiences: [], act: undefined, jkt: undefined });
  });

  it('refuses a malformed act claim', () => {
    expect(readActor({ sub: 'a', extra: 'dropped' })).toEqual({ sub: 'a' });
    for (const bad of ['a', { act: { sub: 'b' } }, { sub: 'a', act: { sub: 7 } }, [{ sub: 'a' }], { sub: 'a', act: 'b' }]) {
      expect(refusalOf(() => readActor(bad))).toEqual({ code: 'invalid_request', message: 'subject token has a malformed act claim' });
    }
  });

  it(`reads a chain of up to ${MAX_EXCHANGE_CHAIN} actors, and says a longer one is too long, with the limit`, () => {
    expect(readActor(chainOf(MAX_EXCHANGE_CHAIN))).toEqual(chainOf(MAX_EXCHANGE_CHAIN));
    expect(chainLength(readActor(chainOf(MAX_EXCHANGE_CHAIN)))).toBe(MAX_EXCHANGE_CHAIN);
    expect(refusalOf(() => readActor(chainOf(MAX_EXCHANGE_CHAIN + 1)))).toEqual({ code: 'invalid_request', message: CHAIN_TOO_LONG });
    expect(CHAIN_TOO_LONG).toMatch(/^exchange chain too long: .*at most 32 /);
    // far deeper than the limit: the same answer, no stack to overflow
    expect(refusalOf(() => readActor(chainOf(100_000))).message).toBe(CHAIN_TOO_LONG);
  });
});

describe('who may exchange what', () => {
  it("lets only the subject token's API's credentials exchange", () => {
    expect(isSubjectApiCredential('orders-api', [orders])).toBe(true);
    expect(isSubjectApiCredential('orders-api', [null, orders])).toBe(true);
    expect(isSubjectApiCredential('shop', [orders])).toBe(false);
    expect(isSubjectApiCredential('orders-api', [null])).toBe(false);
  });

  it('issues for the person, acted by the client, scoped to what both allow, cut to the subject token', () => {
    expect(decide()).toEqual({ accountId: 'person-1', app: 'shop', scopes: ['stock:read'], expiresIn: 300, act: { sub: 'orders-api' } });
    // a shorter-lived target keeps its own lifetime
    expect(decide({ target: api(STOCK, { accessTokenTtl: 60 }) }).expiresIn).toBe(60);
    expect(decide({ subject: { ...subject, exp: NOW + 1 } }).expiresIn).toBe(1);
  });

  it('nests the act of an exchanged subject token', () => {
    expect(decide({ subject: { ...subject, act: { sub: 'edge-api', act: { sub: 'gateway' } } } }).act).toEqual({
      sub: 'orders-api', act: { sub: 'edge-api', act: { sub: 'gateway' } },
    });
  });

  it(`makes a chain of at most ${MAX_EXCHANGE_CHAIN} actors`, () => {
    expect(chainLength(decide({ subject: { ...subject, act: chainOf(MAX_EXCHANGE_CHAIN - 1) } }).act)).toBe(MAX_EXCHANGE_CHAIN);
    expect(refusalOf(() => decide({ subject: { ...subject, act: chainOf(MAX_EXCHANGE_CHAIN) } }))).toEqual({ code: 'invalid_request', message: CHAIN_TOO_LONG });
  });

  it("never exchanges towards the management API, whatever the client lists or the person granted", () => {
    const admin = api(ADMIN, { scopes: ['admin:read', 'admin:write'] });
    // the review's case: admin:write of another API
    const other = { ...subject, audiences: [ORDERS], scopes: ['admin:write'] };
    const overrides = { client: { ...ordersApi, resources: [ADMIN] }, subject: other, target: admin, granted: ['admin:write'] };
    expect(refusalOf(() => decide(overrides))).toEqual({ code: 'invalid_target', message: MANAGEMENT_API_REFUSED });
    expect(refusalOf(() => decide({ ...overrides, requestedScope: 'admin:write' })).code).toBe('invalid_target');
    expect(isManagementApi(ADMIN, ISSUER)).toBe(true);
    expect(isManagementApi(`${ADMIN}/`, ISSUER)).toBe(false);
    expect(isManagementApi(STOCK, ISSUER)).toBe(false);
  });

  it("takes a scope's name at the target API only, never the subject token's scope of the same name at its own API", () => {
    // ORDERS' stock:write in the subject token; at STOCK the person granted stock:read only
    const wide = { ...subject, scopes: ['stock:read', 'stock:write'] };
    expect(decide({ subject: wide }).scopes).toEqual(['stock:read']);
    expect(refusalOf(() => decide({ subject: wide, requestedScope: 'stock:write' }))).toEqual({
      code: 'invalid_scope', message: 'scope stock:write was not granted by the person to the app at the target API',
    });
    // and what the person granted at STOCK counts even when the subject token (for ORDERS) names none of it
    expect(decide({ subject: { ...subject, scopes: ['orders:read'] }, granted: ['stock:read', 'stock:write'] }).scopes).toEqual(['stock:read', 'stock:write']);
  });

  it('needs a grant of the person to the app in force, and for an exchanged token, a recorded app', () => {
    const noGrant = { code: 'invalid_scope', message: 'the person has no grant in force for the app they signed in to: nothing to exchange' };
    expect(refusalOf(() => decide({ granted: undefined }))).toEqual(noGrant);
    expect(refusalOf(() => decide({ subject: { ...subject, app: undefined, act: { sub: 'edge-api' } } }))).toEqual(noGrant);
  });

  it("narrows only, when the target is the subject token's own API", () => {
    const own = { ...subject, audiences: [STOCK], scopes: ['stock:read'] };
    const client = { ...ordersApi, resources: [STOCK] };
    expect(decide({ client, subject: own, subjectApis: [api(STOCK, { introspectors: ['orders-api'] })], granted: ['stock:read', 'stock:write'] }).scopes).toEqual(['stock:read']);
    expect(refusalOf(() => decide({ client, subject: own, subjectApis: [api(STOCK, { introspectors: ['orders-api'] })], granted: ['stock:read', 'stock:write'], requestedScope: 'stock:write' })).message)
      .toBe("scope stock:write is wider than the subject token's scopes");
  });

  it("asks for a DPoP proof of a DPoP-bound subject token's own key", () => {
    const bound = { ...subject, jkt: 'app-key' };
    expect(refusalOf(() => decide({ subject: bound }))).toEqual({ code: 'invalid_request', message: "the subject token is DPoP-bound: the exchange needs a DPoP proof of the subject token's key" });
    expect(refusalOf(() => decide({ subject: bound, proofJkt: 'other-key' }))).toEqual({ code: 'invalid_dpop_proof', message: "the DPoP proof is not of the subject token's key" });
    expect(decide({ subject: bound, proofJkt: 'app-key' }).scopes).toEqual(['stock:read']);
    // an unbound subject token takes any proof, or none
    expect(() => checkSubjectBinding(undefined, 'any')).not.toThrow();
    expect(() => checkSubjectBinding(undefined, undefined)).not.toThrow();
  });

  it.each<[string, Partial<Parameters<typeof decideExchange>[0]>, string, RegExp]>([
    ['an expired subject token', { subject: { ...subject, exp: NOW } }, 'invalid_request', /expired/],
    ['a subject token without a person', { subject: { ...subject, accountId: undefined } }, 'invalid_request', /no subject person/],
    ['a subject token for no registered API', { subjectApis: [null] }, 'invalid_request', /registered API/],
    ['a subject token without audience', { subjectApis: [] }, 'invalid_request', /registered API/],
    ["a client that is not the subject API's credential", { client: { ...ordersApi, clientId: 'intruder' } }, 'unauthorized_client', /credentials/],
    ['a target the client does not list', { target: payroll }, 'invalid_target', /unknown or not allowed/],
    ['an unknown target', { target: null }, 'invalid_target', /unknown or not allowed/],
    ['a scope the person did not grant the app at the target', { requestedScope: 'stock:read stock:write' }, 'invalid_scope', /stock:write was not granted by the person/],
    ['a scope the client may not get at the target', { client: { ...ordersApi, scopes: ['stock:write'] }, requestedScope: 'stock:read' }, 'invalid_scope', /may get at the target/],
    ['a scope of another API', { requestedScope: 'orders:read' }, 'invalid_scope', /orders:read is not one this client may get/],
    ['no scope asked and none to carry', { granted: [] }, 'invalid_scope', /no scope of the target API/],
    ['a chain at its limit', { subject: { ...subject, act: chainOf(MAX_EXCHANGE_CHAIN) } }, 'invalid_request', /exchange chain too long/],
  ])('refuses %s', (_, overrides, code, message) => {
    const refused = refusalOf(() => decide(overrides));
    expect(refused.code).toBe(code);
    expect(refused.message).toMatch(message);
  });

  it('says the same for unknown and forbidden targets', () => {
    expect(refusalOf(() => decide({ target: payroll })).message).toBe(TARGET_REFUSED);
    expect(refusalOf(() => decide({ target: null })).message).toBe(TARGET_REFUSED);
  });

  it('checks the client before the target, and the subject token before the client', () => {
    expect(refusalOf(() => decide({ client: { ...ordersApi, clientId: 'intruder' }, target: null })).code).toBe('unauthorized_client');
    expect(refusalOf(() => decide({ client: { ...ordersApi, clientId: 'intruder' }, subject: { ...subject, exp: NOW - 1 } })).code).toBe('invalid_request');
  });

  it('lets a registered app exchange towards an API that accepts registered apps', () => {
    const open = api(PAYROLL, { allowRegisteredClients: true });
    expect(refusalOf(() => decide({ target: open })).code).toBe('invalid_target');
    expect(decide({ client: { ...ordersApi, dynamic: true }, target: open }).scopes).toEqual(['stock:read']);
  });

  it('checks the DPoP binding after the client, and before the target', () => {
    const bound = { ...subject, jkt: 'app-key' };
    expect(refusalOf(() => decide({ subject: bound, client: { ...ordersApi, clientId: 'intruder' } })).code).toBe('unauthorized_client');
    expect(refusalOf(() => decide({ subject: bound, target: null })).code).toBe('invalid_request');
  });
});

describe('exchanged scopes', () => {
  const both = ['stock:read', 'stock:write'];

  it('defaults to every scope the client may get and the person granted, in the target API order', () => {
    expect(exchangedScopes(undefined, { allowed: both, granted: ['stock:write', 'stock:read'] })).toEqual(both);
    expect(exchangedScopes('', { allowed: ['stock:read'], granted: both })).toEqual(['stock:read']);
    expect(exchangedScopes(undefined, { allowed: both, granted: both, subjectScopes: ['stock:write'] })).toEqual(['stock:write']);
  });

  it('refuses a default with nothing in it, rather than a token with no scope', () => {
    expect(refusalOf(() => exchangedScopes(undefined, { allowed: ['stock:read'], granted: ['stock:write'] })).code).toBe('invalid_scope');
    expect(refusalOf(() => exchangedScopes(undefined, { allowed: both, granted: both, subjectScopes: ['orders:read'] })).code).toBe('invalid_scope');
  });

  it('narrows to what is asked, once each', () => {
    expect(exchangedScopes('stock:read stock:read', { allowed: both, granted: both })).toEqual(['stock:read']);
  });
});
