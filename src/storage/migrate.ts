import { createHash, randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Config, DatabaseKind } from '../config.js';
import { sqlitePath } from './database.js';
import { digestOf } from './digest.js';

/**
 * Applies `prisma/<provider>/migrations/<name>/migration.sql` in name order and
 * records each in `_prisma_migrations` with the columns and checksum Prisma
 * Migrate uses, so `prisma migrate status` agrees on a machine with the full CLI.
 * Prisma's own `migrate deploy` cannot run here (see docs/ARCHITECTURE.md).
 */

export interface Migration {
  name: string;
  sql: string;
  checksum: string;
}

export interface MigrateResult {
  applied: string[];
  alreadyApplied: number;
}

export class MigrationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MigrationError';
  }
}

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

export function migrationsDir(kind: DatabaseKind): string {
  return join(root, 'prisma', kind, 'migrations');
}

export function loadMigrations(kind: DatabaseKind): Migration[] {
  const dir = migrationsDir(kind);
  return readdirSync(dir, { withFileTypes: true })
    .filter((d) => d.isDirectory() && existsSync(join(dir, d.name, 'migration.sql')))
    .map((d) => d.name)
    .sort()
    .map((name) => {
      const sql = readFileSync(join(dir, name, 'migration.sql'), 'utf8');
      return { name, sql, checksum: createHash('sha256').update(sql).digest('hex') };
    });
}

interface AppliedRow {
  migration_name: string;
  checksum: string;
  finished_at: unknown;
  rolled_back_at: unknown;
}

/** Everything a driver must do for the runner; one implementation per database. */
interface Driver {
  /** runs fn while holding a lock that excludes other migrators */
  withLock<T>(fn: () => Promise<T>): Promise<T>;
  ensureTable(): Promise<void>;
  applied(): Promise<AppliedRow[]>;
  apply(migration: Migration): Promise<void>;
  close(): Promise<void>;
}

function checkHistory(migrations: Migration[], applied: AppliedRow[]): Set<string> {
  const done = new Set<string>();
  const known = new Map(migrations.map((m) => [m.name, m]));
  for (const row of applied) {
    if (row.rolled_back_at) continue;
    if (!row.finished_at) {
      throw new MigrationError(`migration ${row.migration_name} started but did not finish; resolve it by hand before starting`);
    }
    const m = known.get(row.migration_name);
    if (!m) throw new MigrationError(`the database has migration ${row.migration_name}, which this version of Gatehouse does not know`);
    if (m.checksum !== row.checksum) throw new MigrationError(`migration ${row.migration_name} was modified after it was applied`);
    done.add(row.migration_name);
  }
  return done;
}

/** Applies pending migrations; `upTo` stops after the named one (for upgrade tests). */
export async function migrate(database: Config['database'], options: { upTo?: string } = {}): Promise<MigrateResult> {
  const migrations = loadMigrations(database.kind).filter((m) => !options.upTo || m.name <= options.upTo);
  const driver = database.kind === 'sqlite' ? await sqliteDriver(database.url) : await postgresDriver(database.url);
  try {
    return await driver.withLock(async () => {
      await driver.ensureTable();
      const done = checkHistory(migrations, await driver.applied());
      const applied: string[] = [];
      for (const m of migrations) {
        if (done.has(m.name)) continue;
        await driver.apply(m);
        applied.push(m.name);
      }
      return { applied, alreadyApplied: done.size };
    });
  } finally {
    await driver.close();
  }
}

