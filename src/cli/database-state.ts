import { existsSync, readdirSync } from 'node:fs';
import { isAbsolute } from 'node:path';
import type { Config } from '../config.js';
import { migrationsDir } from '../storage/migrate.js';
import { sqlitePath } from '../storage/database.js';
import { CliError } from './context.js';

/**
 * Only `gatehouse migrate` (and the server's start) creates or migrates a
 * database. Every other command checks first that DATABASE_URL names one that
 * exists and has every migration of this version, and writes nothing when it
 * does not: a command run from the wrong folder, or with a mistyped path, must
 * not leave a new empty database behind and report "no clients".
 */

const HOW = 'run `gatehouse migrate` (or start the server, which migrates)';

/** A PostgreSQL URL without its password, fit for a message. */
export function redactedUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '';
    u.searchParams.delete('password');
    return u.toString();
  } catch {
    return 'the DATABASE_URL';
  }
}

/** The migrations this version knows, by name (their folders). */
function knownMigrations(kind: Config['database']['kind']): string[] {
  const dir = migrationsDir(kind);
  return readdirSync(dir, { withFileTypes: true }).filter((d) => d.isDirectory() && existsSync(`${dir}/${d.name}/migration.sql`)).map((d) => d.name);
}

interface Applied {
  migration_name: string;
  finished_at: unknown;
  rolled_back_at: unknown;
}

/** Compares what the database has applied with what this version knows. */
function verdict(where: string, kind: Config['database']['kind'], applied: Applied[] | null): void {
  if (applied === null) throw new CliError(`the database at ${where} has no Gatehouse tables: ${HOW}`);
  const known = knownMigrations(kind);
  const done = new Set<string>();
  for (const row of applied) {
    if (row.rolled_back_at) continue;
    if (!row.finished_at) throw new CliError(`migration ${row.migration_name} started but did not finish in ${where}; resolve it by hand`);
    if (!known.includes(row.migration_name)) throw new CliError(`the database at ${where} has migration ${row.migration_name}, which this version of Gatehouse does not know (upgrade the CLI)`);
    done.add(row.migration_name);
  }
  const pending = known.filter((m) => !done.has(m));
  if (pending.length === known.length) throw new CliError(`the database at ${where} is not migrated: ${HOW}`);
  if (pending.length) throw new CliError(`the database at ${where} lacks ${pending.length} migration(s) of this version (${pending.join(', ')}): ${HOW}`);
}

const SELECT_APPLIED = 'SELECT migration_name, finished_at, rolled_back_at FROM "_prisma_migrations"';

async function checkSqlite(url: string): Promise<void> {
  const path = sqlitePath(url);
  const relative = !isAbsolute(url.replace(/^file:/, '').replace(/\?.*$/, ''));
  const where = `${path}${relative ? ` (DATABASE_URL ${url.replace(/\?.*$/, '')} is relative to the current folder)` : ''}`;
  if (!existsSync(path)) throw new CliError(`no database at ${where}: ${HOW} to create it`);
  const { default: Sqlite } = await import('better-sqlite3');
  let db: InstanceType<typeof Sqlite>;
  try {
    // fileMustExist: never creates the file, even if it vanished since the check above
    db = new Sqlite(path, { fileMustExist: true, timeout: 5000 });
  } catch (err) {
    throw new CliError(`cannot open the database at ${where}: ${(err as Error).message}`);
  }
  try {
    let applied: Applied[] | null;
    try {
      const table = db.prepare(`SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '_prisma_migrations'`).get();
      applied = table ? (db.prepare(SELECT_APPLIED).all() as Applied[]) : null;
    } catch (err) {
      throw new CliError(`cannot read the database at ${where}: ${(err as Error).message}`);
    }
    verdict(where, 'sqlite', applied);
  } finally {
    db.close();
  }
}

async function checkPostgres(url: string): Promise<void> {
  const where = redactedUrl(url);
  const { default: pg } = await import('pg');
  const client = new pg.Client({ connectionString: url });
  try {
    await client.connect();
  } catch (err) {
    const e = err as Error & { code?: string };
    // 3D000: invalid_catalog_name; `migrate` does not create a PostgreSQL database either
    if (e.code === '3D000') throw new CliError(`no database at ${where}: create it (createdb), then run \`gatehouse migrate\``);
    throw new CliError(`cannot connect to ${where}: ${e.message || e.code || 'connection failed'}`);
  }
  try {
    const { rows } = await client.query<{ present: boolean }>(`SELECT to_regclass('_prisma_migrations') IS NOT NULL AS present`);
    const applied = rows[0]?.present ? (await client.query<Applied>(SELECT_APPLIED)).rows : null;
    verdict(where, 'postgresql', applied);
  } finally {
    await client.end().catch(() => {});
  }
}

/** Refuses (exit 1, one line) a database that is missing or not fully migrated; creates and changes nothing. */
export async function assertMigrated(database: Config['database']): Promise<void> {
  if (database.kind === 'sqlite') await checkSqlite(database.url);
  else await checkPostgres(database.url);
}
