/**
 * `npm run bench`: vxlan-router against the kernel's VXLAN and the physical limit, in one run.
 *
 * Paths, each in the same lab (two hosts on a veth underlay, a bridge and a container behind each, VNI 42):
 *   direct  the two containers joined by one veth, no encapsulation (the physical limit)
 *   kernel  the kernel's VXLAN device on both hosts (checksum offloads on: the speed bar)
 *   native  vxlan-router's native engine on both hosts
 *   js      vxlan-router's reference engine on both hosts
 *   native-none, native-tap, native-tap-gso   the native engine with only those offloads (not run by default)
 *   floor   benchmarks/floor-relay.cc on both hosts: the least a userspace relay can do (blocking I/O, one frame per
 *           syscall, no offloads); tells what any userspace design gets on this machine (not run by default)
 *   floor-spin  the same relay busy-polling instead of sleeping (not run by default)
 * Paths are interleaved by repetition so machine drift hits all alike. Every figure is the median of the reps with
 * min-max, and its ratio to `kernel` measured in this run. Raw samples, machine info and commands go to
 * benchmarks/results/bench-<time>.json, the ratios to an SVG chart beside it. Bounded in time; cleans up on Ctrl-C.
 *
 *   native-threads, native-uring   the native engine with its event loop forced (--loop; not run by default)
 *   native-uring-wait   the io_uring loop waiting for N completions or T µs (--uring-wait N,T, default 8,50)
 * Wake-up figures (per GB moved by TCP 1 stream c1→c2): the routers' context switches (all threads,
 * /proc/<pid>/task/<tid>/status), the machine's (/proc/stat ctxt), RES and CAL IPIs (/proc/interrupts), and the
 * machine's busy CPU seconds (/proc/stat) — so a change shows where it acts.
 *
 *   npm run bench -- [--quick] [--reps 3] [--duration 5] [--paths direct,kernel,native,js,native-none,native-tap,native-tap-gso,native-threads,native-uring,native-uring-wait,floor,floor-spin] [--mtu 1280,1500,9000] [--uring-wait N,T]
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, release, tmpdir, totalmem } from 'node:os';
import { parseArgs } from 'node:util';
import { loadNative } from '../src/dataplane/native.js';
import { Lab, labSkipReason, twoHosts, type Container } from '../src/lab/lab.js';
import type { EngineName } from '../src/lab/router-process.js';
import { iperf3, lossFreeRate, sockperfLatency } from '../src/lab/transfers.js';
import { waitFor } from '../src/lab/wait.js';
import { processRssMiB, sampleCpu, sampleWakeups, type WakeupCost } from './procstat.js';
import { chartOfResult, chartSvg } from './chart.js';

/** The native engine with fewer offloads, to measure what each gives (`--paths native-none,native-tap,...`). */
const NATIVE_VARIANTS = { 'native-none': 'none', 'native-tap': 'tap', 'native-tap-gso': 'tap,gso' } as const;
/** The native engine with its event loop forced (`--paths native-threads,native-uring`: both in the same run). */
const NATIVE_LOOPS = { 'native-threads': 'threads', 'native-uring': 'uring', 'native-uring-wait': 'uring' } as const;
type Path = 'direct' | 'kernel' | 'floor' | 'floor-spin' | EngineName | keyof typeof NATIVE_VARIANTS | keyof typeof NATIVE_LOOPS;
const DEFAULT_PATHS: Path[] = ['direct', 'kernel', 'native', 'js'];
const ALL_PATHS: Path[] = [...DEFAULT_PATHS, ...(Object.keys(NATIVE_VARIANTS) as Path[]), ...(Object.keys(NATIVE_LOOPS) as Path[]), 'floor', 'floor-spin'];

