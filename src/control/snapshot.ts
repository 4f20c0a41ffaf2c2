/**
 * The on-disk snapshot of the registry: the last table the control plane produced, with the network definition and
 * the etcd revision it reflects, so that a router restarted while etcd is away forwards as before.
 *
 * Format: one msgpack document (msgpackr) `{ magic, format, savedAt, hostId, revision, network, table }`, validated
 * with a schema on read. A file that is missing, unreadable, not msgpack, of another format version or for another
 * host or network is not an error: `readSnapshot` says why it is unusable and the router carries on without it.
 *
 * Writes are atomic (a temp file in the same directory, fsync, rename over the old file) and debounced: a burst of
 * table changes produces one write `debounceMs` after the first change, with the newest state. Only one write runs at
 * a time. Timers come from an injectable clock so the debounce is testable without waiting.
 */
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Packr } from 'msgpackr';
import { z } from 'zod';
import { tableSchema, type TableSnapshot } from '../fdb/index.js';
import { networkDefinitionSchema, type NetworkDefinition } from './records.js';

/** Bumped on any incompatible change; an older or newer file is ignored with a message. */
export const SNAPSHOT_FORMAT = 1;
const MAGIC = 'vxlan-router-snapshot';

export interface RegistrySnapshot {
  /** ISO time the snapshot was taken. */
  readonly savedAt: string;
  /** The host that wrote it: a snapshot is only used by the same host. */
  readonly hostId: string;
  /** The etcd revision the table reflects. */
  readonly revision: number;
  readonly network: NetworkDefinition;
  readonly table: TableSnapshot;
  /** This host's address range (Docker IPAM slice) when the snapshot was taken. */
  readonly range?: string;
}

const fileSchema = z.object({
  magic: z.literal(MAGIC),
  format: z.number().int(),
  savedAt: z.string(),
  hostId: z.string(),
  revision: z.number().int().nonnegative(),
  network: networkDefinitionSchema,
  table: tableSchema,
  range: z.string().optional(),
});

// Plain maps and arrays only (no records/structures extension): a file must be decodable on its own, by any reader.
const packr = new Packr({ useRecords: false, mapsAsObjects: true });

export function snapshotPath(stateDir: string, network: string): string {
  return join(stateDir, `${network}.snapshot`);
}

export function encodeSnapshot(s: RegistrySnapshot): Buffer {
  return packr.pack({ magic: MAGIC, format: SNAPSHOT_FORMAT, ...s });
}

export type SnapshotRead =
  | { readonly ok: true; readonly snapshot: RegistrySnapshot }
  | { readonly ok: false; readonly missing: boolean; readonly reason: string };

/** Decodes and validates a snapshot; never throws. `expect` rejects a snapshot of another host or network. */
export function decodeSnapshot(bytes: Uint8Array, expect: { hostId?: string; network?: string } = {}): SnapshotRead {
  let doc: unknown;
  try {
    doc = packr.unpack(bytes);
  } catch (err) {
    return { ok: false, missing: false, reason: `not a snapshot (${(err as Error).message})` };
  }
  const head = z.object({ magic: z.literal(MAGIC), format: z.number() }).safeParse(doc);
  if (!head.success) return { ok: false, missing: false, reason: 'not a vxlan-router snapshot' };
  if (head.data.format !== SNAPSHOT_FORMAT) {
    return { ok: false, missing: false, reason: `snapshot format ${head.data.format}, this version reads ${SNAPSHOT_FORMAT}` };
  }
  const parsed = fileSchema.safeParse(doc);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    return { ok: false, missing: false, reason: `corrupt snapshot: ${issue.path.join('.')} ${issue.message}` };
  }
  const { magic: _m, format: _f, ...read } = parsed.data;
  // Every MAC of a snapshot came from etcd; files written before the table had one schema lost the origin.
  const table: TableSnapshot = { vnis: read.table.vnis.map((v) => ({ ...v, macs: v.macs.map((m) => ({ ...m, origin: m.origin ?? 'etcd' })) })) };
  const snapshot: RegistrySnapshot = { ...read, table };
  if (expect.hostId !== undefined && snapshot.hostId !== expect.hostId) {
    return { ok: false, missing: false, reason: `snapshot of host ${snapshot.hostId}, not of ${expect.hostId}` };
  }
  if (expect.network !== undefined && snapshot.network.name !== expect.network) {
    return { ok: false, missing: false, reason: `snapshot of network ${snapshot.network.name}, not of ${expect.network}` };
  }
  return { ok: true, snapshot };
}

