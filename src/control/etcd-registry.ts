/**
 * The etcd registry: where hosts find each other. Each host puts its VTEP record under a key bound to a short lease
 * (keepalive renews it; a crashed host's record disappears when the lease expires), lists the network's hosts, then
 * watches them from the revision of that list, so no change falls between the two. When the watch reports that
 * history it needs was compacted, the registry lists again and watches from the new revision. A lost lease is
 * granted anew and the record put again. Every change reaches the data path as a whole table (`table` event).
 *
 * Nothing here gives up while the registry is open: a failed re-list, re-registration or background join is retried
 * with a capped backoff, and the control-plane state (`controlPlane()`, `state` event) says 'degraded' meanwhile.
 *
 * Keys (values are JSON, readable with `etcdctl get`), all under REGISTRY_PREFIX:
 *   networks/<name>/config            NetworkDefinition
 *   networks/<name>/hosts/<hostId>    HostRecord, attached to the host's lease
 *   networks/<name>/macs/<hostId>     MacRecord: the MACs on that host's bridge (advertise()), under the same lease
 *   networks/<name>/ranges/<cidr>     RangeRecord: the slice of the subnet a host leased for Docker's IPAM, under a
 *                                     long lease of its own (a day by default) so a restart keeps the host's addresses
 *
 * Hosts and MACs are listed and watched together (one prefix, one revision): a peer's MACs reach the data path as
 * unicast entries, so traffic to them is never flooded, and they vanish with the host's lease.
 * Only this module looks inside etcd3's errors and options (LAB.md: "The etcd3 client").
 */
import { EventEmitter } from 'node:events';
import { readFileSync } from 'node:fs';
import { circuitBreaker, ConsecutiveBreaker, ExponentialBackoff, handleWhen } from 'cockatiel';
import { Etcd3, EtcdAuthenticationFailedError, EtcdPermissionDeniedError, isRecoverableError, type IOptions, type Lease, type Watcher } from 'etcd3';
import type { z } from 'zod';
import { ConfigError, VxlanRouterError } from '../errors.js';
import type { TableSnapshot } from '../fdb/index.js';
import { Slices, rangeRecordSchema, type HostRange, type RangeRecord } from './ip-ranges.js';
import {
  ControlPlaneTracker,
  HostView,
  hostRecordSchema,
  MacView,
  networkDefinitionSchema,
  retryDelay,
  type ControlPlaneState,
  type HostRecord,
  type MacRecord,
  type NetworkDefinition,
  type Problem,
} from './registry-view.js';

export { hostRecordSchema, networkDefinitionSchema, type HostRecord, type NetworkDefinition } from './registry-view.js';

export const REGISTRY_PREFIX = '/vxlan-router/v1';
const networkKey = (name: string): string => `${REGISTRY_PREFIX}/networks/${name}/config`;
const networkPrefix = (name: string): string => `${REGISTRY_PREFIX}/networks/${name}/`;
const hostsPrefix = (name: string): string => `${networkPrefix(name)}hosts/`;
const macsKey = (name: string, hostId: string): string => `${networkPrefix(name)}macs/${hostId}`;
const rangesPrefix = (name: string): string => `${networkPrefix(name)}ranges/`;

/** A key under networks/<name>/: which kind of record and whose. */
function recordKeyOf(key: string, name: string): { kind: 'hosts' | 'macs'; id: string } | undefined {
  const m = /^(hosts|macs)\/(.+)$/.exec(key.slice(networkPrefix(name).length));
  return m === null ? undefined : { kind: m[1] as 'hosts' | 'macs', id: m[2]! };
}

/** Counters of what the registry recovered from by itself. */
export interface RegistryCounters {
  /** Full listings after a watch ended (compaction, cancelled stream). */
  readonly relists: number;
  /** Host records ignored because they were malformed. */
  readonly rejectedRecords: number;
  /** Leases granted again after one was lost. */
  readonly leaseRegrants: number;
}

