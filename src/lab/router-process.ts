/**
 * One running `vxlan-router up`, as a lab sees it: its stdout lines (the ready line), its structured logs (stderr),
 * and what it forwards with, asked over its control socket the way an operator's `status` asks it. Started by
 * `Lab.startRouter`, which gives it a socket of its own.
 */
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, openSync, readSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { StringDecoder } from 'node:string_decoder';
import type { Status } from '../agent/index.js';
// The CLI's own client: the lab reads the router through the same door, and the same schema checks, as `status`.
import { ask } from '../cli/control-client.js';
import { waitFor } from './wait.js';

export type EngineName = 'native' | 'js';

/** Files a router writes its stdout and stderr to, so that it can outlive this process (demo --keep). */
export interface RouterOutput {
  readonly stdout: string;
  readonly stderr: string;
}

/** Follows files another process appends to (polled: they are small and this is a lab). */
class FileTail {
  private readonly offsets: [number, number] = [0, 0];
  private readonly decoders: [StringDecoder, StringDecoder] = [new StringDecoder('utf8'), new StringDecoder('utf8')];
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly paths: readonly [string, string],
    private readonly sinks: readonly [(chunk: string) => void, (chunk: string) => void],
  ) {
    this.timer = setInterval(() => this.poll(), 50);
  }

  /** Hands on whatever was appended since the last poll. */
  poll(): void {
    for (const i of [0, 1] as const) {
      let fd: number;
      try {
        fd = openSync(this.paths[i], 'r');
      } catch {
        continue; // removed under us (the lab was torn down): nothing more to read
      }
      const buf = Buffer.alloc(64 * 1024);
      try {
        let n = readSync(fd, buf, 0, buf.length, this.offsets[i]);
        while (n > 0) {
          this.offsets[i] += n;
          this.sinks[i](this.decoders[i].write(buf.subarray(0, n)));
          n = readSync(fd, buf, 0, buf.length, this.offsets[i]);
        }
      } finally {
        closeSync(fd);
      }
    }
  }

  stop(): void {
    clearInterval(this.timer);
    this.poll();
  }
}

export class RouterProcess {
  private readonly lines: string[] = [];
  private readonly waiters: { match: (l: string) => boolean; resolve: (l: string) => void }[] = [];
  private readonly tail: FileTail | undefined;
  private partial = '';
  readonly exited: Promise<number | null>;
  stderr = '';

  /** PID of the router itself (`ip netns exec` execs it, so this is the node process). */
  get pid(): number {
    return this.child.pid ?? -1;
  }

  /**
   * Reads the router's output from its pipes, or from `output` when it writes to files; asks it over `socket` (the
   * `--socket` it was started with).
   */
  constructor(readonly child: ChildProcess, readonly socket: string, readonly output?: RouterOutput) {
    if (output === undefined) {
      createInterface({ input: child.stdout! }).on('line', (line) => this.onLine(line));
      child.stderr!.on('data', (d: Buffer) => (this.stderr += d.toString()));
    } else {
      this.tail = new FileTail([output.stdout, output.stderr], [(c) => this.onStdout(c), (c) => (this.stderr += c)]);
    }
    // 'close' (not 'exit'): by then all of its output has been read, so a rejection can quote its stderr.
    this.exited = once(child, 'close').then(([code]) => {
      this.tail?.stop();
      return code as number | null;
    });
  }

  private onStdout(chunk: string): void {
    const parts = (this.partial + chunk).split('\n');
    this.partial = parts.pop() ?? '';
    for (const line of parts) this.onLine(line);
  }

  private onLine(line: string): void {
    this.lines.push(line);
    const i = this.waiters.findIndex((w) => w.match(line));
    if (i >= 0) this.waiters.splice(i, 1)[0]!.resolve(line);
  }

  /** Stops following the router and lets this process exit while it runs on (only for one started with `output`). */
  release(): void {
    this.tail?.stop();
    this.child.unref();
  }

  /** Resolves with the first (future or past, if `past`) stdout line that matches, or rejects on exit/timeout. */
  nextLine(match: (l: string) => boolean, timeoutMs: number, past = false): Promise<string> {
    const seen = past ? this.lines.find(match) : undefined;
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`router: no matching line in ${timeoutMs} ms; stderr: ${this.stderr}`)), timeoutMs);
      void this.exited.then((code) => {
        clearTimeout(timer);
        reject(new Error(`router exited (${code}): ${this.stderr.trim()}`));
      });
      this.waiters.push({ match, resolve: (l) => (clearTimeout(timer), resolve(l)) });
    });
  }

  /** The messages of the router's structured log lines (pino JSON on stderr) so far. */
  logs(): string[] {
    const msgs: string[] = [];
    for (const line of this.stderr.split('\n')) {
      try {
        const m = (JSON.parse(line) as { msg?: unknown }).msg;
        if (typeof m === 'string') msgs.push(m);
      } catch {
        /* not a log line (e.g. the one-line error of a failed start) */
      }
    }
    return msgs;
  }

  /** Resolves with the first log message (future, or past too if `past`) that matches; rejects on timeout. */
  async nextLog(match: (msg: string) => boolean, timeoutMs: number, past = false): Promise<string> {
    const skip = past ? 0 : this.logs().length;
    let found: string | undefined;
    await waitFor(() => (found = this.logs().slice(skip).find(match)) !== undefined, { timeoutMs, what: `a router log line (stderr so far: ${this.stderr.slice(-500)})` });
    return found!;
  }

  /** Every data-path counter by name (traffic and each drop reason). */
  async counters(): Promise<Record<string, number>> {
    return ask(this.socket, 'counters');
  }

  /** The peers of each VNI in the table the router forwards with now, sorted. */
  async peers(): Promise<Record<number, string[]>> {
    const t = await ask(this.socket, 'table');
    return Object.fromEntries(t.vnis.map((v) => [v.vni, [...v.peers].sort()]));
  }

  /** The remote addresses (IPv4 and IPv6 → MAC) of each VNI in the table the router forwards with now. */
  async neighbors(): Promise<Record<number, { ip: string; mac: string }[]>> {
    const t = await ask(this.socket, 'table');
    return Object.fromEntries(t.vnis.map((v) => [v.vni, v.neighbors ?? []]));
  }

  /** The whole status, as `vxlan-router status --json` gives it. */
  async status(): Promise<Status> {
    return ask(this.socket, 'status');
  }

  /** The data path's event loop (native: threads or uring) and why not io_uring when asked for. */
  async loop(): Promise<NonNullable<Status['loop']>> {
    return (await ask(this.socket, 'status')).loop ?? { kind: 'threads', fallback: '' };
  }

  /** The offloads in use now. */
  async offloads(): Promise<Status['offloads']> {
    return (await ask(this.socket, 'status')).offloads;
  }

  /** Its process's memory as it tells it (process.memoryUsage(): V8 heap, external), in bytes. */
  async memory(): Promise<NonNullable<Status['memory']>> {
    const m = (await ask(this.socket, 'status')).memory;
    if (m === undefined) throw new Error('router: its status has no memory section');
    return m;
  }

  /** SIGTERM, then SIGKILL if it has not exited in 5 s. Resolves with the exit code. */
  async stop(): Promise<number | null> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return this.child.exitCode;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 5000);
    const code = await this.exited;
    clearTimeout(timer);
    return code;
  }
}
