import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { databaseKinds, createTestDatabase, type TestDatabase } from '../support/databases.js';
import { runCliAsync } from '../support/processes.js';
import { openDatabase } from '../../src/storage/database.js';
import { hashSecret } from '../../src/services/client-secrets.js';

/**
 * A seed of 10,000 clients works on both databases, in one transaction
 * (PostgreSQL's used to time out at about 2,000), and a bad entry at the end
 * still means nothing is written.
 */
describe.each(databaseKinds())('a seed of 10,000 clients on %s', (kind) => {
  const COUNT = 10_000;
  let db: TestDatabase;
  let dir: string;
  let hash: string;
  const count = async () => {
    const database = await openDatabase({ url: db.url, kind });
    try {
      return await database.prisma.client.count();
    } finally {
      await database.close();
    }
  };
  const seedFile = (name: string, clients: object[]) => {
    const file = join(dir, name);
    writeFileSync(file, JSON.stringify({ clients }));
    return file;
  };
  const clients = (n: number) => Array.from({ length: n }, (_, i) => ({ clientId: `bulk-${i}`, name: `Bulk ${i}`, secretHash: hash }));

  beforeAll(async () => {
    db = await createTestDatabase(kind);
    dir = mkdtempSync(join(tmpdir(), 'gatehouse-seed-large-'));
    // only migrate creates a database
    expect((await runCliAsync(['migrate'], db.url, { cwd: dir })).code).toBe(0);
    hash = await hashSecret('a-secret-made-elsewhere-0123456789abcdef');
  });
  afterAll(async () => {
    await db?.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('writes nothing when one entry of 10,000 is bad', async () => {
    const bad = clients(COUNT);
    bad[COUNT - 1] = { ...bad[COUNT - 1], name: '' };
    const r = await runCliAsync(['seed', seedFile('bad.json', bad)], db.url, { cwd: dir });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`clients[${COUNT - 1}].name`);
    expect(await count()).toBe(0);
  });

  it('creates them all in one run, then finds them unchanged', async () => {
    const file = seedFile('large.json', clients(COUNT));
    const first = await runCliAsync(['seed', file, '--json'], db.url, { cwd: dir });
    expect({ code: first.code, stderr: first.stderr.split('\n')[0] }).toEqual({ code: 0, stderr: '' });
    expect(first.json().clients.filter((c: { action: string }) => c.action === 'created')).toHaveLength(COUNT);
    expect(await count()).toBe(COUNT);
    const again = await runCliAsync(['seed', file, '--json'], db.url, { cwd: dir });
    expect(again.code).toBe(0);
    expect(again.json().clients.every((c: { action: string }) => c.action === 'unchanged')).toBe(true);
  });
});
