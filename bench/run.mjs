#!/usr/bin/env node
// `npm run bench`: client_credentials throughput of Gatehouse against a raw oidc-provider.
//   (a) raw oidc-provider, in-memory adapter, plaintext secret   (bench/raw-provider.mjs)
//   (b) Gatehouse on SQLite (temp file), argon2id-hashed secret  (node dist/main.js)
//   (c) Gatehouse on PostgreSQL (fresh database, dropped after)   (skipped if unreachable)
//   (d) Gatehouse with WORKERS=2 and REDIS_URL, on SQLite and on PostgreSQL  (skipped without Redis)
//   (r) with --redis: (b) with REDIS_URL, to show Redis costs the token path nothing
// Each server is its own child process, all started up front; autocannon (in this process)
// loads one at a time over real HTTP on 127.0.0.1, in interleaved rounds (a b c, a b c, ...)
// so that drift in machine speed hits every setup alike. Medians are reported.
// Options (all optional):
//   --duration <s>     measured load per setup and round, seconds (default 10)
//   --warmup <s>       load per setup before measuring, discarded, seconds (default 5)
//   --rounds <n>       measured rounds (default 3)
//   --connections <n>  concurrent keep-alive connections (default 32)
//   --only a,b,c,d     run only these setups (default all four)
//   --flow <flow>      client_credentials (default) | introspection (of opaque access tokens, by the
//                      client they were issued to, without a token_type_hint; tokens made before the load)
//   --redis            also run (b) with REDIS_URL set
//   --log-level <lvl>  LOG_LEVEL of the Gatehouse servers (default warn)
//   --log-info         also run (b) with LOG_LEVEL=info, the server default, to show its cost
//   --cpu-prof <dir>   run the servers under node --cpu-prof, profiles written to <dir>
//                      (summarize one with: node bench/profile-top.mjs <dir>/sqlite.cpuprofile)
//   --compare <file>   also run (b) with another build's main.js (e.g. ../other-checkout/dist/main.js),
//                      to A/B a change in src/ under the same conditions
// Env: GATEHOUSE_BENCH_POSTGRES_URL (default postgresql://postgres@127.0.0.1:5432/postgres),
//      GATEHOUSE_BENCH_REDIS_URL (default redis://127.0.0.1:6379).
// CPU per request counts the server's whole process tree (a primary and its workers).
// Exit code: 0 ok; 1 if a server failed to start, the check request failed, or a load saw errors.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import pg from 'pg';
import { connect } from 'node:net';
import { ROOT, gatehouseCli, machineBusyMs, machineInfo, median, startServer, treeCpuMs } from './lib.mjs';

const RESOURCE = 'https://bench.example.com';
const SCOPE = 'read';
const BODY = `grant_type=client_credentials&resource=${encodeURIComponent(RESOURCE)}&scope=${SCOPE}`;
const PG_URL = process.env.GATEHOUSE_BENCH_POSTGRES_URL || 'postgresql://postgres@127.0.0.1:5432/postgres';
const REDIS_URL = process.env.GATEHOUSE_BENCH_REDIS_URL || 'redis://127.0.0.1:6379';
const TARGETS = { b: 0.9, c: 0.8 }; // minimum req/s ratio to (a)

const { values: opt } = parseArgs({
  options: {
    duration: { type: 'string', default: '10' },
    warmup: { type: 'string', default: '5' },
    rounds: { type: 'string', default: '3' },
    connections: { type: 'string', default: '32' },
    only: { type: 'string', default: 'a,b,c,d' },
    redis: { type: 'boolean', default: false },
    flow: { type: 'string', default: 'client_credentials' },
    'log-level': { type: 'string', default: 'warn' },
    'log-info': { type: 'boolean', default: false },
    'cpu-prof': { type: 'string' },
    compare: { type: 'string' },
  },
});
const INTROSPECTION = opt.flow === 'introspection';
if (!['client_credentials', 'introspection'].includes(opt.flow)) throw new Error(`unknown --flow ${opt.flow}`);
/** opaque tokens per server for the introspection flow, cycled through by the load */
const POOL = 500;
const DURATION = Number(opt.duration); // s
const WARMUP = Number(opt.warmup); // s
const ROUNDS = Number(opt.rounds);
const CONNECTIONS = Number(opt.connections);
const only = new Set(opt.only.split(','));
const say = (line = '') => process.stdout.write(`${line}\n`);

