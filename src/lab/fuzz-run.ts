/**
 * The fuzz run of issue 14: a router under test in h1, fed from both sides, then checked.
 *
 *   [c1] ── br0 ── router under test [h1 198.51.100.1] ══ switch ══ [h2 198.51.100.2] router ── br0 ── [c2]
 *    ▲ mutated frames (AF_PACKET on eth0)        ▲ mutated datagrams  ╠═══ [x 198.51.100.99] (not a peer)
 *                                                 from h2 (a peer) and x
 *
 * Phases, one after the other so that each one's counter deltas are its own: datagrams from x, datagrams from h2
 * (src/lab/fuzz.ts labels each with the check it must fail), frames into the bridge from c1. benchmarks/fuzz-send.cc
 * sends them, paced. Afterwards: the router answers on its control socket, a SHA-256-checked TCP transfer c1 → c2
 * passes, and its RSS is read again.
 *
 * Accounting: every datagram sent lands in exactly one counter (expectedCounter), or in the kernel's UDP drop count
 * of h1 (Udp InErrors: receive buffer full) before the router sees it. `accounted` sums the router's counters.
 * The native engine counts a datagram the TAP refused both as rx_datagrams and rx_tap_write_error; the JS engine
 * only as rx_tap_write_error: `delivered` takes that into account.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { processRssMiB as rssMiB, processSmapsMiB } from './proc.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { innerMtuLimit, parseIp, parseMac } from '../packet/index.js';
import { bridgeFrames, datagrams, encodeStream, expectedCounter, macPool, type Datagram, type Targets } from './fuzz.js';
import { Lab, twoHosts, type Host } from './lab.js';
import type { EngineName, RouterProcess } from './router-process.js';
import { hashedTransfer } from './transfers.js';
import { waitFor } from './wait.js';

/** The receive drop reasons a datagram can land in (rx_tap_write_error is counted on top of delivery, see above). */
/**
 * Every receive-side drop a fuzzed datagram can land in: the six the generator labels, plus the two that depend on
 * the router's state rather than the bytes (a full learned-MAC table, an inner source that is one of ours).
 */
export const RX_DROPS = ['rx_short', 'rx_bad_flags', 'rx_unknown_vni', 'rx_unknown_source', 'rx_truncated_inner', 'rx_oversize', 'rx_learn_full', 'rx_spoofed_source'] as const;

export interface FuzzOptions {
  readonly engine: EngineName;
  /** Datagrams from each of the two senders (peer and non-peer). */
  readonly datagramsPerSender: number;
  readonly frames: number;
  readonly seed: number;
  /** Send rate, items per second. */
  readonly pps: number;
  /**
   * The whole mix this many times on the same router, each round with its own seeds (default 1). RSS after each round
   * tells a table filling to its bound (growth in round 1 only) from a leak (growth every round).
   */
  readonly rounds?: number;
  readonly log?: (line: string) => void;
}

export interface DatagramPhase {
  readonly sender: 'peer' | 'non-peer';
  readonly sent: number;
  /** Refused by the sending kernel (e.g. larger than 65 507 bytes): never on the wire. */
  readonly failed: number;
  /** Datagrams with an empty UDP payload (the short ones of length 0). */
  readonly empty: number;
  /** Counter → how many datagrams were built to land there. */
  readonly expected: Record<string, number>;
  /** Counter → how much it moved during the phase. */
  readonly counted: Record<string, number>;
  /** h1's kernel UDP receive errors during the phase (buffer full: dropped before the router saw them). */
  readonly kernelDrops: number;
  /** Sum of the router's counters a datagram can land in (RX_DROPS + delivered). */
  readonly accounted: number;
  readonly seconds: number;
}

export interface FramePhase {
  readonly sent: number;
  readonly failed: number;
  /** Counter → how much it moved during the phase (tx side and the drops). */
  readonly counted: Record<string, number>;
  readonly seconds: number;
}

export interface FuzzSummary {
  readonly engine: EngineName;
  readonly seed: number;
  readonly phases: readonly DatagramPhase[];
  readonly frames: FramePhase;
  readonly rssBeforeMiB: number;
  /** After the fuzz, before the transfer. */
  readonly rssAfterMiB: number;
  readonly rssAfterTransferMiB: number;
  /** RSS after each round (one entry per round). */
  readonly rssAfterRoundMiB: readonly number[];
  readonly alive: boolean;
  readonly transfer: { readonly ok: boolean; readonly mbitPerS: number };
  readonly seconds: number;
}