interface RegistryEvents {
  table: [TableSnapshot];
  state: [ControlPlaneState];
  /** Something went wrong that the registry recovers from by itself (logged by the agent). */
  warning: [Error];
}

/** How to reach etcd: endpoints, and optionally TLS (PEM files) and a user. */
export interface EtcdConnection {
  readonly endpoints: readonly string[];
  readonly tls?: { readonly caFile?: string; readonly certFile?: string; readonly keyFile?: string };
  readonly auth?: { readonly username: string; readonly password: string };
}

export interface RegistryOptions extends EtcdConnection {
  /** How long a call may wait for etcd before it fails with E_ETCD (default 10 s). */
  readonly callTimeoutMs?: number;
  /** Lease TTL of this host's records (default 15 s): how long a crashed host stays in the others' tables. */
  readonly ttlSeconds?: number;
  /** Lease TTL of this host's address range (default a day): how long a host that is gone keeps its addresses. */
  readonly rangeTtlSeconds?: number;
  /** Retry backoff of background work (re-list, re-register, join): doubling from initial to max (default 100 ms to 2 s). */
  readonly retry?: { readonly initialMs: number; readonly maxMs: number };
  /** The clock of `since` in the control-plane state (default Date.now). */
  readonly now?: () => number;
}

function readPem(file: string, what: string): Buffer {
  try {
    return readFileSync(file);
  } catch (cause) {
    throw new ConfigError(`cannot read the etcd ${what} ${file}: ${(cause as Error).message}`, { cause });
  }
}

/**
 * Client tuning measured against a real etcd (LAB.md): short watch backoff (at most 1 s between retries), quick
 * half-open, gRPC keepalive (a silent cut is noticed), and a short gRPC reconnect backoff (grpc-js backs off up to
 * 120 s by default, which delays recovery long after etcd is back).
 */
function clientOptions(c: EtcdConnection): IOptions {
  const opts: IOptions = {
    hosts: [...c.endpoints],
    grpcOptions: {
      'grpc.keepalive_time_ms': 5000,
      'grpc.keepalive_timeout_ms': 3000,
      'grpc.keepalive_permit_without_calls': 1,
      'grpc.initial_reconnect_backoff_ms': 100,
      'grpc.max_reconnect_backoff_ms': 1000,
    },
    faultHandling: {
      host: () => circuitBreaker(handleWhen(isRecoverableError), { halfOpenAfter: 1000, breaker: new ConsecutiveBreaker(3) }),
      // etcd3's typing says IBackoff; it takes a backoff factory such as cockatiel's ExponentialBackoff.
      watchBackoff: new ExponentialBackoff({ initialDelay: 100, maxDelay: 1000 }) as unknown as NonNullable<IOptions['faultHandling']>['watchBackoff'],
    } as IOptions['faultHandling'],
  };
  if (c.tls !== undefined) {
    const { caFile, certFile, keyFile } = c.tls;
    if ((certFile === undefined) !== (keyFile === undefined)) throw new ConfigError('--etcd-cert and --etcd-key go together: pass both or neither');
    if (caFile !== undefined || certFile !== undefined) {
      // grpc-js wants a root certificate argument; without --etcd-ca it uses the system's roots (null).
      opts.credentials = {
        rootCertificate: (caFile === undefined ? null : readPem(caFile, 'CA certificate')) as Buffer,
        ...(certFile !== undefined ? { certChain: readPem(certFile, 'client certificate') } : {}),
        ...(keyFile !== undefined ? { privateKey: readPem(keyFile, 'client key') } : {}),
      };
    }
  }
  if (c.auth !== undefined) opts.auth = { username: c.auth.username, password: c.auth.password };
  return opts;
}

/** `range` as a slice of the network's subnet, if it is one. */
function rangeOf(network: NetworkDefinition, range: string): HostRange | undefined {
  try {
    return new Slices(network.subnet, network.hostPrefix).find(range);
  } catch {
    return undefined;
  }
}

function safeJson(s: string): unknown {
  try {
    return JSON.parse(s);
  } catch {
    return undefined;
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms).unref());

