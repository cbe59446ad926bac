import { request } from 'node:http';
import { createTestDatabase, type TestDatabase } from '../support/databases.js';
import { freePort, startServer, type RunningServer } from '../support/processes.js';
import { createClient, eventually } from '../support/gatehouse.js';
import { redisAvailable, startRedis, type TestRedis } from '../support/redis.js';

/**
 * Rate limits shared by every worker and instance: through Redis when
 * REDIS_URL is set, through the cluster primary otherwise. Each request opens
 * its own connection, so the primaries hand them to different workers.
 */

/** A client_credentials request on a fresh connection: status and Retry-After. */
function token(server: RunningServer, clientId: string, secret: string): Promise<{ status: number; retryAfter?: string }> {
  const body = 'grant_type=client_credentials';
  return new Promise((resolve, reject) => {
    const req = request({
      host: '127.0.0.1', port: server.port, method: 'POST', path: '/token', agent: false,
      headers: {
        authorization: `Basic ${Buffer.from(`${clientId}:${secret}`).toString('base64')}`,
        'content-type': 'application/x-www-form-urlencoded',
        'content-length': body.length,
      },
    }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode!, retryAfter: res.headers['retry-after'] as string | undefined }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

const readyz = async (server: RunningServer) => (await fetch(`${server.url}/readyz`)).json() as Promise<{ status: string; limits: { mode: string; redis?: string } }>;

describe('one instance, WORKERS=2, no Redis: the workers share their limits through the primary', () => {
  let db: TestDatabase;
  let server: RunningServer;

  beforeAll(async () => {
    db = await createTestDatabase('sqlite');
    server = await startServer({ DATABASE_URL: db.url, WORKERS: '2', SECRET_FAILURE_LIMIT: '4' });
  });
  afterAll(async () => {
    await server?.stop();
    await db?.drop();
  });

  it('refuses the fifth wrong secret whichever worker gets it', async () => {
    const c = createClient(db.url, ['--name', 'cluster-shared']);
    await eventually(async () => (await token(server, c.clientId, c.clientSecret)).status === 200, 'the client to be known');
    expect((await readyz(server)).limits).toEqual({ mode: 'cluster' });
    const statuses = [];
    for (let i = 0; i < 6; i += 1) statuses.push((await token(server, c.clientId, `wrong-${i}`)).status);
    expect(statuses).toEqual([401, 401, 401, 401, 429, 429]);
  });
});

(redisAvailable() ? describe : describe.skip)('two instances with REDIS_URL: limits shared through Redis, and per process while it is away', () => {
  let db: TestDatabase;
  let redis: TestRedis;
  const servers: RunningServer[] = [];
  let metricsPort: number;
  /** gatehouse_redis_up of the first instance, over its workers (the minimum) */
  const redisUp = async () => Number(/^gatehouse_redis_up (\d)/m.exec(await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text())?.[1]);

  beforeAll(async () => {
    db = await createTestDatabase('sqlite');
    redis = await startRedis();
    metricsPort = await freePort();
    for (let i = 0; i < 2; i += 1) {
      servers.push(await startServer({ DATABASE_URL: db.url, WORKERS: '2', REDIS_URL: redis.url, SECRET_FAILURE_LIMIT: '4', ...(i === 0 ? { METRICS_PORT: String(metricsPort) } : {}) }));
    }
  });
  afterAll(async () => {
    await Promise.all(servers.map((s) => s.stop()));
    await redis?.stop();
    await db?.drop();
  });

  /** Wrong secrets alternating between the instances: their statuses. */
  async function spreadFailures(clientId: string, count: number): Promise<number[]> {
    const statuses = [];
    for (let i = 0; i < count; i += 1) statuses.push((await token(servers[i % 2], clientId, `wrong-${i}`)).status);
    return statuses;
  }

  it('counts wrong secrets sent to both instances together: the limit holds at the configured count', async () => {
    const c = createClient(db.url, ['--name', 'redis-shared']);
    for (const s of servers) await eventually(async () => (await token(s, c.clientId, c.clientSecret)).status === 200, 'the client to be known');
    expect(await readyz(servers[0])).toMatchObject({ status: 'ok', limits: { mode: 'redis', redis: 'up' } });
    const statuses = await spreadFailures(c.clientId, 6);
    expect(statuses).toEqual([401, 401, 401, 401, 429, 429]);
    const limited = await token(servers[1], c.clientId, 'again');
    expect(Number(limited.retryAfter)).toBeGreaterThan(0);
    // another client from the same address is not locked out
    const other = createClient(db.url, ['--name', 'redis-neighbour']);
    await eventually(async () => (await token(servers[0], other.clientId, other.clientSecret)).status === 200, 'the neighbour to get tokens');
  });

  it('keeps serving with per-process limits while Redis is away, says so in /readyz and the log, and shares again when it returns', async () => {
    const c = createClient(db.url, ['--name', 'redis-outage']);
    for (const s of servers) await eventually(async () => (await token(s, c.clientId, c.clientSecret)).status === 200, 'the client to be known');
    await redis.stop();
    for (const s of servers) await eventually(async () => (await readyz(s)).limits.redis === 'down', 'readyz to report the outage');
    expect(await readyz(servers[0])).toMatchObject({ status: 'ok', limits: { mode: 'redis', redis: 'down' } });
    await eventually(async () => (await redisUp()) === 0, 'the metric to show the outage');

    // no 5xx: the right secret works, wrong ones are refused and, counted per process, still limited
    const during = [];
    for (let i = 0; i < 40; i += 1) during.push((await token(servers[i % 2], c.clientId, i % 4 === 0 ? c.clientSecret : `wrong-${i}`)).status);
    expect(during.filter((s) => s >= 500)).toEqual([]);
    expect(during.filter((_, i) => i % 4 === 0).every((s) => s === 200)).toBe(true);
    expect(during).toContain(429);
    for (const s of servers) {
      const said = s.output().split('\n').filter((l) => l.includes('redis is unavailable'));
      expect(said.length).toBeGreaterThanOrEqual(1); // once per worker process, not once per request
      expect(said.length).toBeLessThanOrEqual(2);
    }

    await redis.start();
    for (const s of servers) await eventually(async () => (await readyz(s)).limits.redis === 'up', 'readyz to report Redis back', 20_000);
    expect(servers[0].output()).toContain('redis is back');
    await eventually(async () => (await redisUp()) === 1, 'the metric to show Redis back', 20_000);
    const fresh = createClient(db.url, ['--name', 'redis-after']);
    for (const s of servers) await eventually(async () => (await token(s, fresh.clientId, fresh.clientSecret)).status === 200, 'the client to be known');
    // every worker must be reconnected before the count is shared again
    await eventually(async () => {
      const all = await Promise.all([0, 1, 2, 3].map((i) => readyz(servers[i % 2])));
      return all.every((r) => r.limits.redis === 'up');
    }, 'every worker to reconnect', 20_000);
    expect(await spreadFailures(fresh.clientId, 6)).toEqual([401, 401, 401, 401, 429, 429]);
  });
});
