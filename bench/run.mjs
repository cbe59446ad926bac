#!/usr/bin/env node
// `npm run bench`: every hot flow of Gatehouse side by side with a raw oidc-provider doing the
// same protocol work (bench/flows.mjs says what each flow is).
//   (a) raw oidc-provider, in-memory adapter, plaintext secrets      (bench/raw-provider.mjs)
//   (p) the same raw oidc-provider on a plain PostgreSQL adapter: one JSONB table, one query per
//       find/upsert (bench/raw-pg-adapter.mjs), what a team would build itself: the fair anchor
//   (b) Gatehouse on SQLite (temp file), argon2id-hashed secrets     (node dist/main.js)
//   (c) Gatehouse on PostgreSQL (fresh database, dropped after)      (skipped if unreachable)
//   (d) with --only …,d: Gatehouse with WORKERS=2 and REDIS_URL, on SQLite and PostgreSQL
//   (r) with --redis: (b) with REDIS_URL, to show Redis costs the token path nothing
//   (B), (C) with --seed-large: (b) and (c) on databases filled with 100,000 clients, 1,000,000
//       grants with their refresh tokens and 1,000,000 opaque access tokens (bench/seed-large.mjs)
// Each server is its own child process, all started up front (the GitHub stand-in of the sign-in
// flow too); this process loads one at a time over real HTTP on 127.0.0.1, flow by flow, in
// interleaved rounds (a b c, a b c, ...) so that drift in machine speed hits every setup alike.
// Medians are reported, and written with the machine, memory and start times to --out
// (docs/bench/latest.json) and a chart beside it (latest.svg).
// PostgreSQL: the bench starts its own server (bench/own-postgres.mjs: shared_buffers sized for the
// run, pg_stat_statements), so every PostgreSQL setup also reports statements per request: every
// statement the server executed for that setup's database during the load (BEGIN and COMMIT
// included), divided by the requests. Each one is a round trip; nothing is pipelined.
// Options (all optional):
//   --flow a,b,…       flows to run (default all): client_credentials, introspection, refresh_token,
//                      authorization_code, userinfo, sign-in
//   --duration <s>     measured load per setup and round, seconds (default 6)
//   --warmup <s>       load per setup and flow before measuring, discarded, seconds (default 3)
//   --rounds <n>       measured rounds (default 3)
//   --codes <n>        codes redeemed per setup and round in the authorization_code flow (default 2000)
//   --only a,p,b,c,d   run only these setups (default a,p,b,c)
//   --seed-large       also run (B) and (C) on the large databases
//   --redis            also run (b) with REDIS_URL set
//   --log-level <lvl>  LOG_LEVEL of the Gatehouse servers (default warn)
//   --cpu-prof <dir>   run the servers under node --cpu-prof, profiles written to <dir>
//                      (summarize one with: node bench/profile-top.mjs <dir>/sqlite.cpuprofile)
//   --compare <file>   also run (b) with another build's main.js (e.g. ../other-checkout/dist/main.js),
//                      to A/B a change in src/ under the same conditions
//   --env K=V          extra environment for every Gatehouse server (repeatable), e.g.
//                      --env REFRESH_REUSE_GRACE_SECONDS=0 to measure without the refresh grace
//   --compare-env K=V  extra environment for the --compare server only (repeatable): with --compare
//                      dist/main.js, an A/B of one setting under the same conditions
//   --out <file>       where the JSON goes (default docs/bench/latest.json; the SVG gets .svg)
// Env: GATEHOUSE_BENCH_POSTGRES_URL (default: the bench's own server, or where it cannot start one
//      (not root, no Debian binaries) postgresql://postgres@127.0.0.1:5432/postgres),
//      GATEHOUSE_BENCH_REDIS_URL (default redis://127.0.0.1:6379).
// CPU per request counts the server's whole process tree (a primary and its workers).
// Exit code: 0 ok; 1 if a server failed to start, a check failed, or a load saw errors.
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { connect } from 'node:net';
import { ROOT, freePort, gatehouseCli, machineBusyMs, machineInfo, median, rssMb, startServer, treeCpuMs } from './lib.mjs';
import { ownPostgresUnavailable, startOwnPostgres, statementCounter } from './own-postgres.mjs';
import { FLOWS, JWT_API, OPAQUE_API, REDIRECT_URI, SCOPE } from './flows.mjs';
import { renderChart } from './chart.mjs';