export class EtcdRegistry extends EventEmitter<RegistryEvents> {
  private readonly client: Etcd3;
  private readonly ttl: number;
  private readonly rangeTtl: number;
  private readonly endpoints: readonly string[];
  private readonly callTimeoutMs: number;
  private readonly retryOpts: { readonly initialMs: number; readonly maxMs: number };
  private readonly tracker: ControlPlaneTracker;
  private readonly now: () => number;
  private view: HostView | undefined;
  private macView: MacView | undefined;
  /** What advertise() was last asked to publish, and what is in etcd under the current lease (JSON; '' = nothing). */
  private advertised: MacRecord['macs'] = [];
  private putMacs = '';
  private lease: Lease | undefined;
  private rangeLease: Lease | undefined;
  /** This host's slice of the subnet; or why it has none. */
  private hostRange: HostRange | { none: string } = { none: 'not leased yet' };
  private watcher: Watcher | undefined;
  /** Bumped by each listing: events of an older watcher are ignored. */
  private generation = 0;
  private joined: { network: NetworkDefinition; record: HostRecord } | undefined;
  private revision = 0;
  private assumedHosts = 0;
  private closed = false;
  private publishPending = false;
  private readonly counts = { relists: 0, rejectedRecords: 0, leaseRegrants: 0 };

  constructor(opts: RegistryOptions) {
    super();
    this.client = new Etcd3(clientOptions(opts));
    this.ttl = opts.ttlSeconds ?? 15;
    this.rangeTtl = opts.rangeTtlSeconds ?? 86_400;
    this.endpoints = opts.endpoints;
    this.callTimeoutMs = opts.callTimeoutMs ?? 10_000;
    this.retryOpts = opts.retry ?? { initialMs: 100, maxMs: 2000 };
    this.now = opts.now ?? Date.now;
    this.tracker = new ControlPlaneTracker(this.now);
  }

  /**
   * Writes a network's settings once (compare-and-swap on the key's creation): 'created', or 'unchanged' when the
   * same definition is there; a different one is refused unless `force`, then 'replaced'.
   */
  async createNetwork(input: z.input<typeof networkDefinitionSchema>, force = false): Promise<'created' | 'unchanged' | 'replaced'> {
    const cfg = networkDefinitionSchema.parse(input);
    const key = networkKey(cfg.name);
    const value = JSON.stringify(cfg);
    const tx = await this.guard(() => this.client.if(key, 'Create', '==', 0).then(this.client.put(key).value(value)).commit());
    if (tx.succeeded) return 'created';
    const existing = await this.getNetwork(cfg.name);
    if (existing !== undefined && JSON.stringify(existing) === value) return 'unchanged';
    if (!force) {
      throw new ConfigError(`network ${cfg.name} already exists with another definition (${JSON.stringify(existing)}): pass --force to replace it`);
    }
    await this.guard(() => this.client.put(key).value(value).exec());
    return 'replaced';
  }

  /** The network's definition, or undefined when there is none. `timeoutMs` bounds this one call (default: callTimeoutMs). */
  async getNetwork(name: string, timeoutMs?: number): Promise<NetworkDefinition | undefined> {
    const raw = await this.guard(() => this.client.get(networkKey(name)).string(), timeoutMs);
    if (raw === null) return undefined;
    let json: unknown;
    try {
      json = JSON.parse(raw);
    } catch {
      throw new ConfigError(`${networkKey(name)} in etcd is not JSON`);
    }
    const parsed = networkDefinitionSchema.safeParse(json);
    if (!parsed.success) throw new ConfigError(`${networkKey(name)} in etcd is not a valid network definition: ${parsed.error.issues[0]?.message}`);
    return parsed.data;
  }

  /** Registers this host in the network under a lease, then follows the network's hosts. One attempt: throws E_ETCD. */
  async join(network: NetworkDefinition, record: HostRecord): Promise<void> {
    this.prepare(network, record);
    try {
      await this.register();
      await this.leaseRange(network, record.hostId);
      await this.follow();
      this.setJoined();
    } catch (err) {
      this.problem('join', true);
      throw err;
    }
  }

