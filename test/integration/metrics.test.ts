import { execFileSync } from 'node:child_process';
import { request } from 'node:http';
import { createTestDatabase, type TestDatabase } from '../support/databases.js';
import { freePort, startServer, type RunningServer } from '../support/processes.js';
import { createApi, createClient, eventually } from '../support/gatehouse.js';

/** /metrics on its own listener (METRICS_PORT), summed over workers; never on the public port. */

/** A token request on a fresh connection (so the primary hands it to either worker). */
function token(server: RunningServer, client: { clientId: string; clientSecret: string }, resource: string): Promise<number> {
  const body = `grant_type=client_credentials&resource=${encodeURIComponent(resource)}`;
  return new Promise((resolve, reject) => {
    const req = request({
      host: '127.0.0.1', port: server.port, method: 'POST', path: '/token', agent: false,
      headers: { authorization: `Basic ${Buffer.from(`${client.clientId}:${client.clientSecret}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded', 'content-length': body.length },
    }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode!));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** One series' value in Prometheus text; 0 when it is absent. */
function series(text: string, name: string, labels: Record<string, string> = {}): number {
  const wanted = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  const line = text.split('\n').find((l) => l.startsWith(name) && !l.startsWith('#') && wanted.every((w) => l.includes(w)) && (wanted.length || /^\S+ /.test(l)));
  return line ? Number(line.split(' ').pop()) : 0;
}

describe.each([['one process', '1'], ['two workers', '2']])('metrics with %s', (_what, workers) => {
  const API = 'https://metrics.example.com';
  let db: TestDatabase;
  let server: RunningServer;
  let metricsPort: number;
  const scrape = async () => (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();

  beforeAll(async () => {
    db = await createTestDatabase('sqlite');
    metricsPort = await freePort();
    server = await startServer({ DATABASE_URL: db.url, WORKERS: workers, METRICS_PORT: String(metricsPort) });
    createApi(db.url, ['--identifier', API]);
  });
  afterAll(async () => {
    await server?.stop();
    await db?.drop();
  });

  it('counts tokens, token errors, secret checks and requests, over every worker', async () => {
    const client = createClient(db.url, ['--name', 'metrics', '--resource', API]);
    await eventually(async () => (await token(server, client, API)) === 200, 'the client to be known');
    const before = await scrape();
    const issued = series(before, 'gatehouse_tokens_issued_total', { grant_type: 'client_credentials', api: API });
    const requests = series(before, 'gatehouse_http_request_duration_seconds_count', { route: 'token', status: '200' });
    const invalid = series(before, 'gatehouse_token_errors_total', { error: 'invalid_client' });
    for (let i = 0; i < 10; i += 1) expect(await token(server, client, API)).toBe(200);
    expect(await token(server, { ...client, clientSecret: 'wrong' }, API)).toBe(401);

    const after = await scrape();
    expect(series(after, 'gatehouse_tokens_issued_total', { grant_type: 'client_credentials', api: API })).toBe(issued + 10);
    expect(series(after, 'gatehouse_http_request_duration_seconds_count', { route: 'token', status: '200' })).toBe(requests + 10);
    expect(series(after, 'gatehouse_token_errors_total', { error: 'invalid_client' })).toBe(invalid + 1);
    expect(series(after, 'gatehouse_client_secret_checks_total', { result: 'cache_hit' })).toBeGreaterThanOrEqual(9);
    expect(series(after, 'gatehouse_client_secret_checks_total', { result: 'argon2_fail' })).toBeGreaterThanOrEqual(1);
    expect(after).toMatch(/gatehouse_http_request_duration_seconds_bucket\{[^}]*route="token"/);
    expect(after).toMatch(/gatehouse_signing_key_age_seconds\{alg="ES256"\} \d/);
    expect(after).toMatch(/^process_cpu_user_seconds_total \d/m);
  });

  it('is served on its own listener only: not on the public port, nothing else on its port', async () => {
    expect((await fetch(`${server.url}/metrics`)).status).toBe(404);
    expect((await fetch(`http://127.0.0.1:${metricsPort}/`)).status).toBe(404);
    expect(server.output()).toContain(`"host":"127.0.0.1","port":${metricsPort}`);
  });

  if (workers === '2') {
    it('counts worker restarts in the primary', async () => {
      const [worker] = execFileSync('pgrep', ['-P', String(server.process.pid)], { encoding: 'utf8' }).trim().split('\n').map(Number);
      process.kill(worker, 'SIGKILL');
      await eventually(async () => series(await scrape(), 'gatehouse_worker_restarts_total') === 1, 'the restart to be counted');
    });
  }
});
