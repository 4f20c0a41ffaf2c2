/**
 * The etcd registry: where hosts find each other. Each host puts its VTEP record under a key bound to a short lease
 * (keepalive renews it; a crashed host's record disappears when the lease expires), lists the network's hosts, then
 * watches them from the revision of that list, so no change falls between the two. When the watch reports that
 * history it needs was compacted, the registry lists again and watches from the new revision. A lost lease is
 * granted anew and the record put again. Every change reaches the data path as a whole table (`table` event).
 *
 * Keys (values are JSON, readable with `etcdctl get`), all under REGISTRY_PREFIX:
 *   networks/<name>/config            NetworkConfig
 *   networks/<name>/hosts/<hostId>    HostRecord, attached to the host's lease
 *
 * Only this module looks inside etcd3's errors and options (LAB.md: "The etcd3 client").
 */
import { EventEmitter } from 'node:events';
import { isIP } from 'node:net';
import { circuitBreaker, ConsecutiveBreaker, ExponentialBackoff, handleWhen } from 'cockatiel';
import { Etcd3, isRecoverableError, type IOptions, type Lease, type Watcher } from 'etcd3';
import { z } from 'zod';
import { ConfigError, VxlanRouterError } from '../errors.js';
import type { TableInput } from '../fdb/index.js';
import { MAX_VNI, VXLAN_PORT } from '../packet/index.js';

export const REGISTRY_PREFIX = '/vxlan-router/v1';
const networkKey = (name: string): string => `${REGISTRY_PREFIX}/networks/${name}/config`;
const hostsPrefix = (name: string): string => `${REGISTRY_PREFIX}/networks/${name}/hosts/`;

const ip = z.string().refine((s) => isIP(s) !== 0, { message: 'is not an IP address' });

export const networkConfigSchema = z.strictObject({
  version: z.literal(1),
  name: z.string().regex(/^[a-z0-9][a-z0-9_.-]{0,62}$/, { message: 'is not a network name (a-z, 0-9, . _ -)' }),
  vni: z.number().int().min(1).max(MAX_VNI),
  subnet: z.string().regex(/^[0-9a-f.:]+\/\d{1,3}$/i, { message: 'is not a CIDR subnet' }),
  mtu: z.number().int().min(68).max(65535).optional(),
  port: z.number().int().min(1).max(65535).default(VXLAN_PORT),
});
export type NetworkConfig = z.infer<typeof networkConfigSchema>;

export const hostRecordSchema = z.object({
  version: z.literal(1),
  hostId: z.string().min(1),
  underlay: z.array(ip).min(1),
  port: z.number().int().min(1).max(65535),
  networks: z.array(z.string()),
  mtu: z.number().int(),
  software: z.string(),
  startedAt: z.string(),
});
export type HostRecord = z.infer<typeof hostRecordSchema>;

export interface RegistryState {
  readonly connected: boolean;
  /** When the registry last lost etcd (ISO time), while it is still away. */
  readonly degradedSince?: string;
  readonly revision: string;
  /** Host records that did not parse (ignored). */
  readonly malformed: number;
}

interface RegistryEvents {
  table: [TableInput];
  state: [RegistryState];
  /** Something went wrong that the registry recovers from by itself (logged by the agent). */
  warning: [Error];
}

export interface RegistryOptions {
  readonly endpoints: readonly string[];
  /** How long a call may wait for etcd before it fails with E_ETCD (default 10 s). */
  readonly callTimeoutMs?: number;
  /** Lease TTL of this host's records (default 15 s): how long a crashed host stays in the others' tables. */
  readonly ttlSeconds?: number;
}

