/**
 * Bar charts drawn by the server as SVG: no script, no chart library, nothing
 * from a CDN, and readable without the picture (each chart carries a table of
 * its numbers for screen readers and a summary line for everyone).
 */

export interface BarChart {
  title: string;
  /** the viewBox's width and height */
  width: number;
  height: number;
  bars: { x: number; y: number; width: number; height: number; label: string }[];
  max: number;
  total: number;
  /** the first and last hour, as the axis labels */
  from: string;
  to: string;
  rows: { hour: string; value: number }[];
}

const hourFormat = new Intl.DateTimeFormat('en', { hour: '2-digit', minute: '2-digit', hourCycle: 'h23', timeZone: 'UTC' });

export function barChart(title: string, points: { at: Date; value: number }[]): BarChart {
  const width = 480;
  const height = 120;
  const max = Math.max(1, ...points.map((p) => p.value));
  const slot = width / Math.max(1, points.length);
  const bars = points.map((p, i) => {
    const h = Math.round((p.value / max) * (height - 4));
    return { x: Math.round(i * slot + 1), y: height - h, width: Math.max(1, Math.round(slot - 2)), height: h, label: `${hourFormat.format(p.at)} UTC: ${p.value}` };
  });
  const total = points.reduce((sum, p) => sum + p.value, 0);
  const label = (p?: { at: Date }) => (p ? `${hourFormat.format(p.at)} UTC` : '');
  return {
    title, width, height, bars, max, total, from: label(points[0]), to: label(points.at(-1)),
    rows: points.map((p) => ({ hour: hourFormat.format(p.at), value: p.value })),
  };
}
