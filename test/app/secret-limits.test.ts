import { databaseKinds, startInProcess, type InProcess, type TestClient } from '../support/in-process.js';
import { listAudit } from '../../src/services/audit.js';

/**
 * Failed client authentications at the token endpoint are limited per client
 * and address (and per client overall): past the limit the answer is 429 with
 * Retry-After, and no argon2 check runs; other clients at the same address,
 * and a client whose secret already verified, keep working. A saturated
 * argon2 queue answers 503 with Retry-After.
 */

async function token(server: InProcess, client: Pick<TestClient, 'clientId'>, secret: string) {
  const res = await fetch(`${server.url}/token`, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      authorization: `Basic ${Buffer.from(`${client.clientId}:${secret}`).toString('base64')}`,
    },
    body: 'grant_type=client_credentials',
  });
  return { status: res.status, retryAfter: res.headers.get('retry-after'), body: (await res.json()) as Record<string, unknown> };
}

describe('client-secret failure limits at the token endpoint', () => {
  let server: InProcess;
  const machine = () => server.createClient({ grantTypes: ['client_credentials'] });

  beforeAll(async () => {
    server = await startInProcess({ env: { SECRET_FAILURE_LIMIT: '5' } });
  });
  afterAll(() => server?.close());

  it('answers 429 with Retry-After once a client failed the configured number of times from an address', async () => {
    const target = await machine();
    const wrong = await Promise.all(Array.from({ length: 5 }, () => token(server, target, 'not-the-secret')));
    expect(wrong.map((r) => r.status)).toEqual([401, 401, 401, 401, 401]);
    const limited = await token(server, target, 'still-not-the-secret');
    expect(limited).toMatchObject({ status: 429, body: { error: 'too_many_requests' } });
    expect(Number(limited.retryAfter)).toBeGreaterThan(0);
    expect(Number(limited.retryAfter)).toBeLessThanOrEqual(60);
  });

  it('lets a burst of wrong secrets run no more checks than the limit: the rest are refused at once', async () => {
    const target = await machine();
    const burst = await Promise.all(Array.from({ length: 30 }, () => token(server, target, 'burst-guess')));
    expect(burst.filter((r) => r.status === 401)).toHaveLength(5);
    expect(burst.filter((r) => r.status === 429)).toHaveLength(25);
  });

  it('does not lock out another client at the same address, nor a client whose secret already verified', async () => {
    const verified = await machine();
    expect((await token(server, verified, verified.clientSecret)).status).toBe(200);
    for (let i = 0; i < 6; i += 1) await token(server, verified, `guess-${i}`);
    expect((await token(server, verified, 'guess-again')).status).toBe(429);
    // the right secret is recognised without argon2 (the success cache), so the lockout does not touch it
    expect((await token(server, verified, verified.clientSecret)).status).toBe(200);
    const neighbour = await machine();
    expect((await token(server, neighbour, neighbour.clientSecret)).status).toBe(200);
  });

  it('answers 503 with Retry-After when more first verifications arrive than argon2 can run and queue', async () => {
    // one argon2 check at a time and no queue: of 20 first verifications arriving together, only
    // those that find argon2 free run; the rest are told to come back rather than pile up
    const busyServer = await startInProcess({ env: { SECRET_CHECK_CONCURRENCY: '1', SECRET_CHECK_QUEUE: '0' } });
    const clients = await Promise.all(Array.from({ length: 20 }, () => busyServer.createClient({ grantTypes: ['client_credentials'] })));
    const answers = await Promise.all(clients.map((c) => token(busyServer, c, c.clientSecret)));
    await busyServer.close();
    const busy = answers.filter((r) => r.status === 503);
    expect(answers.filter((r) => r.status === 200).length).toBeGreaterThanOrEqual(1);
    expect(answers.filter((r) => r.status !== 200 && r.status !== 503)).toEqual([]);
    expect(busy.length).toBeGreaterThan(0);
    for (const r of busy) expect(r).toMatchObject({ retryAfter: '1', body: { error: 'temporarily_unavailable' } });
  });
});

describe.each(databaseKinds())('a limit on failures never refuses the right secret, on %s', (kind) => {
  // a fresh server: the success cache is empty, as after every start, restart or new node
  let server: InProcess;
  beforeAll(async () => {
    server = await startInProcess({ kind });
  });
  afterAll(() => server?.close());

  it('answers 40 simultaneous first requests with the right secret from one address with 40 × 200, and trips no limit', async () => {
    const client = await server.createClient({ grantTypes: ['client_credentials'] });
    const answers = await Promise.all(Array.from({ length: 40 }, () => token(server, client, client.clientSecret)));
    expect(answers.map((r) => r.status)).toEqual(Array.from({ length: 40 }, () => 200));
    expect(await listAudit(server.database.prisma, { action: 'rate_limit.tripped' })).toEqual([]);
  });

  it('still limits wrong secrets (the default 10 a minute), and the right secret still passes afterwards', async () => {
    const client = await server.createClient({ grantTypes: ['client_credentials'] });
    expect((await token(server, client, client.clientSecret)).status).toBe(200);
    const distinct = await Promise.all(Array.from({ length: 14 }, (_, i) => token(server, client, `wrong-${i}`)));
    expect(distinct.filter((r) => r.status === 401)).toHaveLength(10);
    expect(distinct.filter((r) => r.status === 429)).toHaveLength(4);
    const same = await Promise.all(Array.from({ length: 10 }, () => token(server, client, 'wrong-again')));
    expect(same.map((r) => r.status)).toEqual(Array.from({ length: 10 }, () => 429));
    // the success cache knows the right secret: the lockout does not touch it
    const right = await Promise.all(Array.from({ length: 10 }, () => token(server, client, client.clientSecret)));
    expect(right.map((r) => r.status)).toEqual(Array.from({ length: 10 }, () => 200));
    expect(await listAudit(server.database.prisma, { action: 'rate_limit.tripped' })).not.toEqual([]);
  });
});
