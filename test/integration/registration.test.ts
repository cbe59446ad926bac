import * as oidc from 'openid-client';
import { databaseKinds, createTestDatabase, type TestDatabase } from '../support/databases.js';
import { runCli, startServer, type RunningServer } from '../support/processes.js';

const registrationToken = (databaseUrl: string, args: string[] = []) => {
  const r = runCli(['registration-tokens', 'create', '--json', ...args], databaseUrl);
  if (r.code !== 0) throw new Error(r.stderr);
  return r.json().token as string;
};

describe.each(databaseKinds())('dynamic client registration on %s', (kind) => {
  let db: TestDatabase;
  let server: RunningServer;

  const register = (body: Record<string, unknown>, token?: string) =>
    fetch(`${server.url}/reg`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: JSON.stringify(body),
    }).then(async (res) => ({ status: res.status, body: (await res.json()) as Record<string, any> }));

  const app = { client_name: 'Third-party app', redirect_uris: ['https://app.example.com/cb'], grant_types: ['authorization_code', 'refresh_token'] };

  beforeAll(async () => {
    db = await createTestDatabase(kind);
    server = await startServer({ DATABASE_URL: db.url, REGISTRATION_RATE_LIMIT: '1000' });
  });
  afterAll(async () => {
    await server?.stop();
    await db?.drop();
  });

  it('refuses registration without a valid initial access token', async () => {
    const none = await register(app);
    expect(none).toEqual({ status: 401, body: expect.objectContaining({ error: 'invalid_token' }) });
    const wrong = await register(app, 'not-a-real-token');
    expect(wrong).toEqual({ status: 401, body: expect.objectContaining({ error: 'invalid_token' }) });
    // only the account page's built-in client
    expect(runCli(['clients', 'list', '--json'], db.url).json().map((c: { clientId: string }) => c.clientId)).toEqual(['gatehouse-account', 'gatehouse-console']);
  });

  it('registers a third-party client with a token; its secret works and is stored hashed', async () => {
    const token = registrationToken(db.url);
    const res = await register({ ...app, logo_uri: 'https://app.example.com/logo.png' }, token);
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ client_name: 'Third-party app', redirect_uris: app.redirect_uris, logo_uri: 'https://app.example.com/logo.png' });
    expect(res.body.client_secret).toMatch(/^[A-Za-z0-9_-]{43,}$/);
    expect(res.body.registration_access_token).toEqual(expect.any(String));
    expect(Object.keys(res.body).filter((k) => k.startsWith('gatehouse_'))).toEqual([]);

    const shown = runCli(['clients', 'show', '--json', '--', res.body.client_id], db.url).json();
    expect(shown).toMatchObject({ firstParty: false, dynamic: true, hasSecret: true, resources: [] });
    expect(JSON.stringify(shown)).not.toContain(res.body.client_secret);

    // the issued secret authenticates the client at the token endpoint
    const rp = await oidc.discovery(new URL(server.url), res.body.client_id, undefined, oidc.ClientSecretBasic(res.body.client_secret), { execute: [oidc.allowInsecureRequests] });
    const pushed = await fetch(`${server.url}/request`, {
      method: 'POST',
      headers: { authorization: `Basic ${Buffer.from(`${res.body.client_id}:${res.body.client_secret}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ client_id: res.body.client_id, response_type: 'code', redirect_uri: app.redirect_uris[0], scope: 'openid', code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM', code_challenge_method: 'S256' }),
    });
    expect({ status: pushed.status, body: await pushed.json() }).toEqual({ status: 201, body: expect.objectContaining({ request_uri: expect.any(String) }) });
    expect(rp.serverMetadata().registration_endpoint).toBe(`${server.url}/reg`);
  });

  it('lets a registered client read, update and delete itself (RFC 7592), never seeing the stored hash', async () => {
    const created = (await register(app, registrationToken(db.url))).body;
    const uri = created.registration_client_uri as string;
    const read = await fetch(uri, { headers: { authorization: `Bearer ${created.registration_access_token}` } });
    expect(read.status).toBe(200);
    const readBody = (await read.json()) as Record<string, any>;
    expect(readBody).toMatchObject({ client_id: created.client_id, client_name: 'Third-party app' });
    expect(readBody.client_secret).toBeUndefined();
    expect(JSON.stringify(readBody)).not.toContain('$argon2id$');

    const put = await fetch(uri, {
      method: 'PUT',
      headers: { authorization: `Bearer ${readBody.registration_access_token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ client_id: created.client_id, client_secret: created.client_secret, client_name: 'Renamed', redirect_uris: ['https://app.example.com/other'] }),
    });
    expect(put.status).toBe(200);
    const updated = (await put.json()) as Record<string, any>;
    expect(updated).toMatchObject({ client_name: 'Renamed', redirect_uris: ['https://app.example.com/other'] });
    expect(runCli(['clients', 'show', '--json', '--', created.client_id], db.url).json()).toMatchObject({ name: 'Renamed', hasSecret: true });

    // a wrong secret in the update is refused
    const wrong = await fetch(uri, {
      method: 'PUT',
      headers: { authorization: `Bearer ${updated.registration_access_token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ client_id: created.client_id, client_secret: 'not-the-secret', client_name: 'Hijacked', redirect_uris: ['https://evil.example.com/cb'] }),
    });
    expect(wrong.status).toBe(400);

    const del = await fetch(uri, { method: 'DELETE', headers: { authorization: `Bearer ${updated.registration_access_token}` } });
    expect(del.status).toBe(204);
    expect(runCli(['clients', 'show', '--', created.client_id], db.url).code).toBe(1);
  });

  it('applies the CLI rules to registered metadata, and never lets an app make itself first-party', async () => {
    const token = registrationToken(db.url);
    const http = await register({ ...app, redirect_uris: ['http://app.example.com/cb'] }, token);
    expect(http.status).toBe(400);
    expect(http.body).toMatchObject({ error: 'invalid_redirect_uri', error_description: expect.stringMatching(/must use https/) });
    const firstParty = await register({ ...app, gatehouse_first_party: true }, token);
    expect(firstParty).toEqual({ status: 400, body: expect.objectContaining({ error: 'invalid_client_metadata' }) });
    const apis = await register({ ...app, gatehouse_resources: ['https://api.example.com'] }, token);
    expect(apis.status).toBe(400);
    // a URL the server would fetch on the app's behalf (SSRF) is refused outright
    const sector = await register({ ...app, sector_identifier_uri: 'https://169.254.169.254/latest/meta-data' }, token);
    expect(sector).toEqual({ status: 400, body: expect.objectContaining({ error: 'invalid_client_metadata' }) });
  });

  it('honours single-use and expiring tokens; a failed registration does not use up a single-use token', async () => {
    const once = registrationToken(db.url, ['--single-use']);
    expect((await register({ ...app, redirect_uris: ['http://bad.example.com/cb'] }, once)).status).toBe(400);
    expect((await register(app, once)).status).toBe(201);
    expect(await register(app, once)).toEqual({ status: 401, body: expect.objectContaining({ error: 'invalid_token' }) });

    const racing = registrationToken(db.url, ['--single-use']);
    const results = await Promise.all([1, 2, 3, 4].map(() => register(app, racing)));
    expect(results.filter((r) => r.status === 201)).toHaveLength(1);

    const shortLived = registrationToken(db.url, ['--expires-in', '1']);
    await new Promise((r) => setTimeout(r, 2100));
    expect(await register(app, shortLived)).toEqual({ status: 401, body: expect.objectContaining({ error: 'invalid_token' }) });

    const listed = runCli(['registration-tokens', 'list', '--json'], db.url).json() as { prefix: string; used: boolean }[];
    expect(listed.find((t) => once.startsWith(t.prefix))).toMatchObject({ used: true });
    expect(listed.some((t) => shortLived.startsWith(t.prefix))).toBe(false);
    const revocable = registrationToken(db.url);
    expect(runCli(['registration-tokens', 'revoke', '--', revocable.slice(0, 10)], db.url).code).toBe(0);
    expect((await register(app, revocable)).status).toBe(401);
  });

  it('refuses a PAR-required client without PAR, and accepts it with PAR', async () => {
    const created = (await register({ ...app, require_pushed_authorization_requests: true }, registrationToken(db.url))).body;
    expect(created.require_pushed_authorization_requests).toBe(true);
    const rp = await oidc.discovery(new URL(server.url), created.client_id, undefined, oidc.ClientSecretBasic(created.client_secret), { execute: [oidc.allowInsecureRequests] });
    const params = { redirect_uri: app.redirect_uris[0], scope: 'openid', code_challenge: await oidc.calculatePKCECodeChallenge(oidc.randomPKCECodeVerifier()), code_challenge_method: 'S256' };
    const plain = await fetch(oidc.buildAuthorizationUrl(rp, params), { redirect: 'manual' });
    const location = new URL(plain.headers.get('location') ?? `${server.url}/`, server.url);
    const html = plain.status === 200 || plain.status === 400 ? await plain.text() : '';
    // refused: either an error redirect to the client or an error page
    expect(location.searchParams.get('error') === 'invalid_request' || /pushed authorization request/i.test(html)).toBe(true);
    const pushed = await oidc.buildAuthorizationUrlWithPAR(rp, params);
    expect(pushed.searchParams.get('request_uri')).toMatch(/^urn:ietf:params:oauth:request_uri:/);
    const viaPar = await fetch(pushed, { redirect: 'manual' });
    expect(viaPar.status).toBe(303);
    expect(viaPar.headers.get('location')).toMatch(/^\/interaction\//);
  });

});

