/**
 * TCP throughput through each data path, in one run: the kernel's VXLAN device (the bar), vxlan-router's native
 * engine and its js engine. Same lab for each (two hosts on a veth underlay, one container each, VNI 42), built anew
 * per measurement; paths interleaved by repetition so machine drift hits all alike. Prints medians (min-max) and the
 * ratio to `kernel` from this run, and writes the raw samples as JSON under benchmarks/results/.
 *
 *   npm run bench -- [--reps 3] [--duration 5] [--paths kernel,kernel-csum,native,js]
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { release } from 'node:os';
import { Lab, labSkipReason, twoHosts, type EngineName } from '../src/lab/netns.js';
import { iperf3 } from '../src/lab/traffic.js';

/** `kernel` keeps its checksum offloads (both ends are kernel VTEPs); `kernel-csum` turns them off, as a kernel
 *  peer of a userspace VTEP on a veth underlay must (LAB.md's checksum trap). */
type Path = 'kernel' | 'kernel-csum' | EngineName;

function option(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : fallback;
}

const reps = Number(option('reps', '3'));
const duration = Number(option('duration', '5'));
const paths = option('paths', 'kernel,kernel-csum,native,js').split(',') as Path[];

async function measure(path: Path): Promise<number> {
  const lab = new Lab();
  try {
    const { h1, h2, c1, c2 } = await twoHosts(lab);
    if (path === 'kernel' || path === 'kernel-csum') {
      await lab.addKernelVtep(h1, [h2.underlayIp], { offloads: path === 'kernel' });
      await lab.addKernelVtep(h2, [h1.underlayIp], { offloads: path === 'kernel' });
    } else {
      await lab.startRouter(h1, { peers: [h2.underlayIp], engine: path });
      await lab.startRouter(h2, { peers: [h1.underlayIp], engine: path });
    }
    const ping = await lab.ping(c1.ns, c2.ip, 2);
    if (ping.loss > 0) throw new Error(`${path}: overlay not up (${ping.output})`);
    return (await iperf3(lab, c1, c2, duration, 1)).gbitPerS;
  } finally {
    await lab.destroy();
  }
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

async function main(): Promise<number> {
  const skip = labSkipReason();
  if (skip) {
    console.error(`bench: ${skip}`);
    return 1;
  }
  const samples: Record<string, number[]> = Object.fromEntries(paths.map((p) => [p, []]));
  for (let r = 1; r <= reps; r++) {
    for (const p of paths) {
      process.stdout.write(`  rep ${r}/${reps} ${p.padEnd(11)} … `);
      const g = await measure(p);
      samples[p]!.push(g);
      process.stdout.write(`${g.toFixed(2)} Gbit/s\n`);
    }
  }
  const kernel = samples.kernel && samples.kernel.length ? median(samples.kernel) : NaN;
  console.log(`\nTCP, 1 stream, ${duration} s × ${reps} reps, kernel ${release()}`);
  console.log('path        median Gbit/s  min-max          ratio to kernel');
  for (const p of paths) {
    const xs = samples[p]!;
    const m = median(xs);
    console.log(`${p.padEnd(11)} ${m.toFixed(2).padStart(6)}        ${Math.min(...xs).toFixed(2)}-${Math.max(...xs).toFixed(2)}`.padEnd(42) + `${(m / kernel).toFixed(2)}×`);
  }
  const dir = new URL('./results/', import.meta.url);
  mkdirSync(dir, { recursive: true });
  const file = new URL(`throughput-${new Date().toISOString().replace(/[:.]/g, '-')}.json`, dir);
  writeFileSync(file, JSON.stringify({ kernel: release(), duration, reps, samples }, null, 2));
  console.log(`\nraw samples: ${file.pathname}`);
  return 0;
}

process.exitCode = await main();