const { values: opt } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    reps: { type: 'string' },
    duration: { type: 'string' },
    paths: { type: 'string', default: DEFAULT_PATHS.join(',') },
    mtu: { type: 'string' },
    out: { type: 'string' },
    'uring-wait': { type: 'string', default: '8,50' },
  },
});
const quick = opt.quick === true;
const reps = Number(opt.reps ?? (quick ? 1 : 3));
const duration = Number(opt.duration ?? (quick ? 1 : 5));
const paths = opt.paths.split(',').filter((p): p is Path => (ALL_PATHS as string[]).includes(p));
const udpTrials = quick ? 4 : 7;
const udpSeconds = quick ? 1 : 2;
const mtus = (opt.mtu ?? '').split(',').filter(Boolean).map(Number);
const outDir = opt.out ?? new URL('./results/', import.meta.url).pathname;

/** What one measurement of one path yields. Units in the names; NaN where a figure does not apply. */
const METRICS = [
  ['tcp1_fwd_gbps', 'TCP 1 stream c1→c2, Gbit/s', 'higher'],
  ['tcp1_rev_gbps', 'TCP 1 stream c2→c1, Gbit/s', 'higher'],
  ['tcp4_fwd_gbps', 'TCP 4 streams c1→c2, Gbit/s', 'higher'],
  ['tcp4_rev_gbps', 'TCP 4 streams c2→c1, Gbit/s', 'higher'],
  ['udp64_kpps', 'UDP 64 B loss-free (≤0.1%), kpps', 'higher'],
  ['udp1400_kpps', 'UDP 1400 B loss-free (≤0.1%), kpps', 'higher'],
  ['lat_p50_us', 'UDP ping-pong p50 (sockperf, ½ RTT), µs', 'lower'],
  ['lat_p99_us', 'UDP ping-pong p99 (sockperf, ½ RTT), µs', 'lower'],
  ['ping_ms', 'ping avg RTT, ms', 'lower'],
  ['router_cpu_s_per_gb', 'router CPU s per GB (TCP 1 stream)', 'lower'],
  ['machine_cpu_pct', 'machine CPU busy during TCP 1 stream, %', 'lower'],
  ['router_rss_mib', 'router RSS, MiB (max of both)', 'lower'],
  // Where the CPU goes (issue #17): wake-ups per GB moved by the TCP 1 stream c1→c2 test.
  ['machine_cpu_s_per_gb', 'machine CPU s per GB (TCP 1 stream)', 'lower'],
  ['router_csw_per_gb', 'router context switches per GB', 'lower'],
  ['router_vcsw_per_gb', 'router voluntary ctx switches per GB', 'lower'],
  ['machine_csw_per_gb', 'machine context switches per GB', 'lower'],
  ['ipi_res_per_gb', 'rescheduling IPIs (RES) per GB', 'lower'],
  ['ipi_cal_per_gb', 'function-call IPIs (CAL) per GB', 'lower'],
] as const;
type Metric = (typeof METRICS)[number][0];
/** A sample: the figures, and the machine's CPU busy share (%) during each test, kept in the JSON. */
type Sample = Record<Metric, number> & { machineCpuPct?: Record<string, number>; tcp1FwdCost?: WakeupCost & { gbMoved: number } };

let current: Lab | undefined;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => void (current?.destroy() ?? Promise.resolve()).then(() => process.exit(130)));
}

const say = (s: string): boolean => process.stdout.write(s);