  /**
   * Like join, but keeps trying (capped backoff) until it succeeds or the registry is closed: for a router that
   * started from its snapshot while etcd was away. Resolves once joined (or closed).
   */
  async joinInBackground(network: NetworkDefinition, record: HostRecord): Promise<void> {
    this.prepare(network, record);
    this.problem('join', true);
    await this.retry('joining etcd', async () => {
      await this.register();
      await this.leaseRange(network, record.hostId);
      await this.follow();
    });
    if (!this.closed) this.setJoined();
  }

  /** This host's slice of the network's subnet (for Docker's IPAM), or why it has none. */
  range(): HostRange | { none: string } {
    return this.hostRange;
  }

  /**
   * Leases this host's slice of the network's subnet without joining (`docker-network create`, before the router
   * runs): the lease is left to run out by itself, and the router, with the same host id, takes the slice over.
   */
  async reserveRange(network: NetworkDefinition, hostId: string): Promise<HostRange | { none: string }> {
    await this.leaseRange(network, hostId);
    this.rangeLease?.release(); // stop the keepalive, keep the lease: it runs out in rangeTtl unless the router takes over
    this.rangeLease = undefined;
    return this.hostRange;
  }

  hosts(): HostRecord[] {
    return this.view?.hosts() ?? [];
  }

  /** Each host's record with when it was last updated (ms since the epoch). */
  hostRows(): { record: HostRecord; updatedAt: number }[] {
    return this.view?.rows() ?? [];
  }

  /** MACs several hosts advertise at once (see MacView.conflicts). */
  macConflicts(): { vni: number; mac: string; hostIds: string[] }[] {
    return this.macView?.conflicts() ?? [];
  }

  /** The data path's view: every other host of the network is a peer (flood list and source allow-list). */
  table(): TableSnapshot {
    const hosts = this.view?.table() ?? { vnis: [] };
    const selfId = this.joined?.record.hostId ?? '';
    return {
      vnis: hosts.vnis.map((v) => {
        const remote = this.macView?.remote(v.vni, selfId) ?? { macs: [], neighbors: [] };
        return { ...v, macs: [...v.macs, ...remote.macs.map(({ mac, vtep, origin }) => ({ mac, vtep, origin }))], neighbors: remote.neighbors };
      }),
    };
  }

  /** Connected, degraded or starting, since when, at which revision, with how many hosts. */
  controlPlane(): ControlPlaneState {
    return this.tracker.state(this.revision, this.generation === 0 ? this.assumedHosts : (this.view?.size ?? 0));
  }

  /** Reports a snapshot's revision, host count and address range until etcd answers. */
  assumeSnapshot(revision: number, hosts: number, range?: string): void {
    if (this.generation !== 0) return;
    this.revision = revision;
    this.assumedHosts = hosts;
    const slice = range === undefined || this.joined === undefined ? undefined : rangeOf(this.joined.network, range);
    if (slice !== undefined && 'none' in this.hostRange) this.hostRange = slice;
  }

  counters(): RegistryCounters {
    return { ...this.counts, rejectedRecords: (this.view?.rejected ?? 0) + (this.macView?.rejected ?? 0) };
  }

