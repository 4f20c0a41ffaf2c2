/**
 * The etcd registry: where hosts find each other. Each host puts its VTEP record (records.ts) under a key bound to a
 * short lease (keepalive renews it; a crashed host's record disappears when the lease expires), follows the network's
 * hosts and MACs by list + watch (network-watch.ts), leases its slice of the subnet for Docker (range-lease.ts) and
 * publishes its own MACs under its lease (`advertise`). A lost lease is granted anew and the records put again.
 * Every change reaches the data path as a whole table (`table` event).
 *
 * Nothing here gives up while the registry is open: a failed re-list, re-registration or background join is retried
 * with a capped backoff, and the control-plane state (`controlPlane()`, `state` event) says 'degraded' meanwhile.
 * What it recovers from is reported as a `warning` with a stable kind (registry-warnings.ts).
 *
 * Hosts and MACs are listed and watched together (one prefix, one revision): a peer's MACs reach the data path as
 * unicast entries, so traffic to them is never flooded, and they vanish with the host's lease. The etcd client and
 * the translation of its errors are in etcd-client.ts; this module never looks inside etcd3's errors.
 */
import { EventEmitter } from 'node:events';
import type { Lease } from 'etcd3';
import type { z } from 'zod';
import { ConfigError, VxlanRouterError } from '../errors.js';
import type { TableSnapshot } from '../fdb/index.js';
import { canonicalIp } from '../packet/index.js';
import { addressScope } from './address-scope.js';
import type { AddressConflict, AdvertisedMac, HostRow, MacConflict } from './control-plane.js';
import { ControlPlaneTracker, retryDelay, type ControlPlaneState, type Problem } from './control-plane-state.js';
import { EtcdClient, reasonOf, type EtcdConnection } from './etcd-client.js';
import { HostView } from './host-view.js';
import { Ipv4Subnet, type HostRange, type NoRange } from './ip-ranges.js';
import { MacView } from './mac-view.js';
import { NameView, type NameAddress } from './name-view.js';
import { LocalClaims, localMacIps } from './local-claims.js';
import { NetworkWatch } from './network-watch.js';
import { RangeLease } from './range-lease.js';
import {
  hostRecordSchema,
  keys,
  MAX_IPS_PER_MAC,
  MAX_MACS_PER_RECORD,
  MAX_NAME_ENTRIES,
  nameRecordSchema,
  networkDefinitionSchema,
  parseJson,
  REGISTRY_PREFIX,
  type HostRecord,
  type MacRecord,
  type NameEntry,
  type NameRecord,
  type NetworkDefinition,
} from './records.js';
import { RegistryWarning } from './registry-warnings.js';

export type { EtcdConnection } from './etcd-client.js';
export { REGISTRY_PREFIX, hostRecordSchema, networkDefinitionSchema, type HostRecord, type NetworkDefinition } from './records.js';

/** Counters of what the registry recovered from by itself. */
export interface RegistryCounters {
  /** Full listings after a watch ended (compaction, cancelled stream). */
  readonly relists: number;
  /** Host and MAC records ignored because they were malformed. */
  readonly rejectedRecords: number;
  /** Leases granted again after one was lost. */
  readonly leaseRegrants: number;
  /** This host's MACs left out of its record now, over MAX_MACS_PER_RECORD (0 when all fit). */
  readonly unadvertisedMacs: number;
  /** Addresses this host refused to advertise for a local MAC because a live MAC on another host owns them (episodes). */
  readonly refusedClaims: number;
  /** Address ownership changes that waited for the rate limit (MacView, OWNERSHIP_*). */
  readonly limitedOwnershipChanges: number;
  /** This host's container names left out of its names record now: invalid, or over MAX_NAME_ENTRIES. */
  readonly unadvertisedNames: number;
}

export interface RegistryEvents {
  table: [TableSnapshot];
  state: [ControlPlaneState];
  /** Something went wrong that the registry recovers from by itself (logged by the agent, rate-limited by `kind`). */
  warning: [RegistryWarning];
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

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms).unref());

/** A host that advertises containers (MACs) on a network: what keeps `network rm` from removing it. */
export interface NetworkUse {
  readonly hostId: string;
  readonly macs: number;
}

/** The end of the key range holding every key that starts with `prefix` (its last byte plus one; prefixes end in '/'). */
function prefixEnd(prefix: Buffer): Buffer {
  const end = Buffer.from(prefix);
  end[end.length - 1]! += 1;
  return end;
}