/** Builds the lab of one path; returns the two containers and the PIDs of the routers (none for direct and kernel). */
async function buildPath(lab: Lab, path: Path, opts: { underlayMtu?: number; extraPeers?: number } = {}): Promise<{ c1: Container; c2: Container; pids: number[] }> {
  if (path === 'direct') {
    const [c1, c2] = await lab.addDirectPair(opts.underlayMtu);
    return { c1, c2, pids: [] };
  }
  const { h1, h2, c1, c2 } = await twoHosts(lab, undefined, opts.underlayMtu);
  if (path === 'kernel') {
    await lab.addKernelVtep(h1, [h2.underlayIp], { offloads: true });
    await lab.addKernelVtep(h2, [h1.underlayIp], { offloads: true });
    return { c1, c2, pids: [] };
  }
  if (path === 'floor' || path === 'floor-spin') {
    const pids: number[] = [];
    for (const [h, peer] of [[h1, h2], [h2, h1]] as const) {
      await lab.exec(h.ns, 'ip', ['tuntap', 'add', 'mode', 'tap', 'name', 'floor0']);
      await lab.exec(h.ns, 'ip', ['link', 'set', 'floor0', 'master', 'br0', 'mtu', String(h.underlayMtu - 50), 'up']);
      pids.push(lab.spawn(h.ns, floorRelay(), ['floor0', h.underlayIp, peer.underlayIp, '42', ...(path === 'floor-spin' ? ['spin'] : [])]).pid ?? 0);
      await waitFor(async () => (await lab.exec(h.ns, 'ss', ['-Hlun'])).stdout.includes(':4789 '), { timeoutMs: 5000, what: 'floor-relay bound' });
    }
    return { c1, c2, pids };
  }
  // Extra peers (scale runs) are addresses on the lab's own underlay that nobody holds: they fill the table and the
  // flood lists; unicast traffic between c1 and c2 never goes to them.
  const extra = Array.from({ length: opts.extraPeers ?? 0 }, (_, i) => `198.51.100.${100 + i}`);
  const engine: EngineName = path === 'js' ? 'js' : 'native';
  const args =
    path in NATIVE_VARIANTS
      ? ['--offloads', NATIVE_VARIANTS[path as keyof typeof NATIVE_VARIANTS]]
      : path in NATIVE_LOOPS
        ? ['--loop', NATIVE_LOOPS[path as keyof typeof NATIVE_LOOPS]]
        : [];
  // native-uring-wait: the io_uring loop waiting for N completions or T µs (--uring-wait N,T); the routers read it
  // from their environment at start.
  if (path === 'native-uring-wait') process.env.VXLAN_ROUTER_URING_WAIT = opt['uring-wait'];
  const routers = await (async () => [
    await lab.startRouter(h1, { peers: [h2.underlayIp, ...extra], engine, args }),
    await lab.startRouter(h2, { peers: [h1.underlayIp, ...extra], engine, args }),
  ])().finally(() => delete process.env.VXLAN_ROUTER_URING_WAIT);
  return { c1, c2, pids: routers.map((r) => r.pid) };
}

/**
 * Whether the kernel's DAMON runs, and how: this lab's VM runs it (physical-address sampling every 500 ms, for
 * proactive reclaim), and while it does a relay that sleeps pays on waking in proportion to its resident memory, so
 * idle pings through our 70-80 MiB router are slower than through the 3 MiB floor relay (docs/benchmarks.md, "Idle pings and DAMON").
 */
function damonState(): string {
  const root = '/sys/kernel/mm/damon/admin/kdamonds';
  const read = (path: string): string => readFileSync(`${root}/${path}`, 'utf8').trim();
  try {
    const on = readdirSync(root).filter((k) => /^\d+$/.test(k) && read(`${k}/state`) === 'on');
    if (!on.length) return 'off';
    const ctx = `${on[0]}/contexts/0`;
    return `on (${read(`${ctx}/operations`)}, sampling every ${Number(read(`${ctx}/monitoring_attrs/intervals/sample_us`)) / 1000} ms)`;
  } catch {
    return 'off';
  }
}

/** benchmarks/floor-relay.cc, compiled once per run into a directory removed at exit. */
let floorBinary: string | undefined;
function floorRelay(): string {
  if (floorBinary) return floorBinary;
  const dir = mkdtempSync(`${tmpdir()}/vxr-floor-`);
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  const out = `${dir}/floor-relay`;
  execFileSync('g++', ['-O2', '-std=c++17', '-pthread', new URL('./floor-relay.cc', import.meta.url).pathname, '-o', out], { stdio: 'inherit' });
  return (floorBinary = out);
}

async function withLab<T>(work: (lab: Lab) => Promise<T>): Promise<T> {
  const lab = new Lab();
  current = lab;
  try {
    return await work(lab);
  } finally {
    await lab.destroy();
    current = undefined;
  }
}