const tmp = mkdtempSync(join(tmpdir(), 'gatehouse-bench-'));
const children = new Set(); // live server processes
const servers = []; // started servers, stopped at the end
let dropPgDatabase; // set once the PostgreSQL database exists
let failed = false;
const serverOpts = { dir: tmp, children, cpuProfDir: opt['cpu-prof'] };

const headers = ({ id, secret }) => ({
  'content-type': 'application/x-www-form-urlencoded',
  // RFC 6749 §2.3.1: id and secret are form-encoded before base64
  authorization: `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`,
});

/**
 * One request must give 200 and an ES256 JWT access token (RFC 9068 typ at+jwt) before any load.
 * Returns its time in ms: Gatehouse's first request includes the one argon2id verify of the secret.
 */
async function checkToken(s) {
  const { label, url, client } = s;
  const started = performance.now();
  const res = await fetch(`${url}/token`, { method: 'POST', headers: headers(client), body: BODY });
  const json = await res.json().catch(() => ({}));
  if (res.status !== 200 || !json.access_token) throw new Error(`${label}: check request gave ${res.status}: ${JSON.stringify(json)}`);
  if (INTROSPECTION) {
    const seen = await introspect(s, json.access_token);
    if (seen.status !== 200 || seen.body.active !== true) throw new Error(`${label}: introspection gave ${seen.status}: ${JSON.stringify(seen.body)}`);
    return performance.now() - started;
  }
  const header = JSON.parse(Buffer.from(json.access_token.split('.')[0], 'base64url').toString());
  if (header.alg !== 'ES256' || header.typ !== 'at+jwt') throw new Error(`${label}: expected an ES256 at+jwt, got ${JSON.stringify(header)}`);
  return performance.now() - started;
}

async function introspect({ url, client }, token) {
  const res = await fetch(`${url}/token/introspection`, { method: 'POST', headers: headers(client), body: `token=${token}` });
  return { status: res.status, body: await res.json().catch(() => ({})) };
}

/** For the introspection flow: opaque tokens made ahead of the load, POOL per server. */
async function fillPool(s) {
  s.pool = [];
  for (let i = 0; i < POOL; i++) {
    const res = await fetch(`${s.url}/token`, { method: 'POST', headers: headers(s.client), body: BODY });
    s.pool.push((await res.json()).access_token);
  }
}

/** Fixed connections for a fixed time. Latency in ms; req/s is autocannon's mean of 1 s samples. */
const load = (s, seconds) => {
  if (!INTROSPECTION) {
    return autocannon({ url: `${s.url}/token`, method: 'POST', headers: headers(s.client), body: BODY, connections: CONNECTIONS, duration: seconds });
  }
  let next = 0;
  return autocannon({
    url: s.url, connections: CONNECTIONS, duration: seconds,
    requests: [{ method: 'POST', path: '/token/introspection', headers: headers(s.client), setupRequest: (req) => ({ ...req, body: `token=${s.pool[next++ % s.pool.length]}` }) }],
  });
};

/** One measured load, with CPU accounting: the server's own, this process's (autocannon), and the rest of the machine. */
async function measure(s) {
  const gone = () => s.exited && new Error(`${s.label}: the server exited during the run (${s.exited}):\n${s.logTail()}`);
  if (gone()) throw gone();
  const server0 = treeCpuMs(s.pid), busy0 = machineBusyMs(), self0 = process.cpuUsage();
  const r = await load(s, DURATION);
  if (gone()) throw gone();
  const serverMs = treeCpuMs(s.pid) - server0;
  const self = process.cpuUsage(self0);
  const selfMs = (self.user + self.system) / 1000;
  const otherMs = machineBusyMs() - busy0 - serverMs - selfMs;
  const bad = r.non2xx + r.errors + r.timeouts;
  if (bad) failed = true;
  const core = (ms) => Math.round((100 * ms) / (DURATION * 1000)); // % of one core
  const m = { rps: r.requests.average, p50: r.latency.p50, p99: r.latency.p99, bad, usPerReq: (1000 * serverMs) / r.requests.total, other: core(otherMs) };
  say(`  ${s.label.padEnd(38)} ${m.rps.toFixed(0).padStart(5)} req/s  p50 ${m.p50} ms  p99 ${m.p99} ms  ` +
    `server ${core(serverMs)}% of a core, ${m.usPerReq.toFixed(0)} µs CPU/req; load generator ${core(selfMs)}%, other processes ${core(otherMs)}%` +
    (bad ? `  ERRORS: ${r.non2xx} non-2xx, ${r.errors} socket errors, ${r.timeouts} timeouts` : ''));
  return m;
}

