import { request } from 'node:http';
import { gzipSync } from 'node:zlib';
import {
  authorize, csrfOf, databaseKinds, exchangeCode, fakeUpstream, jsonRequest, signIn, startInProcess, type FakeUpstream, type InProcess, type TestClient,
} from '../support/in-process.js';
import { createClient } from '../../src/services/clients.js';

/**
 * The findings of the adversarial run, each answered by one mechanism: text no
 * database stores is refused before it reaches one, unreadable bodies are the
 * client's mistake, and oidc-provider's own 500s are worked around. Both
 * databases: PostgreSQL is where NUL characters used to fail.
 */

/** A raw request (any method, headers and body bytes). */
function raw(server: InProcess, method: string, path: string, headers: Record<string, string> = {}, body?: Buffer | string) {
  const { port } = new URL(server.url);
  return new Promise<{ status: number; location?: string; body: string }>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path, headers }, (res) => {
      let text = '';
      res.on('data', (d) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode!, location: res.headers.location, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe.each(databaseKinds())('hostile input on %s', (kind) => {
  let server: InProcess;
  let client: TestClient;
  let machine: TestClient;
  let acme: FakeUpstream;
  const API = 'https://hostile.example.com';

  beforeAll(async () => {
    acme = fakeUpstream('acme', 'Acme SSO');
    server = await startInProcess({ kind, upstreams: [acme], env: { REGISTRATION: 'open', REGISTRATION_RATE_LIMIT: '1000' } });
    client = await server.createClient();
    await server.createApi(API, 'Hostile', ['read']);
    machine = await server.createClient({ grantTypes: ['client_credentials', 'urn:ietf:params:oauth:grant-type:device_code'], resources: [API] });
  });
  afterAll(() => server?.close());

  const authorizeQuery = (extra: Record<string, string>) => `/auth?${new URLSearchParams({
    client_id: client.clientId, response_type: 'code', redirect_uri: client.redirectUri, scope: 'openid',
    code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM', code_challenge_method: 'S256', ...extra,
  })}`;

  it('answers a NUL or a lone surrogate in any parameter with an OAuth error, never a 500', async () => {
    // (a lone surrogate cannot travel in a URL or a form: UTF-8 encoding makes it U+FFFD; JSON can carry it)
    for (const bad of ['a\u0000b']) {
      expect((await raw(server, 'GET', authorizeQuery({ client_id: `${client.clientId}${bad}` }))).status).toBe(400);
      for (const param of ['state', 'nonce', 'login_hint']) {
        const res = await raw(server, 'GET', authorizeQuery({ [param]: bad }));
        // the redirect URI is known good: the error goes back to the app
        expect({ param, status: res.status }).toEqual({ param, status: 303 });
        expect(new URL(res.location!).searchParams.get('error')).toBe('invalid_request');
      }
      const token = await raw(server, 'POST', '/token', { 'content-type': 'application/x-www-form-urlencoded' },
        new URLSearchParams({ grant_type: 'client_credentials', client_id: `x${bad}`, client_secret: 'y' }).toString());
      expect(token.status).toBe(401);
      const basic = `Basic ${Buffer.from(`${machine.clientId}:${machine.clientSecret}`).toString('base64')}`;
      for (const path of ['/token/introspection', '/token/revocation']) {
        const res = await raw(server, 'POST', path, { 'content-type': 'application/x-www-form-urlencoded', authorization: basic }, new URLSearchParams({ token: `t${bad}` }).toString());
        expect({ path, status: res.status }).toEqual({ path, status: 200 });
      }
      expect((await raw(server, 'GET', `/interaction/${encodeURIComponent(`uid${bad}`)}`)).status).toBe(400);
    }
    for (const bad of ['a\u0000b', 'a\ud800b']) {
      const registered = await jsonRequest(`${server.url}/reg`, { body: { client_name: `App${bad}`, redirect_uris: ['https://app.example.com/cb'] } });
      expect(registered).toMatchObject({ status: 400, body: { error: 'invalid_client_metadata', error_description: expect.stringContaining('NUL character or a lone UTF-16 surrogate') } });
      const logo = await jsonRequest(`${server.url}/reg`, { body: { client_name: 'App', redirect_uris: ['https://app.example.com/cb'], client_uri: `https://app.example.com/${bad}` } });
      expect(logo.status).toBeGreaterThanOrEqual(400);
      expect(logo.status).toBeLessThan(500);
    }
  });

  it('answers the device-flow routes without a session cookie with a page, not a 500', async () => {
    expect((await raw(server, 'GET', '/device/anything')).status).toBe(400);
    const post = await raw(server, 'POST', '/device', { 'content-type': 'application/x-www-form-urlencoded' }, 'user_code=ABCD-EFGH');
    expect(post.status).toBe(400);
    expect(post.body).toContain('<!doctype html>');
  });

  it('answers an interaction form with a Content-Encoding it does not have with a 400 page', async () => {
    const b = server.browser();
    const { uid } = await authorize(b, client);
    const csrf = csrfOf(await b.get(`/interaction/${uid}`));
    for (const encoding of ['gzip', 'deflate', 'br']) {
      const res = await raw(server, 'POST', `/interaction/${uid}/abort`, { 'content-type': 'application/x-www-form-urlencoded', 'content-encoding': encoding }, `csrf=${csrf}`);
      expect({ encoding, status: res.status }).toEqual({ encoding, status: 400 });
    }
    // a real gzip body is fine (then the CSRF check, without the cookie, refuses it)
    const gz = await raw(server, 'POST', `/interaction/${uid}/abort`, { 'content-type': 'application/x-www-form-urlencoded', 'content-encoding': 'gzip' }, gzipSync(`csrf=${csrf}`));
    expect(gz.status).toBe(403);
  });

  it('answers the introspection of a JWT access token truthfully: active for its client, {"active": false} for anyone else (RFC 7662 §2.2)', async () => {
    const basic = `Basic ${Buffer.from(`${machine.clientId}:${machine.clientSecret}`).toString('base64')}`;
    const issued = await raw(server, 'POST', '/token', { 'content-type': 'application/x-www-form-urlencoded', authorization: basic }, `grant_type=client_credentials&resource=${encodeURIComponent(API)}`);
    const jwt = JSON.parse(issued.body).access_token as string;
    expect(jwt.split('.')).toHaveLength(3);
    const res = await raw(server, 'POST', '/token/introspection', { 'content-type': 'application/x-www-form-urlencoded', authorization: basic }, `token=${jwt}`);
    expect({ status: res.status, body: JSON.parse(res.body) }).toMatchObject({ status: 200, body: { active: true, client_id: machine.clientId, aud: API, token_type: 'Bearer' } });
    // a tampered one is inactive, never an error
    const tampered = `${jwt.slice(0, -4)}AAAA`;
    const bad = await raw(server, 'POST', '/token/introspection', { 'content-type': 'application/x-www-form-urlencoded', authorization: basic }, `token=${tampered}`);
    expect({ status: bad.status, body: JSON.parse(bad.body) }).toEqual({ status: 200, body: { active: false } });
  });

  /** An access token of the management API with both scopes. */
  async function adminToken(): Promise<string> {
    const clientId = `ops-${Math.random().toString(36).slice(2, 8)}`;
    const { secret } = await createClient(server.database.prisma, {
      clientId, name: 'Ops', resources: [`${server.url}/admin/v1`], scopes: ['admin:read', 'admin:write'],
    });
    await server.app.cache.refresh();
    const res = await fetch(`${server.url}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`${clientId}:${secret}`).toString('base64')}` },
      body: new URLSearchParams({ grant_type: 'client_credentials', resource: `${server.url}/admin/v1`, scope: 'admin:read admin:write' }),
    });
    return ((await res.json()) as { access_token: string }).access_token;
  }

  it('answers audit-event dates outside the years 0 to 9999 with a 400 problem naming the parameter', async () => {
    const token = await adminToken();
    for (const [param, value] of [['since', '10000-01-01'], ['until', '+010000-01-01T00:00:00Z'], ['since', '-000001-01-01T00:00:00Z'], ['until', '275760-09-13']]) {
      const res = await jsonRequest(`${server.url}/admin/v1/audit-events?${new URLSearchParams({ [param]: value })}`, { token });
      expect({ param, value, status: res.status }).toEqual({ param, value, status: 400 });
      expect(res.body).toMatchObject({ errors: [{ path: [param], message: expect.stringContaining('0 to 9999') }] });
    }
    // the edges themselves are dates the databases hold
    for (const [since, until] of [['0000-01-01T00:00:00Z', '9999-12-31T23:59:59.999Z'], ['0001-01-01', '9999-12-31']]) {
      const res = await jsonRequest(`${server.url}/admin/v1/audit-events?${new URLSearchParams({ since, until })}`, { token });
      expect({ since, until, status: res.status }).toEqual({ since, until, status: 200 });
      expect(res.body.items.length).toBeGreaterThan(0);
    }
    // (PostgreSQL takes no year 0: nothing it stores is older than year 1)
    const ancient = await jsonRequest(`${server.url}/admin/v1/audit-events?until=0000-06-01T00:00:00Z`, { token });
    expect({ status: ancient.status, body: ancient.body }).toEqual({ status: 200, body: { items: [], next: null } });
  });

  it('finds no consent by an account or client no database stores, listing or withdrawing, on the API and the account page', async () => {
    const token = await adminToken();
    for (const param of ['account', 'client']) {
      for (const method of ['GET', 'DELETE']) {
        const res = await jsonRequest(`${server.url}/admin/v1/consents?${param}=a%00b`, { method, token });
        expect({ param, method, status: res.status, body: res.body }).toEqual({ param, method, status: 200, body: { items: [] } });
      }
    }
    // a person signed in on the account page withdraws an app whose id holds a NUL
    acme.signInAs({ subject: 'hostile-person', email: null, emailVerified: false });
    const b = server.browser();
    const { authorization, callback } = await signIn(b, client, acme, { scope: 'openid', prompt: 'consent' });
    await exchangeCode(server, authorization, callback);
    const page = await b.get('/account');
    expect(page.status).toBe(200);
    for (const bad of [`${client.clientId}\u0000`, '\u0000']) {
      const withdrawn = await b.post('/account/apps/withdraw', { csrf: csrfOf(page), client: bad });
      expect(withdrawn.status).toBe(303);
      expect(withdrawn.location).toBe('/account');
    }
    // the real consent is still there
    expect(await server.database.prisma.consent.count({ where: { clientId: client.clientId } })).toBe(1);
  });
});
