import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { PrismaBetterSQLite3 } from '@prisma/adapter-better-sqlite3';
import { PrismaPg } from '@prisma/adapter-pg';
import pg from 'pg';
import { PrismaClient as SqliteClient } from '../generated/sqlite/client.js';
import { PrismaClient as PostgresClient } from '../generated/postgresql/client.js';
import type { Config, DatabaseKind } from '../config.js';
import { translated } from './errors.js';
import { postgresPayloadLookup, sqlitePayloadLookup, type PayloadLookup } from './payload-lookup.js';

/**
 * Both generated clients expose the same model API; the SQLite one's type stands
 * for both so that repositories are written once.
 */
export type Db = SqliteClient;

/** What repositories receive inside a transaction: the model API without $transaction. */
export type Tx = Omit<Db, '$transaction' | '$connect' | '$disconnect' | '$on' | '$extends'>;

/**
 * Runs `fn` in one interactive transaction; Prisma failures come out as the
 * typed errors of storage/errors.ts. Keep slow work (hashing) outside.
 */
export function transaction<T>(db: Db, fn: (tx: Tx) => Promise<T>, options: { timeoutMs?: number } = {}): Promise<T> {
  return translated(() => db.$transaction((tx) => fn(tx as Tx), { timeout: options.timeoutMs ?? 15_000, maxWait: 10_000 }));
}

/** One round trip to the database: for readiness checks. */
export async function ping(db: Db): Promise<void> {
  await db.$queryRawUnsafe('SELECT 1');
}

export interface Database {
  kind: DatabaseKind;
  prisma: Db;
  /** the hot read of oidc-provider artifacts, without Prisma (payload-lookup.ts) */
  lookupPayloads: PayloadLookup;
  close(): Promise<void>;
}

/** The path of a `file:` URL, resolved against the working directory. */
export function sqlitePath(url: string): string {
  return resolve(url.replace(/^file:/, '').replace(/\?.*$/, ''));
}

/**
 * Opens a Prisma client for the configured database. For SQLite the file's folder
 * is created; the file itself is created by the migration step.
 */
export function openDatabase(
  database: Config['database'],
  options: { poolSize?: number; onConnectionError?: (err: Error) => void } = {},
): Database {
  if (database.kind === 'sqlite') {
    const path = sqlitePath(database.url);
    mkdirSync(dirname(path), { recursive: true });
    // 5 s busy timeout: the CLI and the server may write at the same time.
    const prisma = new SqliteClient({ adapter: new PrismaBetterSQLite3({ url: `file:${path}`, timeout: 5000 }) });
    const reads = sqlitePayloadLookup(path);
    return {
      kind: database.kind,
      prisma,
      lookupPayloads: reads.lookup,
      async close() {
        reads.close();
        await prisma.$disconnect();
      },
    };
  }
  const pool = new pg.Pool({ connectionString: database.url, max: options.poolSize ?? 10 });
  // An idle connection dropped by the server must not crash the process; the
  // pool replaces it and /readyz reports the outage.
  pool.on('error', options.onConnectionError ?? (() => {}));
  const prisma = new PostgresClient({ adapter: new PrismaPg(pool) }) as unknown as Db;
  return {
    kind: database.kind,
    prisma,
    lookupPayloads: postgresPayloadLookup(pool),
    async close() {
      await prisma.$disconnect();
      await pool.end();
    },
  };
}
