// The bench report as a picture: per flow, each setup's throughput against the two anchors of the
// same run, (a) raw oidc-provider in memory and (p) raw oidc-provider on a plain PostgreSQL adapter,
// with the goal marked on its bar. Plain SVG, no library.
const SERIES = {
  'c/p': { name: '(c) PostgreSQL vs (p)', color: '#1f7a3f' },
  'c/a': { name: '(c) PostgreSQL vs (a)', color: '#3f9a5b' },
  'b/a': { name: '(b) SQLite vs (a)', color: '#2f6fb3' },
  'p/a': { name: '(p) plain PostgreSQL vs (a)', color: '#aaaaaa' },
  'C/a': { name: '(C) PostgreSQL, large, vs (a)', color: '#9fd0ad' },
  'B/a': { name: '(B) SQLite, large, vs (a)', color: '#8db3dc' },
};
const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** report: what bench/run.mjs writes to docs/bench/latest.json. */
export function renderChart(report) {
  const flows = Object.entries(report.flows);
  const keys = Object.keys(SERIES).filter((k) => flows.some(([, f]) => f.ratios[k] !== undefined));
  const max = Math.max(1.2, ...flows.flatMap(([, f]) => Object.values(f.ratios))) * 1.05;
  const left = 150, width = 560, bar = 14, gap = 3, groupGap = 16, top = 92;
  const x = (ratio) => left + (ratio / max) * width;
  const groupHeight = keys.length * (bar + gap) + groupGap;
  const height = top + flows.length * groupHeight + 40;
  const out = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${left + width + 90}" height="${height}" font-family="system-ui, sans-serif" font-size="12">`);
  out.push(`<rect width="100%" height="100%" fill="#fff"/>`);
  out.push(`<text x="10" y="20" font-size="15" font-weight="600">Gatehouse throughput against raw oidc-provider in memory (a) and on plain PostgreSQL (p), one run</text>`);
  out.push(`<text x="10" y="38" fill="#555">${esc(`${report.startedAt.slice(0, 16).replace('T', ' ')} UTC, ${report.machine.nproc} cores, node ${report.machine.node}; medians of ${report.options.rounds} interleaved rounds. | marks the goal.`)}</text>`);
  // grid: 0, 0.2, … and 1.0 (raw oidc-provider) stronger
  for (let t = 0; t <= max; t += 0.2) {
    const at = x(t).toFixed(1);
    const one = Math.abs(t - 1) < 1e-9;
    out.push(`<line x1="${at}" y1="${top - 6}" x2="${at}" y2="${height - 30}" stroke="${one ? '#999' : '#e4e4e4'}"${one ? ' stroke-dasharray="4 3"' : ''}/>`);
    out.push(`<text x="${at}" y="${height - 16}" text-anchor="middle" fill="#555">${t.toFixed(1)}</text>`);
  }
  flows.forEach(([name, flow], i) => {
    const y0 = top + i * groupHeight;
    out.push(`<text x="${left - 8}" y="${y0 + (keys.length * (bar + gap)) / 2 + 4}" text-anchor="end" font-weight="600">${esc(name)}</text>`);
    keys.forEach((key, j) => {
      const ratio = flow.ratios[key];
      const y = y0 + j * (bar + gap);
      if (ratio === undefined) return;
      const goal = flow.goals[key];
      const met = goal === undefined || ratio >= goal;
      out.push(`<rect x="${left}" y="${y}" width="${(x(ratio) - left).toFixed(1)}" height="${bar}" fill="${SERIES[key].color}"><title>${esc(`${SERIES[key].name}: ${ratio.toFixed(2)}`)}</title></rect>`);
      if (goal !== undefined) out.push(`<line x1="${x(goal).toFixed(1)}" y1="${y - 2}" x2="${x(goal).toFixed(1)}" y2="${y + bar + 2}" stroke="#c0392b" stroke-width="2"/>`);
      out.push(`<text x="${(Math.max(x(ratio), goal ? x(goal) : 0) + 5).toFixed(1)}" y="${y + bar - 4}" fill="${met ? '#222' : '#c0392b'}">${ratio.toFixed(2)}${met ? '' : ' (below goal)'}</text>`);
    });
  });
  // legend
  keys.forEach((key, j) => {
    const lx = 10 + (j % 3) * 250, ly = top - 30 + Math.floor(j / 3) * 14;
    out.push(`<rect x="${lx}" y="${ly - 9}" width="10" height="10" fill="${SERIES[key].color}"/><text x="${lx + 14}" y="${ly}">${esc(SERIES[key].name)}</text>`);
  });
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
