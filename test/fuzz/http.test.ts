import { request } from 'node:http';
import fc from 'fast-check';
import {
  csrfOf, databaseKinds, exchangeCode, fakeUpstream, signIn, startInProcess, type FakeUpstream, type InProcess, type TestClient,
} from '../support/in-process.js';
import { FUZZ_RUNS, fuzzSeed, hostileParam, hostileText, unstorableId } from './generators.js';

/**
 * Generated hostile requests against every route Gatehouse serves (oidc-provider's
 * and its own), in-process over real HTTP, on SQLite and PostgreSQL. Whatever
 * comes in: no 5xx, no stack trace, file path, SQL or secret in any answer, the
 * server stays healthy, and the rows admins own do not change.
 * FUZZ_SEED picks the seed (fixed by default, `random` for a new one); a failure
 * prints the shrunk request.
 */

const ROUTES = [
  '/auth', '/token', '/token/introspection', '/token/revocation', '/reg', '/reg/{id}', '/request', '/me',
  '/device/auth', '/device', '/device/{id}', '/session/end', '/session/end/confirm', '/session/end/success',
  '/jwks', '/.well-known/openid-configuration', '/.well-known/oauth-authorization-server',
  '/interaction/{id}', '/interaction/{id}/login/{id}', '/interaction/{id}/confirm', '/interaction/{id}/abort',
  '/interaction/{id}/callback/{id}', '/oauth2/{id}/callback', '/healthz', '/readyz', '/assets/style.css',
  '/admin/v1', '/admin/v1/openapi.json', '/admin/v1/clients', '/admin/v1/clients/{id}', '/admin/v1/clients/{id}/secret', '/admin/v1/apis/{id}',
  '/admin/v1/registration-tokens/{id}', '/admin/v1/consents', '/admin/v1/accounts/{id}', '/admin/v1/accounts/{id}/disable', '/admin/v1/webhooks/{id}',
  '/admin/v1/audit-events', '/account', '/account/sign-in', '/account/link/{id}', '/account/link/{id}/callback', '/account/apps/withdraw',
  '/account/sign-out-everywhere',
  '/../../etc/passwd', '/%2e%2e/%2e%2e/etc/passwd', '/token/../reg', '//auth', '/AUTH', '/reg/', '/nowhere',
];
const PARAMS = [
  'client_id', 'client_secret', 'response_type', 'redirect_uri', 'scope', 'state', 'nonce', 'code_challenge', 'code_challenge_method',
  'grant_type', 'code', 'code_verifier', 'refresh_token', 'resource', 'token', 'token_type_hint', 'login_hint', 'prompt', 'request_uri',
  'request', 'user_code', 'device_code', 'id_token_hint', 'post_logout_redirect_uri', 'xsrf', 'csrf', 'logout', 'confirm', 'abort', 'max_age', 'ui_locales',
];

interface HostileRequest {
  method: string;
  path: string;
  query: [string, string][];
  body: { type: 'none' } | { type: 'form'; params: [string, string][] } | { type: 'json'; text: string } | { type: 'bytes'; bytes: Uint8Array; contentType: string };
  headers: Record<string, string>;
}

/** The management API's query parameters and body fields, which take dates, ids and numbers. */
const ADMIN_PARAMS = [
  'account', 'client', 'since', 'until', 'before', 'after', 'limit', 'action', 'actor', 'targetType', 'target', 'outcome', 'email', 'provider', 'disabled',
];
const ADMIN_FIELDS = [
  'clientId', 'name', 'redirectUris', 'grantTypes', 'resources', 'scopes', 'identifier', 'url', 'events', 'expiresIn', 'singleUse', 'firstParty', 'tokenEndpointAuthMethod',
];
/** A JSON body of management-API fields, each a hostile value (or a list of them: JSON carries lone surrogates). */
const adminBody = () => fc.dictionary(fc.constantFrom(...ADMIN_FIELDS), fc.oneof(hostileParam(), fc.array(hostileParam(), { maxLength: 3 })), { maxKeys: 5 })
  .map((fields) => ({ type: 'json' as const, text: JSON.stringify(fields) }));

/**
 * A management-API request that is right but for its values: a real route and
 * method with its own parameters (and a JSON body where it takes one), each a
 * hostile value: dates out of range, ids no database stores.
 */
