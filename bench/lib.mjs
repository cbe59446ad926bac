// Helpers for bench/run.mjs: server child processes, the admin CLI, CPU accounting from /proc.
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, openSync, readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';

export const ROOT = resolve(import.meta.dirname, '..');
const CLI = join(ROOT, 'bin', 'gatehouse.js');
const baseEnv = () => ({ PATH: process.env.PATH, HOME: process.env.HOME });

export const freePort = () => new Promise((ok, fail) => {
  const srv = createServer().on('error', fail);
  srv.listen(0, '127.0.0.1', () => { const { port } = srv.address(); srv.close(() => ok(port)); });
});
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const tail = (file) => readFileSync(file, 'utf8').trim().split('\n').slice(-15).join('\n');

/**
 * Spawns `node <script>` on a free port (env built from the port) with output to
 * <dir>/<name>.log, and waits up to 30 s until GET readyPath answers readyStatus (200).
 * `readyMs` is the time from spawn to that answer, to within the 20 ms poll.
 * `children` tracks live processes so a crash or Ctrl-C can still kill them.
 */
export async function startServer({ name, script, readyPath, readyStatus = 200, envFor, dir, children, cpuProfDir }) {
  const port = await freePort();
  const log = join(dir, `${name}.log`);
  const fd = openSync(log, 'w');
  const prof = cpuProfDir ? ['--cpu-prof', `--cpu-prof-dir=${resolve(cpuProfDir)}`, `--cpu-prof-name=${name}.cpuprofile`] : [];
  const spawned = performance.now();
  const child = spawn(process.execPath, [...prof, script], {
    cwd: dir, // no stray .env gets loaded
    env: { ...baseEnv(), PORT: String(port), ...envFor(port) },
    stdio: ['ignore', fd, fd],
  });
  closeSync(fd);
  children.add(child);
  const server = { url: `http://127.0.0.1:${port}`, pid: child.pid, exited: null, stop, logTail: () => tail(log) };
  const exited = new Promise((r) => child.on('exit', (code, signal) => {
    children.delete(child);
    server.exited = signal ? `signal ${signal}` : `code ${code}`;
    r();
  }));
  for (const deadline = Date.now() + 30_000; ;) {
    if (server.exited) throw new Error(`${name} exited (${server.exited}):\n${tail(log)}`);
    const res = await fetch(server.url + readyPath).catch(() => null);
    if (res?.status === readyStatus) break;
    if (Date.now() > deadline) throw new Error(`${name} was not ready within 30 s:\n${tail(log)}`);
    await sleep(20);
  }
  server.readyMs = performance.now() - spawned;
  return server;

  /** SIGTERM lets the server drain and write its CPU profile; SIGKILL after 5 s. */
  async function stop() {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const t = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(t);
  }
}

/** The real admin CLI, as an operator runs it, with --json output parsed. */
export function gatehouseCli(databaseUrl, args, cwd, cli = CLI) {
  const r = spawnSync(process.execPath, [cli, ...args, '--json'], { cwd, env: { ...baseEnv(), DATABASE_URL: databaseUrl }, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`gatehouse ${args.join(' ')} failed (${r.status}): ${r.stderr.trim()}`);
  return JSON.parse(r.stdout);
}

// CPU time from /proc, in clock ticks (CLK_TCK, 100 per second on Linux).
const TICK_MS = 1000 / Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim() || 100);

/** user+system CPU of one process, ms. */
export function processCpuMs(pid) {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) * TICK_MS; // utime, stime (fields 14, 15 of stat)
}

/** A process and every live process below it (node:cluster workers). */
function processTree(pid) {
  const children = new Map(); // ppid -> pids
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const ppid = Number(readFileSync(`/proc/${entry}/stat`, 'utf8').split(') ')[1].split(' ')[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(entry)]);
    } catch {
      // the process ended while we looked
    }
  }
  const tree = [];
  const visit = (p) => {
    tree.push(p);
    for (const child of children.get(p) ?? []) visit(child);
  };
  visit(pid);
  return tree;
}

/** Sums `read(pid)` over a process tree, skipping processes that ended meanwhile. */
function overTree(pid, read) {
  const values = [];
  for (const p of processTree(pid)) {
    try {
      values.push(read(p));
    } catch {
      // the process ended while we looked
    }
  }
  return values;
}

/** CPU of a process and every live process below it (node:cluster workers), ms. */
export const treeCpuMs = (pid) => overTree(pid, processCpuMs).reduce((a, b) => a + b, 0);

/** Resident memory in MB of a process tree: in all, and of its largest process. */
export function rssMb(pid) {
  const mb = overTree(pid, (p) => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${p}/status`, 'utf8'))[1]) / 1024);
  return { total: Math.round(mb.reduce((a, b) => a + b, 0)), perProcess: Math.round(Math.max(0, ...mb)) };
}

/** Busy CPU of the whole machine (all cores), ms. */
export function machineBusyMs() {
  const [, ...t] = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).map(Number);
  const [user, nice, system, , , irq, softirq, steal] = t; // idle and iowait left out
  return (user + nice + system + irq + softirq + steal) * TICK_MS;
}

export function machineInfo() {
  const cpu = readFileSync('/proc/cpuinfo', 'utf8').match(/model name\s*:\s*(.*)/)?.[1] ?? 'unknown';
  const nproc = spawnSync('nproc', { encoding: 'utf8' }).stdout.trim();
  return { cpu, nproc, node: process.version };
}

export const median = (xs) => {
  const s = [...xs].sort((x, y) => x - y);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
