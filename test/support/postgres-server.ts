import { execFileSync, spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './processes.js';

/**
 * A PostgreSQL server of the test's own (Debian's initdb and pg_ctl, as the
 * `postgres` user), on its own port and data directory, so a test can stop
 * and start it (an outage) while the machine's shared server stays up.
 */

const BIN = existsSync('/usr/lib/postgresql') ? readdirSync('/usr/lib/postgresql').map((v) => `/usr/lib/postgresql/${v}/bin`).find((b) => existsSync(`${b}/pg_ctl`)) : undefined;
const AS_POSTGRES = process.getuid?.() === 0 && spawnSync('id', ['-u', 'postgres']).status === 0;

let warned = false;
export function ownPostgresAvailable(): boolean {
  const ok = Boolean(BIN) && AS_POSTGRES;
  if (!ok && !warned) {
    warned = true;
    process.stderr.write('PostgreSQL outage tests skipped: they need Debian\'s postgresql binaries and root (to run initdb as postgres)\n');
  }
  return ok;
}

export interface OwnPostgres {
  url: string;
  stop(): void;
  start(): void;
  destroy(): void;
}

const asPostgres = (args: string[]) => execFileSync('runuser', ['-u', 'postgres', '--', ...args], { stdio: 'pipe' });

export async function startOwnPostgres(): Promise<OwnPostgres> {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-pg-'));
  chownSync(dir, Number(execFileSync('id', ['-u', 'postgres']).toString()), Number(execFileSync('id', ['-g', 'postgres']).toString()));
  const port = await freePort();
  asPostgres([`${BIN}/initdb`, '-D', `${dir}/data`, '-U', 'postgres', '--auth=trust']);
  const start = () => void asPostgres([`${BIN}/pg_ctl`, '-D', `${dir}/data`, '-o', `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1`, '-l', `${dir}/log`, '-w', 'start']);
  const stop = () => void asPostgres([`${BIN}/pg_ctl`, '-D', `${dir}/data`, '-m', 'fast', '-w', 'stop']);
  start();
  return {
    url: `postgresql://postgres@127.0.0.1:${port}/postgres`,
    start,
    stop,
    destroy() {
      try {
        stop();
      } catch {
        // already stopped
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