let PG_URL = process.env.GATEHOUSE_BENCH_POSTGRES_URL || 'postgresql://postgres@127.0.0.1:5432/postgres';
let ownPostgres; // the bench's own PostgreSQL server, when it started one
let statements; // pg_stat_statements reader, when the server has it
const REDIS_URL = process.env.GATEHOUSE_BENCH_REDIS_URL || 'redis://127.0.0.1:6379';
const GITHUB = { id: 'bench-github-app', secret: randomBytes(20).toString('hex') };

const { values: opt } = parseArgs({
  options: {
    flow: { type: 'string', default: FLOWS.map((f) => f.name).join(',') },
    duration: { type: 'string', default: '6' },
    warmup: { type: 'string', default: '3' },
    rounds: { type: 'string', default: '3' },
    codes: { type: 'string', default: '2000' },
    only: { type: 'string', default: 'a,p,b,c' },
    'seed-large': { type: 'boolean', default: false },
    redis: { type: 'boolean', default: false },
    'log-level': { type: 'string', default: 'warn' },
    'cpu-prof': { type: 'string' },
    compare: { type: 'string' },
    env: { type: 'string', multiple: true, default: [] },
    'compare-env': { type: 'string', multiple: true, default: [] },
    out: { type: 'string', default: join(ROOT, 'docs', 'bench', 'latest.json') },
  },
});
const flows = opt.flow.split(',').map((name) => FLOWS.find((f) => f.name === name) ?? usage(`unknown flow ${name}`));
const DURATION = Number(opt.duration); // s
const WARMUP = Number(opt.warmup); // s
const ROUNDS = Number(opt.rounds);
const CODES = Number(opt.codes);
const only = new Set(opt.only.split(','));
const say = (line = '') => process.stdout.write(`${line}\n`);
function usage(message) {
  process.stderr.write(`bench: ${message}\n`);
  process.exit(2);
}

const tmp = mkdtempSync(join(tmpdir(), 'gatehouse-bench-'));
const children = new Set(); // live server processes
const servers = []; // started servers, stopped at the end
const pgDatabases = []; // dropped at the end
let standin; // the GitHub stand-in
let failed = false;
const serverOpts = { dir: tmp, children, cpuProfDir: opt['cpu-prof'] };

/** One measured load, with CPU accounting: the server's own, this process's (the load), the stand-in's, and the rest of the machine. */
async function measure(flow, s) {
  const gone = () => s.exited && new Error(`${s.label}: the server exited during the run (${s.exited}):\n${s.logTail()}`);
  if (gone()) throw gone();
  await flow.round?.(s, CODES);
  const counting = Boolean(s.pgDatabase && statements);
  const statements0 = counting ? (await statements.read())[s.pgDatabase] ?? 0 : null;
  const each0 = counting ? await statements.byStatement(s.pgDatabase) : null;
  const server0 = treeCpuMs(s.pid), standin0 = treeCpuMs(standin.pid), busy0 = machineBusyMs(), self0 = process.cpuUsage();
  const r = await flow.load(s, DURATION);
  if (gone()) throw gone();
  const perReq = statements0 === null ? null : (((await statements.read())[s.pgDatabase] ?? 0) - statements0) / r.total;
  const breakdown = counting ? statementBreakdown(each0, await statements.byStatement(s.pgDatabase), r.total) : undefined;
  const serverMs = treeCpuMs(s.pid) - server0;
  const standinMs = treeCpuMs(standin.pid) - standin0;
  const self = process.cpuUsage(self0);
  const selfMs = (self.user + self.system) / 1000;
  const otherMs = machineBusyMs() - busy0 - serverMs - selfMs - standinMs;
  if (r.bad) failed = true;
  const core = (ms) => Math.round((100 * ms) / (r.seconds * 1000)); // % of one core
  const m = { rps: r.total / r.seconds, p50: r.p50, p99: r.p99, bad: r.bad, usPerReq: (1000 * serverMs) / r.total, otherUsPerReq: (1000 * otherMs) / r.total, other: core(otherMs), rssMb: rssMb(s.pid), ...(perReq !== null && { statements: perReq, breakdown }) };
  say(`  ${s.label.padEnd(34)} ${m.rps.toFixed(0).padStart(5)} ${flow.unit ?? 'req'}/s  p50 ${m.p50} ms  p99 ${m.p99} ms  ` +
    `server ${core(serverMs)}% of a core, ${m.usPerReq.toFixed(0)} µs CPU each; load ${core(selfMs)}%` +
    `${standinMs > 50 ? `, GitHub stand-in ${core(standinMs)}%` : ''}, other ${core(otherMs)}%; RSS ${m.rssMb.total} MB` +
    (perReq !== null ? `; ${perReq.toFixed(1)} statements each` : '') +
    (r.bad ? `  ERRORS: ${r.badDetail}` : ''));
  return m;
}

