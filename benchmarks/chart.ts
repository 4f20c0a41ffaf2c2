/**
 * The benchmark's chart, as a standalone SVG: one row per figure, one bar per path (the reference path, the kernel's
 * VXLAN, included), so that a glance tells which path wins each figure.
 *
 * - Bars are normalised so that longer is better: a bar's length is how the path compares with the reference on a
 *   log scale, higher-is-better figures as value ÷ reference, lower-is-better ones as reference ÷ value. The reference's
 *   own bar ends on the dashed 1× line; each row says which way its figure goes.
 * - Each bar carries its absolute value (with the unit) and its plain ratio to the reference (value ÷ reference).
 * - A figure the reference has no value for (router CPU and memory: the kernel has no router process) is compared
 *   with the first path that has one, and says so; a figure no path has a value for is left out (no empty rows).
 *
 * Written by hand: one chart of bars needs no plotting library. Pinned by test/benchmarks/chart.test.ts.
 */
const COLORS = ['#4e79a7', '#f28e2b', '#59a14f', '#e15759', '#76b7b2', '#edc948', '#b07aa1', '#9c755f', '#bab0ac'];

export interface ChartRow {
  readonly label: string;
  /** Unit of the values ('Gbit/s', 'µs'…), shown on each bar. */
  readonly unit: string;
  readonly better: 'higher' | 'lower';
  /** Per path; NaN or absent where the figure does not apply. */
  readonly values: Readonly<Record<string, number>>;
}

export interface ChartInput {
  readonly title: string;
  /** Paths in drawing order; `reference` among them (drawn first). */
  readonly paths: readonly string[];
  readonly reference: string;
  readonly rows: readonly ChartRow[];
}

/** The scale's ends, as "how many times better than the reference": bars beyond are drawn to the edge (and say so). */
const MIN_SCORE = 1 / 64;
const MAX_SCORE_FLOOR = 4;

export const fmtValue = (x: number): string => (x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x >= 0.01 ? x.toFixed(2) : x.toPrecision(2));
const fmtRatio = (r: number): string => (r >= 10 ? r.toFixed(0) : r >= 0.1 ? r.toFixed(2) : r.toPrecision(2));

/** How a path compares with the row's reference value: > 1 is better, whichever way the figure goes. */
function score(row: ChartRow, value: number, ref: number): number {
  return row.better === 'higher' ? value / ref : ref / value;
}

/** The row's reference path: `reference` when it has a value, else the first path that has one. */
function rowReference(input: ChartInput, row: ChartRow): string | undefined {
  const has = (p: string): boolean => Number.isFinite(row.values[p]) && row.values[p]! > 0;
  return has(input.reference) ? input.reference : input.paths.find(has);
}

