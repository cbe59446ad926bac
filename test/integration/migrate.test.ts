import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { databaseKinds, createTestDatabase, payloadAdapter, type TestDatabase } from '../support/databases.js';
import { listRegistrationTokens } from '../../src/services/registration-tokens.js';
import { loadMigrations, migrate, migrationsDir, MigrationError } from '../../src/storage/migrate.js';
import { openDatabase } from '../../src/storage/database.js';
import { findClient } from '../../src/storage/clients.js';
import { spawn } from 'node:child_process';
import { tmpdir } from 'node:os';
import { CLI } from '../support/processes.js';

describe.each(databaseKinds())('migrations on %s', (kind) => {
  let testDb: TestDatabase;
  beforeAll(async () => {
    testDb = await createTestDatabase(kind);
  });
  afterAll(async () => {
    await testDb?.drop();
  });

  it('applies every migration once and records it as Prisma Migrate does', async () => {
    const config = { url: testDb.url, kind };
    const all = loadMigrations(kind);
    expect(all.length).toBeGreaterThan(0);

    const first = await migrate(config);
    expect(first.applied).toEqual(all.map((m) => m.name));
    const second = await migrate(config);
    expect(second).toEqual({ applied: [], alreadyApplied: all.length });

    const db = await openDatabase(config);
    try {
      const rows = await db.prisma.$queryRawUnsafe<{ migration_name: string; checksum: string; finished_at: unknown; applied_steps_count: unknown }[]>(
        'SELECT migration_name, checksum, finished_at, applied_steps_count FROM "_prisma_migrations" ORDER BY migration_name',
      );
      expect(rows.map((r) => r.migration_name)).toEqual(all.map((m) => m.name));
      for (const row of rows) {
        const sql = readFileSync(join(migrationsDir(kind), row.migration_name, 'migration.sql'));
        expect(row.checksum).toBe(createHash('sha256').update(sql).digest('hex'));
        expect(row.finished_at).not.toBeNull();
        expect(Number(row.applied_steps_count)).toBe(1);
      }
      // the schema is usable through Prisma
      expect(await db.prisma.client.count()).toBe(0);
    } finally {
      await db.close();
    }
  });

  it('keeps existing rows through later migrations', async () => {
    const fresh = await createTestDatabase(kind);
    const config = { url: fresh.url, kind };
    const [first, ...later] = loadMigrations(kind);
    const db = await openDatabase(config);
    try {
      await migrate(config, { upTo: first.name });
      await db.prisma.$executeRawUnsafe(
        `INSERT INTO "Client" ("clientId", "name", "secretHash", "grantTypes", "redirectUris", "scopes", "resources", "updatedAt")
         VALUES ('old-client', 'Old', NULL, '["client_credentials"]', '[]', '[]', '[]', CURRENT_TIMESTAMP)`,
      );
      expect((await migrate(config)).applied).toEqual(later.map((m) => m.name));
      const client = await findClient(db.prisma, 'old-client');
      expect(client).toMatchObject({ clientId: 'old-client', grantTypes: ['client_credentials'], postLogoutRedirectUris: [], backchannelLogoutUri: null });
    } finally {
      await db.close();
      await fresh.drop();
    }
  });

  it('converts the artifacts of an earlier version to digests in place: they still work, and no value is left', async () => {
    const fresh = await createTestDatabase(kind);
    const config = { url: fresh.url, kind };
    const all = loadMigrations(kind);
    const before = all[all.findIndex((m) => m.name.endsWith('_admin_plane')) - 1];
    const db = await openDatabase(config);
    try {
      await migrate(config, { upTo: before.name });
      // as the earlier version wrote them (through Prisma)
      const insert = (type: string, id: string, payload: object) => db.prisma.oidcPayload.create({
        data: { id, type, payload: payload as never, grantId: 'g-old', expiresAt: new Date(Date.now() + 3_600_000) },
      });
      await insert('RefreshToken', 'old-refresh-token-value', { jti: 'old-refresh-token-value', kind: 'RefreshToken', grantId: 'g-old' });
      await insert('InitialAccessToken', 'old-initial-token-value', { jti: 'old-initial-token-value', kind: 'InitialAccessToken' });
      await insert('Grant', 'g-old', { jti: 'g-old', kind: 'Grant' });
      await insert('Interaction', 'old-interaction', { jti: 'old-interaction', kind: 'Interaction', session: { cookie: 'old-session-cookie' } });
      await migrate(config);
      const dump = JSON.stringify(await db.prisma.oidcPayload.findMany());
      for (const value of ['old-refresh-token-value', 'old-initial-token-value', 'old-interaction', 'old-session-cookie']) expect(dump).not.toContain(value);
      const refresh = await payloadAdapter(db, 'RefreshToken').find('old-refresh-token-value');
      expect(refresh).toMatchObject({ jti: 'old-refresh-token-value', grantId: 'g-old' });
      expect(await payloadAdapter(db, 'Grant').find('g-old')).toMatchObject({ jti: 'g-old' });
      expect((await listRegistrationTokens(db.prisma, new Date())).map((t) => t.prefix)).toEqual(['old-init']);
    } finally {
      await db.close();
      await fresh.drop();
    }
  });

  it('refuses to run against a history it does not recognise', async () => {
    const config = { url: testDb.url, kind };
    const db = await openDatabase(config);
    try {
      await db.prisma.$executeRawUnsafe(`UPDATE "_prisma_migrations" SET checksum = 'tampered'`);
      await expect(migrate(config)).rejects.toThrow(MigrationError);
      await expect(migrate(config)).rejects.toThrow(/modified after it was applied/);
    } finally {
      await db.close();
    }
  });

  it('runs safely when several processes migrate at once', async () => {
    const fresh = await createTestDatabase(kind);
    try {
      // three real `gatehouse migrate` processes racing on one new database
      const runs = await Promise.all(
        [1, 2, 3].map(
          () =>
            new Promise<{ code: number | null; out: string }>((resolve) => {
              const child = spawn(process.execPath, [CLI, 'migrate', '--json'], {
                env: { PATH: process.env.PATH, DATABASE_URL: fresh.url },
                cwd: tmpdir(),
              });
              let out = '';
              child.stdout.on('data', (d) => (out += d));
              child.stderr.on('data', (d) => (out += d));
              child.on('exit', (code) => resolve({ code, out }));
            }),
        ),
      );
      for (const run of runs) expect(run.code).toBe(0);
      const applied = runs.flatMap((r) => JSON.parse(r.out).applied as string[]);
      expect(applied).toEqual(loadMigrations(kind).map((m) => m.name));
    } finally {
      await fresh.drop();
    }
  });
});

describe('schemas', () => {
  it('are generated from prisma/models.prisma and up to date', async () => {
    const { spawnSync } = await import('node:child_process');
    const r = spawnSync(process.execPath, ['scripts/prisma-schemas.mjs', '--check'], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  });
});
