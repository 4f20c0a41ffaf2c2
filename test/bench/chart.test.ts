/**
 * The bench's chart (benchmarks/chart.ts) drawn from a recorded result (test/bench/fixtures/bench-result.json: the
 * `options`, `metrics` and `summary` of a real `npm run bench` run): which way each figure goes is said, no row is
 * empty, the kernel has its own bar, every bar carries its value, and the scale is logarithmic with longer = better.
 */
import { readFileSync } from 'node:fs';
import t from 'tap';
import { chartOfResult, chartSvg, type RecordedResult } from '../../benchmarks/chart.js';

const recorded = JSON.parse(readFileSync(new URL('./fixtures/bench-result.json', import.meta.url), 'utf8')) as RecordedResult;

/** The texts of the SVG, in order. */
const texts = (svg: string): string[] => [...svg.matchAll(/<text[^>]*>([^<]*)<\/text>/g)].map((m) => m[1]!.replace(/&gt;/g, '>').replace(/&lt;/g, '<').replace(/&amp;/g, '&'));
/** Bars: their fill and width, in order. */
const bars = (svg: string): { fill: string; width: number; x: number }[] =>
  [...svg.matchAll(/<rect x="([\d.]+)" y="[\d.]+" width="([\d.]+)" height="15" fill="(#[0-9a-f]+)"/g)].map((m) => ({ x: Number(m[1]), width: Number(m[2]), fill: m[3]! }));

t.test('a recorded result: direction, no empty rows, the kernel bar, values on the bars', async (t) => {
  const svg = chartOfResult(recorded);
  t.match(svg, /^<svg [^>]*>[\s\S]*<\/svg>\n$/, 'one well-formed SVG');
  const all = texts(svg);
  const paths = recorded.options.paths;
  const metrics = Object.entries(recorded.metrics);
  const withValues = metrics.filter(([m]) => paths.some((p) => Number.isFinite(recorded.summary[p]?.[m]?.median ?? NaN)));

  // Each figure once, with the way it goes under it.
  for (const [m, { label, better }] of withValues) {
    const title = label.includes(', ') ? label.slice(0, label.lastIndexOf(', ')) : label;
    const at = all.indexOf(title);
    t.ok(at >= 0, `row for ${m}`);
    t.match(all[at + 1], better === 'higher' ? /^higher is better/ : /^lower is better/, `${m}: ${better} is better, said`);
  }
  // No empty rows: every path has a bar or says n/a in each row; the kernel-less figures name what they compare with.
  t.equal(bars(svg).length + all.filter((x) => x.endsWith(': n/a')).length, withValues.length * paths.length, 'a bar (or n/a) per path per row');
  const firstRouter = paths.find((p) => Number.isFinite(recorded.summary[p]?.router_rss_mib?.median ?? NaN))!;
  t.equal(all[all.indexOf('router RSS') + 1], `lower is better ▼, vs ${firstRouter}`, `router RSS (no kernel value) is compared with ${firstRouter}`);
  // The kernel's own bar, first in each row, reaching the 1× line; its label the plain value at 1.00×.
  const kernelTcp = recorded.summary.kernel!.tcp1_fwd_gbps!.median!;
  t.ok(all.includes(`${kernelTcp >= 10 ? kernelTcp.toFixed(1) : kernelTcp.toFixed(2)} Gbit/s (1.00×)`), 'the kernel bar carries its value and 1.00×');
  const oneX = Number(/<line x1="([\d.]+)"[^>]*stroke-dasharray/.exec(svg)![1]);
  const first = bars(svg)[0]!;
  t.ok(Math.abs(first.x + first.width - oneX) < 0.2, 'the kernel bar ends on the dashed 1× line');
  // Values with units on the bars, ratios to the kernel beside them.
  const js = recorded.summary.js!.lat_p50_us!.median!;
  const ratio = js / recorded.summary.kernel!.lat_p50_us!.median!;
  t.ok(all.some((x) => x.startsWith(`${js.toFixed(0)} µs (`) && x.includes(`${ratio >= 10 ? ratio.toFixed(0) : ratio.toFixed(2)}×`)), 'js p50 latency: value in µs and its ratio');
  t.match(all.join('\n'), /Longer bar = better[^\n]*log scale/, 'the legend says how to read the bars');
});

t.test('log scale, normalised so that longer is better in both directions', async (t) => {
  const rows = [
    { label: 'throughput', unit: 'Gbit/s', better: 'higher' as const, values: { kernel: 10, a: 5, b: 2.5 } },
    { label: 'latency', unit: 'µs', better: 'lower' as const, values: { kernel: 20, a: 40, b: 80 } },
    { label: 'nothing', unit: 'x', better: 'higher' as const, values: { kernel: NaN, a: NaN, b: NaN } },
  ];
  const svg = chartSvg({ title: 't', paths: ['a', 'kernel', 'b'], reference: 'kernel', rows });
  const b = bars(svg);
  t.equal(b.length, 6, 'a row no path has a value for is left out');
  t.notOk(texts(svg).includes('nothing'));
  const [tk, ta, tb, lk, la, lb] = b.map((x) => x.width);
  t.ok(tk! > ta! && ta! > tb!, 'throughput: kernel > a > b');
  t.ok(Math.abs(tk! - ta! - (ta! - tb!)) < 0.2, 'halving shortens a bar by the same length each time (log scale)');
  t.ok(Math.abs(lk! - tk!) < 0.2 && Math.abs(la! - ta!) < 0.2 && Math.abs(lb! - tb!) < 0.2, 'twice the latency is drawn as half the throughput: worse is shorter');
  t.ok(texts(svg).includes('80.0 µs (4.00×)'), 'the plain ratio is printed, not the inverted one');
});
