#!/usr/bin/env node
// `npm run dev`: a whole sign-in on this machine, with no GitHub or Google app.
//
//   - a development upstream (a real OpenID Provider, dist/dev/upstream.js) on PORT_BASE+1,
//     whose login page takes any name and email;
//   - Gatehouse (dist/main.js) on PORT_BASE, told about that upstream through the ordinary
//     generic OIDC variables (OIDC_PROVIDERS=dev, OIDC_DEV_ISSUER, …), nothing else;
//   - the sample app (examples/sample-app/server.mjs) on PORT_BASE+2, registered in
//     Gatehouse with `gatehouse seed` on every start (idempotent).
//
// DEV_PORT_BASE (default 3000) and DEV_DATA_DIR (default ./data) move it. Ctrl-C or
// SIGTERM stops all three. Refused when NODE_ENV=production.
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const say = (line) => process.stdout.write(`${line}\n`);
const fail = (message) => {
  process.stderr.write(`npm run dev: ${message}\n`);
  process.exit(1);
};

if (process.env.NODE_ENV === 'production') {
  fail('refused: NODE_ENV=production. This starts a test sign-in provider that lets anyone be anyone; it is for development only. Use `npm start` in production.');
}

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const MAIN = join(ROOT, 'dist', 'main.js');
const CLI = join(ROOT, 'bin', 'gatehouse.js');
const UPSTREAM = join(ROOT, 'dist', 'dev', 'upstream.js');
const SAMPLE_APP = join(ROOT, 'examples', 'sample-app', 'server.mjs');
if (!existsSync(MAIN) || !existsSync(UPSTREAM)) fail('dist/ is missing or out of date: run `npm install` (or `npm run build`) first.');

const base = Number(process.env.DEV_PORT_BASE || 3000);
if (!Number.isInteger(base) || base < 1 || base > 65533) fail('DEV_PORT_BASE must be a port number (three ports from it are used)');
const ports = { gatehouse: base, upstream: base + 1, app: base + 2 };
const urls = {
  gatehouse: `http://localhost:${ports.gatehouse}`,
  upstream: `http://localhost:${ports.upstream}`,
  app: `http://localhost:${ports.app}`,
};
const dataDir = resolve(process.env.DEV_DATA_DIR || 'data');
mkdirSync(dataDir, { recursive: true });
const databaseUrl = `file:${join(dataDir, 'gatehouse.db')}`;

/** Secrets of this data folder, made once: sessions and registrations survive a restart. */
function devSecrets() {
  const file = join(dataDir, 'dev-secrets.json');
  const secret = () => randomBytes(32).toString('base64url');
  let stored = {};
  try {
    stored = JSON.parse(readFileSync(file, 'utf8'));
  } catch {
    // first run
  }
  const secrets = {
    cookieKey: stored.cookieKey ?? secret(),
    upstreamClientSecret: stored.upstreamClientSecret ?? secret(),
    sampleAppSecret: stored.sampleAppSecret ?? secret(),
  };
  if (JSON.stringify(secrets) !== JSON.stringify(stored)) writeFileSync(file, `${JSON.stringify(secrets, null, 2)}\n`, { mode: 0o600 });
  return secrets;
}
const secrets = devSecrets();

// Only loopback unless HOST says otherwise: the test provider believes anyone.
const host = process.env.HOST || '127.0.0.1';
const childEnv = (extra) => ({ ...process.env, NODE_ENV: process.env.NODE_ENV || 'development', ...extra });

// 1. The sample app in Gatehouse: the same seed on every start (created once, then unchanged).
const seedFile = join(dataDir, 'dev-seed.json');
writeFileSync(seedFile, `${JSON.stringify({
  clients: [{
    clientId: 'sample-app',
    name: 'Sample app',
    grantTypes: ['authorization_code', 'refresh_token'],
    redirectUris: [`${urls.app}/callback`],
    postLogoutRedirectUris: [`${urls.app}/`],
    secret: secrets.sampleAppSecret,
  }],
}, null, 2)}\n`, { mode: 0o600 });
const cli = (...args) => spawnSync(process.execPath, [CLI, ...args], { cwd: ROOT, env: childEnv({ DATABASE_URL: databaseUrl }), encoding: 'utf8' });
const migrated = cli('migrate');
if (migrated.status !== 0) fail(`preparing the database failed:\n${migrated.stderr || migrated.stdout}`);
const seeded = cli('seed', seedFile);
if (seeded.status !== 0) fail(`registering the sample app failed:\n${seeded.stderr || seeded.stdout}`);

