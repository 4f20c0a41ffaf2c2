/**
 * CPU per frame of a path's two relays during one TCP stream: `perf stat` (task-clock, context switches) of the
 * routers while iperf3 runs c1 → c2, divided by the frames moved (1448-byte payloads). Paths are interleaved by round
 * so that machine drift hits all alike. How the js engine was compared with the floor relay (docs/benchmarks.md,
 * "The js engine").
 *
 *   npx tsx benchmarks/engine-cost.ts [seconds=5] [rounds=2] [paths=floor,js]
 *
 * Paths: floor (benchmarks/floor-relay.cc), js, native, and js@<dir> / native@<dir>: that engine from another build
 * of this project (<dir>/dist/cli.js, with its own addon), e.g. a worktree of main, for before / after in one run.
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { Lab, labSkipReason, twoHosts } from '../src/lab/lab.js';
import { iperf3 } from '../src/lab/transfers.js';
import { waitFor } from '../src/lab/wait.js';

const [seconds = 5, rounds = 2] = process.argv.slice(2, 4).map(Number);
const paths = (process.argv[4] ?? 'floor,js').split(',');
const dir = mkdtempSync(`${tmpdir()}/vxr-cost-`);
process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
let floorBinary: string | undefined;

async function measure(path: string): Promise<string> {
  const lab = new Lab();
  try {
    const { h1, h2, c1, c2 } = await twoHosts(lab);
    const pids: number[] = [];
    for (const [h, peer] of [[h1, h2], [h2, h1]] as const) {
      if (path === 'floor') {
        floorBinary ??= (execFileSync('g++', ['-O2', '-std=c++17', '-pthread', new URL('./floor-relay.cc', import.meta.url).pathname, '-o', `${dir}/floor-relay`]), `${dir}/floor-relay`);
        await lab.exec(h.ns, 'ip', ['tuntap', 'add', 'mode', 'tap', 'name', 'floor0']);
        await lab.exec(h.ns, 'ip', ['link', 'set', 'floor0', 'master', 'br0', 'mtu', String(h.underlayMtu - 50), 'up']);
        pids.push(lab.spawn(h.ns, floorBinary, ['floor0', h.underlayIp, peer.underlayIp, '42']).pid ?? 0);
        await waitFor(async () => (await lab.exec(h.ns, 'ss', ['-Hlun'])).stdout.includes(':4789 '), { timeoutMs: 5000, what: 'floor-relay bound' });
      } else {
        const [engine, build] = path.split('@') as ['js' | 'native', string | undefined];
        const cli = build === undefined ? {} : { cli: `${build}/dist/cli.js` };
        pids.push((await lab.startRouter(h, { peers: [peer.underlayIp], engine, readyTimeoutMs: 60_000, ...cli })).pid);
      }
    }
    await lab.ping(c1.ns, c2.ip, 3);
    const perf = spawn('perf', ['stat', '-x,', '-e', 'task-clock,context-switches', '-p', pids.join(','), '--', 'sleep', String(seconds + 1)], { stdio: ['ignore', 'ignore', 'pipe'] });
    let report = '';
    perf.stderr.on('data', (d: Buffer) => (report += d.toString()));
    const r = await iperf3(lab, c1, c2, { seconds });
    await new Promise((done) => perf.once('exit', done));
    const counts = Object.fromEntries(report.trim().split('\n').map((l) => l.split(',')).map((f) => [f[2], Number(f[0])]));
    const frames = (r.gbitPerS * 1e9 * seconds) / 8 / 1448;
    const cpuMs = counts['task-clock'] ?? NaN;
    return `${path.padEnd(12)} ${r.gbitPerS.toFixed(3)} Gbit/s  ${r.retransmits} retransmits  routers ${(cpuMs / 1000).toFixed(2)} CPU-s  ${((cpuMs * 1000) / frames).toFixed(1)} µs CPU/frame  ${((counts['context-switches'] ?? NaN) / frames).toFixed(2)} context switches/frame`;
  } finally {
    await lab.destroy();
  }
}

const skip = labSkipReason();
if (skip) {
  console.error(`engine-cost: ${skip}`);
  process.exitCode = 1;
} else {
  for (let round = 1; round <= rounds; round++) for (const p of paths) console.log(`round ${round}  ${await measure(p)}`);
}