/** Reads and validates the snapshot at `path`; never throws (a bad file is a reason, not a crash). */
export function readSnapshot(path: string, expect: { hostId?: string; network?: string } = {}): SnapshotRead {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (err) {
    const missing = (err as NodeJS.ErrnoException).code === 'ENOENT';
    return { ok: false, missing, reason: missing ? 'no snapshot yet' : `unreadable (${(err as Error).message})` };
  }
  return decodeSnapshot(bytes, expect);
}

/** Writes `bytes` to `path` (its directory must exist) so that a reader sees the old file or the new one, never a torn one. */
export function writeFileAtomic(path: string, bytes: Uint8Array): void {
  const tmp = `${path}.tmp-${process.pid}`;
  try {
    const fd = openSync(tmp, 'w', 0o600);
    try {
      writeSync(fd, bytes);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
}

/** setTimeout/clearTimeout, injectable so tests can drive the debounce with a fake clock. */
export interface TimerClock {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

const realTimers: TimerClock = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};

export interface SnapshotWriterOptions {
  readonly path: string;
  /** Delay between the first change of a burst and the write (default 500 ms). */
  readonly debounceMs?: number;
  readonly clock?: TimerClock;
  /** Called when a write fails (the writer keeps going: the next change tries again). */
  readonly onError?: (err: Error) => void;
  /** Called after each successful write (tests, logs). */
  readonly onWrite?: (s: RegistrySnapshot) => void;
  /** The writer itself, injectable for tests (default: writeFileAtomic). */
  readonly write?: (path: string, bytes: Uint8Array) => void;
}

/** Debounced, atomic snapshot writes. `save` is cheap and may be called on every change; `close` flushes. */
export class SnapshotWriter {
  private pending: RegistrySnapshot | undefined;
  private timer: unknown;
  private closed = false;
  private readonly debounceMs: number;
  private readonly clock: TimerClock;
  private readonly write: (path: string, bytes: Uint8Array) => void;
  writes = 0;

  /**
   * Makes the snapshot's directory now, once: a directory removed while the router runs (a lab torn down around a
   * router that is still stopping) is not made again by a late write, which fails and is reported instead.
   */
  constructor(private readonly opts: SnapshotWriterOptions) {
    this.debounceMs = opts.debounceMs ?? 500;
    this.clock = opts.clock ?? realTimers;
    this.write = opts.write ?? writeFileAtomic;
    if (opts.write === undefined) {
      try {
        mkdirSync(dirname(opts.path), { recursive: true, mode: 0o700 });
      } catch (err) {
        opts.onError?.(err as Error);
      }
    }
  }

  get path(): string {
    return this.opts.path;
  }

  /** Remembers the newest state; writes it `debounceMs` after the first unsaved change. */
  save(s: RegistrySnapshot): void {
    if (this.closed) return;
    this.pending = s;
    if (this.timer === undefined) this.timer = this.clock.setTimeout(() => this.flush(), this.debounceMs);
  }

  /** Writes the pending state now, if any. */
  flush(): void {
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    const s = this.pending;
    if (s === undefined) return;
    this.pending = undefined;
    try {
      this.write(this.opts.path, encodeSnapshot(s));
      this.writes++;
      this.opts.onWrite?.(s);
    } catch (err) {
      this.opts.onError?.(err as Error);
    }
  }

  /** Flushes what is pending and stops. Safe to call twice. */
  close(): void {
    if (this.closed) return;
    this.flush();
    this.closed = true;
  }
}
