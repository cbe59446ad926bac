import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { PrismaClient as SqliteClient } from '../generated/sqlite/client.js';
import type { Config, DatabaseKind } from '../config.js';
import { translated } from './errors.js';
import { postgresHotStatements, SQLITE_SYNCHRONOUS, sqliteHotStatements, type HotStatements } from './hot-statements.js';
import { requestScoped } from './request-reads.js';

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
export async function transaction<T>(db: Db, fn: (tx: Tx) => Promise<T>, options: { timeoutMs?: number } = {}): Promise<T> {
  const deadline = Date.now() + SQLITE_CONFLICT_RETRY_MS;
  for (let wait = 5; ; wait = Math.min(wait * 2, 100)) {
    try {
      return await translated(() => db.$transaction((tx) => fn(tx as Tx), { timeout: options.timeoutMs ?? 15_000, maxWait: 10_000 }));
    } catch (err) {
      if (!sqliteWriteConflict(err) || Date.now() > deadline) throw err;
    }
    await new Promise((resolve) => setTimeout(resolve, wait + Math.random() * wait));
  }
}

/** How long a transaction is tried again after SQLite write conflicts, ms. */
const SQLITE_CONFLICT_RETRY_MS = 5000;

/**
 * SQLite's answer to a transaction that read, then tried to write after
 * another connection (the server's statements) committed: SQLITE_BUSY_SNAPSHOT,
 * which no busy timeout waits out (Prisma begins transactions DEFERRED). The
 * whole transaction runs again; it wrote nothing.
 */
function sqliteWriteConflict(err: unknown): boolean {
  for (let e = err as { code?: unknown; cause?: unknown } | undefined, depth = 0; e && depth < 4; e = e.cause as typeof e, depth++) {
    if (typeof e.code === 'string' && e.code.startsWith('SQLITE_BUSY')) return true;
  }
  return false;
}

/** One round trip to the database: for readiness checks. */
export async function ping(db: Db): Promise<void> {
  await db.$queryRawUnsafe('SELECT 1');
}

export interface Database {
  kind: DatabaseKind;
  prisma: Db;
  /** the statements of the request hot path, without Prisma (hot-statements.ts), request-scoped (request-reads.ts) */
  hot: HotStatements;
  close(): Promise<void>;
}

/** The path of a `file:` URL, resolved against the working directory. */
export function sqlitePath(url: string): string {
  return resolve(url.replace(/^file:/, '').replace(/\?.*$/, ''));
}

/**
 * Opens a Prisma client for the configured database. For SQLite the file's folder
 * is created; the file itself is created by the migration step. Only the
 * generated client and driver adapter of the configured kind are loaded: each
 * costs about 0.1 s of start-up, and a process uses one database.
 */
export async function openDatabase(
  database: Config['database'],
  options: { poolSize?: number; onConnectionError?: (err: Error) => void } = {},
): Promise<Database> {
  if (database.kind === 'sqlite') {
    const [{ PrismaClient }, { PrismaBetterSQLite3 }] = await Promise.all([
      import('../generated/sqlite/client.js'),
      import('@prisma/adapter-better-sqlite3'),
    ]);
    const path = sqlitePath(database.url);
    mkdirSync(dirname(path), { recursive: true });
    // 5 s busy timeout: the CLI and the server may write at the same time.
    const prisma = new PrismaClient({ adapter: new PrismaBetterSQLite3({ url: `file:${path}`, timeout: 5000 }) });
    await prisma.$executeRawUnsafe(`PRAGMA synchronous = ${SQLITE_SYNCHRONOUS}`);
    const hot = requestScoped(await sqliteHotStatements(path));
    return {
      kind: database.kind,
      prisma,
      hot,
      async close() {
        hot.close();
        await prisma.$disconnect();
      },
    };
  }
  const [{ PrismaClient }, { PrismaPg }, { default: pg }] = await Promise.all([
    import('../generated/postgresql/client.js'),
    import('@prisma/adapter-pg'),
    import('pg'),
  ]);
  const pool = new pg.Pool({ connectionString: database.url, max: options.poolSize ?? 10 });
  // An idle connection dropped by the server must not crash the process; the
  // pool replaces it and /readyz reports the outage.
  pool.on('error', options.onConnectionError ?? (() => {}));
  const prisma = new PrismaClient({ adapter: new PrismaPg(pool) }) as unknown as Db;
  return {
    kind: database.kind,
    prisma,
    hot: requestScoped(postgresHotStatements(pool)),
    async close() {
      await prisma.$disconnect();
      await pool.end();
    },
  };
}