async function measure(path: Path): Promise<Sample> {
  return withLab(async (lab) => {
    const { c1, c2, pids } = await buildPath(lab, path);
    const check = await lab.ping(c1.ns, c2.ip, 3);
    if (check.loss > 0) throw new Error(`${path}: the path does not forward (${check.output.trim()})`);
    // A second of TCP before any figure, on every path: a router started a moment ago is still finishing its own
    // start (the JIT compiling its hot functions, the control plane's first rounds), and it runs for days, not
    // seconds. With 1-second tests (--quick) that start-up was a large share of what the first test measured.
    await iperf3(lab, c1, c2, { seconds: 1 });
    const machineCpuPct: Record<string, number> = {};
    /** Runs one test while sampling the machine's CPU (kept per test in the JSON). */
    const timed = async <T>(name: string, work: () => Promise<T>): Promise<{ result: T; processCpuSeconds: number; machineBusyPercent: number }> => {
      const r = await sampleCpu(pids, work);
      machineCpuPct[name] = r.machineBusyPercent;
      return r;
    };
    const tcp = async (name: string, streams: number, reverse: boolean) =>
      (await timed(name, () => iperf3(lab, c1, c2, { seconds: duration, streams, reverse }))).result.gbitPerS;
    const udp = async (name: string, length: number, maxPps: number) =>
      (await timed(name, () => lossFreeRate(lab, c1, c2, { length, seconds: udpSeconds, iterations: udpTrials, maxPps }))).result.pps / 1000;
    const { result: fwd, cost } = await sampleWakeups(pids, () => timed('tcp1_fwd', () => iperf3(lab, c1, c2, { seconds: duration })));
    const gbMoved = (fwd.result.gbitPerS * duration) / 8;
    const perGb = (x: number): number => (gbMoved > 0 ? x / gbMoved : NaN);
    const s: Sample = {
      tcp1_fwd_gbps: fwd.result.gbitPerS,
      tcp1_rev_gbps: await tcp('tcp1_rev', 1, true),
      tcp4_fwd_gbps: await tcp('tcp4_fwd', 4, false),
      tcp4_rev_gbps: await tcp('tcp4_rev', 4, true),
      udp64_kpps: await udp('udp64', 64, 1_500_000),
      udp1400_kpps: await udp('udp1400', 1400, 500_000),
      ...(await timed('latency', () => sockperfLatency(lab, c1, c2, duration)).then(({ result: l }) => ({ lat_p50_us: l.p50, lat_p99_us: l.p99 }))),
      // Last, on a warm path: right after a router starts, its own start-up still competes for the 2 cores.
      ping_ms: (await lab.ping(c1.ns, c2.ip, 20)).avgMs,
      router_cpu_s_per_gb: pids.length ? fwd.processCpuSeconds / gbMoved : NaN,
      machine_cpu_pct: fwd.machineBusyPercent,
      router_rss_mib: pids.length ? Math.max(...pids.map(processRssMiB)) : NaN,
      machine_cpu_s_per_gb: perGb(cost.machineCpuSeconds),
      router_csw_per_gb: pids.length ? perGb(cost.routerVoluntary + cost.routerNonvoluntary) : NaN,
      router_vcsw_per_gb: pids.length ? perGb(cost.routerVoluntary) : NaN,
      machine_csw_per_gb: perGb(cost.machineCtxt),
      ipi_res_per_gb: perGb(cost.res),
      ipi_cal_per_gb: perGb(cost.cal),
      machineCpuPct,
      tcp1FwdCost: { ...cost, gbMoved },
    };
    return s;
  });
}

const median = (xs: number[]): number => {
  const s = xs.filter(Number.isFinite).sort((a, b) => a - b);
  if (!s.length) return NaN;
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const fmt = (x: number): string => (!Number.isFinite(x) ? '—' : x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2));