/** Client tuning measured against a real etcd (LAB.md): short watch backoff (at most 1 s between retries), quick half-open, gRPC keepalive. */
function clientOptions(endpoints: readonly string[]): IOptions {
  return {
    hosts: [...endpoints],
    grpcOptions: { 'grpc.keepalive_time_ms': 5000, 'grpc.keepalive_timeout_ms': 3000, 'grpc.keepalive_permit_without_calls': 1 },
    faultHandling: {
      host: () => circuitBreaker(handleWhen(isRecoverableError), { halfOpenAfter: 1000, breaker: new ConsecutiveBreaker(3) }),
      // etcd3's typing says IBackoff; it takes a backoff factory such as cockatiel's ExponentialBackoff.
      watchBackoff: new ExponentialBackoff({ initialDelay: 100, maxDelay: 1000 }) as unknown as NonNullable<IOptions['faultHandling']>['watchBackoff'],
    } as IOptions['faultHandling'],
  };
}

export class EtcdRegistry extends EventEmitter<RegistryEvents> {
  private readonly client: Etcd3;
  private readonly ttl: number;
  private readonly endpoints: readonly string[];
  private readonly callTimeoutMs: number;
  private readonly hostsById = new Map<string, HostRecord>();
  private lease: Lease | undefined;
  private watcher: Watcher | undefined;
  private joined: { network: NetworkConfig; record: HostRecord } | undefined;
  private revision = '0';
  private closed = false;
  private degradedSince: string | undefined;
  private malformed = 0;

  constructor(opts: RegistryOptions) {
    super();
    this.client = new Etcd3(clientOptions(opts.endpoints));
    this.ttl = opts.ttlSeconds ?? 15;
    this.endpoints = opts.endpoints;
    this.callTimeoutMs = opts.callTimeoutMs ?? 10_000;
  }

