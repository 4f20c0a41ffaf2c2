/**
 * Traffic across a lab: a hash-checked TCP transfer (socat, so the bytes are checked end to end, not just counted)
 * and iperf3 throughput. Every command is bounded in time; servers are started per run and killed by PID.
 */
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { createReadStream, rmSync } from 'node:fs';
import { Lab, type Container } from './lab.js';
import { waitFor } from './wait.js';

export interface TransferResult {
  readonly bytes: number;
  readonly sentSha256: string;
  readonly receivedSha256: string;
  readonly seconds: number;
  readonly mbitPerS: number;
}

async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex');
}

async function listening(lab: Lab, ns: string, port: number): Promise<boolean> {
  return (await lab.exec(ns, 'ss', ['-Hltn'])).stdout.includes(`:${port} `);
}

/** Sends `megabytes` of random data from one container to another over TCP; both ends hash what they saw. */
export async function hashedTransfer(lab: Lab, from: Container, to: Container, megabytes: number, port = 5001): Promise<TransferResult> {
  const path = `/tmp/vxr${lab.id}-${from.name}-payload`;
  try {
    await lab.exec('', 'sh', ['-c', `head -c ${megabytes}M /dev/urandom > ${path}`], 30_000);
    const sentSha256 = await sha256File(path);
    const receiver = lab.spawn(to.ns, 'sh', ['-c', `socat -u TCP-LISTEN:${port},reuseaddr STDOUT | sha256sum`]);
    let out = '';
    receiver.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    // 'close' (not 'exit'): by then its stdout, the sha256sum line, has been read too.
    const closed = once(receiver, 'close');
    await waitFor(() => listening(lab, to.ns, port), { timeoutMs: 5000, what: `a listener on ${to.name}:${port}` });
    const started = Date.now();
    await lab.exec(from.ns, 'socat', ['-u', `FILE:${path}`, `TCP:${to.ip}:${port},connect-timeout=5`], 180_000);
    await closed;
    const seconds = (Date.now() - started) / 1000;
    const bytes = megabytes * 1024 * 1024;
    return { bytes, sentSha256, receivedSha256: out.split(/\s/)[0] ?? '', seconds, mbitPerS: (bytes * 8) / seconds / 1e6 };
  } finally {
    rmSync(path, { force: true });
  }
}

export interface IperfOptions {
  readonly seconds: number;
  readonly streams?: number;
  /** Server sends, client receives (iperf3 -R). */
  readonly reverse?: boolean;
  /** UDP at `bitrate` bits/s with `length`-byte payloads instead of TCP. */
  readonly udp?: { readonly length: number; readonly bitrate: number };
  readonly port?: number;
}

export interface IperfResult {
  readonly gbitPerS: number;
  readonly retransmits: number;
  /** UDP only: datagrams sent and the share lost, in percent. */
  readonly packets: number;
  readonly lostPercent: number;
}

interface IperfJson {
  end: {
    sum_received?: { bits_per_second: number; packets?: number; lost_percent?: number };
    sum_sent?: { retransmits?: number };
    sum?: { bits_per_second: number; packets?: number; lost_percent?: number };
  };
}

