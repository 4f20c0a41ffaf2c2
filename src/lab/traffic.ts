/**
 * Traffic across a lab: a hash-checked TCP transfer (socat, so the bytes are checked end to end, not just counted)
 * and iperf3 throughput. Every command is bounded in time; servers are started per run and killed by PID.
 */
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { createReadStream, rmSync } from 'node:fs';
import { Lab, waitFor, type Container } from './netns.js';

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
    await waitFor(() => listening(lab, to.ns, port), { timeoutMs: 5000, what: `a listener on ${to.name}:${port}` });
    const started = Date.now();
    await lab.exec(from.ns, 'socat', ['-u', `FILE:${path}`, `TCP:${to.ip}:${port},connect-timeout=5`], 180_000);
    if (receiver.exitCode === null) await once(receiver, 'exit');
    const seconds = (Date.now() - started) / 1000;
    const bytes = megabytes * 1024 * 1024;
    return { bytes, sentSha256, receivedSha256: out.split(/\s/)[0] ?? '', seconds, mbitPerS: (bytes * 8) / seconds / 1e6 };
  } finally {
    rmSync(path, { force: true });
  }
}

export interface IperfResult {
  readonly gbitPerS: number;
  readonly retransmits: number;
}

/** One iperf3 TCP run client → server for `seconds`, with `streams` parallel streams. */
export async function iperf3(lab: Lab, client: Container, server: Container, seconds: number, streams = 1, port = 5201): Promise<IperfResult> {
  const srv = lab.spawn(server.ns, 'iperf3', ['-s', '-1', '-p', String(port)]);
  try {
    await waitFor(() => listening(lab, server.ns, port), { timeoutMs: 5000, what: 'iperf3 server' });
    const { stdout } = await lab.exec(
      client.ns,
      'iperf3',
      ['-c', server.ip, '-p', String(port), '-t', String(seconds), '-P', String(streams), '--connect-timeout', '3000', '-J'],
      (seconds + 20) * 1000,
    );
    const r = JSON.parse(stdout) as { end: { sum_received: { bits_per_second: number }; sum_sent: { retransmits?: number } } };
    return { gbitPerS: r.end.sum_received.bits_per_second / 1e9, retransmits: r.end.sum_sent.retransmits ?? 0 };
  } finally {
    if (srv.exitCode === null) srv.kill('SIGKILL');
  }
}