/** Each statement's calls per request during one load, most frequent first (those of at least 0.05 a request). */
function statementBreakdown(before, after, requests) {
  return [...after].map(([query, calls]) => ({ perRequest: (calls - (before.get(query) ?? 0)) / requests, query: query.replace(/\s+/g, ' ').slice(0, 160) }))
    .filter((x) => x.perRequest >= 0.05).sort((x, y) => y.perRequest - x.perRequest);
}

/** Creates the bench APIs and clients with the real CLI; secrets are stored argon2id-hashed. */
function provisionGatehouse(databaseUrl, cli) {
  const run = (args) => gatehouseCli(databaseUrl, args, tmp, cli);
  // only migrate creates a database
  run(['migrate']);
  run(['resources', 'create', '--identifier', JWT_API, '--scope', SCOPE]);
  run(['resources', 'create', '--identifier', OPAQUE_API, '--scope', SCOPE, '--format', 'opaque']);
  const service = run(['clients', 'create', '--name', 'bench service', '--resource', JWT_API, '--resource', OPAQUE_API]);
  const web = run(['clients', 'create', '--name', 'bench web app', '--grant-type', 'authorization_code', '--grant-type', 'refresh_token', '--redirect-uri', REDIRECT_URI]);
  return { service: { id: service.clientId, secret: service.clientSecret }, web: { id: web.clientId, secret: web.clientSecret } };
}

/** K=V strings as an object. */
function keyValues(list) {
  return Object.fromEntries(list.map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
}

async function startGatehouse(key, label, name, databaseUrl, clients, { script = join(ROOT, 'dist', 'main.js'), env: extra = {} } = {}) {
  const env = (port) => ({
    DATABASE_URL: databaseUrl, LOG_LEVEL: opt['log-level'], ISSUER: `http://127.0.0.1:${port}`, SHUTDOWN_TIMEOUT_MS: '1000',
    COOKIE_KEYS: `${randomBytes(32).toString('base64url')},${randomBytes(32).toString('base64url')}`, WORKERS: '1',
    GITHUB_CLIENT_ID: GITHUB.id, GITHUB_CLIENT_SECRET: GITHUB.secret, GITHUB_BASE_URL: standin.url, GITHUB_API_URL: `${standin.url}/api/v3`,
    ...keyValues(opt.env),
    ...extra,
  });
  const server = await startServer({ ...serverOpts, name, script, readyPath: '/readyz', envFor: env });
  servers.push(Object.assign(server, { key, label, clients, databaseUrl, pgDatabase: pgDatabaseOf(databaseUrl), envFor: env, idleMb: rssMb(server.pid) }));
}

/** The PostgreSQL database a URL names, or null for SQLite. */
function pgDatabaseOf(databaseUrl) {
  return databaseUrl.startsWith('postgres') ? new URL(databaseUrl).pathname.slice(1) : null;
}

/**
 * PostgreSQL for the run: the bench's own server where it can start one (sized, and counting
 * statements), unless GATEHOUSE_BENCH_POSTGRES_URL names another.
 */
async function preparePostgres() {
  if (!['c', 'p', 'd'].some((k) => only.has(k)) && !opt['seed-large']) return;
  if (!process.env.GATEHOUSE_BENCH_POSTGRES_URL) {
    const why = ownPostgresUnavailable();
    if (why) say(`PostgreSQL: the machine's shared server at ${PG_URL} (the bench cannot start its own: ${why}); statements are not counted`);
    else {
      ownPostgres = startOwnPostgres({ port: await freePort(), sharedBuffers: opt['seed-large'] ? '4GB' : '1GB' });
      PG_URL = ownPostgres.url;
      say(`PostgreSQL: the bench's own server at ${PG_URL}, shared_buffers=${ownPostgres.sharedBuffers}, pg_stat_statements on`);
    }
  }
  statements = await statementCounter(PG_URL).catch(() => null);
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
async function createPgDatabase(setup = '(c)') {
  const admin = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 3000 });
  try {
    await admin.connect();
  } catch (err) {
    say(`${setup} skipped: PostgreSQL at ${PG_URL} is unreachable (${err.message})`);
    return null;
  }
  const name = `gatehouse_bench_${randomBytes(6).toString('hex')}`;
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  pgDatabases.push(name);
  const url = new URL(PG_URL);
  url.pathname = `/${name}`;
  return url.toString();
}