/** What join() and joinInBackground() set up: the network, this host's record, and what follows the network. */
interface Joined {
  readonly network: NetworkDefinition;
  readonly record: HostRecord;
  readonly watch: NetworkWatch;
}

export class EtcdRegistry extends EventEmitter<RegistryEvents> {
  private readonly client: EtcdClient;
  private readonly ttl: number;
  private readonly retryOpts: { readonly initialMs: number; readonly maxMs: number };
  private readonly tracker: ControlPlaneTracker;
  private readonly now: () => number;
  private readonly ranges: RangeLease;
  private hostView: HostView | undefined;
  private readonly macView: MacView;
  private readonly nameView: NameView;
  /** This host's container names as advertiseNames() last gave them (valid ones, capped), and what is in etcd. */
  private ownNames: NameEntry[] = [];
  private putNamesValue = '';
  private unadvertisedNames = 0;
  /** What advertise() was last asked to publish, and what is in etcd under the current lease (JSON; '' = nothing). */
  private advertised: MacRecord['macs'] = [];
  /** What advertise() was last given: composed again when the views change (an address's owner may have left). */
  private wantedMacs: readonly AdvertisedMac[] = [];
  /** When advertise() was given them: their ageMs count from then. */
  private wantedAt = 0;
  /** Local claims left out because another host's MAC owns the address: vni/mac/ip → the owner. */
  private refused = new Map<string, { vni: number; ip: string; mac: string; owner: { mac: string; hostId: string } }>();
  private refusedClaims = 0;
  private readonly claims = new LocalClaims();
  private deferTimer: NodeJS.Timeout | undefined;
  private putMacs = '';
  /** The tail of this host's record writes (putAdvertised, putNames): each waits for the one before. */
  private writes: Promise<void> = Promise.resolve();
  private lease: Lease | undefined;
  private joined: Joined | undefined;
  private revision = 0;
  private assumedHosts = 0;
  private closed = false;
  private publishPending = false;
  private leaseRegrants = 0;
  private unadvertisedMacs = 0;

  /** Throws a ConfigError when the TLS options are wrong (unreadable PEM file, certificate without key). */
  constructor(opts: RegistryOptions) {
    super();
    this.client = new EtcdClient(opts, opts.callTimeoutMs ?? 10_000);
    this.ttl = opts.ttlSeconds ?? 15;
    this.retryOpts = opts.retry ?? { initialMs: 100, maxMs: 2000 };
    this.now = opts.now ?? Date.now;
    this.tracker = new ControlPlaneTracker(this.now);
    const hooks = { warn: (w: RegistryWarning) => this.emit('warning', w), retry: (what: string, fn: () => Promise<void>) => this.retry(what, fn) };
    this.ranges = new RangeLease(this.client, opts.rangeTtlSeconds ?? 86_400, hooks);
    this.macView = new MacView((err) => this.emit('warning', err), this.now, (id) => this.hostView?.addressOf(id));
    this.nameView = new NameView((err) => this.emit('warning', err));
  }

  /**
   * Writes a network's settings once (compare-and-swap on the key's creation): 'created', or 'unchanged' when the
   * same definition is there; a different one is refused unless `force`, then 'replaced'.
   */
  async createNetwork(input: z.input<typeof networkDefinitionSchema>, force = false): Promise<'created' | 'unchanged' | 'replaced'> {
    const cfg = networkDefinitionSchema.parse(input);
    const key = keys.network(cfg.name);
    const value = JSON.stringify(cfg);
    const { etcd } = this.client;
    const tx = await this.client.call(() => etcd.if(key, 'Create', '==', 0).then(etcd.put(key).value(value)).commit());
    if (tx.succeeded) return 'created';
    const existing = await this.getNetwork(cfg.name);
    if (existing !== undefined && JSON.stringify(existing) === value) return 'unchanged';
    if (!force) {
      throw new ConfigError(`network ${cfg.name} already exists with another definition (${JSON.stringify(existing)})`, { hint: 'pass --force to replace it' });
    }
    await this.client.call(() => etcd.put(key).value(value).exec());
    return 'replaced';
  }

