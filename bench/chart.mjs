// The bench report as a picture: per flow, each Gatehouse setup's throughput as a fraction of
// raw oidc-provider's (a) in the same run, with the goal marked on its bar. Plain SVG, no library.
const SERIES = {
  b: { name: '(b) SQLite', color: '#2f6fb3' },
  c: { name: '(c) PostgreSQL', color: '#3f9a5b' },
  B: { name: '(B) SQLite, large', color: '#8db3dc' },
  C: { name: '(C) PostgreSQL, large', color: '#9fd0ad' },
};
const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** report: what bench/run.mjs writes to docs/bench/latest.json. */
export function renderChart(report) {
  const flows = Object.entries(report.flows);
  const keys = Object.keys(SERIES).filter((k) => flows.some(([, f]) => f.ratios[k] !== undefined));
  const max = Math.max(1.2, ...flows.flatMap(([, f]) => Object.values(f.ratios))) * 1.05;
  const left = 150, width = 520, bar = 16, gap = 4, groupGap = 18, top = 74;
  const x = (ratio) => left + (ratio / max) * width;
  const groupHeight = keys.length * (bar + gap) + groupGap;
  const height = top + flows.length * groupHeight + 40;
  const out = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${left + width + 90}" height="${height}" font-family="system-ui, sans-serif" font-size="12">`);
  out.push(`<rect width="100%" height="100%" fill="#fff"/>`);
  out.push(`<text x="10" y="20" font-size="15" font-weight="600">Gatehouse throughput as a fraction of raw oidc-provider, same machine, same run</text>`);
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
      const goal = flow.goals[key.toLowerCase()];
      const met = goal === undefined || ratio >= goal;
      out.push(`<rect x="${left}" y="${y}" width="${(x(ratio) - left).toFixed(1)}" height="${bar}" fill="${SERIES[key].color}"><title>${esc(`${SERIES[key].name}: ${ratio.toFixed(2)} of (a)`)}</title></rect>`);
      if (goal !== undefined) out.push(`<line x1="${x(goal).toFixed(1)}" y1="${y - 2}" x2="${x(goal).toFixed(1)}" y2="${y + bar + 2}" stroke="#c0392b" stroke-width="2"/>`);
      out.push(`<text x="${(Math.max(x(ratio), goal ? x(goal) : 0) + 5).toFixed(1)}" y="${y + bar - 4}" fill="${met ? '#222' : '#c0392b'}">${ratio.toFixed(2)}${met ? '' : ' (below goal)'}</text>`);
    });
  });
  // legend
  keys.forEach((key, j) => {
    const lx = left + j * 150;
    out.push(`<rect x="${lx}" y="${top - 16}" width="10" height="10" fill="${SERIES[key].color}"/><text x="${lx + 14}" y="${top - 7}">${esc(SERIES[key].name)}</text>`);
  });
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