async function dropPgDatabases() {
  if (!pgDatabases.length) return;
  const c = new pg.Client({ connectionString: PG_URL });
  await c.connect();
  for (const name of pgDatabases) await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  await c.end();
}

/** Fills a provisioned database with the large data set (bench/seed-large.mjs). */
async function seedLarge(databaseUrl) {
  const { seedLarge: fill } = await import('./seed-large.mjs');
  const { seconds } = await fill({ databaseUrl, log: (line) => say(`  ${line}`) });
  say(`  filled in ${seconds.toFixed(0)} s`);
}

async function startAll() {
  // ids and secrets shaped like the CLI's (12 and 32 random bytes), so requests are the same size
  const pair = () => ({ id: randomBytes(12).toString('base64url'), secret: randomBytes(32).toString('base64url') });
  const rawEnv = (clients) => ({ BENCH_CLIENTS: JSON.stringify(clients), BENCH_REDIRECT_URI: REDIRECT_URI, BENCH_JWT_API: JWT_API, BENCH_OPAQUE_API: OPAQUE_API, BENCH_SCOPE: SCOPE });
  if (only.has('a')) {
    const clients = { service: pair(), web: pair() };
    const server = await startServer({ ...serverOpts, name: 'raw', script: join(ROOT, 'bench', 'raw-provider.mjs'), readyPath: '/.well-known/openid-configuration', envFor: () => rawEnv(clients) });
    servers.push(Object.assign(server, { key: 'a', label: '(a) raw oidc-provider, memory', clients, idleMb: rssMb(server.pid) }));
  }
  if (only.has('p')) {
    const url = await createPgDatabase('(p)');
    if (url) {
      const clients = { service: pair(), web: pair() };
      const server = await startServer({ ...serverOpts, name: 'raw-postgresql', script: join(ROOT, 'bench', 'raw-provider.mjs'), readyPath: '/.well-known/openid-configuration', envFor: () => ({ ...rawEnv(clients), BENCH_POSTGRES_URL: url }) });
      servers.push(Object.assign(server, { key: 'p', label: '(p) raw oidc-provider, PostgreSQL', clients, pgDatabase: pgDatabaseOf(url), idleMb: rssMb(server.pid) }));
    }
  }
  const sqlite = (name) => `file:${join(tmp, `${name}.db`)}`;
  if (only.has('b')) {
    await startGatehouse('b', '(b) Gatehouse, SQLite', 'sqlite', sqlite('gatehouse'), provisionGatehouse(sqlite('gatehouse')));
    if (opt.compare) {
      // the other build gets a database of its own, made by its own CLI: its migrations may differ
      const db = sqlite('gatehouse-compare');
      const clients = provisionGatehouse(db, join(dirname(resolve(opt.compare)), '..', 'bin', 'gatehouse.js'));
      await startGatehouse('b-compare', "(b') --compare build, SQLite", 'sqlite-compare', db, clients, { script: resolve(opt.compare), env: keyValues(opt['compare-env']) });
    }
  }
  const withRedis = (only.has('d') || opt.redis) && (await redisReachable());
  if (opt.redis && withRedis) {
    const db = sqlite('gatehouse-redis');
    await startGatehouse('r', '(r) Gatehouse, SQLite, REDIS_URL', 'sqlite-redis', db, provisionGatehouse(db), { env: { REDIS_URL } });
  }
  let pgUrl;
  if (only.has('c') || (only.has('d') && withRedis)) pgUrl = await createPgDatabase();
  if (pgUrl) {
    const clients = provisionGatehouse(pgUrl);
    if (only.has('c')) await startGatehouse('c', '(c) Gatehouse, PostgreSQL', 'postgresql', pgUrl, clients);
    if (only.has('d') && withRedis) await startGatehouse('d-pg', '(d) WORKERS=2 + Redis, PostgreSQL', 'postgresql-workers', pgUrl, clients, { env: { WORKERS: '2', REDIS_URL } });
  }
  if (only.has('d') && withRedis) {
    const db = sqlite('gatehouse-workers');
    await startGatehouse('d', '(d) WORKERS=2 + Redis, SQLite', 'sqlite-workers', db, provisionGatehouse(db), { env: { WORKERS: '2', REDIS_URL } });
  }
  if (opt['seed-large']) {
    const db = sqlite('gatehouse-large');
    const clients = provisionGatehouse(db);
    say('filling the large SQLite database');
    await seedLarge(db);
    await startGatehouse('B', '(B) SQLite, large', 'sqlite-large', db, clients);
    const url = await createPgDatabase();
    if (url) {
      const pgClients = provisionGatehouse(url);
      say('filling the large PostgreSQL database');
      await seedLarge(url);
      await startGatehouse('C', '(C) PostgreSQL, large', 'postgresql-large', url, pgClients);
    }
  }
}