  /** Every network defined in etcd (a definition that does not parse is left out), by name. Throws E_ETCD. */
  async listNetworks(): Promise<NetworkDefinition[]> {
    const prefix = `${REGISTRY_PREFIX}/networks/`;
    // Keys only: the MAC records under the same prefix may be large.
    const names = (await this.client.call(() => this.client.etcd.getAll().prefix(prefix).keys()))
      .flatMap((k) => /^([^/]+)\/config$/.exec(k.slice(prefix.length))?.[1] ?? [])
      .sort();
    const out: NetworkDefinition[] = [];
    for (const name of names) {
      const def = await this.getNetwork(name).catch((err: unknown) => {
        if (err instanceof ConfigError) return undefined;
        throw err;
      });
      if (def !== undefined) out.push(def);
    }
    return out;
  }

  /**
   * Removes a network's definition and every record under it (hosts, MACs, slices), unless a host advertises a MAC
   * of its subnet: one transaction conditioned on the MAC records the check read, so a container that appears in
   * between refuses the removal instead of losing its network. Returns the use that refused it ([] when removed).
   * Throws E_ETCD, also when the MAC records kept changing under five attempts.
   */
  async deleteNetworkUnlessUsed(name: string, subnet?: string): Promise<NetworkUse[]> {
    const { etcd } = this.client;
    const prefix = Buffer.from(keys.networkPrefix(name));
    const macs = Buffer.from(`${keys.networkPrefix(name)}macs/`);
    for (let attempt = 0; attempt < 5; attempt++) {
      const { use, revision } = await this.readUse(name, subnet);
      if (use.length > 0) return use;
      const r = await this.client.call(() =>
        etcd.kv.txn({
          // Every MAC record unchanged since the read (a new or rewritten one has a later mod revision).
          compare: [{ key: macs, range_end: prefixEnd(macs), target: 'Mod', result: 'Less', mod_revision: revision + 1 }],
          success: [{ request_delete_range: { key: prefix, range_end: prefixEnd(prefix) } }],
        }),
      );
      if (r.succeeded) return [];
    }
    throw new VxlanRouterError('E_ETCD', `the MAC records of network ${name} kept changing while it was being removed`, {
      recoverable: true,
      hint: 'hosts are still adding containers to it: stop them, then run this again',
    });
  }

  /** Who advertises MACs of `subnet` (any, without one) on the network, as of `revision`. */
  private async readUse(name: string, subnet?: string): Promise<{ use: NetworkUse[]; revision: number }> {
    const prefix = `${keys.networkPrefix(name)}macs/`;
    const net = subnet === undefined ? undefined : Ipv4Subnet.parse(subnet);
    const res = await this.client.call(() => this.client.etcd.getAll().prefix(prefix).exec());
    const use = res.kvs.flatMap((kv) => {
      const macs = (parseJson(kv.value.toString()) as { macs?: unknown } | undefined)?.macs;
      const used = (Array.isArray(macs) ? macs : []).filter((m: { ips?: unknown }) => net === undefined || (Array.isArray(m?.ips) && m.ips.some((ip) => typeof ip === 'string' && net.contains(ip))));
      return used.length > 0 ? [{ hostId: kv.key.toString().slice(prefix.length), macs: used.length }] : [];
    });
    return { use, revision: Number(res.header.revision) };
  }

  /** The network's definition, or undefined when there is none. `timeoutMs` bounds this one call (default: callTimeoutMs). */
  async getNetwork(name: string, timeoutMs?: number): Promise<NetworkDefinition | undefined> {
    const key = keys.network(name);
    const raw = await this.client.call(() => this.client.etcd.get(key).string(), timeoutMs);
    if (raw === null) return undefined;
    const hint = `define it again: vxlan-router network create ${name} ... --force`;
    const json = parseJson(raw);
    if (json === undefined) throw new ConfigError(`${key} in etcd is not JSON`, { hint });
    const parsed = networkDefinitionSchema.safeParse(json);
    if (!parsed.success) throw new ConfigError(`${key} in etcd is not a valid network definition: ${parsed.error.issues[0]?.message}`, { hint });
    return parsed.data;
  }