/** benchmarks/fuzz-send.cc, compiled into `dir`. */
export function buildSender(dir: string): string {
  const out = join(dir, 'fuzz-send');
  const src = new URL('../../benchmarks/fuzz-send.cc', import.meta.url).pathname;
  execFileSync('g++', ['-O2', '-std=c++17', '-pthread', src, '-o', out], { stdio: 'inherit' });
  return out;
}

/** The kernel's UDP receive errors in a namespace (Udp InErrors of /proc/net/snmp, which includes RcvbufErrors). */
async function udpInErrors(lab: Lab, ns: string): Promise<number> {
  const lines = (await lab.exec(ns, 'cat', ['/proc/net/snmp'])).stdout.split('\n').filter((l) => l.startsWith('Udp:'));
  const names = lines[0]!.split(/\s+/);
  const values = lines[1]!.split(/\s+/);
  return Number(values[names.indexOf('InErrors')]);
}

function delta(after: Record<string, number>, before: Record<string, number>, names: readonly string[]): Record<string, number> {
  return Object.fromEntries(names.map((n) => [n, (after[n] ?? 0) - (before[n] ?? 0)]));
}

/** Waits until the router's counters stop moving (it has read all that was queued for it). */
async function settled(router: RouterProcess): Promise<Record<string, number>> {
  let last = JSON.stringify(await router.counters());
  let stable = 0;
  await waitFor(
    async () => {
      const now = JSON.stringify(await router.counters());
      stable = now === last ? stable + 1 : 0;
      last = now;
      return stable >= 3;
    },
    { timeoutMs: 30_000, intervalMs: 100, what: 'the router counters to settle' },
  );
  return JSON.parse(last) as Record<string, number>;
}

/** Items per file handed to fuzz-send: a million datagrams are never all in memory at once. */
const CHUNK = 20_000;

/** Sends `items` with fuzz-send in `ns` (`args`: its mode first, then what follows the file), CHUNK at a time. */
async function sendAll(lab: Lab, ns: string, bin: string, file: string, items: Iterable<Uint8Array>, args: string[], pps: number): Promise<{ sent: number; failed: number }> {
  const total = { sent: 0, failed: 0 };
  const chunk: Uint8Array[] = [];
  const flush = async (): Promise<void> => {
    writeFileSync(file, encodeStream(chunk));
    const out = (await lab.exec(ns, bin, [args[0]!, file, ...args.slice(1)], 60_000 + Math.ceil((chunk.length / pps) * 2000))).stdout;
    const m = /sent (\d+) failed (\d+)/.exec(out);
    if (!m) throw new Error(`fuzz-send: ${out}`);
    total.sent += Number(m[1]);
    total.failed += Number(m[2]);
    chunk.length = 0;
  };
  for (const it of items) {
    chunk.push(it);
    if (chunk.length >= CHUNK) await flush();
  }
  if (chunk.length > 0) await flush();
  return total;
}