  /**
   * Publishes this host's MACs (its containers) under its lease, so every other host forwards to them directly. Call
   * it with the whole current set whenever convenient: it writes only when the set changed (or the last write
   * failed), and writes again by itself under a new lease. Rejects with E_ETCD when etcd is away (try again later).
   * A MAC that another host claimed after this one last saw it (`ageMs` ago) has moved there: it is withdrawn, and
   * advertised again (a new claim) if it speaks here again.
   */
  async advertise(macs: readonly { readonly vni: number; readonly mac: string; readonly ips?: readonly string[]; readonly ageMs?: number }[]): Promise<void> {
    const selfId = this.joined?.record.hostId;
    const now = this.now();
    const movedAway = (m: { vni: number; mac: string; ageMs?: number }): boolean => {
      const claim = this.macView?.claimOf(m.vni, m.mac.toLowerCase());
      return claim !== undefined && claim.id !== selfId && m.ageMs !== undefined && now - m.ageMs < claim.seenAt;
    };
    this.advertised = macs
      .filter((m) => !movedAway(m))
      // Addresses sorted: which one a MAC used last (IPv4 or IPv6, link-local or global) changes all the time, and
      // must not rewrite the record each time.
      .map((m) => ({ vni: m.vni, mac: m.mac.toLowerCase(), ...(m.ips?.length ? { ips: [...m.ips].slice(0, 16).sort() } : {}) }))
      .sort((a, b) => a.vni - b.vni || a.mac.localeCompare(b.mac));
    if (this.lease !== undefined && this.joined !== undefined) await this.putAdvertised(this.lease);
  }

  private async putAdvertised(lease: Lease): Promise<void> {
    const { network, record } = this.joined!;
    const value = JSON.stringify({ version: 1, hostId: record.hostId, vtep: record.underlay[0]!, macs: this.advertised } satisfies MacRecord);
    if (value === this.putMacs && lease === this.lease) return;
    await this.guard(() => lease.put(macsKey(network.name, record.hostId)).value(value).exec());
    this.putMacs = value;
  }

  /** Withdraws this host (revokes its lease, bounded in time) and stops watching. Safe to call twice. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const bounded = (p: Promise<unknown> | undefined): Promise<unknown> =>
      Promise.race([p?.catch(() => undefined), sleep(2000)]);
    await bounded(this.watcher?.cancel());
    await bounded(this.lease?.revoke());
    this.rangeLease?.release(); // the slice outlives the router: a restart takes the same addresses again
    this.client.close();
  }

  private prepare(network: NetworkDefinition, record: HostRecord): void {
    const parsed = hostRecordSchema.parse(record);
    this.joined = { network, record: parsed };
    this.view ??= new HostView(network.vni, parsed.hostId, (err) => {
      this.emit('warning', new VxlanRouterError('E_CONFIG', err.message, { recoverable: true }));
    });
    this.macView ??= new MacView((err) => this.emit('warning', new VxlanRouterError('E_CONFIG', err.message, { recoverable: true })), this.now);
  }

  private setJoined(): void {
    if (this.tracker.markJoined()) this.emitState();
  }

  private problem(p: Problem, active: boolean): void {
    if (this.closed) return;
    if (this.tracker.set(p, active)) this.emitState();
  }

  private emitState(): void {
    this.emit('state', this.controlPlane());
  }

  /** Runs `fn` until it succeeds or the registry closes, warning on each failure. */
  private async retry(what: string, fn: () => Promise<void>): Promise<void> {
    for (let attempt = 0; !this.closed; attempt++) {
      try {
        await fn();
        return;
      } catch (err) {
        if (this.closed) return;
        const delay = retryDelay(attempt, this.retryOpts.initialMs, this.retryOpts.maxMs);
        this.emit('warning', new VxlanRouterError('E_ETCD', `${what} failed (${(err as Error).message}): retrying in ${delay} ms`, { cause: err, recoverable: true }));
        await sleep(delay);
      }
    }
  }

  private async register(): Promise<void> {
    const { network, record } = this.joined!;
    const lease = this.client.lease(this.ttl, { autoKeepAlive: true });
    lease.on('lost', (err: Error) => {
      if (this.closed || this.lease !== lease) return;
      this.problem('lease', true);
      this.emit('warning', new VxlanRouterError('E_ETCD', `etcd lease lost (${err.message}): registering again`, { recoverable: true }));
      void this.retry('registering again', async () => {
        await this.register();
        this.counts.leaseRegrants++;
        this.problem('lease', false);
      });
    });
    lease.on('keepaliveFailed', () => this.lease === lease && this.problem('lease', true));
    lease.on('keepaliveSucceeded', () => this.lease === lease && this.problem('lease', false));
    try {
      await this.guard(() => lease.put(`${hostsPrefix(network.name)}${record.hostId}`).value(JSON.stringify(record)).exec());
    } catch (err) {
      lease.release();
      throw err;
    }
    const old = this.lease;
    this.lease = lease;
    old?.release();
    this.putMacs = ''; // the MAC record went with the old lease (if any): write it under this one
    if (this.advertised.length > 0) await this.putAdvertised(lease);
  }