  /** Registers this host in the network under a lease, then follows the network's hosts. One attempt: throws E_ETCD. */
  async join(network: NetworkDefinition, record: HostRecord): Promise<void> {
    const joined = this.prepare(network, record);
    try {
      await this.register();
      await this.ranges.acquire(network, joined.record.hostId);
      await joined.watch.follow();
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
    const joined = this.prepare(network, record);
    this.problem('join', true);
    await this.retry('joining etcd', async () => {
      await this.register();
      await this.ranges.acquire(network, joined.record.hostId);
      await joined.watch.follow();
    });
    if (!this.closed) this.setJoined();
  }

  /** This host's slice of the network's subnet (for Docker's IPAM), or why it has none (`reason`, ip-ranges.ts). */
  range(): HostRange | NoRange {
    return this.ranges.current();
  }

  /**
   * Leases this host's slice of the network's subnet without joining (`docker-network create`, before the router
   * runs): the lease is left to run out by itself, and the router, with the same host id, takes the slice over.
   */
  async reserveRange(network: NetworkDefinition, hostId: string): Promise<HostRange | NoRange> {
    await this.ranges.acquire(network, hostId);
    this.ranges.release(); // stop the keepalive, keep the lease: it runs out in its TTL unless the router takes over
    return this.ranges.current();
  }

  hosts(): HostRecord[] {
    return this.hostView?.hosts() ?? [];
  }

  /** Each host's record with when it was last updated (ms since the epoch). */
  hostRows(): HostRow[] {
    return this.hostView?.rows() ?? [];
  }

  /** MACs several hosts advertise at once (see MacView.conflicts). */
  macConflicts(): MacConflict[] {
    return this.macView.conflicts();
  }

  /**
   * Addresses several MACs claim: those in etcd (MacView.addressConflicts), and those this host refused to advertise
   * for a local MAC (claimant `advertised: false`).
   */
  addressConflicts(): AddressConflict[] {
    const selfId = this.joined?.record.hostId ?? '';
    return [
      ...this.macView.addressConflicts().map((c) => ({ ...c, claimants: c.claimants.map((x) => ({ ...x, advertised: true })) })),
      ...[...this.refused.values()].map((r) => ({ vni: r.vni, ip: r.ip, owner: r.owner, claimants: [{ mac: r.mac, hostId: selfId, advertised: false }] })),
    ];
  }

  /** The data path's view: every other host of the network is a peer (flood list and source allow-list). */
  table(): TableSnapshot {
    const hosts = this.hostView?.table() ?? { vnis: [] };
    const selfId = this.joined?.record.hostId ?? '';
    return {
      vnis: hosts.vnis.map((v) => {
        const remote = this.macView.remote(v.vni, selfId);
        return { ...v, macs: [...v.macs, ...remote.macs.map(({ mac, vtep, origin, revision }) => ({ mac, vtep, origin, revision }))], neighbors: remote.neighbors };
      }),
    };
  }

  /** Connected, degraded or starting, since when, at which revision, with how many hosts. */
  controlPlane(): ControlPlaneState {
    const listed = (this.joined?.watch.listings ?? 0) > 0;
    return this.tracker.state(this.revision, listed ? (this.hostView?.size ?? 0) : this.assumedHosts);
  }

  /**
   * Reports a snapshot of `network` until etcd answers: its revision, its host count and this host's address range
   * then (shown by range() if it is a slice of `network`'s subnet). Does nothing once etcd has been listed.
   */
  assumeSnapshot(network: NetworkDefinition, revision: number, hosts: number, range?: string): void {
    if ((this.joined?.watch.listings ?? 0) > 0) return;
    this.revision = revision;
    this.assumedHosts = hosts;
    if (range !== undefined) this.ranges.assume(network, range);
  }

  counters(): RegistryCounters {
    return {
      relists: this.joined?.watch.relists ?? 0,
      rejectedRecords: (this.hostView?.rejected ?? 0) + this.macView.rejected + this.nameView.rejected,
      leaseRegrants: this.leaseRegrants,
      unadvertisedMacs: this.unadvertisedMacs,
      refusedClaims: this.refusedClaims,
      limitedOwnershipChanges: this.macView.limitedChanges,
      unadvertisedNames: this.unadvertisedNames,
    };
  }

  /**
   * Publishes this host's MACs (its containers) under its lease, so every other host forwards to them directly. Call
   * it with the whole current set whenever convenient: it writes only when the set changed (or the last write
   * failed), and writes again by itself under a new lease. Rejects with E_ETCD when etcd is away (try again later).
   * A MAC that another host claimed after this one last saw it (`ageMs` ago) has moved there: it is withdrawn, and
   * advertised again (a new claim) if it speaks here again. A MAC's addresses are composed by LocalClaims (in scope,
   * none another MAC owns: see `compose`). At most MAX_MACS_PER_RECORD MACs are advertised: those already in the
   * record first (a container spraying new MACs cannot push the others out), the rest counted (`unadvertisedMacs`)
   * and reported once per episode (mac-record-full).
   */
  async advertise(macs: readonly AdvertisedMac[]): Promise<void> {
    this.wantedMacs = macs;
    this.wantedAt = this.now();
    this.compose();
    if (this.lease !== undefined && this.joined !== undefined) await this.putAdvertised(this.lease);
  }

  /**
   * Publishes the names of this host's containers on this network (names/<hostId>, under the same lease as its MACs),
   * the whole current set; writes only when it changed (or the last write failed). Entries that break the record's
   * schema are left out, and past MAX_NAME_ENTRIES the rest (both counted in unadvertisedNames). Rejects with E_ETCD
   * when etcd is away (the caller's next call tries again).
   */
  async advertiseNames(entries: readonly NameEntry[]): Promise<void> {
    const entry = nameRecordSchema.shape.names.element;
    const valid = entries.flatMap((e) => {
      const p = entry.safeParse(e);
      return p.success ? [p.data] : [];
    });
    valid.sort((a, b) => a.mac.localeCompare(b.mac) || a.ips.join().localeCompare(b.ips.join()));
    this.ownNames = valid.slice(0, MAX_NAME_ENTRIES);
    this.unadvertisedNames = entries.length - this.ownNames.length;
    if (this.lease !== undefined && this.joined !== undefined) await this.putNames(this.lease);
  }

  /**
   * The addresses `name` (lowercase) has on this network: this host's containers (as advertiseNames last gave them)
   * and every other host's (their records). Only addresses inside the network's subnet, and not owned by a MAC of
   * another host than the one naming them (a host cannot point a name at a neighbour's container).
   */
  lookupName(name: string): NameAddress[] {
    const selfId = this.joined?.record.hostId ?? '';
    const vni = this.joined?.network.vni;
    const own = this.ownNames.flatMap((e) => (e.names.includes(name) ? e.ips.map((ip) => ({ ip, mac: e.mac, hostId: selfId })) : []));
    const owners = vni === undefined ? undefined : this.macView.addressOwners(vni);
    return [...own, ...this.nameView.lookup(name, selfId)].filter((a) => {
      if (!this.macView.inScope(a.ip)) return false;
      const owner = owners?.get(a.ip);
      return owner === undefined || owner.hostId === a.hostId;
    });
  }

  /**
   * The record's MACs from what advertise() was given and the views now. A MAC's addresses are those inside the
   * network's scope (address-scope.ts) that no other host's MAC owns (MacView): a container forging a neighbour's
   * address does not get it advertised here (counted in refusedClaims, reported once per episode, shown as a
   * conflict); once the owner withdraws, the next compose claims it.
   */
  private compose(): void {
    const selfId = this.joined?.record.hostId;
    const now = this.wantedAt;
    const movedAway = (m: AdvertisedMac): boolean => {
      const claim = this.macView.claimOf(m.vni, m.mac.toLowerCase());
      return claim !== undefined && claim.id !== selfId && m.ageMs !== undefined && now - m.ageMs < claim.seenAt;
    };
    const canonical = (ip: string): string | undefined => {
      try {
        return canonicalIp(ip);
      } catch {
        return undefined;
      }
    };
    const local = this.wantedMacs.filter((m) => !movedAway(m)).map((m) => localMacIps(m, now, canonical, this.macView.inScope));
    const composed = this.claims.compose(local, (vni) => this.macView.addressOwners(vni), selfId, now);
    const refused = new Map(composed.refused.map((r) => [`${r.vni}/${r.mac}/${r.ip}`, r]));
    const wanted = local
      .map((m) => {
        // Addresses sorted: which one a MAC used last (IPv4 or IPv6, link-local or global) changes all the time, and
        // must not rewrite the record each time.
        const ips = (composed.ips.get(`${m.vni}/${m.mac}`) ?? []).slice(0, MAX_IPS_PER_MAC).sort();
        return { vni: m.vni, mac: m.mac, ...(ips.length > 0 ? { ips } : {}) };
      })
      .sort((a, b) => a.vni - b.vni || a.mac.localeCompare(b.mac));
    for (const [key, r] of refused) {
      if (this.refused.has(key)) continue;
      this.refusedClaims++;
      this.emit(
        'warning',
        new RegistryWarning('E_SYSTEM', 'address-claim-refused', `not advertising ${r.ip} for local MAC ${r.mac} (VNI ${r.vni}): MAC ${r.owner.mac} on host ${r.owner.hostId} owns it`, {
          hint: `a container here uses an address of a container on ${r.owner.hostId} (forged, or a duplicate address): find MAC ${r.mac} with \`vxlan-router fdb\` and stop it`,
        }),
      );
    }
    this.refused = refused;
    this.advertised = this.capped(wanted);
  }

  /** `wanted` cut to MAX_MACS_PER_RECORD, keeping the MACs already advertised first; counts and reports what is left out. */
  private capped(wanted: MacRecord['macs']): MacRecord['macs'] {
    const over = Math.max(0, wanted.length - MAX_MACS_PER_RECORD);
    if (over > 0 && this.unadvertisedMacs === 0) {
      this.emit(
        'warning',
        new RegistryWarning('E_SYSTEM', 'mac-record-full', `this host has ${wanted.length} MACs, more than the ${MAX_MACS_PER_RECORD} its record may carry: ${over} not advertised (traffic to them is flooded)`, {
          hint: 'find the container using that many MACs (`vxlan-router fdb`) and stop it',
        }),
      );
    }
    this.unadvertisedMacs = over;
    if (over === 0) return wanted;
    const key = (m: { vni: number; mac: string }): string => `${m.vni}/${m.mac}`;
    const had = new Set(this.advertised.map(key));
    const kept = new Set([...wanted.filter((m) => had.has(key(m))), ...wanted.filter((m) => !had.has(key(m)))].slice(0, MAX_MACS_PER_RECORD));
    return wanted.filter((m) => kept.has(m));
  }

  /**
   * Withdraws this host (revokes its lease, bounded in time) and stops watching. Safe to call twice. `keepLease`:
   * stops the keepalive without revoking (a handover: the new router's records replace these under its own lease).
   */
  async close(opts: { keepLease?: boolean } = {}): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const bounded = (p: Promise<unknown> | undefined): Promise<unknown> => Promise.race([p?.catch(() => undefined), sleep(2000)]);
    await bounded(this.joined?.watch.close());
    if (opts.keepLease === true) this.lease?.release();
    else await bounded(this.lease?.revoke());
    clearTimeout(this.deferTimer);
    this.ranges.close(); // the slice outlives the router: a restart takes the same addresses again
    this.client.close();
  }