export function chartSvg(input: ChartInput): string {
  const paths = [input.reference, ...input.paths.filter((p) => p !== input.reference)];
  const rows = input.rows.filter((r) => rowReference(input, r) !== undefined);
  const barH = 15;
  const rowH = (barH + 3) * paths.length + 30;
  const left = 250;
  const plotW = 400;
  const width = left + plotW + 190;
  const scores = rows.flatMap((r) => {
    const ref = r.values[rowReference(input, r)!]!;
    return paths.map((p) => score(r, r.values[p] ?? NaN, ref)).filter((s) => Number.isFinite(s) && s > 0);
  });
  const maxScore = 2 ** Math.ceil(Math.log2(Math.max(MAX_SCORE_FLOOR, ...scores)));
  const lo = Math.log2(MIN_SCORE);
  const hi = Math.log2(maxScore);
  const x = (s: number): number => left + ((Math.log2(Math.min(Math.max(s, MIN_SCORE), maxScore)) - lo) / (hi - lo)) * plotW;
  const top = 78;
  const height = top + rows.length * rowH + 34;
  const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
  const color = (p: string): string => COLORS[paths.indexOf(p) % COLORS.length]!;
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="11">`,
    `<text x="10" y="18" font-size="13" font-weight="bold">${esc(input.title)}</text>`,
    `<text x="10" y="34">Longer bar = better. Bar length: how many times better than ${esc(input.reference)} (log scale; lower-is-better figures inverted).</text>`,
    `<text x="10" y="48">On each bar: the value, and value ÷ ${esc(input.reference)} in brackets.</text>`,
  ];
  paths.forEach((p, i) =>
    parts.push(`<rect x="${left + i * 95}" y="56" width="10" height="10" fill="${color(p)}"/><text x="${left + i * 95 + 14}" y="65">${esc(p)}</text>`),
  );
  // Scale: powers of 4 (and the ends), and the reference's 1× line.
  for (let e = lo; e <= hi; e += 2) {
    const s = 2 ** e;
    const tx = x(s).toFixed(1);
    const label = s >= 1 ? `${s}×` : `1/${1 / s}`;
    parts.push(`<line x1="${tx}" y1="${top - 4}" x2="${tx}" y2="${height - 26}" stroke="#ddd"/>`);
    parts.push(`<text x="${tx}" y="${height - 12}" text-anchor="middle" fill="#555">${label}</text>`);
  }
  rows.forEach((row, ri) => {
    const ref = rowReference(input, row)!;
    const refValue = row.values[ref]!;
    const y0 = top + ri * rowH;
    const against = ref === input.reference ? '' : `, vs ${ref}`;
    parts.push(`<text x="10" y="${y0 + 12}" font-weight="bold">${esc(row.label)}</text>`);
    parts.push(`<text x="10" y="${y0 + 26}" fill="#555">${row.better === 'higher' ? 'higher is better ▲' : 'lower is better ▼'}${esc(against)}</text>`);
    paths.forEach((p, i) => {
      const v = row.values[p] ?? NaN;
      const y = y0 + 4 + i * (barH + 3);
      if (!Number.isFinite(v)) {
        parts.push(`<text x="${left + 4}" y="${y + 11}" fill="#999">${esc(p)}: n/a</text>`);
        return;
      }
      const s = score(row, v, refValue);
      const end = Number.isFinite(s) && s > 0 ? x(s) : left;
      const clipped = s > maxScore || !(s >= MIN_SCORE) ? ' (off scale)' : '';
      parts.push(`<rect x="${left}" y="${y}" width="${Math.max(1, end - left).toFixed(1)}" height="${barH}" fill="${color(p)}"><title>${esc(p)}</title></rect>`);
      parts.push(`<text x="${(Math.max(end, left) + 4).toFixed(1)}" y="${y + 11}">${fmtValue(v)}${row.unit ? ` ${esc(row.unit)}` : ''} (${fmtRatio(v / refValue)}×)${clipped}</text>`);
    });
  });
  parts.push(`<line x1="${x(1).toFixed(1)}" y1="${top - 4}" x2="${x(1).toFixed(1)}" y2="${height - 26}" stroke="#333" stroke-dasharray="4 3"/>`);
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}

/** What the bench's JSON keeps that the chart needs (benchmarks/results/bench-*.json: `metrics`, `summary`). */
export interface RecordedResult {
  readonly options: { readonly paths: readonly string[] };
  readonly metrics: Readonly<Record<string, { readonly label: string; readonly better: 'higher' | 'lower' }>>;
  readonly summary: Readonly<Record<string, Readonly<Record<string, { readonly median: number | null }>>>>;
}

/** The main chart of a bench result: every figure, every path, against the kernel. "label, unit" labels split at the last comma. */
export function chartOfResult(result: RecordedResult): string {
  const rows: ChartRow[] = Object.entries(result.metrics).map(([m, { label, better }]) => {
    const cut = label.lastIndexOf(', ');
    return {
      label: cut < 0 ? label : label.slice(0, cut),
      unit: cut < 0 ? '' : label.slice(cut + 2),
      better,
      // JSON has no NaN: a figure that does not apply is recorded as null.
      values: Object.fromEntries(result.options.paths.map((p) => [p, result.summary[p]?.[m]?.median ?? NaN])),
    };
  });
  const paths = result.options.paths;
  const reference = paths.includes('kernel') ? 'kernel' : paths[0]!;
  return chartSvg({ title: `vxlan-router bench: each path against ${reference} (same run, medians)`, paths, reference, rows });
}
