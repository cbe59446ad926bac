#!/usr/bin/env node
// Summarizes a V8 .cpuprofile from `npm run bench -- --cpu-prof <dir>`: busy time (idle left
// out) by package, by function (self), and by function including callees (inclusive), as % of
// busy time.
// usage: node bench/profile-top.mjs <file.cpuprofile> [--rows 25] [--skip <s>] [--requests <n>] [--filter <regexp>]
//   --skip      leave out the first <s> seconds (server start-up)
//   --requests  requests served in the profiled window: adds µs per request to each line
//   --filter    which functions the inclusive list shows
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

const { values: opt, positionals: [file] } = parseArgs({
  allowPositionals: true,
  options: {
    rows: { type: 'string', default: '25' },
    skip: { type: 'string', default: '0' },
    requests: { type: 'string' },
    filter: { type: 'string', default: '^\\S+  dist/|find  oidc-provider|@prisma|pino' },
  },
});
const rows = Number(opt.rows), filter = opt.filter;
const { nodes, samples, timeDeltas } = JSON.parse(readFileSync(file, 'utf8'));
const byId = new Map(nodes.map((n) => [n.id, n]));
const parent = new Map();
for (const n of nodes) for (const c of n.children ?? []) parent.set(c, n.id);

const key = ({ functionName, url, lineNumber }) =>
  `${functionName || '(anonymous)'}  ${url.includes('node_modules/') ? url.replace(/^.*node_modules\//, '') : url.replace(/^.*\/dist\//, 'dist/')}:${lineNumber + 1}`;
/** Package (node_modules/<pkg>), node internals, Gatehouse's dist/, or V8 pseudo-frames (GC, program). */
const pkg = ({ url }) => url.match(/node_modules\/((?:@[^/]+\/)?[^/]+)/)?.[1]
  ?? (url.startsWith('node:') ? 'node internals' : url.includes('/dist/') ? 'gatehouse dist/' : url || 'native/V8');

const add = (map, k, us) => map.set(k, (map.get(k) ?? 0) + us);
const self = new Map(), pkgs = new Map(), incl = new Map();
let busy = 0, idle = 0; // µs
let t = 0; // µs since the profile started
samples.forEach((id, i) => {
  const us = timeDeltas[i] ?? 0;
  if ((t += us) < Number(opt.skip) * 1e6) return;
  const f = byId.get(id).callFrame;
  if (f.functionName === '(idle)') return void (idle += us);
  busy += us;
  add(self, key(f), us);
  add(pkgs, pkg(f), us);
  const seen = new Set(); // each function once per stack, even when recursive
  for (let n = id; n !== undefined; n = parent.get(n)) seen.add(key(byId.get(n).callFrame));
  for (const k of seen) add(incl, k, us);
});

const perReq = (us) => (opt.requests ? `  ${(us / Number(opt.requests)).toFixed(1).padStart(6)} µs/req` : '');
const pct = (us) => `${((100 * us) / busy).toFixed(1).padStart(5)}%${perReq(us)}`;
const print = (title, map, n, keep = () => true) => {
  console.log(`\n${title}`);
  for (const [k, us] of [...map].filter(([k]) => keep(k)).sort((a, b) => b[1] - a[1]).slice(0, n)) console.log(`${pct(us)}  ${k}`);
};
console.log(`${file}: ${(busy / 1e6).toFixed(1)} s busy${perReq(busy)}, ${(idle / 1e6).toFixed(1)} s idle; % below are of busy time`);
print('self time by package', pkgs, 12);
print('self time by function', self, rows);
const re = new RegExp(filter);
print(`inclusive time (with callees), functions matching /${filter}/`, incl, rows, (k) => re.test(k));