/** One iperf3 run client → server (or back, with `reverse`), TCP or UDP, bounded in time. */
export async function iperf3(lab: Lab, client: Container, server: Container, opts: IperfOptions): Promise<IperfResult> {
  const port = opts.port ?? 5201;
  const srv = lab.spawn(server.ns, 'iperf3', ['-s', '-1', '-p', String(port)]);
  try {
    await waitFor(() => listening(lab, server.ns, port), { timeoutMs: 5000, what: 'iperf3 server' });
    const args = ['-c', server.ip, '-p', String(port), '-t', String(opts.seconds), '-P', String(opts.streams ?? 1), '--connect-timeout', '3000', '-J'];
    if (opts.reverse) args.push('-R');
    // 4 MiB socket buffers: with the default ones iperf3's bursts alone lose a few percent even on loopback.
    if (opts.udp) args.push('-u', '-l', String(opts.udp.length), '-b', String(Math.round(opts.udp.bitrate)), '-w', '4M');
    const { stdout } = await lab.exec(client.ns, 'iperf3', args, (opts.seconds + 20) * 1000);
    const end = (JSON.parse(stdout) as IperfJson).end;
    if (opts.udp) {
      const sum = end.sum_received ?? end.sum ?? { bits_per_second: 0 };
      return { gbitPerS: sum.bits_per_second / 1e9, retransmits: 0, packets: sum.packets ?? 0, lostPercent: sum.lost_percent ?? 100 };
    }
    return { gbitPerS: (end.sum_received?.bits_per_second ?? 0) / 1e9, retransmits: end.sum_sent?.retransmits ?? 0, packets: 0, lostPercent: 0 };
  } finally {
    if (srv.exitCode === null) srv.kill('SIGKILL');
  }
}

export interface LossFreeRate {
  readonly pps: number;
  readonly gbitPerS: number;
  /** Offered rates tried, with their loss, in order. */
  readonly trials: readonly { readonly offeredPps: number; readonly lostPercent: number }[];
}

/**
 * The highest UDP packet rate with at most `maxLossPercent` loss (RFC 2544 style), in `iterations` trials of
 * `seconds` each. The first trial offers `maxPps`: what arrives then bounds the answer, so the search continues
 * between 0 and that received rate, first at 90 % of it, then by halving the interval. The rate reported is the one
 * received in the best passing trial (iperf3 may offer less than asked when the sender itself is the limit).
 */
export async function lossFreeRate(
  lab: Lab,
  client: Container,
  server: Container,
  opts: { length: number; seconds: number; iterations: number; maxPps: number; maxLossPercent?: number },
): Promise<LossFreeRate> {
  let lo = 0;
  let hi = opts.maxPps;
  let best = { pps: 0, gbitPerS: 0 };
  const trials: { offeredPps: number; lostPercent: number }[] = [];
  for (let i = 0; i < opts.iterations; i++) {
    const offered = i === 0 ? hi : i === 1 ? 0.9 * hi : (lo + hi) / 2;
    const r = await iperf3(lab, client, server, { seconds: opts.seconds, udp: { length: opts.length, bitrate: offered * opts.length * 8 } });
    trials.push({ offeredPps: Math.round(offered), lostPercent: r.lostPercent });
    const received = (r.packets * (1 - r.lostPercent / 100)) / opts.seconds;
    if (r.lostPercent <= (opts.maxLossPercent ?? 0.1)) {
      if (received > best.pps) best = { pps: received, gbitPerS: (received * opts.length * 8) / 1e9 };
      lo = offered;
      if (i === 0) break; // even the ceiling passed: the sender is the limit
    } else {
      hi = i === 0 ? Math.min(offered, received) : offered;
    }
  }
  return { ...best, trials };
}

/** UDP ping-pong latency with sockperf, in microseconds (sockperf reports half the round trip). */
export async function sockperfLatency(lab: Lab, client: Container, server: Container, seconds: number): Promise<{ p50: number; p99: number }> {
  const port = 11111;
  const srv = lab.spawn(server.ns, 'sockperf', ['sr', '-i', server.ip, '-p', String(port)]);
  try {
    await waitFor(async () => (await lab.exec(server.ns, 'ss', ['-Hlun'])).stdout.includes(`:${port} `), { timeoutMs: 5000, what: 'sockperf server' });
    const { stdout } = await lab.exec(client.ns, 'sockperf', ['pp', '-i', server.ip, '-p', String(port), '-t', String(seconds), '-m', '64'], (seconds + 15) * 1000);
    const pct = (p: string): number => Number(new RegExp(`percentile ${p} =\\s+([\\d.]+)`).exec(stdout)?.[1] ?? NaN);
    return { p50: pct('50.000'), p99: pct('99.000') };
  } finally {
    if (srv.exitCode === null) srv.kill('SIGKILL');
  }
}
