import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { databaseKinds, createTestDatabase, migratedDatabase, type TestDatabase } from '../support/databases.js';
import { runCli, startServer, type RunningServer } from '../support/processes.js';
import { listAudit, purgeAudit, recordAudit, withActor } from '../../src/services/audit.js';

/**
 * The audit trail end to end: admin changes through the CLI and the seed,
 * registrations over HTTP, a tripped rate limit, `gatehouse audit list` with
 * its filters and refusals, retention, and no secret or token in any row.
 */

const API = 'https://audit-api.example.com';

interface Event {
  id: string; at: string; actorType: string; actorId: string | null; address: string | null;
  action: string; targetType: string | null; targetId: string | null; outcome: string; details: Record<string, unknown>;
}

describe.each(databaseKinds())('the audit trail on %s', (kind) => {
  let db: TestDatabase;
  let server: RunningServer;
  const secrets: string[] = [];
  const cli = (...args: string[]) => runCli(args, db.url);
  const events = (...filters: string[]): Event[] => {
    const r = cli('audit', 'list', '--json', '--limit', '1000', ...filters);
    expect(r.code).toBe(0);
    return r.json();
  };

  beforeAll(async () => {
    db = await createTestDatabase(kind);
    server = await startServer({ DATABASE_URL: db.url, REGISTRATION: 'open', REGISTRATION_RATE_LIMIT: '2' });
  });
  afterAll(async () => {
    await server?.stop();
    await db?.drop();
  });

  it('records every admin change of the CLI, with the CLI as actor and no secret', () => {
    expect(cli('resources', 'create', '--identifier', API, '--scope', 'read').code).toBe(0);
    const created = cli('clients', 'create', '--json', '--id', 'audited', '--name', 'Audited', '--resource', API);
    expect(created.code).toBe(0);
    secrets.push(created.json().clientSecret);
    expect(cli('clients', 'update', 'audited', '--name', 'Audited 2').code).toBe(0);
    const rotated = cli('clients', 'rotate-secret', 'audited', '--json');
    secrets.push(rotated.json().clientSecret);
    const token = cli('registration-tokens', 'create', '--json').json().token as string;
    secrets.push(token);
    expect(cli('registration-tokens', 'revoke', '--', token.slice(0, 10)).code).toBe(0);
    expect(cli('keys', 'rotate').code).toBe(0);
    expect(cli('clients', 'delete', 'audited').code).toBe(0);

    const trail = events('--outcome', 'success');
    const mine = trail.filter((e) => e.actorType === 'cli');
    const actions = mine.map((e) => `${e.action} ${e.targetType}:${e.targetId}`).reverse();
    expect(actions).toEqual([
      `api.created api:${API}`,
      'client.created client:audited',
      'client.updated client:audited',
      'client.secret_rotated client:audited',
      `registration_token.created registration_token:${token.slice(0, 8)}`,
      `registration_token.revoked registration_token:${token.slice(0, 8)}`,
      'signing_key.rotated signing_key:ES256,RS256',
      'client.deleted client:audited',
    ]);
    expect(mine.find((e) => e.action === 'client.updated')?.details).toEqual({ changed: ['name'] });
    expect(mine.every((e) => e.actorId === null && e.outcome === 'success')).toBe(true);
  });

  it('records a seed file\'s changes, marked as the seed\'s', () => {
    const dir = mkdtempSync(join(tmpdir(), 'gatehouse-audit-'));
    writeFileSync(join(dir, 'seed.json'), JSON.stringify({ clients: [{ clientId: 'seeded', name: 'Seeded', secret: 's'.repeat(40), resources: [API] }] }));
    const r = runCli(['seed', join(dir, 'seed.json'), '--json'], db.url);
    expect(r.code).toBe(0);
    secrets.push('s'.repeat(40));
    expect(events('--action', 'client.created', '--target', 'seeded')).toEqual([
      expect.objectContaining({ actorType: 'cli', targetType: 'client', targetId: 'seeded', details: { via: 'seed' } }),
    ]);
  });

  it('records self-registration with the address, and a tripped rate limit once', async () => {
    const register = () => fetch(`${server.url}/reg`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ client_name: 'Self-made', grant_types: ['client_credentials'], response_types: [], redirect_uris: [] }),
    });
    const first = await register();
    expect(first.status).toBe(201);
    const body = (await first.json()) as { client_id: string; client_secret: string; registration_access_token: string };
    secrets.push(body.client_secret, body.registration_access_token);
    const registered = events('--action', 'client.registered');
    expect(registered).toEqual([expect.objectContaining({ actorType: 'anonymous', targetId: body.client_id, address: expect.stringMatching(/127\.0\.0\.1|::1/) })]);

    const answers = [];
    for (let i = 0; i < 4; i += 1) answers.push((await register()).status);
    expect(answers.filter((s) => s === 429).length).toBeGreaterThanOrEqual(2);
    // one row for the address within the minute, however many refusals
    expect(events('--action', 'rate_limit.tripped')).toEqual([
      expect.objectContaining({ outcome: 'failure', actorType: 'anonymous', details: { limit: 'registration' } }),
    ]);
  });

  it('filters, pages and refuses bad filters with every problem, as the service does', async () => {
    const all = events();
    expect(all.length).toBeGreaterThan(8);
    // newest first, and ids sort like times
    expect([...all].sort((a, b) => (a.id < b.id ? 1 : -1)).map((e) => e.id)).toEqual(all.map((e) => e.id));
    const firstTwo = events('--limit', '2');
    expect(firstTwo.map((e) => e.id)).toEqual(all.slice(0, 2).map((e) => e.id));
    expect(events('--limit', '2', '--before', firstTwo[1].id).map((e) => e.id)).toEqual(all.slice(2, 4).map((e) => e.id));
    expect(events('--target-type', 'client').every((e) => e.targetType === 'client')).toBe(true);
    expect(events('--outcome', 'failure').map((e) => e.action)).toEqual(['rate_limit.tripped']);
    expect(events('--since', '2999-01-01T00:00:00Z')).toEqual([]);
    const future = new Date(Date.now() + 60_000).toISOString();
    expect(events('--until', future).length).toBe(all.length);

    const bad = cli('audit', 'list', '--action', 'client.exploded', '--since', 'yesterday', '--limit', '0', '--outcome', 'meh');
    expect(bad.code).toBe(1);
    for (const problem of ['unknown action client.exploded', 'not a date: yesterday', 'must be a whole number from 1 to 1000', 'must be success or failure']) {
      expect(bad.stderr).toContain(problem);
    }
    expect(bad.stderr.trim().split('\n')).toHaveLength(1);

    // a date outside what the databases hold is the same kind of refusal, not the database's error text
    for (const flag of ['--since', '--until']) {
      const far = cli('audit', 'list', flag, '10000-01-01');
      expect({ flag, code: far.code }).toEqual({ flag, code: 1 });
      expect(far.stderr).toContain('out of range: 10000-01-01 (years 0 to 9999)');
      expect(far.stderr).not.toMatch(/prisma|invalid|DriverAdapter/i);
    }
    expect(events('--since', '0000-01-01T00:00:00Z', '--until', '9999-12-31T23:59:59.999Z').length).toBe(all.length);
  });

  it('holds no secret or token anywhere in the table', () => {
    const raw = JSON.stringify(events());
    expect(secrets.length).toBeGreaterThanOrEqual(5);
    for (const secret of secrets) expect(raw).not.toContain(secret);
  });
});

describe.each(databaseKinds())('audit retention and redaction on %s', (kind) => {
  it('purges events older than the retention, keeps the rest, and drops secret-looking details', async () => {
    const { database, close } = await migratedDatabase(kind);
    try {
      const db = database.prisma;
      const now = Date.UTC(2030, 5, 1);
      const day = 86_400_000;
      await withActor({ type: 'cli' }, async () => {
        await recordAudit(db, { action: 'client.created', target: { type: 'client', id: 'old' } }, new Date(now - 40 * day));
        await recordAudit(db, { action: 'client.created', target: { type: 'client', id: 'recent' }, details: { name: 'ok', client_secret: 'x', refreshToken: 'y', password: 'z' } }, new Date(now - 10 * day));
      });
      expect(await purgeAudit(db, 30, new Date(now))).toBe(1);
      const left = await listAudit(db, {});
      expect(left.map((e) => e.targetId)).toEqual(['recent']);
      expect(left[0].details).toEqual({ name: 'ok' });
      expect(left[0].actorType).toBe('cli');
    } finally {
      await close();
    }
  });
});