  /**
   * Leases a slice of the network's subnet: the one this host already holds (a restart), else a free one, by
   * compare-and-swap (another host may take the same slice at the same time: then look again). Leaves `hostRange`
   * saying why there is none for an IPv6 subnet or a full one; throws E_ETCD when etcd fails.
   */
  private async leaseRange(network: NetworkDefinition, hostId: string): Promise<void> {
    let slices: Slices;
    try {
      slices = new Slices(network.subnet, network.hostPrefix);
    } catch (err) {
      this.hostRange = { none: (err as Error).message };
      return;
    }
    const prefix = rangesPrefix(network.name);
    for (let attempt = 0; attempt < 16 && !this.closed; attempt++) {
      const listing = await this.guard(() => this.client.getAll().prefix(prefix).exec());
      const leased = new Map<string, string>();
      const revisions = new Map<string, string>();
      for (const kv of listing.kvs) {
        const range = kv.key.toString().slice(prefix.length);
        const parsed = rangeRecordSchema.safeParse(safeJson(kv.value.toString()));
        leased.set(range, parsed.success ? parsed.data.hostId : ''); // a bad record still holds its slice
        revisions.set(range, kv.mod_revision);
      }
      const pick = slices.choose(hostId, leased);
      if (pick === undefined) {
        this.hostRange = { none: `all ${slices.count} /${slices.prefix} slices of ${network.subnet} are leased` };
        this.emit('warning', new VxlanRouterError('E_CONFIG', `no address range for this host: ${this.hostRange.none} (a host's slice is kept ${this.rangeTtl} s after it leaves)`, { recoverable: true }));
        return;
      }
      const key = prefix + pick.slice.range;
      const lease = (this.rangeLease ??= this.rangeLeaseOf(network, hostId));
      const value = JSON.stringify({ version: 1, hostId, range: pick.slice.range, leasedAt: new Date().toISOString() } satisfies RangeRecord);
      const guard = pick.own ? this.client.if(key, 'Mod', '==', revisions.get(pick.slice.range)!) : this.client.if(key, 'Create', '==', 0);
      const tx = await this.guard(() => guard.then(lease.put(key).value(value)).commit());
      if (tx.succeeded) {
        this.hostRange = pick.slice;
        return;
      }
    }
    throw new VxlanRouterError('E_ETCD', `could not lease an address range in ${network.subnet}: other hosts kept taking the same slices`, { recoverable: true });
  }

  private rangeLeaseOf(network: NetworkDefinition, hostId: string): Lease {
    const lease = this.client.lease(this.rangeTtl, { autoKeepAlive: true });
    lease.on('lost', (err: Error) => {
      if (this.closed || this.rangeLease !== lease) return;
      this.rangeLease = undefined;
      this.emit('warning', new VxlanRouterError('E_ETCD', `etcd lease of the address range lost (${err.message}): leasing again`, { recoverable: true }));
      void this.retry('leasing the address range again', () => this.leaseRange(network, hostId));
    });
    return lease;
  }

