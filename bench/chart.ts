/**
 * The bench's chart: one horizontal bar per case (the median), a whisker from min to max, and
 * the median written at the end; calf in orange, the other runtimes in grey, Node in blue.
 * Plain SVG, so the README shows it on GitHub and it diffs as text.
 */
interface Bar {
  name: string;
  group: 'node' | 'calf' | 'baseline' | 'peer';
  median: number;
  min: number;
  max: number;
}

const COLORS = { calf: '#e07b24', baseline: '#f2c49b', peer: '#8a96a3', node: '#3b7dd8' } as const;
const escape = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

export function chart(bars: Bar[], title: string, subtitle: string): string {
  const label = 400;
  const plot = 460;
  const rowH = 30;
  const top = 68;
  const width = label + plot + 90;
  const height = top + bars.length * rowH + 40;
  const limit = niceMax(Math.max(...bars.map((b) => b.max)));
  const x = (ms: number) => label + (ms / limit) * plot;
  const step = niceStep(limit / 5);
  const ticks = Array.from({ length: Math.floor(limit / step) + 1 }, (_, i) => step * i);
  const out = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="system-ui, sans-serif" font-size="13">`,
    `<rect width="100%" height="100%" fill="#fff"/>`,
    `<text x="12" y="22" font-size="15" font-weight="600">${escape(title)}</text>`,
    `<text x="12" y="40" fill="#555" font-size="12">${escape(subtitle)}</text>`,
    `<text x="12" y="56" fill="#555" font-size="12">wall time in ms, shorter is better: bar = median, whisker = min…max</text>`,
  ];
  for (const t of ticks) {
    out.push(`<line x1="${x(t)}" y1="${top - 4}" x2="${x(t)}" y2="${height - 30}" stroke="#e4e4e4"/>`);
    out.push(`<text x="${x(t)}" y="${height - 14}" fill="#777" font-size="11" text-anchor="middle">${Math.round(t)}</text>`);
  }
  bars.forEach((b, i) => {
    const y = top + i * rowH;
    const mid = y + rowH / 2;
    out.push(`<text x="${label - 10}" y="${mid + 4}" text-anchor="end">${escape(b.name)}</text>`);
    out.push(`<rect x="${label}" y="${y + 6}" width="${Math.max(1, x(b.median) - label)}" height="${rowH - 12}" fill="${COLORS[b.group]}" rx="2"/>`);
    out.push(`<line x1="${x(b.min)}" y1="${mid}" x2="${x(b.max)}" y2="${mid}" stroke="#333" stroke-width="1"/>`);
    for (const v of [b.min, b.max]) out.push(`<line x1="${x(v)}" y1="${mid - 5}" x2="${x(v)}" y2="${mid + 5}" stroke="#333"/>`);
    out.push(`<text x="${x(b.max) + 6}" y="${mid + 4}" fill="#222">${Math.round(b.median)} ms</text>`);
  });
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}

/** A round axis end at or above `v`: 1, 1.5, 2, 2.5, 3, 4, 5, 6 or 8 times a power of ten. */
function niceMax(v: number): number {
  const p = 10 ** Math.floor(Math.log10(v));
  return [1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10].map((m) => m * p).find((n) => n >= v)!;
}

/** A round tick step near `v`: 1, 2 or 5 times a power of ten. */
function niceStep(v: number): number {
  const p = 10 ** Math.floor(Math.log10(v));
  return [1, 2, 5, 10].map((m) => m * p).find((n) => n >= v)!;
}