/** Runs the whole fuzz on a fresh lab and returns what it saw; the lab is destroyed afterwards. */
export async function runFuzz(o: FuzzOptions): Promise<FuzzSummary> {
  const log = o.log ?? ((): void => {});
  const started = Date.now();
  const lab = new Lab();
  const dir = mkdtempSync(join(tmpdir(), `vxr-fuzz-${lab.id}-`));
  try {
    const sender = buildSender(dir);
    const { h1, h2, c1, c2 } = await twoHosts(lab);
    const x = await lab.addHost('x', '198.51.100.99', { bridge: false });
    // TAPs at the path's MTU (not the 65000 default) so that inner frames too big for the TAP exist and are fuzzed
    // (rx_oversize).
    const tapMtu = innerMtuLimit(h1.underlayMtu, h1.underlayIp);
    // --expose-gc: its status then measures the V8 heap after a full collection (live objects, not pending garbage).
    const r1 = await lab.startRouter(h1, { peers: [h2.underlayIp], engine: o.engine, args: ['--mtu', String(tapMtu)], nodeFlags: ['--expose-gc'] });
    await lab.startRouter(h2, { peers: [h1.underlayIp], engine: o.engine, args: ['--mtu', String(tapMtu)] });
    if ((await lab.ping(c2.ns, c1.ip)).loss !== 0) throw new Error('overlay not up before the fuzz');
    // c1 and c2 know each other's MAC for good: the fuzz sends ARP, and a mutated sender address can become c2's (one
    // byte from 198.18.0.200), which would re-point c1's neighbour entry (the kernel's doing, not the router's) and
    // make the transfer afterwards test the neighbour cache.
    await lab.exec(c1.ns, 'ip', ['neigh', 'replace', c2.ip, 'lladdr', c2.mac, 'dev', 'eth0', 'nud', 'permanent']);
    await lab.exec(c2.ns, 'ip', ['neigh', 'replace', c1.ip, 'lladdr', c1.mac, 'dev', 'eth0', 'nud', 'permanent']);
    const maxInner = tapMtu + 18;
    const toC1: Targets = { dstMac: parseMac(c1.mac), dstIp: parseIp(c1.ip), srcMacs: macPool(o.seed, 1000), srcIp: parseIp('198.18.0.200') };
    // Warm-up (not counted): the same mix once at a tenth of the size, so that RSS before is the router's working size
    // (a JS heap grows to its working size on first load) and the growth measured is what the run itself leaves.
    const warmup = Math.min(10_000, Math.ceil(o.datagramsPerSender / 10));
    const rssStartMiB = rssMiB(r1.pid);
    await sendAll(lab, h2.ns, sender, join(dir, 'warmup'), [...datagrams(o.seed + 100, warmup, toC1, { vni: 42, maxInner, maxDatagram: 65_507 })].map((d) => d.bytes), ['udp', String(o.pps), h2.underlayIp, h1.underlayIp, '4789'], o.pps);
    await settled(r1);
    const split = await memorySplit(r1);
    const rssBeforeMiB = rssMiB(r1.pid);
    log(`router ${o.engine} pid ${r1.pid}, RSS ${rssStartMiB.toFixed(1)} MiB at start, ${rssBeforeMiB.toFixed(1)} MiB after a warm-up of ${warmup} datagrams`);
    log(`memory before: ${split}`);

    const phases: DatagramPhase[] = [];
    const rounds = o.rounds ?? 1;
    const rssAfterRoundMiB: number[] = [];
    let frames: FramePhase = { sent: 0, failed: 0, counted: {}, seconds: 0 };
    for (let round = 0; round < rounds; round++) {
      const seed = o.seed + 1000 * round;
      for (const [i, from, label] of [[1, x, 'non-peer'], [2, h2, 'peer']] as const) {
        phases.push(await datagramPhase(lab, r1, h1, from, label, sender, dir, o, datagrams(seed + i, o.datagramsPerSender, toC1, { vni: 42, maxInner, maxDatagram: 65_507 })));
        log(phaseLine(phases.at(-1)!));
      }
      // Sources are an address no container has: an ARP from c1 claiming c1's own address with a pool MAC would
      // (rightly) re-point c2's neighbour entry for c1, and the transfer afterwards would test the fuzz, not the router.
      const toC2: Targets = { dstMac: parseMac(c2.mac), dstIp: parseIp(c2.ip), srcMacs: [parseMac(c1.mac), ...macPool(seed + 7, 1000)], srcIp: parseIp('198.18.0.201') };
      const file = join(dir, 'frames');
      const before = await settled(r1);
      const t0 = Date.now();
      const res = await sendAll(lab, c1.ns, sender, file, bridgeFrames(seed + 3, o.frames, toC2, 1450 + 14), ['eth', String(o.pps), 'eth0'], o.pps);
      const after = await settled(r1);
      const names = Object.keys(after).filter((n) => n.startsWith('tx_') || n === 'learned' || n.endsWith('_suppressed'));
      const counted = delta(after, before, names);
      const seconds = (Date.now() - t0) / 1000;
      log(`frames: sent ${res.sent} (kernel refused ${res.failed}) in ${seconds.toFixed(1)} s; ${fmt(counted)}`);
      const sum = { ...frames.counted };
      for (const [n, v] of Object.entries(counted)) sum[n] = (sum[n] ?? 0) + v;
      frames = { sent: frames.sent + res.sent, failed: frames.failed + res.failed, counted: sum, seconds: frames.seconds + seconds };
      // The split first: its status call collects garbage (--expose-gc), so the RSS read next is not inflated by it.
      log(`memory after round ${round + 1} of ${rounds}: ${await memorySplit(r1)}`);
      rssAfterRoundMiB.push(rssMiB(r1.pid));
    }

    // RSS is read before the transfer: what the fuzz left behind. The transfer's own buffers (a JS engine's young
    // generation grows under 8 MiB of frames) are reported apart.
    const rssAfterMiB = rssMiB(r1.pid);
    const alive = (await r1.counters().then(() => true, () => false)) && r1.child.exitCode === null;
    let transfer = { ok: false, mbitPerS: 0 };
    if (alive) {
      try {
        const tr = await hashedTransfer(lab, c1, c2, 8);
        transfer = { ok: tr.sentSha256 === tr.receivedSha256, mbitPerS: tr.mbitPerS };
      } catch (err) {
        log(`transfer failed: ${(err as Error).message}`);
        // Where c1's and c2's MACs are now, on both bridges and in both routers' tables: what a report needs.
        for (const [h, r] of [[h1, r1], [h2, undefined]] as const) {
          const fdb = (await lab.exec(h.ns, 'bridge', ['fdb', 'show', 'br', 'br0'])).stdout.split('\n').filter((l) => l.includes(c1.mac) || l.includes(c2.mac));
          log(`${h.name} bridge fdb: ${fdb.join(' / ')}`);
          if (r !== undefined) log(`${h.name} router counters: ${JSON.stringify(await r.counters())}`);
        }
      }
    }
    const rssAfterTransferMiB = rssMiB(r1.pid);
    log(`after: alive ${alive}, transfer ${transfer.ok ? 'ok' : 'FAILED'} (${transfer.mbitPerS.toFixed(0)} Mbit/s), RSS ${rssBeforeMiB.toFixed(1)} → ${rssAfterMiB.toFixed(1)} MiB (${rssAfterTransferMiB.toFixed(1)} after the transfer)`);
    return { engine: o.engine, seed: o.seed, phases, frames, rssBeforeMiB, rssAfterMiB, rssAfterTransferMiB, rssAfterRoundMiB, alive, transfer, seconds: (Date.now() - started) / 1000 };
  } finally {
    await lab.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function datagramPhase(
  lab: Lab,
  r1: RouterProcess,
  h1: Host,
  from: Host,
  sender: 'peer' | 'non-peer',
  bin: string,
  dir: string,
  o: FuzzOptions,
  items: Iterable<Datagram>,
): Promise<DatagramPhase> {
  const expected: Record<string, number> = {};
  let empty = 0;
  const file = join(dir, `datagrams-${sender}`);
  const before = await settled(r1);
  const k0 = await udpInErrors(lab, h1.ns);
  const t0 = Date.now();
  const tally = function* (): Generator<Uint8Array> {
    for (const d of items) {
      const c = expectedCounter(d.label, sender === 'peer');
      expected[c] = (expected[c] ?? 0) + 1;
      if (d.bytes.length === 0) empty++;
      yield d.bytes;
    }
  };
  const total = await sendAll(lab, from.ns, bin, file, tally(), ['udp', String(o.pps), from.underlayIp, h1.underlayIp, '4789'], o.pps);
  const after = await settled(r1);
  const kernelDrops = (await udpInErrors(lab, h1.ns)) - k0;
  const counted = delta(after, before, [...RX_DROPS, 'rx_datagrams', 'rx_tap_write_error', 'rx_merged', 'learned']);
  // A non-peer's datagrams are never delivered: what rx_datagrams counts meanwhile is the peer's own traffic (c2
  // answering an ARP of the frames before, late), not this sender's.
  const delivered = sender === 'peer' ? counted.rx_datagrams! + (o.engine === 'js' ? counted.rx_tap_write_error! : 0) : 0;
  const accounted = RX_DROPS.reduce((s, n) => s + counted[n]!, 0) + delivered;
  return { sender, ...total, empty, expected, counted, kernelDrops, accounted, seconds: (Date.now() - t0) / 1000 };
}

/** Where a router's memory is: V8 heap (used/total), external and array buffers, anonymous RSS (native + heap), in MiB. */
async function memorySplit(r: RouterProcess): Promise<string> {
  const mib = (b: number): string => (b / 1048576).toFixed(1);
  const smaps = processSmapsMiB(r.pid);
  try {
    const m = await r.memory();
    return `rss ${mib(m.rss)}, anonymous ${smaps.anonymous.toFixed(1)}, V8 heap ${mib(m.heapUsed)} used / ${mib(m.heapTotal)}, external ${mib(m.external)} (array buffers ${mib(m.arrayBuffers)})`;
  } catch (err) {
    return `status failed: ${(err as Error).message}`;
  }
}

function fmt(r: Record<string, number>): string {
  return Object.entries(r)
    .filter(([, v]) => v !== 0)
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');
}

export function phaseLine(p: DatagramPhase): string {
  return `datagrams from ${p.sender}: sent ${p.sent} (kernel refused ${p.failed}) in ${p.seconds.toFixed(1)} s; expected {${fmt(p.expected)}}; counted {${fmt(p.counted)}}; empty ${p.empty}; h1 kernel UDP drops ${p.kernelDrops}; accounted ${p.accounted} + kernel ${p.kernelDrops} = ${p.accounted + p.kernelDrops} of ${p.sent}`;
}