  /** List, then watch from the list's revision; on compaction (watch error), do both again until it works.
   *  `again`: a re-list after the watch ended (counted). */
  private async follow(again = false): Promise<void> {
    const name = this.joined!.network.name;
    const prefix = networkPrefix(name);
    const view = this.view!;
    const macView = this.macView!;
    const listing = await this.guard(() => this.client.getAll().prefix(prefix).exec());
    if (again) this.counts.relists++; // before the table it brings is published
    const gen = ++this.generation;
    const entries = listing.kvs.flatMap((kv) => {
      const k = recordKeyOf(kv.key.toString(), name);
      return k === undefined ? [] : [{ ...k, value: kv.value.toString(), revision: Number(kv.mod_revision) }];
    });
    view.reset(entries.filter((e) => e.kind === 'hosts'));
    macView.reset(entries.filter((e) => e.kind === 'macs'));
    this.revision = Number(listing.header.revision);
    this.publish(true);
    const watcher = await this.guard(() =>
      this.client.watch().prefix(prefix).startRevision(String(this.revision + 1)).create(),
    );
    const current = (): boolean => gen === this.generation && !this.closed;
    if (!current()) {
      void watcher.cancel().catch(() => undefined);
      return;
    }
    watcher.on('put', (kv) => {
      const k = recordKeyOf(kv.key.toString(), name);
      if (!current() || k === undefined) return;
      if (k.kind === 'hosts') view.put(k.id, kv.value.toString());
      else macView.put(k.id, kv.value.toString(), Number(kv.mod_revision));
      this.revision = Number(kv.mod_revision);
      this.publish();
    });
    watcher.on('delete', (kv) => {
      const k = recordKeyOf(kv.key.toString(), name);
      if (!current() || k === undefined) return;
      if (k.kind === 'hosts') view.delete(k.id);
      else macView.delete(k.id);
      this.revision = Number(kv.mod_revision);
      this.publish();
    });
    watcher.on('disconnected', () => current() && this.problem('watch', true));
    watcher.on('connected', () => current() && this.problem('watch', false));
    watcher.on('error', (err: Error) => {
      if (!current()) return;
      this.problem('watch', true);
      this.emit('warning', new VxlanRouterError('E_ETCD', `etcd watch ended (${err.message}): listing again`, { recoverable: true }));
      void watcher.cancel().catch(() => undefined);
      void this.retry('listing again', async () => {
        await this.follow(true);
        this.problem('watch', false);
      });
    });
    const old = this.watcher;
    this.watcher = watcher;
    this.problem('watch', false);
    await old?.cancel().catch(() => undefined);
  }

  /**
   * Sends the table to the data path. Watch events are coalesced: a burst (one watch response carries many; a
   * thousand hosts joining at once) makes one table, on the next turn of the event loop. A listing is published at
   * once (`now`), so a join resolves with its table delivered.
   */
  private publish(now = false): void {
    if (now) {
      this.publishPending = false;
      this.emit('table', this.table());
      return;
    }
    if (this.publishPending) return;
    this.publishPending = true;
    setImmediate(() => {
      if (!this.publishPending || this.closed) return;
      this.publishPending = false;
      this.emit('table', this.table());
    });
  }

  /**
   * Runs an etcd call, bounded in time (the client would otherwise retry an unreachable etcd forever); etcd3's
   * errors become ours here, with whether retrying can help.
   */
  private async guard<T>(call: () => Promise<T>, timeoutMs = this.callTimeoutMs): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new VxlanRouterError('E_ETCD', `etcd at ${this.endpoints.join(', ')} did not answer in ${timeoutMs / 1000} s: check that it runs and that --etcd names it`, { recoverable: true })),
        timeoutMs,
      );
    });
    try {
      return await Promise.race([call(), deadline]);
    } catch (err) {
      if (err instanceof VxlanRouterError) throw err;
      if (err instanceof EtcdAuthenticationFailedError || err instanceof EtcdPermissionDeniedError) {
        throw new VxlanRouterError('E_ETCD', `etcd at ${this.endpoints.join(', ')} refused us: ${err.message} (check --etcd-user and --etcd-password / VXLAN_ROUTER_ETCD_PASSWORD)`, { cause: err });
      }
      const recoverable = isRecoverableError(err as Error);
      throw new VxlanRouterError('E_ETCD', `etcd at ${this.endpoints.join(', ')}: ${(err as Error).message}`, { cause: err, recoverable });
    } finally {
      clearTimeout(timer);
    }
  }
}