  /**
   * Writes a network's settings once (compare-and-swap on the key's creation): 'created', or 'unchanged' when the
   * same definition is there; a different one is refused unless `force`, then 'replaced'.
   */
  async createNetwork(input: z.input<typeof networkConfigSchema>, force = false): Promise<'created' | 'unchanged' | 'replaced'> {
    const cfg = networkConfigSchema.parse(input);
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

  async getNetwork(name: string): Promise<NetworkConfig | undefined> {
    const raw = await this.guard(() => this.client.get(networkKey(name)).string());
    if (raw === null) return undefined;
    const parsed = networkConfigSchema.safeParse(JSON.parse(raw));
    if (!parsed.success) throw new ConfigError(`${networkKey(name)} in etcd is not a valid network definition: ${parsed.error.issues[0]?.message}`);
    return parsed.data;
  }

  /** Registers this host in the network under a lease, then follows the network's hosts. */
  async join(network: NetworkConfig, record: HostRecord): Promise<void> {
    this.joined = { network, record: hostRecordSchema.parse(record) };
    await this.register();
    await this.follow();
  }

  hosts(): HostRecord[] {
    return [...this.hostsById.values()];
  }

  /** The data path's view: every other host of the network is a peer (flood list and source allow-list). */
  table(): TableInput {
    if (this.joined === undefined) return { vnis: [] };
    const self = this.joined.record.hostId;
    const peers = this.hosts().filter((h) => h.hostId !== self).map((h) => h.underlay[0]!);
    return { vnis: [{ vni: this.joined.network.vni, peers, macs: [] }] };
  }

  state(): RegistryState {
    const since = this.degradedSince === undefined ? {} : { degradedSince: this.degradedSince };
    return { connected: !this.closed && this.degradedSince === undefined, ...since, revision: this.revision, malformed: this.malformed };
  }

  /** etcd went away (watch stream or lease keepalive failing): the data path keeps the last table meanwhile. */
  private degrade(): void {
    if (this.degradedSince !== undefined || this.closed) return;
    this.degradedSince = new Date().toISOString();
    this.emit('state', this.state());
  }

  private recover(): void {
    if (this.degradedSince === undefined) return;
    this.degradedSince = undefined;
    this.emit('state', this.state());
  }

  /** Withdraws this host (revokes its lease) and stops watching. Safe to call twice. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.watcher?.cancel().catch(() => undefined);
    await this.lease?.revoke().catch(() => undefined);
    this.client.close();
  }

  private async register(): Promise<void> {
    const { network, record } = this.joined!;
    const lease = this.client.lease(this.ttl, { autoKeepAlive: true });
    lease.on('keepaliveFailed', () => this.degrade());
    lease.on('keepaliveSucceeded', () => this.recover());
    lease.on('lost', (err: Error) => {
      if (this.closed) return;
      this.degrade();
      this.emit('warning', new VxlanRouterError('E_SYSTEM', `etcd lease lost (${err.message}): registering again`, { recoverable: true }));
      void this.register().catch((e: unknown) => this.emit('warning', e as Error));
    });
    await this.guard(() => lease.put(`${hostsPrefix(network.name)}${record.hostId}`).value(JSON.stringify(record)).exec());
    const old = this.lease;
    this.lease = lease;
    if (old !== undefined) old.release();
  }

  /** List, then watch from the list's revision; on compaction (watch error), do both again. */
  private async follow(): Promise<void> {
    const prefix = hostsPrefix(this.joined!.network.name);
    const listing = await this.guard(() => this.client.getAll().prefix(prefix).exec());
    this.hostsById.clear();
    for (const kv of listing.kvs) this.upsert(kv.value.toString());
    this.revision = String(listing.header.revision);
    this.recover();
    this.publish();
    const watcher = await this.guard(() =>
      this.client.watch().prefix(prefix).startRevision(String(BigInt(this.revision) + 1n)).create(),
    );
    watcher.on('put', (kv) => {
      this.upsert(kv.value.toString());
      this.revision = String(kv.mod_revision);
      this.publish();
    });
    watcher.on('delete', (kv) => {
      this.hostsById.delete(kv.key.toString().slice(prefix.length));
      this.revision = String(kv.mod_revision);
      this.publish();
    });
    watcher.on('disconnected', () => this.degrade());
    watcher.on('connected', () => this.recover());
    watcher.on('error', (err: Error) => {
      if (this.closed) return;
      this.degrade();
      this.emit('warning', new VxlanRouterError('E_SYSTEM', `etcd watch ended (${err.message}): listing again`, { recoverable: true }));
      void watcher.cancel().catch(() => undefined);
      void this.follow().catch((e: unknown) => this.emit('warning', e as Error));
    });
    const old = this.watcher;
    this.watcher = watcher;
    await old?.cancel().catch(() => undefined);
  }

  /** A host record from etcd; one that is not JSON or not a record is counted and ignored, never thrown. */
  private upsert(json: string): void {
    let value: unknown;
    try {
      value = JSON.parse(json);
    } catch {
      value = undefined;
    }
    const parsed = hostRecordSchema.safeParse(value);
    if (parsed.success) {
      this.hostsById.set(parsed.data.hostId, parsed.data);
      return;
    }
    this.malformed++;
    const why = value === undefined ? 'not JSON' : parsed.error.issues[0]?.message;
    this.emit('warning', new VxlanRouterError('E_CONFIG', `ignoring a malformed host record: ${why}`));
  }

  private publish(): void {
    this.emit('table', this.table());
  }

  /**
   * Runs an etcd call, bounded in time (the client would otherwise retry an unreachable etcd forever); etcd3's
   * errors become ours here, with whether retrying can help.
   */
  private async guard<T>(call: () => Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new VxlanRouterError('E_ETCD', `etcd at ${this.endpoints.join(', ')} did not answer in ${this.callTimeoutMs / 1000} s: check that it runs and that --etcd names it`, { recoverable: true })),
        this.callTimeoutMs,
      );
    });
    try {
      return await Promise.race([call(), deadline]);
    } catch (err) {
      if (err instanceof VxlanRouterError) throw err;
      const recoverable = isRecoverableError(err as Error);
      throw new VxlanRouterError('E_ETCD', `etcd at ${this.endpoints.join(', ')}: ${(err as Error).message}`, { cause: err, recoverable });
    } finally {
      clearTimeout(timer);
    }
  }
}