function adminNearlyRight(): fc.Arbitrary<Pick<HostileRequest, 'method' | 'path' | 'query' | 'body'>> {
  const scenarios: [string, string, string[], boolean][] = [
    ['GET', '/admin/v1/audit-events', ['since', 'until', 'before', 'limit', 'action', 'actor', 'targetType', 'target', 'outcome'], false],
    ['GET', '/admin/v1/consents', ['account', 'client'], false],
    ['DELETE', '/admin/v1/consents', ['account', 'client'], false],
    ['GET', '/admin/v1/accounts', ['email', 'provider', 'disabled', 'after', 'limit'], false],
    ['GET', '/admin/v1/clients/{id}', [], false], ['DELETE', '/admin/v1/clients/{id}', [], false], ['POST', '/admin/v1/clients/{id}/secret', [], false],
    ['GET', '/admin/v1/apis/{id}', [], false], ['DELETE', '/admin/v1/apis/{id}', [], false],
    ['GET', '/admin/v1/accounts/{id}', [], false], ['POST', '/admin/v1/accounts/{id}/disable', [], false], ['DELETE', '/admin/v1/accounts/{id}', [], false],
    ['GET', '/admin/v1/webhooks/{id}', [], false], ['DELETE', '/admin/v1/registration-tokens/{id}', [], false],
    ['POST', '/admin/v1/clients', [], true], ['PUT', '/admin/v1/clients/{id}', [], true], ['POST', '/admin/v1/apis', [], true], ['POST', '/admin/v1/webhooks', [], true],
  ];
  return fc.record({
    scenario: fc.constantFrom(...scenarios),
    id: fc.oneof(unstorableId(), hostileParam()),
    values: fc.array(hostileParam(), { minLength: 1, maxLength: 4 }),
    body: adminBody(),
  }).map(({ scenario: [method, route, params, json], id, values, body }) => ({
    method,
    path: route.replaceAll('{id}', encodeURIComponent(id.toWellFormed())),
    query: params.length ? values.map((v, i): [string, string] => [params[(i * 7 + v.length) % params.length], v]) : [],
    body: json ? body : { type: 'none' as const },
  }));
}

const value = () => fc.oneof({ weight: 3, arbitrary: hostileText() }, { weight: 1, arbitrary: fc.constantFrom('openid', 'code', 'client_credentials', 'S256', 'https://app.example.com/cb') });
const pairs = () => fc.array(fc.tuple(fc.oneof(fc.constantFrom(...PARAMS), hostileText()), value()), { maxLength: 8 });

const hostileRequest: fc.Arbitrary<HostileRequest> = fc.record({
  method: fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD'),
  path: fc.tuple(fc.constantFrom(...ROUTES), fc.oneof(fc.constantFrom('abc', 'x'.repeat(300)), hostileText())).map(([route, id]) => route.replaceAll('{id}', encodeURIComponent(id.toWellFormed()))),
  query: pairs(),
  body: fc.oneof(
    fc.constant({ type: 'none' as const }),
    pairs().map((params) => ({ type: 'form' as const, params })),
    fc.oneof(fc.json(), hostileText().map((t) => JSON.stringify({ client_name: t, redirect_uris: [t], client_id: t })), fc.constantFrom('{', '[]', 'null', '"\\ud800"', '{"a":"\\u0000"}'))
      .map((text) => ({ type: 'json' as const, text })),
    fc.record({
      bytes: fc.oneof(fc.uint8Array({ maxLength: 512 }), fc.constant(new Uint8Array(70 * 1024).fill(0x61))),
      contentType: fc.constantFrom('application/x-www-form-urlencoded', 'application/json', 'text/plain', 'multipart/form-data; boundary=x', 'application/jwt'),
    }).map((b) => ({ type: 'bytes' as const, ...b })),
  ),
  headers: fc.record({
    authorization: fc.oneof(fc.constant(''), hostileText().map((t) => `Basic ${Buffer.from(`${t}:${t}`).toString('base64')}`), hostileText().map((t) => `Bearer ${t.replace(/[\r\n]/g, '')}`), fc.constant('Basic !!!'), fc.constant('DPoP x')),
    cookie: fc.oneof(fc.constant(''), fc.constant('_session=abc; _session.sig=zzz; gatehouse.csrf=x.y'), hostileText().map((t) => `a=${encodeURIComponent(t.toWellFormed())}`), hostileText().map((t) => `_session=${t}; _session.sig=${t}`)),
    'content-encoding': fc.constantFrom('', '', '', 'gzip', 'deflate', 'br', 'identity'),
    dpop: fc.constantFrom('', '', 'not.a.jwt', 'e30.e30.'),
  }, { requiredKeys: [] }),
});

