/**
 * The reconciliation page's charts as server-rendered SVG (no script, no CDN): a bar per day of
 * the volume, and a line of the success rate. Values are escaped; the markup goes into the page
 * as is, so every number is formatted here and no text comes from input unescaped.
 */

export interface ChartPoint {
  /** The x label (a Beijing date, MM-DD). */
  label: string;
  value: number;
  /** The hover text (an SVG <title>). */
  title: string;
}

const W = 640;
const H = 180;
const PAD = { left: 44, right: 8, top: 10, bottom: 24 };

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function frame(title: string, body: string, yTop: string): string {
  return `<svg class="chart" role="img" aria-label="${esc(title)}" viewBox="0 0 ${W} ${H}" width="100%" preserveAspectRatio="xMidYMid meet" xmlns="http://www.w3.org/2000/svg">`
    + `<title>${esc(title)}</title>`
    + `<line x1="${PAD.left}" y1="${H - PAD.bottom}" x2="${W - PAD.right}" y2="${H - PAD.bottom}" stroke="currentColor" stroke-opacity="0.4"/>`
    + `<text x="${PAD.left - 4}" y="${PAD.top + 8}" font-size="10" text-anchor="end" fill="currentColor">${esc(yTop)}</text>`
    + `<text x="${PAD.left - 4}" y="${H - PAD.bottom}" font-size="10" text-anchor="end" fill="currentColor">0</text>`
    + body + '</svg>';
}

function xLabels(points: ChartPoint[], step: number): string {
  const every = Math.max(1, Math.ceil(points.length / 10));
  return points.map((p, i) => (i % every === 0
    ? `<text x="${(PAD.left + step * (i + 0.5)).toFixed(1)}" y="${H - 8}" font-size="10" text-anchor="middle" fill="currentColor">${esc(p.label)}</text>`
    : '')).join('');
}

/** Bars, scaled to the largest value; `format` writes the y axis' top value. */
export function barChart(title: string, points: ChartPoint[], format: (v: number) => string): string {
  const max = Math.max(1, ...points.map((p) => p.value));
  const step = (W - PAD.left - PAD.right) / Math.max(1, points.length);
  const plotH = H - PAD.top - PAD.bottom;
  const bars = points.map((p, i) => {
    const h = (p.value / max) * plotH;
    return `<rect x="${(PAD.left + step * i + step * 0.15).toFixed(1)}" y="${(H - PAD.bottom - h).toFixed(1)}" width="${(step * 0.7).toFixed(1)}" height="${h.toFixed(1)}" fill="currentColor" fill-opacity="0.7"><title>${esc(p.title)}</title></rect>`;
  }).join('');
  return frame(title, bars + xLabels(points, step), format(max));
}

/** A line of rates in [0, 1]; days without payments are left as gaps. */
export function rateChart(title: string, points: Array<ChartPoint | (Omit<ChartPoint, 'value'> & { value: null })>): string {
  const step = (W - PAD.left - PAD.right) / Math.max(1, points.length);
  const plotH = H - PAD.top - PAD.bottom;
  const xy = (i: number, v: number) => `${(PAD.left + step * (i + 0.5)).toFixed(1)},${(H - PAD.bottom - v * plotH).toFixed(1)}`;
  const segments: string[][] = [[]];
  points.forEach((p, i) => {
    if (p.value === null) segments.push([]);
    else segments[segments.length - 1]!.push(xy(i, p.value));
  });
  const lines = segments.filter((s) => s.length > 1).map((s) => `<polyline points="${s.join(' ')}" fill="none" stroke="currentColor" stroke-width="2"/>`).join('');
  const dots = points.map((p, i) => (p.value === null ? '' : `<circle cx="${xy(i, p.value).split(',')[0]}" cy="${xy(i, p.value).split(',')[1]}" r="3" fill="currentColor"><title>${esc(p.title)}</title></circle>`)).join('');
  return frame(title, lines + dots + xLabels(points as ChartPoint[], step), '100%');
}
