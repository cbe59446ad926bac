import { ownPostgresAvailable, startOwnPostgres, type OwnPostgres } from '../support/postgres-server.js';
import { startServer, type RunningServer } from '../support/processes.js';
import { createApi, createClient, eventually, tokenRequest } from '../support/gatehouse.js';

/**
 * PostgreSQL stopped under a running Gatehouse: requests that need it get 503
 * with Retry-After (not 500), the log says so once per interval, Gatehouse
 * recovers on its own, and no token that got a 200 is lost.
 */
(ownPostgresAvailable() ? describe : describe.skip)('a PostgreSQL outage', () => {
  const OPAQUE = 'https://outage.example.com';
  let pg: OwnPostgres;
  let server: RunningServer;
  let client: { clientId: string; clientSecret: string };

  beforeAll(async () => {
    pg = await startOwnPostgres();
    server = await startServer({ DATABASE_URL: pg.url });
    createApi(pg.url, ['--identifier', OPAQUE, '--format', 'opaque']);
    client = createClient(pg.url, ['--name', 'outage', '--resource', OPAQUE]);
  });
  afterAll(async () => {
    await server?.stop();
    pg?.destroy();
  });

  const auth = () => [client.clientId, client.clientSecret] as [string, string];
  const opaqueToken = () => tokenRequest(server.url, { grant_type: 'client_credentials', resource: OPAQUE }, auth());
  const introspect = async (token: string) => {
    const res = await fetch(`${server.url}/token/introspection`, {
      method: 'POST',
      headers: { authorization: `Basic ${Buffer.from(auth().join(':')).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token }),
    });
    return { status: res.status, retryAfter: res.headers.get('retry-after'), body: (await res.json()) as Record<string, any> };
  };

  it('answers 503 with Retry-After while the database is away, logs it once per interval, and recovers without losing a token', async () => {
    await eventually(async () => (await opaqueToken()).status === 200, 'the client to get tokens');
    const before: string[] = [];
    for (let i = 0; i < 10; i += 1) before.push((await opaqueToken()).body.access_token);

    pg.stop();
    const during = [];
    for (let i = 0; i < 20; i += 1) during.push(await opaqueToken(), await introspect(before[0]).then((r) => ({ status: r.status, body: r.body, retryAfter: r.retryAfter })));
    for (const r of during) expect(r).toMatchObject({ status: 503, body: { error: 'temporarily_unavailable' } });
    const withHeader = await introspect(before[0]);
    expect(withHeader).toMatchObject({ status: 503, retryAfter: '5' });
    expect((await fetch(`${server.url}/readyz`)).status).toBe(503);
    const outageLines = server.output().split('\n').filter((l) => l.includes('the database is unavailable'));
    expect(outageLines.length).toBeGreaterThanOrEqual(1);
    expect(outageLines.length).toBeLessThanOrEqual(2); // 41 failed requests within seconds: one line, with a count
    expect(server.output()).not.toContain('"msg":"server error"');
    // the request log says what went out: 503, never the 500 inside the outage's rewrite
    const tokenLines = server.output().split('\n').filter((l) => l.includes('"msg":"request"') && l.includes('"path":"/token"'));
    expect(tokenLines.some((l) => l.includes('"status":503'))).toBe(true);
    expect(tokenLines.filter((l) => /"status":5(?!03)/.test(l))).toEqual([]);

    pg.start();
    await eventually(async () => (await opaqueToken()).status === 200, 'Gatehouse to recover on its own', 30_000);
    for (const token of before) expect((await introspect(token)).body).toMatchObject({ active: true });
  });
});
