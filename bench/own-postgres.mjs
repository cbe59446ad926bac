// The bench's own PostgreSQL server: Debian's initdb and pg_ctl (as the `postgres` user), on a free
// port and a temporary data directory, with
// - shared_buffers sized for the data the run holds (1 GB; 4 GB with --seed-large, which holds the
//   large databases' tables and indexes in memory): the machine's shared server has 128 MB;
// - pg_stat_statements, so the run can count the statements each request costs, per database
//   (BEGIN and COMMIT included: track_utility is on).
// Everything else is PostgreSQL's default (fsync and synchronous_commit on), as in production.
// Without root or Debian's binaries the bench uses the shared server, and counts nothing.
import { execFileSync, spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';

const BIN = existsSync('/usr/lib/postgresql')
  ? readdirSync('/usr/lib/postgresql').map((v) => `/usr/lib/postgresql/${v}/bin`).find((b) => existsSync(`${b}/pg_ctl`))
  : undefined;
const asPostgres = (args) => execFileSync('runuser', ['-u', 'postgres', '--', ...args], { stdio: 'pipe' });

/** Why the bench cannot start its own server here, or null when it can. */
export function ownPostgresUnavailable() {
  if (!BIN) return "Debian's PostgreSQL binaries are not installed";
  if (process.getuid?.() !== 0 || spawnSync('id', ['-u', 'postgres']).status !== 0) return 'it needs root and a postgres user (initdb runs as postgres)';
  return null;
}

/** Starts the server; { url, sharedBuffers, stop() }. */
export function startOwnPostgres({ port, sharedBuffers }) {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-bench-pg-'));
  const id = (flag) => Number(execFileSync('id', [flag, 'postgres']).toString());
  chownSync(dir, id('-u'), id('-g'));
  asPostgres([`${BIN}/initdb`, '-D', `${dir}/data`, '-U', 'postgres', '--auth=trust', '--no-sync']);
  const options = [`-p ${port}`, `-k ${dir}`, '-c listen_addresses=127.0.0.1', `-c shared_buffers=${sharedBuffers}`,
    '-c shared_preload_libraries=pg_stat_statements', '-c pg_stat_statements.track_utility=on', '-c pg_stat_statements.max=10000'];
  asPostgres([`${BIN}/pg_ctl`, '-D', `${dir}/data`, '-o', options.join(' '), '-l', `${dir}/log`, '-w', 'start']);
  const url = `postgresql://postgres@127.0.0.1:${port}/postgres`;
  return {
    url,
    sharedBuffers,
    stop() {
      try {
        asPostgres([`${BIN}/pg_ctl`, '-D', `${dir}/data`, '-m', 'immediate', '-w', 'stop']);
      } catch {
        // already stopped
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Statements executed so far per database, from pg_stat_statements (null where the extension is
 * not there). Read over a connection to the `postgres` database, which the setups do not use.
 */
export async function statementCounter(adminUrl) {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    await client.query('CREATE EXTENSION IF NOT EXISTS pg_stat_statements');
    await client.query('SELECT calls FROM pg_stat_statements LIMIT 1');
  } catch {
    await client.end();
    return null;
  }
  return {
    /** database name -> statements so far */
    async read() {
      const { rows } = await client.query(`SELECT d.datname AS name, sum(s.calls)::float8 AS calls
        FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid GROUP BY d.datname`);
      return Object.fromEntries(rows.map((r) => [r.name, r.calls]));
    },
    /** statement text -> calls so far, for one database */
    async byStatement(database) {
      const { rows } = await client.query(`SELECT s.query, sum(s.calls)::float8 AS calls FROM pg_stat_statements s
        JOIN pg_database d ON d.oid = s.dbid WHERE d.datname = $1 GROUP BY s.query`, [database]);
      return new Map(rows.map((r) => [r.query, r.calls]));
    },
    end: () => client.end(),
  };
}
