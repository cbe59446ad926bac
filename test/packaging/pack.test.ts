import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, ROOT } from '../support/processes.js';
import { buildAsDockerfile, packFromBuild, type Packed } from '../support/packaging-build.js';

/**
 * The npm package as shipped (issue 18): `npm pack` of a checkout built the
 * way the image builds it, installed from the tarball into an empty folder
 * outside the repository (npm fetches its dependencies; nothing of the
 * repository's node_modules is there), then the CLI and the server run from
 * node_modules/gatehouse.
 */

const env = (extra: Record<string, string> = {}) => ({ PATH: process.env.PATH, HOME: process.env.HOME, ...extra });

describe('the npm package, packed, installed into an empty folder and run', () => {
  let packed: Packed;
  let dir: string;
  let install: string;
  let server: ChildProcess | undefined;
  let output = '';

  const npx = (args: string[], extra: Record<string, string> = {}) => {
    const r = spawnSync('npx', ['--no', '--', 'gatehouse', ...args], { cwd: install, env: env(extra), encoding: 'utf8' });
    return { code: r.status, stdout: r.stdout, stderr: r.stderr };
  };

  beforeAll(async () => {
    const build = await buildAsDockerfile();
    packed = packFromBuild(build);
    dir = packed.dir;
    install = join(dir, 'install');
    mkdirSync(install);
    writeFileSync(join(install, 'package.json'), JSON.stringify({ name: 'gatehouse-install-check', private: true }));
    const r = spawnSync('npm', ['install', '--no-audit', '--no-fund', packed.tarball], { cwd: install, env: env(), encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`npm install ${packed.tarball} failed (${r.status}):\n${r.stdout}\n${r.stderr}`);
  }, 20 * 60_000);

  afterAll(async () => {
    if (server && server.exitCode === null) {
      const exited = new Promise((r) => server!.on('exit', r));
      server.kill('SIGTERM');
      await exited;
    }
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('holds what the server and the CLI read at run time, and no sources or tests', () => {
    const files = packed.files;
    const needed = [
      'package.json', 'bin/gatehouse.js', 'dist/main.js', 'dist/cli/index.js', 'dist/resource-kit/index.js', 'dist/resource-kit/index.d.ts',
      'dist/generated/sqlite/query_compiler_bg.wasm', 'dist/generated/postgresql/query_compiler_bg.wasm',
      'views/login.eta', 'views/consent.eta', 'views/layout.eta', 'views/style.css',
    ];
    expect(needed.filter((f) => !files.includes(f))).toEqual([]);
    for (const kind of ['sqlite', 'postgresql']) {
      expect(files.filter((f) => f.startsWith(`prisma/${kind}/migrations/`) && f.endsWith('/migration.sql')).length).toBeGreaterThan(0);
    }
    expect(files.filter((f) => /^(src|test|scripts|bench|docs|\.ci|node_modules|data)\//.test(f) || /\.db$|^tsconfig/.test(f))).toEqual([]);
  });

  it('installs with its runtime dependencies and none of the dev ones', () => {
    const has = (p: string) => existsSync(join(install, 'node_modules', p));
    expect(['gatehouse/dist/main.js', 'openid-client', 'oidc-provider', '@prisma/client', 'better-sqlite3', 'argon2'].filter((p) => !has(p))).toEqual([]);
    expect(['typescript', 'jest', 'prisma', 'playwright-core'].filter(has)).toEqual([]);
    expect(install.startsWith(ROOT)).toBe(false);
  });

  it('runs `npx gatehouse --help`', () => {
    const r = npx(['--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/clients/);
    expect(r.stdout).toMatch(/migrate/);
  });

  it('migrates a fresh SQLite file with `npx gatehouse migrate`', () => {
    const file = join(dir, 'data', 'gatehouse.db');
    mkdirSync(join(dir, 'data'));
    const r = npx(['migrate'], { DATABASE_URL: `file:${file}` });
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
    expect(existsSync(file)).toBe(true);
    // the package's own migrations were applied: a second run has nothing to do and succeeds
    expect(npx(['migrate'], { DATABASE_URL: `file:${file}` }).code).toBe(0);
    expect(readFileSync(file).subarray(0, 15).toString()).toBe('SQLite format 3');
  });

  it('starts the server from node_modules/gatehouse in production, ready and serving its views', async () => {
    const port = await freePort();
    const issuer = 'https://login.example.com';
    server = spawn(process.execPath, [join(install, 'node_modules/gatehouse/dist/main.js')], {
      cwd: install,
      env: env({
        NODE_ENV: 'production', PORT: String(port), WORKERS: '1', ISSUER: issuer, TRUST_PROXY: 'true',
        DATABASE_URL: `file:${join(dir, 'data', 'gatehouse.db')}`,
        COOKIE_KEYS: randomBytes(32).toString('base64url'), KEY_ENCRYPTION_KEY: randomBytes(32).toString('base64url'),
      }),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    server.stdout!.on('data', (d) => (output += d));
    server.stderr!.on('data', (d) => (output += d));
    const deadline = Date.now() + 60_000;
    let status = 0;
    while (status !== 200) {
      if (server.exitCode !== null) throw new Error(`the packaged server exited with ${server.exitCode}:\n${output.slice(-6000)}`);
      if (Date.now() > deadline) throw new Error(`the packaged server did not become ready:\n${output.slice(-6000)}`);
      status = await fetch(`http://localhost:${port}/readyz`).then((r) => r.status, () => 0);
      if (status !== 200) await new Promise((r) => setTimeout(r, 200));
    }
    expect(status).toBe(200);
    const https = { 'x-forwarded-proto': 'https', host: 'login.example.com' };
    const discovery = await fetch(`http://localhost:${port}/.well-known/openid-configuration`, { headers: https });
    expect(discovery.status).toBe(200);
    expect(((await discovery.json()) as { issuer: string }).issuer).toBe(issuer);
    // the stylesheet comes from the package's views/
    const css = await fetch(`http://localhost:${port}/assets/style.css`, { headers: https });
    expect(css.status).toBe(200);
    expect(await css.text()).toContain(readFileSync(join(install, 'node_modules/gatehouse/views/style.css'), 'utf8').slice(0, 300));
  });
});

// the temp folders are outside the repository
if (tmpdir().startsWith(ROOT)) throw new Error('the system temp folder is inside the repository: the packaging tests need one outside it');
