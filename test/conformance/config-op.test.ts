/**
 * oidcc-config-certification-test-plan (Config OP): the one module,
 * oidcc-discovery-endpoint-verification, with the checks OIDCCDiscoveryEndpointVerification
 * makes, against an https issuer (CheckDiscEndpointAllEndpointsAreHttps needs one).
 */
import { discovery, jwks, startConformanceOp, type ConformanceOp } from './support/index.js';

const ENDPOINTS = /(_endpoint|_uri)$/;
const SERVICE_DOCS = new Set(['service_documentation', 'op_policy_uri', 'op_tos_uri']);

async function expectDiscoveryDocument(op: ConformanceOp): Promise<Record<string, any>> {
  const res = await op.fetch(`${op.issuer}/.well-known/openid-configuration`);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^application\/json/);
  const doc = (await res.json()) as Record<string, any>;
  // CheckDiscEndpointIssuer, CheckDiscEndpointIssuerIsValidUrl
  expect(doc.issuer).toBe(op.issuer);
  expect(new URL(doc.issuer).protocol).toBe('https:');
  expect(doc.issuer).not.toMatch(/[?#]/);
  return doc;
}

function expectSupportedValues(doc: Record<string, any>): void {
  // OIDCCCheckDiscEndpointResponseTypesSupported: code is offered, and nothing else (a design decision)
  expect(doc.response_types_supported).toEqual(['code']);
  expect(doc.subject_types_supported).toEqual(['public']);
  expect(doc.id_token_signing_alg_values_supported).toContain('RS256');
  expect(doc.id_token_signing_alg_values_supported).not.toContain('none');
  for (const alg of doc.userinfo_signing_alg_values_supported ?? []) expect(alg).toMatch(/^(RS|PS|ES)(256|384|512)$|^EdDSA$/);
  expect(doc.grant_types_supported).toEqual(expect.arrayContaining(['authorization_code', 'refresh_token']));
  expect(doc.grant_types_supported).not.toContain('implicit');
  expect(doc.scopes_supported).toContain('openid');
  for (const scope of doc.scopes_supported) expect(scope).toMatch(/^[\x21\x23-\x5b\x5d-\x7e]+$/);
  expect(doc.claims_parameter_supported).toBe(true);
  expect(doc.claims_supported).toEqual(expect.arrayContaining(['sub', 'iss', 'auth_time', 'email', 'name']));
  expect(doc.code_challenge_methods_supported).toEqual(['S256']);
  for (const key of ['ui_locales_supported', 'claims_locales_supported']) {
    for (const tag of doc[key] ?? []) expect(tag).toMatch(/^[a-zA-Z]{2,8}(-[a-zA-Z0-9]{1,8})*$/);
  }
}

function expectHttpsEndpoints(doc: Record<string, any>): void {
  for (const key of ['authorization_endpoint', 'token_endpoint', 'userinfo_endpoint', 'jwks_uri', 'registration_endpoint']) {
    expect(typeof doc[key]).toBe('string');
  }
  const endpoints = Object.entries(doc).filter(([k, v]) => ENDPOINTS.test(k) && !SERVICE_DOCS.has(k) && typeof v === 'string');
  expect(endpoints.length).toBeGreaterThan(5);
  for (const [key, value] of endpoints) expect(`${key} ${new URL(value as string).protocol}`).toBe(`${key} https:`);
  for (const [key, value] of Object.entries(doc.mtls_endpoint_aliases ?? {})) expect(`${key} ${new URL(value as string).protocol}`).toBe(`${key} https:`);
}

async function expectValidJwks(op: ConformanceOp): Promise<void> {
  const { keys } = await jwks(op);
  expect(keys.length).toBeGreaterThan(0);
  const kids = keys.map((k) => k.kid);
  expect(new Set(kids).size).toBe(kids.length);
  for (const key of keys) {
    expect(typeof key.kid).toBe('string');
    expect(['RSA', 'EC', 'OKP']).toContain(key.kty);
    if (key.use !== undefined) expect(key.use).toBe('sig');
    for (const secret of ['d', 'p', 'q', 'dp', 'dq', 'qi', 'k']) expect(key).not.toHaveProperty(secret);
  }
  expect(keys.some((k) => k.kty === 'RSA')).toBe(true);
}

describe('oidcc-config-certification-test-plan', () => {
  let op: ConformanceOp;
  beforeAll(async () => {
    op = await startConformanceOp({ https: true });
  });
  afterAll(async () => {
    await op?.stop();
  });

  test('oidcc-discovery-endpoint-verification', async () => {
    const doc = await expectDiscoveryDocument(op);
    expectSupportedValues(doc);
    expectHttpsEndpoints(doc);
    await expectValidJwks(op);
    expect(await discovery(op)).toEqual(doc);
  });
});