describe('registration limits', () => {
  it('rate-limits registration per client address', async () => {
    const db = await createTestDatabase('sqlite');
    const server = await startServer({ DATABASE_URL: db.url, REGISTRATION_RATE_LIMIT: '5' });
    try {
      const token = registrationToken(db.url);
      const register = () => fetch(`${server.url}/reg`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
        body: JSON.stringify({ redirect_uris: ['http://invalid.example.com/cb'] }),
      });
      const statuses: number[] = [];
      for (let i = 0; i < 6; i += 1) statuses.push((await register()).status);
      expect(statuses).toEqual([400, 400, 400, 400, 400, 429]);
      const limited = await register();
      expect(limited.status).toBe(429);
      expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
      expect(await limited.json()).toMatchObject({ error: 'too_many_requests' });
      // oidc-provider also routes /reg/ and /REG: the limit holds there too
      for (const path of ['/reg/', '/REG', '/Reg/']) {
        const res = await fetch(`${server.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, body: '{}' });
        expect(res.status).toBe(429);
      }
      // a malformed client id in a management path is a 400, not a 500
      const malformed = await fetch(`${server.url}/reg/%E0%A4%A`, { method: 'PUT', headers: { 'content-type': 'application/json', authorization: 'Bearer x' }, body: '{}' });
      expect(malformed.status).toBe(400);
    } finally {
      await server.stop();
      await db.drop();
    }
  });

  it('registers without a token only when the operator opens registration', async () => {
    const db = await createTestDatabase('sqlite');
    const server = await startServer({ DATABASE_URL: db.url, REGISTRATION: 'open' });
    try {
      const res = await fetch(`${server.url}/reg`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ client_name: 'Open', redirect_uris: ['https://open.example.com/cb'] }),
      });
      expect(res.status).toBe(201);
      expect(runCli(['clients', 'list', '--json'], db.url).json().filter((c: { dynamic: boolean }) => c.dynamic)).toEqual([expect.objectContaining({ name: 'Open', dynamic: true, firstParty: false })]);
    } finally {
      await server.stop();
      await db.drop();
    }
  });

  it('has no registration endpoint when switched off', async () => {
    const db = await createTestDatabase('sqlite');
    const server = await startServer({ DATABASE_URL: db.url, REGISTRATION: 'off' });
    try {
      const meta = (await (await fetch(`${server.url}/.well-known/openid-configuration`)).json()) as Record<string, unknown>;
      expect(meta.registration_endpoint).toBeUndefined();
      expect((await fetch(`${server.url}/reg`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })).status).toBe(404);
    } finally {
      await server.stop();
      await db.drop();
    }
  });
});