/**
 * Wall time of admin commands as an operator runs them (`node bin/gatehouse.js … --json`), median of
 * 5, on the SQLite and the PostgreSQL database of (b) and (c) (and (B), the large one).
 */
function cliTimes() {
  const out = {};
  for (const key of ['b', 'c', 'B']) {
    const s = servers.find((x) => x.key === key);
    if (!s) continue;
    // on the large database a list is 100,000 clients: there only `show` says what starting costs
    for (const args of [...(key === 'B' ? [] : [['clients', 'list']]), ['clients', 'show', s.clients.web.id]]) {
      const ms = median(Array.from({ length: 5 }, () => {
        const t = performance.now();
        gatehouseCli(s.databaseUrl, args, tmp);
        return performance.now() - t;
      }));
      out[`${key}: ${args.slice(0, 2).join(' ')}`] = Math.round(ms);
      say(`  gatehouse ${args.slice(0, 2).join(' ')} --json on ${s.label}: ${Math.round(ms)} ms (median of 5)`);
    }
  }
  return out;
}

/** Runs one flow on every server: prepare and check, warm-up, interleaved measured rounds; its medians. */
async function runFlow(flow) {
  say(`\n== ${flow.name}: ${flow.describe}`);
  for (const s of servers) {
    await flow.prepare?.(s);
    const started = performance.now();
    await flow.check(s);
    say(`${s.label}: checked, ${(performance.now() - started).toFixed(0)} ms`);
  }
  if (WARMUP > 0) {
    for (const s of servers) {
      await flow.round?.(s, Math.ceil(CODES / 4));
      await flow.load(s, WARMUP);
    }
  }
  const results = Object.fromEntries(servers.map((s) => [s.key, []]));
  for (let round = 1; round <= ROUNDS; round++) {
    say(`round ${round}/${ROUNDS}`);
    for (const s of servers) results[s.key].push(await measure(flow, s));
  }
  // Medians over rounds (and the best round); ratios are of median req/s, and of server CPU per
  // request, which other load on the machine disturbs less than req/s.
  const sum = Object.fromEntries(servers.map((s) => {
    const ms = results[s.key];
    const med = Object.fromEntries(['rps', 'p50', 'p99', 'usPerReq', 'otherUsPerReq', 'statements'].filter((k) => ms[0][k] !== undefined).map((k) => [k, median(ms.map((m) => m[k]))]));
    return [s.key, { label: s.label, bad: ms.reduce((n, m) => n + m.bad, 0), best: Math.max(...ms.map((m) => m.rps)), ...med, rssMb: Math.max(...ms.map((m) => m.rssMb.perProcess)) }];
  }));
  say(`medians over ${ROUNDS} round(s):`);
  // "other µs each": CPU of everything but the server, the load and the stand-in, per request: for a
  // PostgreSQL setup, mostly the database server's work for it
  say(`${'setup'.padEnd(34)}  ${'per s'.padStart(6)}  best  p50 ms  p99 ms  errors  µs CPU each  other µs each  statements each  vs (a)  vs (p)  CPU (a)/x`);
  const vs = (x, anchor) => (anchor ? (x.rps / anchor.rps).toFixed(2) : '-');
  for (const s of Object.values(sum)) {
    say(`${s.label.padEnd(34)}  ${s.rps.toFixed(0).padStart(6)}  ${s.best.toFixed(0).padStart(4)}  ${String(s.p50).padStart(6)}  ${String(s.p99).padStart(6)}  ` +
      `${String(s.bad).padStart(6)}  ${s.usPerReq.toFixed(0).padStart(11)}  ${s.otherUsPerReq.toFixed(0).padStart(13)}  ${(s.statements === undefined ? '-' : s.statements.toFixed(1)).padStart(15)}  ` +
      `${vs(s, sum.a).padStart(6)}  ${vs(s, sum.p).padStart(6)}  ${(sum.a ? (sum.a.usPerReq / s.usPerReq).toFixed(2) : '-').padStart(9)}`);
  }
  for (const s of servers) {
    const last = results[s.key].at(-1);
    if (!last.breakdown) continue;
    say(`statements per request, ${s.label} (last round):`);
    for (const x of last.breakdown) say(`  ${x.perRequest.toFixed(2).padStart(5)}  ${x.query}`);
    sum[s.key].statementBreakdown = last.breakdown;
  }
  // every setup against each anchor; goals as flows.mjs sets them ('c/p': (c) against (p), …)
  const ratios = {};
  for (const key of Object.keys(sum)) {
    for (const anchor of ['a', 'p']) {
      if (key === anchor || !sum[anchor] || (anchor === 'p' && key === 'a')) continue;
      ratios[`${key}/${anchor}`] = sum[key].rps / sum[anchor].rps;
    }
  }
  for (const [pair, goal] of Object.entries(flow.goals)) {
    if (ratios[pair] === undefined) continue;
    say(`${pair} = ${ratios[pair].toFixed(2)} (goal >= ${goal}: ${ratios[pair] >= goal ? 'met' : 'NOT met'})`);
  }
  // the large databases against the small: latency should not grow with the number of rows
  for (const [large, small] of [['B', 'b'], ['C', 'c']]) {
    if (!sum[large] || !sum[small]) continue;
    const p50 = sum[large].p50 / Math.max(sum[small].p50, 1);
    say(`${large}/${small}: median latency ${p50.toFixed(2)}x (goal <= 1.2), req/s ${(sum[large].rps / sum[small].rps).toFixed(2)}x`);
  }
  for (const [d, base] of [['d', 'b'], ['d-pg', 'c']]) {
    if (!sum[d] || !sum[base]) continue;
    say(`${d}/${base} = ${(sum[d].rps / sum[base].rps).toFixed(2)}x req/s; CPU per request ${(100 * (sum[d].usPerReq / sum[base].usPerReq - 1)).toFixed(0)}% vs (${base})`);
  }
  if (sum.r && sum.b) say(`r/b = ${(sum.r.rps / sum.b.rps).toFixed(2)} (REDIS_URL set: the request path should not notice)`);
  const other = median(Object.values(results).flat().map((m) => m.other));
  if (other > 20) say(`NOTE: other processes used a median ${other}% of a core during the loads: req/s are depressed and noisy; compare µs CPU each`);
  return { describe: flow.describe, unit: flow.unit ?? 'requests', goals: flow.goals, ratios, setups: sum };
}