async function main(): Promise<number> {
  const skip = labSkipReason();
  if (skip) {
    console.error(`bench: ${skip}`);
    return 1;
  }
  const started = Date.now();
  say(`vxlan-router bench: paths ${paths.join(', ')}; ${reps} rep(s); ${duration} s per test${quick ? ' (quick)' : ''}; kernel ${release()}; DAMON ${damonState()}\n`);
  const samples: Record<string, Sample[]> = Object.fromEntries(paths.map((p) => [p, []]));
  for (let r = 1; r <= reps; r++) {
    for (const p of paths) {
      say(`  rep ${r}/${reps} ${p.padEnd(6)} … `);
      const t0 = Date.now();
      const s = await measure(p);
      samples[p]!.push(s);
      say(
        `TCP ${fmt(s.tcp1_fwd_gbps)} Gbit/s (per GB: machine ${fmt(s.machine_cpu_s_per_gb)} CPU-s, router ${fmt(s.router_cpu_s_per_gb)} CPU-s, ` +
          `${fmt(s.router_csw_per_gb)} router / ${fmt(s.machine_csw_per_gb)} machine cs, ${fmt(s.ipi_res_per_gb)} RES + ${fmt(s.ipi_cal_per_gb)} CAL IPIs), ` +
          `64 B ${fmt(s.udp64_kpps)} kpps, p50 ${fmt(s.lat_p50_us)} µs (${((Date.now() - t0) / 1000).toFixed(0)} s)\n`,
      );
    }
  }

  const summary: Record<string, Record<Metric, { median: number; min: number; max: number; ratio: number }>> = {};
  for (const p of paths) {
    summary[p] = {} as Record<Metric, { median: number; min: number; max: number; ratio: number }>;
    for (const [m] of METRICS) {
      const xs = samples[p]!.map((s) => s[m]).filter(Number.isFinite);
      const k = samples.kernel ? median(samples.kernel.map((s) => s[m])) : NaN;
      const med = median(xs);
      summary[p][m] = { median: med, min: xs.length ? Math.min(...xs) : NaN, max: xs.length ? Math.max(...xs) : NaN, ratio: med / k };
    }
  }
  const col = 24;
  say(`\n${'figure'.padEnd(42)}${paths.map((p) => p.padEnd(col)).join('')}\n`);
  for (const [m, label] of METRICS) {
    const cells = paths.map((p) => {
      const v = summary[p]![m];
      const range = reps > 1 && Number.isFinite(v.median) ? ` [${fmt(v.min)}-${fmt(v.max)}]` : '';
      const ratio = Number.isFinite(v.ratio) ? ` ${v.ratio.toFixed(2)}×` : '';
      return `${fmt(v.median)}${range}${ratio}`.padEnd(col);
    });
    say(`${label.padEnd(42)}${cells.join('')}\n`);
  }
  say('(median [min-max] and ratio to kernel, this run)\n');

  const extra = await extras();
  mkdirSync(outDir, { recursive: true });
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const base = `${outDir.replace(/\/$/, '')}/bench-${stamp}`;
  const report = {
    version: 1,
    machine: { kernel: release(), cpus: cpus().length, cpuModel: cpus()[0]?.model ?? '', memGiB: totalmem() / 2 ** 30, node: process.version, damon: damonState() },
    options: { quick, reps, duration, paths, udpTrials, udpSeconds, mtus },
    commands: {
      tcp: 'iperf3 -c <c2> -t <duration> -P <1|4> [-R] -J',
      udp: 'iperf3 -c <c2> -u -l <64|1400> -b <rate> -t <s> -J, binary search on rate for ≤0.1% loss',
      latency: 'sockperf pp -i <c2> -t <duration> -m 64 (server: sockperf sr)',
      ping: 'ping -c 20 -i 0.2, after the other tests',
    },
    metrics: Object.fromEntries(METRICS.map(([m, label, better]) => [m, { label, better }])),
    samples,
    summary,
    ...extra,
    seconds: (Date.now() - started) / 1000,
  };
  writeFileSync(`${base}.json`, `${JSON.stringify(report, null, 2)}\n`);
  writeFileSync(`${base}.svg`, chartOfResult(report));
  if (extra.mtuSweep.length) {
    // native against kernel at each MTU, on the same chart shape as the main one.
    const at = (mtu: number, path: Path) => extra.mtuSweep.find((r) => r.mtu === mtu && r.path === path);
    const both = (mtu: number, pick: (r: MtuRow) => number) => {
      const [k, n] = [at(mtu, 'kernel'), at(mtu, 'native')];
      return { kernel: k ? pick(k) : NaN, native: n ? pick(n) : NaN };
    };
    const rows = mtus.flatMap((mtu) => [
      { label: `MTU ${mtu}: TCP 1 stream`, unit: 'Gbit/s', better: 'higher' as const, values: both(mtu, (r) => r.tcp1_fwd_gbps) },
      { label: `MTU ${mtu}: UDP loss-free rate`, unit: 'kpps', better: 'higher' as const, values: both(mtu, (r) => r.udp_kpps) },
    ]);
    writeFileSync(`${base}-mtu.svg`, chartSvg({ title: 'native against kernel at each underlay MTU (same run)', paths: ['kernel', 'native'], reference: 'kernel', rows }));
  }
  say(`\nresults: ${base}.json and .svg${extra.mtuSweep.length ? ' (and -mtu.svg)' : ''} (${report.seconds.toFixed(0)} s)\n`);
  return 0;
}