// 2. The development upstream, in this process.
const { startDevUpstream } = await import(pathToFileURL(UPSTREAM).href);
let upstream;
try {
  upstream = await startDevUpstream({
    issuer: urls.upstream,
    host,
    clientId: 'gatehouse-dev',
    clientSecret: secrets.upstreamClientSecret,
    redirectUris: [`${urls.gatehouse}/oauth2/dev/callback`],
  });
} catch (err) {
  fail(`the test sign-in provider could not start on port ${ports.upstream}: ${err.message}${err.code === 'EADDRINUSE' ? ' (set DEV_PORT_BASE to use other ports)' : ''}`);
}

// 3. Gatehouse and the sample app, as child processes.
const children = [];
let stopping = false;

function start(name, script, env) {
  const child = spawn(process.execPath, [script], { cwd: ROOT, env: childEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
  let tail = '';
  const relay = (stream, out) => stream.on('data', (d) => {
    tail = (tail + d).slice(-4000);
    out.write(String(d).replace(/^(?=.)/gm, `[${name}] `));
  });
  // quiet until something goes wrong: Gatehouse logs at warn unless LOG_LEVEL says otherwise
  relay(child.stdout, process.stdout);
  relay(child.stderr, process.stderr);
  child.on('exit', (code, signal) => {
    if (stopping) return;
    // Ctrl-C reaches the whole process group: a child may stop before this process hears it
    if (code === 0 || signal === 'SIGINT') return stop(0);
    process.stderr.write(`npm run dev: ${name} stopped (${signal ?? `exit code ${code}`}); stopping the others\n`);
    stop(1);
  });
  children.push(child);
  return { child, tail: () => tail };
}

async function waitFor(url, what) {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (stopping) return;
    try {
      if ((await fetch(url)).ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  process.stderr.write(`npm run dev: ${what} did not answer at ${url} within 30 s\n`);
  stop(1);
}

function stop(code = 0) {
  if (stopping) return;
  stopping = true;
  const exits = children.filter((c) => c.exitCode === null && c.signalCode === null).map((c) => new Promise((r) => {
    c.once('exit', r);
    c.kill('SIGTERM');
  }));
  const force = setTimeout(() => {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  }, 10_000);
  force.unref();
  Promise.all([...exits, upstream?.close()]).then(() => process.exit(code));
}
process.on('SIGINT', () => stop(0));
process.on('SIGTERM', () => stop(0));

start('gatehouse', MAIN, {
  PORT: String(ports.gatehouse),
  HOST: host,
  ISSUER: urls.gatehouse,
  DATABASE_URL: databaseUrl,
  COOKIE_KEYS: process.env.COOKIE_KEYS || secrets.cookieKey,
  LOG_LEVEL: process.env.LOG_LEVEL || 'warn',
  OIDC_PROVIDERS: [process.env.OIDC_PROVIDERS, 'dev'].filter(Boolean).join(','),
  OIDC_DEV_ISSUER: urls.upstream,
  OIDC_DEV_CLIENT_ID: 'gatehouse-dev',
  OIDC_DEV_CLIENT_SECRET: secrets.upstreamClientSecret,
  OIDC_DEV_NAME: 'Test person (development)',
});
await waitFor(`${urls.gatehouse}/readyz`, 'Gatehouse');

start('sample app', SAMPLE_APP, {
  PORT: String(ports.app),
  HOST: host,
  APP_URL: urls.app,
  GATEHOUSE_ISSUER: urls.gatehouse,
  CLIENT_ID: 'sample-app',
  CLIENT_SECRET: secrets.sampleAppSecret,
});
await waitFor(`${urls.app}/`, 'the sample app');

if (!stopping) {
  const shownDir = relative(process.cwd(), dataDir) || '.';
  say('');
  say(`Ready. Open the sample app and press "Sign in":  ${urls.app}`);
  say(`  Gatehouse          ${urls.gatehouse}   (your account: ${urls.gatehouse}/account)`);
  say(`  Console            ${urls.gatehouse}/console   (${process.env.CONSOLE_ADMIN_EMAIL ? `sign in as ${process.env.CONSOLE_ADMIN_EMAIL}, the first admin` : 'set CONSOLE_ADMIN_EMAIL=you@example.com for its first admin'})`);
  say(`  Test person        ${urls.upstream}   (development only: type any name and email)`);
  say(`  Data               ${shownDir.startsWith('..') ? dataDir : `./${shownDir}`}   (SQLite gatehouse.db, dev-secrets.json)`);
  say('Ctrl-C stops all three.');
}