/** Each driver loads its database's client library: a process uses one. */
async function sqliteDriver(url: string): Promise<Driver> {
  const { default: Sqlite } = await import('better-sqlite3');
  const path = sqlitePath(url);
  mkdirSync(dirname(path), { recursive: true });
  const db = new Sqlite(path, { timeout: 5000 });
  db.pragma('journal_mode = WAL');
  // SQLite has no hash function of its own; the credentials-at-rest migration needs one
  // (PostgreSQL's is sha256()). Prisma's own CLI does not know it: see docs/ARCHITECTURE.md.
  db.function('gatehouse_sha256', { deterministic: true }, (value: unknown) => digestOf(String(value)));
  return {
    async withLock(fn) {
      // Table redefinitions (Prisma's SQLite migrations copy, drop and rename a
      // table) must not cascade deletes to child rows: foreign keys are off
      // while migrating (the pragma is ignored inside a transaction) and
      // checked before commit.
      db.pragma('foreign_keys = OFF');
      // BEGIN IMMEDIATE takes SQLite's write lock; DDL below runs inside it.
      db.exec('BEGIN IMMEDIATE');
      try {
        const result = await fn();
        const broken = db.pragma('foreign_key_check') as unknown[];
        if (broken.length) throw new MigrationError(`migrations would leave ${broken.length} row(s) with broken foreign keys`);
        db.exec('COMMIT');
        return result;
      } catch (err) {
        db.exec('ROLLBACK');
        throw err;
      } finally {
        db.pragma('foreign_keys = ON');
      }
    },
    async ensureTable() {
      db.exec(`CREATE TABLE IF NOT EXISTS "_prisma_migrations" (
    "id"                    TEXT PRIMARY KEY NOT NULL,
    "checksum"              TEXT NOT NULL,
    "finished_at"           DATETIME,
    "migration_name"        TEXT NOT NULL,
    "logs"                  TEXT,
    "rolled_back_at"        DATETIME,
    "started_at"            DATETIME NOT NULL DEFAULT current_timestamp,
    "applied_steps_count"   INTEGER UNSIGNED NOT NULL DEFAULT 0
)`);
    },
    async applied() {
      return db
        .prepare('SELECT migration_name, checksum, finished_at, rolled_back_at FROM "_prisma_migrations" ORDER BY started_at')
        .all() as AppliedRow[];
    },
    async apply(m) {
      const now = Date.now();
      db.exec(m.sql);
      db.prepare(
        `INSERT INTO "_prisma_migrations" (id, checksum, finished_at, migration_name, started_at, applied_steps_count)
         VALUES (?, ?, ?, ?, ?, 1)`,
      ).run(randomUUID(), m.checksum, Date.now(), m.name, now);
    },
    async close() {
      db.close();
    },
  };
}

// Prisma Migrate's own advisory lock key, so both never migrate at once.
const PG_LOCK_KEY = 72707369;

async function postgresDriver(url: string): Promise<Driver> {
  const { default: pg } = await import('pg');
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  return {
    async withLock(fn) {
      await client.query('SELECT pg_advisory_lock($1)', [PG_LOCK_KEY]);
      try {
        return await fn();
      } finally {
        await client.query('SELECT pg_advisory_unlock($1)', [PG_LOCK_KEY]);
      }
    },
    async ensureTable() {
      await client.query(`CREATE TABLE IF NOT EXISTS "_prisma_migrations" (
    "id"                    VARCHAR(36) PRIMARY KEY NOT NULL,
    "checksum"              VARCHAR(64) NOT NULL,
    "finished_at"           TIMESTAMPTZ,
    "migration_name"        VARCHAR(255) NOT NULL,
    "logs"                  TEXT,
    "rolled_back_at"        TIMESTAMPTZ,
    "started_at"            TIMESTAMPTZ NOT NULL DEFAULT now(),
    "applied_steps_count"   INTEGER NOT NULL DEFAULT 0
)`);
    },
    async applied() {
      const res = await client.query<AppliedRow>(
        'SELECT migration_name, checksum, finished_at, rolled_back_at FROM "_prisma_migrations" ORDER BY started_at',
      );
      return res.rows;
    },
    async apply(m) {
      // Each migration and its record commit together.
      await client.query('BEGIN');
      try {
        const started = new Date();
        await client.query(m.sql);
        await client.query(
          `INSERT INTO "_prisma_migrations" (id, checksum, finished_at, migration_name, started_at, applied_steps_count)
           VALUES ($1, $2, now(), $3, $4, 1)`,
          [randomUUID(), m.checksum, m.name, started],
        );
        await client.query('COMMIT');
      } catch (err) {
        await client.query('ROLLBACK');
        throw new MigrationError(`migration ${m.name} failed: ${(err as Error).message}`);
      }
    },
    async close() {
      await client.end();
    },
  };
}