  private prepare(network: NetworkDefinition, input: HostRecord): Joined {
    const record = hostRecordSchema.parse(input);
    this.macView.inScope = addressScope(network.subnet);
    const hosts = (this.hostView ??= new HostView(network.vni, { id: record.hostId, underlay: record.underlay[0]! }, (err) => this.emit('warning', err)));
    const watch =
      this.joined?.watch ??
      new NetworkWatch(this.client, network.name, { hosts, macs: this.macView, names: this.nameView }, {
        changed: (revision, listing) => {
          this.revision = revision;
          this.macView.invalidate(); // a host record may have come or gone: claims backed by it with it
          this.publish(listing);
        },
        trouble: (active) => this.problem('watch', active),
        warn: (w) => this.emit('warning', w),
        retry: (what, fn) => this.retry(what, fn),
      });
    this.joined = { network, record, watch };
    return this.joined;
  }

  /**
   * Writes this host's record as composed when the write starts. Writes run one at a time, in call order: two puts in
   * flight at once may reach etcd in either order, and an older composition could land last (seen under load).
   */
  private putAdvertised(lease: Lease): Promise<void> {
    return this.serially(async () => {
      if (this.joined === undefined) return; // left while this write waited
      const { network, record } = this.joined;
      const value = JSON.stringify({ version: 1, hostId: record.hostId, vtep: record.underlay[0]!, macs: this.advertised } satisfies MacRecord);
      if (value === this.putMacs && lease === this.lease) return;
      await this.client.call(() => lease.put(keys.macs(network.name, record.hostId)).value(value).exec());
      this.putMacs = value;
    });
  }