/** The scale runs (peers, table size) and the MTU sweep. */
interface MtuRow {
  mtu: number;
  path: Path;
  tcp1_fwd_gbps: number;
  udp_kpps: number;
  udp_length: number;
}

async function extras(): Promise<{ scale: unknown; lookup: unknown; mtuSweep: MtuRow[] }> {
  const addon = loadNative();
  const lookups = quick ? 1_000_000 : 5_000_000;
  const lookup = { entries100_ns: addon.benchLookup(100, lookups), entries100000_ns: addon.benchLookup(100_000, lookups) };
  say(`\nnative table lookup: ${lookup.entries100_ns.toFixed(1)} ns with 100 entries, ${lookup.entries100000_ns.toFixed(1)} ns with 100 000\n`);

  const scale: { peers: number; tcp1_fwd_gbps: number }[] = [];
  if (paths.includes('native')) {
    for (const peers of quick ? [1, 10] : [1, 10, 100]) {
      const g = await withLab(async (lab) => {
        const { c1, c2 } = await buildPath(lab, 'native', { extraPeers: peers - 1 });
        await lab.ping(c1.ns, c2.ip, 2); // learn both MACs so the measured traffic is unicast
        return (await iperf3(lab, c1, c2, { seconds: duration })).gbitPerS;
      });
      scale.push({ peers, tcp1_fwd_gbps: g });
      say(`native TCP 1 stream with ${String(peers).padStart(3)} peer(s): ${fmt(g)} Gbit/s\n`);
    }
  }

  const mtuSweep: MtuRow[] = [];
  for (const mtu of mtus) {
    for (const path of paths.filter((p) => p === 'kernel' || p === 'native')) {
      const length = Math.min(1400, mtu - 50 - 28);
      const r = await withLab(async (lab) => {
        const { c1, c2 } = await buildPath(lab, path, { underlayMtu: mtu });
        const tcp = (await iperf3(lab, c1, c2, { seconds: duration })).gbitPerS;
        const udp = await lossFreeRate(lab, c1, c2, { length, seconds: udpSeconds, iterations: udpTrials, maxPps: 500_000 });
        return { tcp, udp: udp.pps / 1000 };
      });
      mtuSweep.push({ mtu, path, tcp1_fwd_gbps: r.tcp, udp_kpps: r.udp, udp_length: length });
      say(`MTU ${mtu} ${path.padEnd(6)}: TCP ${fmt(r.tcp)} Gbit/s, UDP ${length} B ${fmt(r.udp)} kpps\n`);
    }
  }
  return { scale, lookup, mtuSweep };
}

process.exitCode = await main();