async function main() {
  if (!existsSync(join(ROOT, 'dist', 'main.js'))) throw new Error('dist/main.js is missing: run `npm run build` first');
  const machine = machineInfo();
  const startedAt = new Date().toISOString();
  say(`gatehouse bench ${startedAt}: node ${machine.node}, nproc ${machine.nproc}, ${machine.cpu}`);
  say(`flows: ${flows.map((f) => f.name).join(', ')}; per setup and flow ${WARMUP} s warm-up, then ${ROUNDS} round(s) of ${DURATION} s ` +
    `(authorization_code: ${CODES} codes a round); Gatehouse LOG_LEVEL=${opt['log-level']}`);

  standin = await startServer({ ...serverOpts, name: 'github-standin', script: join(ROOT, 'bench', 'github-standin.mjs'), readyPath: '/api/v3/', readyStatus: 401, envFor: () => ({ GITHUB_CLIENT_ID: GITHUB.id, GITHUB_CLIENT_SECRET: GITHUB.secret }) });
  await preparePostgres();
  await startAll();
  say('\nstart to ready (spawn until the readiness URL answers) and resident memory after start:');
  for (const s of servers) say(`  ${s.label.padEnd(34)} ${s.readyMs.toFixed(0).padStart(5)} ms  ${s.idleMb.total} MB`);

  // Start to ready on a database already migrated and holding its keys (the first start makes them)
  for (const s of servers.filter((x) => ['b', 'c'].includes(x.key))) {
    const again = await startServer({ ...serverOpts, name: `${s.key}-again`, script: join(ROOT, 'dist', 'main.js'), readyPath: '/readyz', envFor: s.envFor });
    s.againMs = again.readyMs;
    await again.stop();
    say(`  ${s.label.padEnd(34)} ${s.againMs.toFixed(0).padStart(5)} ms  (another instance on the same database, keys made)`);
  }
  const cli = cliTimes();

  const results = {};
  for (const flow of flows) results[flow.name] = await runFlow(flow);

  say('\nresident memory per process (MB): after start, and the most seen after a load');
  for (const s of servers) {
    const loaded = Math.max(...Object.values(results).map((r) => r.setups[s.key]?.rssMb ?? 0));
    say(`  ${s.label.padEnd(34)} ${String(s.idleMb.perProcess).padStart(5)}  ${String(loaded).padStart(5)}`);
  }
  if (Object.values(results).some((r) => Object.values(r.setups).some((x) => x.bad))) {
    say('WARNING: some loads had errors (non-2xx, socket errors or timeouts); those numbers are not valid');
  }

  const report = {
    startedAt, machine,
    options: { duration: DURATION, warmup: WARMUP, rounds: ROUNDS, codes: CODES, logLevel: opt['log-level'], seedLarge: opt['seed-large'] },
    cli,
    servers: Object.fromEntries(servers.map((s) => [s.key, { label: s.label, readyMs: Math.round(s.readyMs), ...(s.againMs && { readyAgainMs: Math.round(s.againMs) }), idleMb: s.idleMb.perProcess }])),
    flows: results,
  };
  const out = resolve(opt.out);
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, `${JSON.stringify(report, null, 2)}\n`);
  writeFileSync(out.replace(/\.json$/, '') + '.svg', renderChart(report));
  say(`\nwrote ${out} and ${out.replace(/\.json$/, '')}.svg`);
}