/**
 * A request that is right but for one thing: a real route with its real
 * parameters (a registered client, its secret), one of them replaced by
 * hostile text, or duplicated. These reach the code behind the first checks.
 */
function nearlyRight(client: { clientId: string; clientSecret: string; redirectUri: string }): fc.Arbitrary<HostileRequest> {
  const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${encodeURIComponent(id.toWellFormed())}:${encodeURIComponent(secret.toWellFormed())}`).toString('base64')}`;
  const scenarios: [string, string, Record<string, string>, boolean][] = [
    ['GET', '/auth', { client_id: client.clientId, response_type: 'code', redirect_uri: client.redirectUri, scope: 'openid', state: 's', nonce: 'n', code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM', code_challenge_method: 'S256' }, false],
    ['POST', '/token', { grant_type: 'client_credentials', resource: 'https://fuzz.example.com', scope: 'read' }, true],
    ['POST', '/token', { grant_type: 'authorization_code', code: 'x', redirect_uri: client.redirectUri, code_verifier: 'v'.repeat(43) }, true],
    ['POST', '/token', { grant_type: 'refresh_token', refresh_token: 'x' }, true],
    ['POST', '/token/introspection', { token: 'x', token_type_hint: 'access_token' }, true],
    ['POST', '/token/revocation', { token: 'x', token_type_hint: 'refresh_token' }, true],
    ['POST', '/request', { response_type: 'code', redirect_uri: client.redirectUri, scope: 'openid', code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM', code_challenge_method: 'S256' }, true],
    ['POST', '/device/auth', { client_id: client.clientId, scope: 'openid' }, false],
    ['GET', '/session/end', { client_id: client.clientId, post_logout_redirect_uri: 'https://app.example.com/bye', state: 's' }, false],
  ];
  return fc.record({
    scenario: fc.constantFrom(...scenarios),
    target: fc.oneof(fc.constantFrom('client_id', 'client_secret', 'authorization'), fc.constantFrom(...PARAMS)),
    hostile: hostileText(),
    duplicate: fc.boolean(),
    inBody: fc.boolean(),
  }).map(({ scenario: [method, path, params, authenticated], target, hostile, duplicate, inBody }): HostileRequest => {
    const pairs: [string, string][] = Object.entries(params);
    let auth = authenticated ? basic(client.clientId, client.clientSecret) : '';
    if (target === 'client_id' && authenticated) auth = basic(hostile, client.clientSecret);
    else if (target === 'client_secret' && authenticated) auth = basic(client.clientId, hostile);
    else if (target === 'authorization') auth = hostile;
    else if (duplicate) pairs.push([target, hostile]);
    else {
      const i = pairs.findIndex(([k]) => k === target);
      if (i >= 0) pairs[i] = [target, hostile];
      else pairs.push([target, hostile]);
    }
    const post = method === 'POST' && (inBody || path !== '/auth');
    return {
      method,
      path,
      query: post ? [] : pairs,
      body: post ? { type: 'form' as const, params: pairs } : { type: 'none' as const },
      headers: (auth ? { authorization: auth } : {}) as Record<string, string>,
    };
  });
}

/** Sends one generated request as given; resolves to its status and body. */
function send(server: InProcess, r: HostileRequest): Promise<{ status: number; body: string }> {
  const { port } = new URL(server.url);
  const search = r.query.length ? `?${new URLSearchParams(r.query)}` : '';
  let payload: Buffer | undefined;
  const headers: Record<string, string> = {};
  // on the wire a header is bytes: send the UTF-8 bytes as they are, less the control characters HTTP forbids
  for (const [k, v] of Object.entries(r.headers)) if (v) headers[k] = Buffer.from(v.toWellFormed()).toString('latin1').replace(/[\x00-\x08\x0a-\x1f\x7f]/g, '');
  if (r.body.type === 'form') [payload, headers['content-type']] = [Buffer.from(new URLSearchParams(r.body.params).toString()), 'application/x-www-form-urlencoded'];
  if (r.body.type === 'json') [payload, headers['content-type']] = [Buffer.from(r.body.text), 'application/json'];
  if (r.body.type === 'bytes') [payload, headers['content-type']] = [Buffer.from(r.body.bytes), r.body.contentType];
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method: r.method, path: `${r.path}${search}`, headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode!, body }));
    });
    // a request the server refuses at the socket (an oversized body it stopped reading) is still an answer
    req.on('error', (err: NodeJS.ErrnoException) => (err.code === 'ECONNRESET' || err.code === 'EPIPE' ? resolve({ status: 0, body: '' }) : reject(err)));
    req.end(payload);
  });
}