  /** Runs `write` after every write queued before it has settled; its own failure is the caller's. */
  private serially(write: () => Promise<void>): Promise<void> {
    const run = this.writes.then(write);
    this.writes = run.catch(() => undefined);
    return run;
  }

  private putNames(lease: Lease): Promise<void> {
    return this.serially(() => this.putNamesNow(lease));
  }

  private async putNamesNow(lease: Lease): Promise<void> {
    if (this.joined === undefined) return; // left while this write waited
    const { network, record } = this.joined;
    const value = JSON.stringify({ version: 1, hostId: record.hostId, names: this.ownNames } satisfies NameRecord);
    if (value === this.putNamesValue && lease === this.lease) return;
    const key = keys.names(network.name, record.hostId);
    // No names (and none written before): no key at all, so a host without containers adds nothing to etcd.
    if (this.ownNames.length === 0 && this.putNamesValue === '') return;
    if (this.ownNames.length === 0) await this.client.call(() => this.client.etcd.delete().key(key).exec());
    else await this.client.call(() => lease.put(key).value(value).exec());
    this.putNamesValue = this.ownNames.length === 0 ? '' : value;
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
        const hint = err instanceof VxlanRouterError ? err.hint : undefined; // what would end the retries, if anything
        this.emit('warning', new RegistryWarning('E_ETCD', 'retry', `${what} failed (${reasonOf(err)}): retrying in ${delay} ms`, { cause: err, ...(hint !== undefined ? { hint } : {}) }));
        await sleep(delay);
      }
    }
  }

  /** Puts this host's record under a new lease (and its MACs, if any), which replaces the old one. */
  private async register(): Promise<void> {
    const { network, record } = this.joined!;
    const lease = this.client.etcd.lease(this.ttl, { autoKeepAlive: true });
    lease.on('lost', (err) => {
      if (this.closed || this.lease !== lease) return;
      this.problem('lease', true);
      this.emit('warning', new RegistryWarning('E_ETCD', 'lease-lost', `etcd lease lost (${reasonOf(err)}): registering again`, { cause: err }));
      void this.retry('registering again', async () => {
        await this.register();
        this.leaseRegrants++;
        this.problem('lease', false);
      });
    });
    lease.on('keepaliveFailed', () => this.lease === lease && this.problem('lease', true));
    lease.on('keepaliveSucceeded', () => this.lease === lease && this.problem('lease', false));
    try {
      await this.client.call(() => lease.put(keys.host(network.name, record.hostId)).value(JSON.stringify(record)).exec());
    } catch (err) {
      lease.release();
      throw err;
    }
    const old = this.lease;
    this.lease = lease;
    old?.release();
    this.putMacs = ''; // the MAC record went with the old lease (if any): write it under this one
    this.putNamesValue = '';
    if (this.advertised.length > 0) await this.putAdvertised(lease);
    if (this.ownNames.length > 0) await this.putNames(lease);
  }

  /**
   * Sends the table to the data path. Watch events are coalesced: a burst (one watch response carries many; a
   * thousand hosts joining at once) makes one table, on the next turn of the event loop. A listing is published at
   * once (`now`), so a join resolves with its table delivered.
   */
  private publish(now = false): void {
    if (now) {
      this.publishPending = false;
      this.emitTable();
      return;
    }
    if (this.publishPending) return;
    this.publishPending = true;
    setImmediate(() => {
      if (!this.publishPending || this.closed) return;
      this.publishPending = false;
      this.emitTable();
    });
  }

  /**
   * Reports MAC records that make no claim (MacView.audit), then sends the table. An ownership change the rate limit
   * held back gets another table when a token is there. This host's claims are composed again: an address it refused
   * may be free now (its owner withdrew), and is claimed at once rather than at the advertiser's next tick.
   */
  private emitTable(): void {
    this.macView.audit();
    this.emit('table', this.table());
    if (this.macView.deferred && this.deferTimer === undefined) {
      this.deferTimer = setTimeout(() => {
        this.deferTimer = undefined;
        this.publish();
      }, Math.max(10, this.macView.retryInMs()));
      this.deferTimer.unref();
    }
    if (this.wantedMacs.length > 0 && this.lease !== undefined && this.joined !== undefined) {
      this.compose();
      this.putAdvertised(this.lease).catch(() => undefined); // etcd away: the advertiser's next tick tries again
    }
  }
}
