import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { openDatabase, type Database } from '../../src/storage/database.js';
import { migrate } from '../../src/storage/migrate.js';
import { PayloadStore } from '../../src/storage/oidc-payloads.js';
import { PayloadAdapter } from '../../src/oidc/adapter.js';

/**
 * Real databases for tests: a temp SQLite file always, and a fresh database on
 * the PostgreSQL server named by GATEHOUSE_TEST_POSTGRES_URL when it is set.
 */

export type Kind = 'sqlite' | 'postgresql';

export const POSTGRES_URL = process.env.GATEHOUSE_TEST_POSTGRES_URL;

let warned = false;
/** The kinds this machine can test; says once why PostgreSQL is skipped. */
export function databaseKinds(): Kind[] {
  if (!POSTGRES_URL && !warned) {
    warned = true;
    process.stderr.write('PostgreSQL tests skipped: set GATEHOUSE_TEST_POSTGRES_URL (e.g. postgresql://postgres@127.0.0.1:5432/postgres)\n');
  }
  return POSTGRES_URL ? ['sqlite', 'postgresql'] : ['sqlite'];
}

export interface TestDatabase {
  kind: Kind;
  url: string;
  drop(): Promise<void>;
}

export async function createTestDatabase(kind: Kind): Promise<TestDatabase> {
  if (kind === 'sqlite') {
    const dir = mkdtempSync(join(tmpdir(), 'gatehouse-test-'));
    return { kind, url: `file:${join(dir, 'gatehouse.db')}`, drop: async () => rmSync(dir, { recursive: true, force: true }) };
  }
  if (!POSTGRES_URL) throw new Error('GATEHOUSE_TEST_POSTGRES_URL is not set');
  const name = `gatehouse_test_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: POSTGRES_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(POSTGRES_URL);
  url.pathname = `/${name}`;
  return {
    kind,
    url: url.toString(),
    async drop() {
      const c = new pg.Client({ connectionString: POSTGRES_URL });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
    },
  };
}

/** A fresh test database, migrated and opened through Gatehouse's own storage code. */
export async function migratedDatabase(kind: Kind): Promise<{ testDb: TestDatabase; database: Database; close(): Promise<void> }> {
  const testDb = await createTestDatabase(kind);
  const config = { url: testDb.url, kind };
  await migrate(config);
  const database = await openDatabase(config);
  return {
    testDb,
    database,
    async close() {
      await database.close();
      await testDb.drop();
    },
  };
}

/** oidc-provider's adapter for one model, as the server makes it: on the database's hot statements. */
export const payloadAdapter = (database: Pick<Database, 'hot'>, type: string, now?: () => number) =>
  new PayloadAdapter(new PayloadStore(database.hot), type, now);
