/**
 * `npm run bench -- --quick` keeps working: it runs the paths below and writes well-formed results. The js path starts
 * routers the same way as native, only slower, and `direct` (no overlay) is a plain iperf: left out to keep CI short;
 * the floor relay is built and run. No speed
 * is asserted: the figures only have to be measurements (finite, positive where they must be), and the ratios computed.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { loadNative } from '../../src/dataplane/native.js';
import { labSkipReason } from '../../src/lab/lab.js';

const root = fileURLToPath(new URL('../../', import.meta.url));

t.test('native lookup micro-benchmark', async (t) => {
  const n = loadNative();
  const small = n.benchLookup(100, 100_000);
  const big = n.benchLookup(100_000, 100_000);
  t.ok(small > 0 && Number.isFinite(small), `100 entries: ${small.toFixed(1)} ns per lookup, every lookup hit`);
  t.ok(big > 0 && Number.isFinite(big), `100 000 entries: ${big.toFixed(1)} ns per lookup, every lookup hit`);
  t.throws(() => n.benchLookup(0, 10), { name: 'TypeError' });
});

t.test('bench --quick', { skip: labSkipReason() ?? false }, async (t) => {
  const out = mkdtempSync(join(tmpdir(), 'vxr-bench-'));
  t.teardown(() => rmSync(out, { recursive: true, force: true }));
  const r = spawnSync(join(root, 'node_modules/.bin/tsx'), ['benchmarks/bench.ts', '--quick', '--paths', 'kernel,native,floor', '--out', out], { cwd: root, encoding: 'utf8', timeout: 240_000 });
  t.equal(r.status, 0, 'exits 0');
  if (r.status !== 0) t.comment(r.stdout + r.stderr);
  t.match(r.stdout, /^TCP 1 stream c1→c2, Gbit\/s\s+\S+/m, 'prints the table');

  const files = readdirSync(out);
  const json = files.find((f) => f.endsWith('.json'));
  const svg = files.find((f) => f.endsWith('.svg'));
  t.ok(json && svg, 'writes JSON and SVG');
  const report = JSON.parse(readFileSync(join(out, json!), 'utf8')) as {
    machine: { kernel: string; cpus: number };
    samples: Record<string, Record<string, number>[]>;
    summary: Record<string, Record<string, { median: number; ratio: number }>>;
    lookup: { entries100_ns: number; entries100000_ns: number };
    scale: { peers: number; tcp1_fwd_gbps: number }[];
  };
  t.ok(report.machine.kernel.length > 0 && report.machine.cpus > 0, 'machine info');
  t.same(Object.keys(report.samples).sort(), ['floor', 'kernel', 'native']);
  for (const path of ['kernel', 'native', 'floor']) {
    const s = report.summary[path]!;
    for (const m of ['tcp1_fwd_gbps', 'tcp1_rev_gbps', 'tcp4_fwd_gbps', 'tcp4_rev_gbps', 'lat_p50_us', 'lat_p99_us', 'ping_ms']) {
      t.ok(s[m]!.median > 0 && Number.isFinite(s[m]!.median), `${path} ${m} measured`);
    }
    // A loss-free rate is 0 when every trial lost more than 0.1 % (--quick has 4 of 1 s: likely on a busy box).
    for (const m of ['udp64_kpps', 'udp1400_kpps']) {
      t.ok(s[m]!.median >= 0 && Number.isFinite(s[m]!.median), `${path} ${m} measured (${s[m]!.median})`);
    }
    if (path === 'native' || path === 'floor') t.ok(s.router_rss_mib!.median > 0 && s.router_cpu_s_per_gb!.median > 0, `${path}: router CPU and RSS`);
  }
  t.equal(report.summary.kernel!.tcp1_fwd_gbps!.ratio, 1, 'ratios are to the kernel of this run');
  t.ok(report.lookup.entries100_ns > 0 && report.scale.length === 2, 'lookup and scale figures');
  t.match(readFileSync(join(out, svg!), 'utf8'), /^<svg [^>]*>[\s\S]*<\/svg>\n$/);
});