let cleaning;
function cleanup() {
  cleaning ??= (async () => {
    await Promise.all([...servers, ...(standin ? [standin] : [])].map((s) => s.stop()));
    for (const child of children) child.kill('SIGKILL');
    await statements?.end().catch(() => {});
    if (ownPostgres) ownPostgres.stop();
    else await dropPgDatabases().catch((err) => process.stderr.write(`could not drop the bench databases: ${err.message}\n`));
    if (!process.env.BENCH_KEEP) rmSync(tmp, { recursive: true, force: true });
  })();
  return cleaning;
}

// Ctrl-C, a crash, or a closed stdout (`npm run bench | head`) must still stop servers and drop the databases.
const abort = (code, why) => () => {
  process.stderr.write(`bench stopped (${why}): cleaning up\n`);
  void cleanup().finally(() => process.exit(code));
};
process.on('SIGINT', abort(130, 'SIGINT'));
process.on('SIGTERM', abort(143, 'SIGTERM'));
process.on('uncaughtException', (err) => abort(1, err.code === 'EPIPE' ? 'stdout closed' : `crash: ${err.stack}`)());
process.stdout.on('error', () => {}); // EPIPE: the run goes on, its output unread
main()
  .catch((err) => { failed = true; if (!cleaning) process.stderr.write(`bench failed: ${err.message}${err.cause ? ` (${err.cause.message ?? err.cause})` : ""}\n${process.env.BENCH_KEEP ? err.stack : ""}\n`); })
  .finally(async () => { await cleanup(); process.exit(failed ? 1 : 0); });
