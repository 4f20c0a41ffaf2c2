/**
 * This host's slice of a network's subnet for Docker's IPAM, leased in etcd (ranges/<cidr>, records.ts): the slice it
 * already holds (a restart keeps its addresses), else a free one, by compare-and-swap. The slice is under a long
 * lease of its own (a day by default), kept alive while the router runs and left to run out after: a host that comes
 * back within the TTL takes the same slice again. A lost lease is leased again in the background.
 *
 * `current()` is the slice, or why there is none (NoRange, with a reason to branch on). The slicing itself is pure
 * and lives in ip-ranges.ts.
 */
import type { Lease } from 'etcd3';
import { describeError, VxlanRouterError } from '../errors.js';
import { reasonOf, type EtcdClient } from './etcd-client.js';
import { Slices, type HostRange, type NoRange } from './ip-ranges.js';
import { keys, parseJson, rangeRecordSchema, type NetworkDefinition, type RangeRecord } from './records.js';
import { RegistryWarning } from './registry-warnings.js';

/** How often to look again when other hosts keep taking the slice this one picked. */
const LEASE_ATTEMPTS = 16;

/** What the range lease needs from the registry that owns it. */
export interface RangeLeaseHooks {
  /** Reports what it recovers from by itself. */
  warn(w: RegistryWarning): void;
  /** Runs `fn` until it succeeds or the registry closes (with backoff and a warning per failure). */
  retry(what: string, fn: () => Promise<void>): Promise<void>;
}

/** `range` as a slice of the network's subnet, if it is one. */
function sliceOf(network: NetworkDefinition, range: string): HostRange | undefined {
  try {
    return new Slices(network.subnet, network.hostPrefix).find(range);
  } catch {
    return undefined;
  }
}

export class RangeLease {
  private lease: Lease | undefined;
  private slice: HostRange | NoRange = { none: 'not leased yet', reason: 'not-leased' };
  private closed = false;

  constructor(
    private readonly client: EtcdClient,
    private readonly ttlSeconds: number,
    private readonly hooks: RangeLeaseHooks,
  ) {}

  /** This host's slice, or why it has none. */
  current(): HostRange | NoRange {
    return this.slice;
  }

  /** Takes a slice named elsewhere (the snapshot's) until etcd answers, if it is one of `network`'s and none is leased. */
  assume(network: NetworkDefinition, range: string): void {
    const slice = sliceOf(network, range);
    if (slice !== undefined && 'none' in this.slice) this.slice = slice;
  }

  /**
   * Leases a slice of the network's subnet: the one this host already holds (a restart), else a free one, by
   * compare-and-swap (another host may take the same slice at the same time: then look again). Leaves `current()`
   * saying why there is none for a subnet that cannot be sliced or a full one; throws E_ETCD when etcd fails.
   */
  async acquire(network: NetworkDefinition, hostId: string): Promise<void> {
    let slices: Slices;
    try {
      slices = new Slices(network.subnet, network.hostPrefix);
    } catch (err) {
      this.slice = { none: describeError(err), reason: 'unsliceable' };
      return;
    }
    const prefix = keys.rangesPrefix(network.name);
    const { etcd } = this.client;
    for (let attempt = 0; attempt < LEASE_ATTEMPTS && !this.closed; attempt++) {
      const listing = await this.client.call(() => etcd.getAll().prefix(prefix).exec());
      const leased = new Map<string, string>();
      const revisions = new Map<string, string>();
      for (const kv of listing.kvs) {
        const range = kv.key.toString().slice(prefix.length);
        const parsed = rangeRecordSchema.safeParse(parseJson(kv.value.toString()));
        leased.set(range, parsed.success ? parsed.data.hostId : ''); // a bad record still holds its slice
        revisions.set(range, kv.mod_revision);
      }
      const pick = slices.choose(hostId, leased);
      if (pick === undefined) {
        this.slice = { none: `all ${slices.count} /${slices.prefix} slices of ${network.subnet} are leased`, reason: 'exhausted' };
        this.hooks.warn(
          new RegistryWarning('E_CONFIG', 'ranges-exhausted', `no address range for this host: ${this.slice.none} (a host's slice is kept ${this.ttlSeconds} s after it leaves)`, {
            hint: `free the slices of hosts that are gone for good (etcdctl del ${prefix}<cidr>), or redefine the network with a longer --host-prefix`,
          }),
        );
        return;
      }
      const key = prefix + pick.slice.range;
      const lease = (this.lease ??= this.leaseFor(network, hostId));
      const value = JSON.stringify({ version: 1, hostId, range: pick.slice.range, leasedAt: new Date().toISOString() } satisfies RangeRecord);
      const guard = pick.own ? etcd.if(key, 'Mod', '==', revisions.get(pick.slice.range)!) : etcd.if(key, 'Create', '==', 0);
      const tx = await this.client.call(() => guard.then(lease.put(key).value(value)).commit());
      if (tx.succeeded) {
        this.slice = pick.slice;
        return;
      }
    }
    throw new VxlanRouterError('E_ETCD', `could not lease an address range in ${network.subnet}: other hosts kept taking the same slices`, { recoverable: true });
  }

  /**
   * Stops renewing the lease and forgets it, leaving it to run out in its TTL (unless a router with the same host id
   * takes the slice over): after `docker-network create` reserved a slice, and when the router stops.
   */
  release(): void {
    this.lease?.release();
    this.lease = undefined;
  }

  /** Releases the lease (the slice outlives the router) and stops leasing again. Safe to call twice. */
  close(): void {
    this.closed = true;
    this.release();
  }

  private leaseFor(network: NetworkDefinition, hostId: string): Lease {
    const lease = this.client.etcd.lease(this.ttlSeconds, { autoKeepAlive: true });
    lease.on('lost', (err) => {
      if (this.closed || this.lease !== lease) return;
      this.lease = undefined;
      this.hooks.warn(new RegistryWarning('E_ETCD', 'range-lease-lost', `etcd lease of the address range lost (${reasonOf(err)}): leasing again`, { cause: err }));
      void this.hooks.retry('leasing the address range again', () => this.acquire(network, hostId));
    });
    return lease;
  }
}
