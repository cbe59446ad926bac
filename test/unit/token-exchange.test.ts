import type { ApiRecord } from '../../src/services/apis.js';
import {
  ACCESS_TOKEN_TYPE, decideExchange, exchangedScopes, ExchangeRefused, isSubjectApiCredential, readActor, readExchangeRequest,
  subjectFromJwtClaims, subjectFromStoredToken, TARGET_REFUSED, type SubjectToken,
} from '../../src/services/token-exchange.js';

/** The rules of RFC 8693 token exchange (services/token-exchange.ts). */

const ORDERS = 'https://orders.example.com';
const STOCK = 'https://stock.example.com';
const PAYROLL = 'https://payroll.example.com';
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
const subject: SubjectToken = { accountId: 'person-1', clientId: 'shop', audiences: [ORDERS], scopes: ['orders:read', 'stock:read'], exp: NOW + 300 };

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

const decide = (overrides: Partial<Parameters<typeof decideExchange>[0]> = {}) =>
  decideExchange({ client: ordersApi, subject, subjectApis: [orders], target: stock, now: NOW, ...overrides });

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
    expect(subjectFromJwtClaims(claims)).toEqual({ accountId: 'person-1', clientId: 'shop', audiences: [ORDERS], scopes: ['orders:read', 'stock:read'], exp: NOW, act: undefined });
    expect(subjectFromJwtClaims({ ...claims, sub: 'shop' }).accountId).toBeUndefined();
    expect(subjectFromJwtClaims({ ...claims, aud: [ORDERS, STOCK], scope: undefined })).toMatchObject({ audiences: [ORDERS, STOCK], scopes: [] });
    expect(refusalOf(() => subjectFromJwtClaims({ ...claims, client_id: undefined })).code).toBe('invalid_request');
  });

  it('takes a stored token, and its act from extra', () => {
    const stored = { accountId: 'person-1', clientId: 'shop', aud: ORDERS, scope: 'stock:read', exp: NOW, extra: { act: { sub: 'a', act: { sub: 'b' } } } };
    expect(subjectFromStoredToken(stored)).toEqual({ accountId: 'person-1', clientId: 'shop', audiences: [ORDERS], scopes: ['stock:read'], exp: NOW, act: { sub: 'a', act: { sub: 'b' } } });
    expect(subjectFromStoredToken({ ...stored, accountId: undefined, aud: undefined, extra: undefined })).toMatchObject({ accountId: undefined, audiences: [], act: undefined });
  });

  it('refuses a malformed act claim', () => {
    expect(readActor({ sub: 'a', extra: 'dropped' })).toEqual({ sub: 'a' });
    for (const bad of ['a', { act: { sub: 'b' } }, { sub: 'a', act: { sub: 7 } }, [{ sub: 'a' }]]) {
      expect(refusalOf(() => readActor(bad)).code).toBe('invalid_request');
    }
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
    expect(decide()).toEqual({ accountId: 'person-1', scopes: ['stock:read'], expiresIn: 300, act: { sub: 'orders-api' } });
    // a shorter-lived target keeps its own lifetime
    expect(decide({ target: api(STOCK, { accessTokenTtl: 60 }) }).expiresIn).toBe(60);
    expect(decide({ subject: { ...subject, exp: NOW + 1 } }).expiresIn).toBe(1);
  });

  it('nests the act of an exchanged subject token', () => {
    expect(decide({ subject: { ...subject, act: { sub: 'edge-api', act: { sub: 'gateway' } } } }).act).toEqual({
      sub: 'orders-api', act: { sub: 'edge-api', act: { sub: 'gateway' } },
    });
  });

  it.each<[string, Partial<Parameters<typeof decideExchange>[0]>, string, RegExp]>([
    ['an expired subject token', { subject: { ...subject, exp: NOW } }, 'invalid_request', /expired/],
    ['a subject token without a person', { subject: { ...subject, accountId: undefined } }, 'invalid_request', /no subject person/],
    ['a subject token for no registered API', { subjectApis: [null] }, 'invalid_request', /registered API/],
    ['a subject token without audience', { subjectApis: [] }, 'invalid_request', /registered API/],
    ["a client that is not the subject API's credential", { client: { ...ordersApi, clientId: 'intruder' } }, 'unauthorized_client', /credentials/],
    ['a target the client does not list', { target: payroll }, 'invalid_target', /unknown or not allowed/],
    ['an unknown target', { target: null }, 'invalid_target', /unknown or not allowed/],
    ["a scope beyond the subject token's", { requestedScope: 'stock:read stock:write' }, 'invalid_scope', /stock:write is wider than the subject token/],
    ['a scope the client may not get at the target', { client: { ...ordersApi, scopes: ['stock:write'] }, requestedScope: 'stock:read' }, 'invalid_scope', /may get at the target/],
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
});

describe('exchanged scopes', () => {
  it('defaults to the subject token scopes the target allows, in their order', () => {
    expect(exchangedScopes(undefined, ['orders:read', 'stock:write', 'stock:read'], ['stock:read', 'stock:write'])).toEqual(['stock:write', 'stock:read']);
    expect(exchangedScopes('', ['orders:read'], ['stock:read'])).toEqual([]);
  });

  it('narrows to what is asked, once each', () => {
    expect(exchangedScopes('stock:read stock:read', ['stock:read', 'stock:write'], ['stock:read', 'stock:write'])).toEqual(['stock:read']);
  });
});
