import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createTestDatabase, type TestDatabase } from '../support/databases.js';
import { ROOT, freePort, startServer, type RunningServer } from '../support/processes.js';

/**
 * The README's quick start, executed: the shell blocks of its "Quick start"
 * section (all but the first, `npm install` and `npm start`, which this test
 * does itself with the built server on a fresh database) run in order, as
 * pasted, in one bash, from the repository root. Only the ports move, to free
 * ones. So the README cannot drift from what the commands do.
 */

const README = readFileSync(join(ROOT, 'README.md'), 'utf8');

function quickStartBlocks(): string[] {
  const section = README.split('\n## Quick start')[1]?.split('\n## ')[0] ?? '';
  return [...section.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]);
}

describe('the README quick start', () => {
  let db: TestDatabase;
  let server: RunningServer;

  beforeAll(async () => {
    db = await createTestDatabase('sqlite');
    server = await startServer({ DATABASE_URL: db.url });
  });
  afterAll(async () => {
    await server?.stop();
    await db?.drop();
  });

  it('has the blocks this test runs: start, then register and get a token, then call the API', () => {
    const blocks = quickStartBlocks();
    expect(blocks[0]).toMatch(/npm install[\s\S]*npm start/);
    expect(blocks.length).toBeGreaterThanOrEqual(3);
  });

  it('runs as pasted and ends with the protected API answering the token, and refusing none', async () => {
    const apiPort = await freePort();
    const gatehousePort = new URL(server.url).port;
    const script = quickStartBlocks().slice(1).join('\n')
      .replaceAll('localhost:3000', `localhost:${gatehousePort}`)
      .replaceAll('localhost:4000', `localhost:${apiPort}`);
    const run = spawnSync('bash', ['-c', `set -euo pipefail\ntrap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n${script}`], {
      cwd: ROOT,
      encoding: 'utf8',
      timeout: 90_000,
      // the example API reads ISSUER and PORT; the CLI reads DATABASE_URL
      env: { PATH: process.env.PATH, HOME: process.env.HOME, DATABASE_URL: db.url, ISSUER: server.url, PORT: String(apiPort) },
    });
    expect({ status: run.status, stderr: run.status === 0 ? '' : run.stderr }).toEqual({ status: 0, stderr: '' });
    expect(run.stdout).toMatch(/^eyJ[\w-]+\.[\w-]+\.[\w-]+$/m);
    const answer = run.stdout.split('\n').find((l) => l.startsWith('{"message"'));
    expect(JSON.parse(answer ?? '{}')).toMatchObject({ message: 'Hello from a protected API', scope: 'read:things' });
    expect(run.stdout.split('\n')).toContain('401');
  });
});