/** What an answer must never contain. */
const LEAKS = [/\n\s+at [^\n]+:\d+:\d+/, /node_modules|\/work\/|\/src\/|dist\//, /prisma/i, /\b(SELECT|INSERT|UPDATE|DELETE)\s.+\b(FROM|INTO|SET)\b/, /\$argon2id\$/];

describe.each(databaseKinds())('generated hostile requests on %s', (kind) => {
  let server: InProcess;
  let client: TestClient;
  let secret: string;
  let acme: FakeUpstream;

  beforeAll(async () => {
    acme = fakeUpstream('acme', 'Acme SSO');
    server = await startInProcess({ kind, upstreams: [acme], env: { REGISTRATION_RATE_LIMIT: '100000', SECRET_FAILURE_LIMIT: '10000' } });
    client = await server.createClient();
    secret = client.clientSecret;
    await server.createApi('https://fuzz.example.com', 'Fuzz', ['read']);
  });
  afterAll(() => server?.close());

  const adminRows = async () => JSON.stringify({
    clients: await server.database.prisma.client.findMany({ orderBy: { clientId: 'asc' } }),
    apis: await server.database.prisma.resourceServer.findMany({ orderBy: { identifier: 'asc' } }),
    keys: await server.database.prisma.signingKey.findMany({ orderBy: { kid: 'asc' }, select: { kid: true, state: true } }),
  });

  it(`answers ${FUZZ_RUNS} generated requests with no 5xx and nothing leaked, and changes no admin-owned row`, async () => {
    const before = await adminRows();
    const seed = fuzzSeed();
    await fc.assert(
      fc.asyncProperty(fc.oneof(hostileRequest, nearlyRight(client)), async (r) => {
        const { status, body } = await send(server, r);
        if (status >= 500) throw new Error(`${status} for ${r.method} ${r.path}: ${body.slice(0, 300)}`);
        for (const leak of LEAKS) if (leak.test(body)) throw new Error(`the answer to ${r.method} ${r.path} leaks ${leak}: ${body.slice(0, 300)}`);
        if (body.includes(secret)) throw new Error(`the answer to ${r.method} ${r.path} contains a client secret`);
      }),
      { numRuns: FUZZ_RUNS, seed, endOnFailure: false },
    );
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
    expect((await fetch(`${server.url}/readyz`)).status).toBe(200);
    expect(await adminRows()).toBe(before);
  });

  it(`answers ${FUZZ_RUNS} generated management-API requests with a valid admin token: no 5xx, nothing leaked, only problem details`, async () => {
    const { createClient } = await import('../../src/services/clients.js');
    const admin = await createClient(server.database.prisma, {
      clientId: 'fuzz-admin', name: 'Fuzz admin', resources: [`${server.url}/admin/v1`], scopes: ['admin:read', 'admin:write'],
    });
    await server.app.cache.refresh();
    const res = await fetch(`${server.url}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`fuzz-admin:${admin.secret}`).toString('base64')}` },
      body: new URLSearchParams({ grant_type: 'client_credentials', resource: `${server.url}/admin/v1`, scope: 'admin:read admin:write' }),
    });
    const token = ((await res.json()) as { access_token: string }).access_token;
    const adminPaths = ROUTES.filter((r) => r.startsWith('/admin/v1/'));
    const adminRequest = fc.record({
      request: hostileRequest,
      nearlyRight: fc.option(adminNearlyRight(), { freq: 2 }),
      path: fc.tuple(fc.constantFrom(...adminPaths), fc.oneof(hostileText(), unstorableId())).map(([route, id]) => route.replaceAll('{id}', encodeURIComponent(id.toWellFormed()))),
      // the API's own parameters, with dates out of range and ids no database stores
      query: fc.array(fc.tuple(fc.constantFrom(...ADMIN_PARAMS), hostileParam()), { maxLength: 4 }),
      body: fc.option(adminBody(), { freq: 2 }),
      ifMatch: fc.oneof(fc.constant(''), hostileText(), fc.constantFrom('"1"', 'W/"123"', '"999999999999999"', '"0"')),
    }).map(({ request, nearlyRight, path, query, body, ifMatch }) => ({
      ...request, path, query: [...query, ...request.query], body: body ?? request.body, ...nearlyRight,
      headers: { ...request.headers, authorization: `Bearer ${token}`, ...(ifMatch ? { 'if-match': ifMatch } : {}) },
    }));
    await fc.assert(
      fc.asyncProperty(adminRequest, async (r) => {
        const { status, body } = await send(server, r);
        if (status >= 500) throw new Error(`${status} for ${r.method} ${r.path}: ${body.slice(0, 300)}`);
        for (const leak of LEAKS) if (leak.test(body)) throw new Error(`the answer to ${r.method} ${r.path} leaks ${leak}: ${body.slice(0, 300)}`);
        if (body.includes(secret) || body.includes(admin.secret!)) throw new Error(`the answer to ${r.method} ${r.path} contains a client secret`);
        // (Node's own HTTP parser answers a request it cannot parse with an empty 400: not the API's answer)
        if (status >= 400 && body && !body.startsWith('{"type":"about:blank"')) throw new Error(`${status} for ${r.method} ${r.path} is not a problem: ${body.slice(0, 200)}`);
      }),
      { numRuns: FUZZ_RUNS, seed: fuzzSeed(), endOnFailure: false },
    );
    expect((await fetch(`${server.url}/readyz`)).status).toBe(200);
  });

  it(`answers ${FUZZ_RUNS} generated account-page requests of a signed-in person with no 5xx and nothing leaked`, async () => {
    acme.signInAs({ subject: 'fuzz-person', email: 'fuzz@example.com', emailVerified: true, name: 'Fuzz Person' });
    const b = server.browser();
    const { authorization, callback } = await signIn(b, client, acme, { scope: 'openid email', prompt: 'consent' });
    await exchangeCode(server, authorization, callback);
    const page = await b.get('/account');
    expect(page.status).toBe(200);
    const csrf = csrfOf(page);
    // (signing out everywhere would end the session the rest needs: the hostile-input tests cover it)
    const accountRequest = fc.record({
      route: fc.constantFrom('GET /account', 'POST /account/apps/withdraw', 'POST /account/link/{id}', 'GET /account/link/{id}/callback', 'GET /account/sign-in'),
      id: fc.oneof(fc.constantFrom('acme', 'nowhere'), hostileText(), unstorableId()),
      params: fc.array(fc.tuple(fc.constantFrom('client', 'csrf', 'linked', 'already', 'withdrawn', 'code', 'state', 'error', 'iss'), hostileParam()), { maxLength: 4 }),
      realCsrf: fc.boolean(),
    });
    await fc.assert(
      fc.asyncProperty(accountRequest, async ({ route, id, params, realCsrf }) => {
        const [method, template] = route.split(' ');
        const path = template.replaceAll('{id}', encodeURIComponent(id.toWellFormed()));
        const form = Object.fromEntries([...(realCsrf ? [['csrf', csrf]] : []), ...params]);
        const answer = method === 'POST' ? await b.post(path, form) : await b.get(`${path}?${new URLSearchParams(params)}`);
        // (an upstream's answer that fails its checks is the designed 502 "Linking failed" page)
        const upstreamFailure = answer.status === 502 && template.endsWith('/callback') && answer.text.includes('Linking failed');
        if (answer.status >= 500 && !upstreamFailure) throw new Error(`${answer.status} for ${method} ${path} ${JSON.stringify(form)}: ${answer.text.slice(0, 300)}`);
        for (const leak of LEAKS) if (leak.test(answer.text)) throw new Error(`the answer to ${method} ${path} leaks ${leak}: ${answer.text.slice(0, 300)}`);
      }),
      { numRuns: FUZZ_RUNS, seed: fuzzSeed(), endOnFailure: false },
    );
    // still signed in, with the app listed
    expect((await b.get('/account')).status).toBe(200);
    expect((await fetch(`${server.url}/readyz`)).status).toBe(200);
  });
});