/** Creates the bench API and client with the real CLI; the client's secret is stored argon2id-hashed. */
function provisionGatehouse(databaseUrl, cli) {
  gatehouseCli(databaseUrl, ['resources', 'create', '--identifier', RESOURCE, '--scope', SCOPE, ...(INTROSPECTION ? ['--format', 'opaque'] : [])], tmp, cli);
  const c = gatehouseCli(databaseUrl, ['clients', 'create', '--name', 'bench', '--resource', RESOURCE], tmp, cli);
  if (!c.clientId || !c.clientSecret) throw new Error('clients create --json gave no clientId/clientSecret');
  return { id: c.clientId, secret: c.clientSecret };
}

async function startGatehouse(key, label, name, databaseUrl, logLevel, client, script = join(ROOT, 'dist', 'main.js'), extra = {}) {
  const env = (port) => ({
    DATABASE_URL: databaseUrl, LOG_LEVEL: logLevel, ISSUER: `http://127.0.0.1:${port}`, SHUTDOWN_TIMEOUT_MS: '1000',
    COOKIE_KEYS: `${randomBytes(32).toString('base64url')},${randomBytes(32).toString('base64url')}`, WORKERS: '1', ...extra,
  });
  const server = await startServer({ ...serverOpts, name, script, readyPath: '/readyz', envFor: env });
  servers.push(Object.assign(server, { key, label, client }));
}

/** Whether Redis answers at REDIS_URL (says why not). */
function redisReachable() {
  const { hostname, port } = new URL(REDIS_URL);
  return new Promise((resolve) => {
    const socket = connect(Number(port || 6379), hostname);
    socket.once('connect', () => { socket.end(); resolve(true); });
    socket.once('error', (err) => { say(`(d) and (r) skipped: Redis at ${REDIS_URL} is unreachable (${err.message})`); resolve(false); });
  });
}

/** A fresh database on the PostgreSQL server, or null (with a line saying why) when it is unreachable. */
async function createPgDatabase() {
  const admin = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 3000 });
  try {
    await admin.connect();
  } catch (err) {
    say(`(c) skipped: PostgreSQL at ${PG_URL} is unreachable (${err.message})`);
    return null;
  }
  const name = `gatehouse_bench_${randomBytes(6).toString('hex')}`;
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  dropPgDatabase = async () => {
    const c = new pg.Client({ connectionString: PG_URL });
    await c.connect();
    await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await c.end();
  };
  const url = new URL(PG_URL);
  url.pathname = `/${name}`;
  return url.toString();
}

