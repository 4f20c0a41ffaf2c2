/**
 * The etcd control plane of one network: the registry (hosts, MACs, this host's record and address range) plus the
 * on-disk snapshot that lets a router start and forward while etcd is away. The registry, and the etcd client with
 * it, is loaded when `open` runs, never by importing this module: a router on static peers does not carry it.
 *
 * open:  the network's definition from etcd; if etcd does not answer within SNAPSHOT_PROBE_MS and a snapshot of this
 *        host and network exists, the snapshot's definition, table and address range instead.
 * start: joins (or, from a snapshot, keeps joining in the background); every new table is emitted and saved.
 */
import { EventEmitter } from 'node:events';
import { VxlanRouterError } from '../errors.js';
import { EMPTY_TABLE, type TableSnapshot } from '../fdb/index.js';
import type { AddressConflict, AdvertisedMac, ControlPlane, ControlPlaneEvents, HostRow, MacConflict, NoRange, PlaneNetwork, SelfRecord } from './control-plane.js';
import type { EtcdConnection, EtcdRegistry, RegistryCounters } from './etcd-registry.js';
import type { HostRange } from './ip-ranges.js';
import { openRegistry } from './open-registry.js';
import type { ControlPlaneState } from './control-plane-state.js';
import type { NameAddress } from './name-view.js';
import { undefinedNetwork, type NameEntry, type NetworkDefinition } from './records.js';
import { readSnapshot, SnapshotWriter, snapshotPath, type RegistrySnapshot } from './snapshot.js';

/** With a snapshot to fall back on, how long the first etcd call may take before the router starts from it. */
const SNAPSHOT_PROBE_MS = 3000;

export interface EtcdPlaneOptions {
  readonly connection: EtcdConnection;
  /** The network to serve, as `vxlan-router network create` defined it. */
  readonly network: string;
  readonly hostId: string;
  /** This host's underlay address and UDP port, as the other hosts reach it. */
  readonly local: string;
  readonly port: number;
  /** Lease TTL of this host's records. */
  readonly leaseTtl: number;
  /** Where `<network>.snapshot` is kept. */
  readonly stateDir: string;
  /** Name and version, for the host record. */
  readonly software: string;
  /** Debounce of snapshot writes (default 500 ms). */
  readonly snapshotDebounceMs?: number;
}

/** etcd is away (as opposed to refusing us, or the network not being defined): the snapshot can stand in. */
function unreachable(err: unknown): boolean {
  return err instanceof VxlanRouterError && err.code === 'E_ETCD' && err.recoverable;
}

export class EtcdPlane extends EventEmitter<ControlPlaneEvents> implements ControlPlane {
  readonly kind = 'etcd' as const;
  private registry: EtcdRegistry | undefined;
  private definition: NetworkDefinition | undefined;
  private snapshot: RegistrySnapshot | undefined;
  private writer: SnapshotWriter | undefined;
  private latest: TableSnapshot = EMPTY_TABLE;
  private closed = false;
  private readonly statePath: string;

  constructor(private readonly opts: EtcdPlaneOptions) {
    super();
    this.statePath = snapshotPath(opts.stateDir, opts.network);
  }

  async open(): Promise<PlaneNetwork> {
    const { network: name, hostId } = this.opts;
    const registry = (this.registry = await openRegistry({ ...this.opts.connection, ttlSeconds: this.opts.leaseTtl }));
    const read = readSnapshot(this.statePath, { hostId, network: name });
    if (!read.ok && !read.missing) this.warn('snapshot-unusable', `ignoring the snapshot ${this.statePath}: ${read.reason}`, undefined, 'E_SYSTEM');
    let definition: NetworkDefinition | undefined;
    try {
      definition = await registry.getNetwork(name, read.ok ? SNAPSHOT_PROBE_MS : undefined);
    } catch (err) {
      if (!read.ok || !unreachable(err)) throw err;
      this.snapshot = read.snapshot;
      definition = read.snapshot.network;
      this.latest = read.snapshot.table;
      const peers = read.snapshot.table.vnis.reduce((n, v) => n + v.peers.length, 0);
      this.warn(
        'started-from-snapshot',
        `etcd is unreachable (${(err as Error).message}); forwarding from the snapshot ${this.statePath} ` +
          `(revision ${read.snapshot.revision}, ${peers} peers, saved ${read.snapshot.savedAt}); joining etcd in the background`,
      );
    }
    if (definition === undefined) {
      throw undefinedNetwork(name);
    }
    this.definition = definition;
    return { name, vni: definition.vni, mtu: definition.mtu, subnet: definition.subnet, startedFrom: this.snapshot === undefined ? 'etcd' : 'snapshot' };
  }