async function main() {
  if (!existsSync(join(ROOT, 'dist', 'main.js'))) throw new Error('dist/main.js is missing: run `npm run build` first');
  const { cpu, nproc, node } = machineInfo();
  say(`gatehouse bench ${new Date().toISOString()}: node ${node}, nproc ${nproc}, ${cpu}`);
  say(`load: ${INTROSPECTION ? `POST /token/introspection of ${POOL} opaque tokens in turn (no hint)` : 'POST /token client_credentials + resource'}, ${CONNECTIONS} connections; per setup ${WARMUP} s warm-up, ` +
    `then ${ROUNDS} round(s) of ${DURATION} s; Gatehouse LOG_LEVEL=${opt['log-level']}\n`);

  // 1. Start every server and check one token from each (a failure here ends the run, exit 1).
  if (only.has('a')) {
    // id and secret shaped like the CLI's (12 and 32 random bytes), so requests are the same size
    const client = { id: randomBytes(12).toString('base64url'), secret: randomBytes(32).toString('base64url') };
    const env = () => ({ BENCH_CLIENT_ID: client.id, BENCH_CLIENT_SECRET: client.secret, BENCH_RESOURCE: RESOURCE, BENCH_SCOPE: SCOPE, BENCH_FORMAT: INTROSPECTION ? 'opaque' : 'jwt' });
    const server = await startServer({ ...serverOpts, name: 'raw', script: join(ROOT, 'bench', 'raw-provider.mjs'), readyPath: '/.well-known/openid-configuration', envFor: env });
    servers.push(Object.assign(server, { key: 'a', label: '(a) raw oidc-provider, memory', client }));
  }
  if (only.has('b')) {
    const dbUrl = `file:${join(tmp, 'gatehouse.db')}`;
    const client = provisionGatehouse(dbUrl);
    await startGatehouse('b', '(b) Gatehouse, SQLite', 'sqlite', dbUrl, opt['log-level'], client);
    if (opt['log-info']) await startGatehouse('b-info', '(b) Gatehouse, SQLite, LOG_LEVEL=info', 'sqlite-info', dbUrl, 'info', client);
    if (opt.compare) {
      // the other build gets a database of its own, made by its own CLI: its migrations may differ
      const compareDb = `file:${join(tmp, 'gatehouse-compare.db')}`;
      const compareClient = provisionGatehouse(compareDb, join(dirname(resolve(opt.compare)), '..', 'bin', 'gatehouse.js'));
      await startGatehouse('b-compare', "(b') --compare build, SQLite", 'sqlite-compare', compareDb, opt['log-level'], compareClient, resolve(opt.compare));
    }
  }
  const withRedis = (only.has('d') || opt.redis) && (await redisReachable());
  if (opt.redis && withRedis) {
    const dbUrl = `file:${join(tmp, 'gatehouse-redis.db')}`;
    await startGatehouse('r', '(r) Gatehouse, SQLite, REDIS_URL', 'sqlite-redis', dbUrl, opt['log-level'], provisionGatehouse(dbUrl), undefined, { REDIS_URL });
  }
  let pgUrl;
  if (only.has('c') || (only.has('d') && withRedis)) pgUrl = await createPgDatabase();
  if (only.has('c') && pgUrl) await startGatehouse('c', '(c) Gatehouse, PostgreSQL', 'postgresql', pgUrl, opt['log-level'], provisionGatehouse(pgUrl));
  if (only.has('d') && withRedis) {
    const fleet = { WORKERS: '2', REDIS_URL };
    const dbUrl = `file:${join(tmp, 'gatehouse-workers.db')}`;
    await startGatehouse('d', '(d) WORKERS=2 + Redis, SQLite', 'sqlite-workers', dbUrl, opt['log-level'], provisionGatehouse(dbUrl), undefined, fleet);
    if (pgUrl) {
      const client = only.has('c') ? servers.find((s) => s.key === 'c').client : provisionGatehouse(pgUrl);
      await startGatehouse('d-pg', '(d) WORKERS=2 + Redis, PostgreSQL', 'postgresql-workers', pgUrl, opt['log-level'], client, undefined, fleet);
    }
  }
  for (const s of servers) {
    const [first, second] = [await checkToken(s), await checkToken(s)]; // ms
    say(`${s.label}: checked (${INTROSPECTION ? 'opaque token introspected active' : '200, ES256 at+jwt'}); first request ${first.toFixed(1)} ms, second ${second.toFixed(1)} ms`);
    if (INTROSPECTION) await fillPool(s);
  }

  // 2. Warm-up (JIT, the first argon2 verify in Gatehouse, caches), then interleaved measured rounds.
  if (WARMUP > 0) for (const s of servers) await load(s, WARMUP);
  const results = Object.fromEntries(servers.map((s) => [s.key, []]));
  for (let round = 1; round <= ROUNDS; round++) {
    say(`round ${round}/${ROUNDS}`);
    for (const s of servers) results[s.key].push(await measure(s));
  }

  // 3. Medians over rounds (and the best round's req/s); ratios are of median req/s, and of server CPU
  //    per request, which other load on the machine disturbs less than req/s.
  const sum = Object.fromEntries(servers.map((s) => {
    const ms = results[s.key];
    const med = Object.fromEntries(['rps', 'p50', 'p99', 'usPerReq'].map((k) => [k, median(ms.map((m) => m[k]))]));
    return [s.key, { label: s.label, bad: ms.reduce((n, m) => n + m.bad, 0), best: Math.max(...ms.map((m) => m.rps)), ...med }];
  }));
  say(`\nmedians over ${ROUNDS} round(s):`);
  say(`${'setup'.padEnd(38)}  ${'req/s'.padStart(6)}  best  p50 ms  p99 ms  errors  µs CPU/req  req/s vs (a)  CPU/req (a)/x`);
  for (const s of Object.values(sum)) {
    const vsA = (x) => (sum.a ? x.toFixed(2) : '-');
    say(`${s.label.padEnd(38)}  ${s.rps.toFixed(0).padStart(6)}  ${s.best.toFixed(0).padStart(4)}  ${String(s.p50).padStart(6)}  ${String(s.p99).padStart(6)}  ` +
      `${String(s.bad).padStart(6)}  ${s.usPerReq.toFixed(0).padStart(10)}  ${vsA(s.rps / sum.a?.rps).padStart(12)}  ${vsA(sum.a?.usPerReq / s.usPerReq).padStart(13)}`);
  }
  say();
  for (const [key, target] of Object.entries(TARGETS)) {
    if (!sum.a || !sum[key]) continue;
    const ratio = sum[key].rps / sum.a.rps;
    say(`${key}/a = ${ratio.toFixed(2)} (target >= ${target}: ${ratio >= target ? 'met' : 'NOT met'})`);
  }
  // (d): the throughput workers add, and whether they add work per token (CPU of the whole process tree)
  for (const [d, base] of [['d', 'b'], ['d-pg', 'c']]) {
    if (!sum[d] || !sum[base]) continue;
    const gain = sum[d].rps / sum[base].rps;
    const cpu = sum[d].usPerReq / sum[base].usPerReq;
    say(`${d}/${base} = ${gain.toFixed(2)}x req/s (goal >= 1.3x); CPU per token ${(100 * (cpu - 1)).toFixed(0)}% vs (${base}) (goal within 10%)`);
  }
  if (sum.r && sum.b) say(`r/b = ${(sum.r.rps / sum.b.rps).toFixed(2)} (REDIS_URL set: the token path should not notice)`);
  // Other work on the machine (another build or test run; PostgreSQL itself in (c)) takes CPU from the server.
  const other = median(Object.values(results).flat().map((m) => m.other));
  if (other > 20) say(`NOTE: other processes used a median ${other}% of a core during the loads: req/s are depressed and noisy; compare µs CPU/req`);
  if (Object.values(sum).some((s) => s.bad)) say('WARNING: some loads had errors (non-2xx, socket errors or timeouts); those numbers are not valid');
}

let cleaning;
function cleanup() {
  cleaning ??= (async () => {
    await Promise.all(servers.map((s) => s.stop()));
    for (const child of children) child.kill('SIGKILL');
    if (dropPgDatabase) await dropPgDatabase().catch((err) => process.stderr.write(`could not drop the bench database: ${err.message}\n`));
    rmSync(tmp, { recursive: true, force: true });
  })();
  return cleaning;
}

// Ctrl-C, a crash, or a closed stdout (`npm run bench | head`) must still stop servers and drop the database.
const abort = (code, why) => () => {
  process.stderr.write(`bench stopped (${why}): cleaning up\n`);
  void cleanup().finally(() => process.exit(code));
};
process.on('SIGINT', abort(130, 'SIGINT'));
process.on('SIGTERM', abort(143, 'SIGTERM'));
process.on('uncaughtException', (err) => abort(1, err.code === 'EPIPE' ? 'stdout closed' : `crash: ${err.stack}`)());
process.stdout.on('error', () => {}); // EPIPE: the run goes on, its output unread
main()
  .catch((err) => { failed = true; if (!cleaning) process.stderr.write(`bench failed: ${err.message}\n`); })
  .finally(async () => { await cleanup(); process.exit(failed ? 1 : 0); });