  async start(self: SelfRecord): Promise<void> {
    const registry = this.registry;
    const definition = this.definition;
    if (registry === undefined || definition === undefined) throw new Error('EtcdPlane.start before open');
    const { hostId } = this.opts;
    const writer = (this.writer = new SnapshotWriter({
      path: this.statePath,
      ...(this.opts.snapshotDebounceMs !== undefined ? { debounceMs: this.opts.snapshotDebounceMs } : {}),
      onError: (err) => this.warn('snapshot-write', `cannot write the snapshot ${this.statePath}: ${err.message}`, err, 'E_SYSTEM'),
    }));
    registry.on('table', (t) => {
      this.latest = t;
      const range = registry.range();
      writer.save({ savedAt: new Date().toISOString(), hostId, revision: registry.controlPlane().revision, network: definition, table: t, ...('range' in range ? { range: range.range } : {}) });
      this.emit('table', t);
    });
    registry.on('warning', (err) => this.emit('warning', err));
    registry.on('state', (st) => this.emit('state', st));
    const record = {
      version: 1 as const,
      hostId,
      underlay: [this.opts.local],
      port: this.opts.port,
      networks: [...self.networks],
      mtu: self.mtu,
      software: this.opts.software,
      startedAt: new Date().toISOString(),
    };
    const snap = this.snapshot;
    if (snap === undefined) {
      await registry.join(definition, record);
      return;
    }
    registry.assumeSnapshot(definition, snap.revision, snap.table.vnis.reduce((n, v) => n + v.peers.length, 1), snap.range);
    void registry.joinInBackground(definition, record);
  }

  table(): TableSnapshot {
    return this.latest;
  }

  state(): ControlPlaneState | null {
    return this.registry?.controlPlane() ?? null;
  }

  range(): HostRange | NoRange {
    return this.registry?.range() ?? { none: 'not joined yet', reason: 'not-leased' };
  }

  hosts(): HostRow[] {
    return this.registry?.hostRows() ?? [];
  }

  counters(): RegistryCounters | null {
    return this.registry?.counters() ?? null;
  }

  macConflicts(): MacConflict[] {
    return this.registry?.macConflicts() ?? [];
  }

  addressConflicts(): AddressConflict[] {
    return this.registry?.addressConflicts() ?? [];
  }

  advertise(macs: readonly AdvertisedMac[]): void {
    const registry = this.registry;
    if (registry === undefined || this.definition === undefined || this.closed) return;
    const vni = this.definition.vni;
    registry.advertise(macs.filter((m) => m.vni === vni)).catch((err: Error) => this.warn('advertise', `cannot advertise this host's MACs: ${err.message}`, err));
  }

  advertiseNames(entries: readonly NameEntry[]): void {
    const registry = this.registry;
    if (registry === undefined || this.closed) return;
    registry.advertiseNames(entries).catch((err: Error) => this.warn('advertise-names', `cannot advertise this host's container names: ${err.message}`, err));
  }

  lookupName(name: string): NameAddress[] {
    return this.registry?.lookupName(name) ?? [];
  }

  async close(opts: { keepLease?: boolean } = {}): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.registry?.close(opts);
    this.writer?.close();
  }

  /** A problem this plane works around (E_ETCD unless the file system is the trouble: E_SYSTEM). */
  private warn(kind: string, message: string, cause?: unknown, code: 'E_ETCD' | 'E_SYSTEM' = 'E_ETCD'): void {
    this.emit('warning', new VxlanRouterError(code, message, { kind, recoverable: true, ...(cause !== undefined ? { cause } : {}) }));
  }
}
