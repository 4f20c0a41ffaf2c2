/**
 * Docker's IPAM calls answered from this host's slice of an overlay network (issue 16): the pool is the overlay's
 * whole subnet (one L2 segment across hosts), container addresses come only from the slice this host leased in
 * etcd, so no two hosts hand out one address.
 *
 * The gateway dockerd asks for when it creates a network is the subnet's first address, the same on every host and
 * never put on an interface: our network driver gives containers no gateway (dockerd then adds docker_gwbridge for
 * outbound traffic and `-p`), but dockerd insists on reserving one. It is never handed to a container.
 */
import { Ipv4Subnet, SliceAddresses, type HostRange } from '../control/index.js';
import { GATEWAY_REQUEST_OPTION, PluginCallError, type IpamDriver, type PoolRequest, type ReleaseAddressRequest, type RequestAddressRequest, type RequestPoolRequest } from './docker-plugin.js';

/** Where the IPAM driver finds this host's slice of the overlay network with a given subnet. */
export interface OverlaySlices {
  /** Rejects with a PluginCallError (why there is none: no such network, not leased, exhausted). */
  sliceOf(subnet: string): Promise<{ readonly network: string; readonly slice: HostRange }>;
}

/** Pools dockerd may hold at once (one per overlay network on this host); more is a refused call, not growth. */
export const MAX_POOLS = 256;
const POOL_PREFIX = 'vxlan-router/';

interface Pool {
  readonly net: Ipv4Subnet;
  refs: number;
  gateway: string | undefined;
  /** Addresses dockerd holds that were adopted (docker-sync.ts): taken when the slice is known; a replay of one is accepted. */
  adopted: Set<string>;
  /** Made on the first container address (the slice needs the network defined in etcd, after CreateNetwork). */
  addresses: Promise<{ network: string; slice: HostRange; free: SliceAddresses }> | undefined;
}

export class OverlayIpam implements IpamDriver {
  private readonly pools = new Map<string, Pool>();

  /** `adopted`: as the network driver's (docker-driver.ts): an unknown pool is looked for again once adopted. */
  constructor(
    private readonly slices: OverlaySlices,
    private readonly adopted?: () => Promise<void>,
  ) {}

  requestPool(req: RequestPoolRequest): Promise<{ PoolID: string; Pool: string; Data: Record<string, string> }> {
    if (req.V6 === true) return Promise.reject(new PluginCallError('vxlan-router hands out IPv4 addresses only', 'leave out --ipv6 (IPv6 on the overlay: give the containers addresses yourself)'));
    if (req.Pool === undefined || req.Pool === '') return Promise.reject(new PluginCallError('no subnet given', 'give the overlay network its subnet: docker network create --subnet 198.18.0.0/16 …'));
    if (req.SubPool !== undefined && req.SubPool !== '') {
      return Promise.reject(new PluginCallError(`--ip-range ${req.SubPool} is not taken: each host hands out its own slice of the subnet, leased in etcd`, 'leave out --ip-range'));
    }
    const net = Ipv4Subnet.parse(req.Pool, 8, 29);
    if (net === undefined) return Promise.reject(new PluginCallError(`subnet ${req.Pool} is not an IPv4 subnet between /8 and /29`, 'give one like 198.18.0.0/16'));
    const id = POOL_PREFIX + net.toString();
    const pool = this.pools.get(id);
    if (pool !== undefined) pool.refs++;
    else if (this.pools.size >= MAX_POOLS) return Promise.reject(new PluginCallError(`this host already holds ${MAX_POOLS} vxlan-router pools`, 'remove networks that are no longer used'));
    else this.pools.set(id, { net, refs: 1, gateway: undefined, adopted: new Set(), addresses: undefined });
    return Promise.resolve({ PoolID: id, Pool: net.toString(), Data: {} });
  }

  releasePool(req: PoolRequest): Promise<void> {
    const pool = this.pools.get(req.PoolID);
    if (pool !== undefined && --pool.refs <= 0) this.pools.delete(req.PoolID);
    return Promise.resolve();
  }

  async requestAddress(req: RequestAddressRequest): Promise<{ Address: string; Data: Record<string, string> }> {
    if (!this.pools.has(req.PoolID)) await this.adopted?.();
    const pool = this.pool(req.PoolID);
    const wanted = req.Address === undefined || req.Address === '' ? undefined : req.Address;
    const [key, value] = GATEWAY_REQUEST_OPTION;
    if (req.Options?.[key] === value) {
      const gateway = wanted ?? pool.net.at(1);
      if (!pool.net.contains(gateway)) throw new PluginCallError(`gateway ${gateway} is not in subnet ${pool.net}`);
      pool.gateway = gateway;
      return { Address: `${gateway}/${pool.net.prefix}`, Data: {} };
    }
    if (wanted !== undefined && !pool.net.contains(wanted)) throw new PluginCallError(`${wanted} is not in subnet ${pool.net}`);
    const subnet = pool.net.toString();
    pool.addresses ??= this.slices.sliceOf(subnet).then(({ network, slice }) => {
      const free = new SliceAddresses(subnet, slice, pool.gateway === undefined ? [] : [pool.gateway]);
      for (const a of pool.adopted) free.take(a);
      return { network, slice, free };
    });
    let held: Awaited<NonNullable<Pool['addresses']>>;
    try {
      held = await pool.addresses;
    } catch (err) {
      pool.addresses = undefined; // not leased yet, or etcd away: the next container asks again
      throw err;
    }
    const ip = held.free.take(wanted);
    if (ip !== undefined) return { Address: `${ip}/${pool.net.prefix}`, Data: {} };
    if (wanted !== undefined && pool.adopted.delete(wanted)) return { Address: `${wanted}/${pool.net.prefix}`, Data: {} }; // dockerd's replay
    const where = `this host's slice ${held.slice.range} of network ${held.network}`;
    if (wanted === undefined) throw new PluginCallError(`${where} has no free address (${held.free.inUse} in use)`, 'remove containers, or give the network a longer --host-prefix');
    if (!held.free.owns(wanted)) throw new PluginCallError(`${wanted} is not an address ${where} hands out`, `pick one in ${held.slice.range} other than ${held.slice.range.split('/')[0]} and ${held.slice.gateway}`);
    throw new PluginCallError(`${wanted} is already in use on this host`);
  }

  async releaseAddress(req: ReleaseAddressRequest): Promise<void> {
    const pool = this.pools.get(req.PoolID);
    if (pool === undefined || req.Address === pool.gateway) return;
    const ip = req.Address.split('/')[0]!;
    pool.adopted.delete(ip);
    const held = await pool.addresses?.catch(() => undefined);
    held?.free.release(ip);
  }

  /** A pool and addresses dockerd already holds (a new router process: docker-sync.ts), as if requested. */
  adopt(subnet: string, gateway: string | undefined, addresses: readonly string[]): void {
    const net = Ipv4Subnet.parse(subnet, 8, 29);
    if (net === undefined) return;
    const id = POOL_PREFIX + net.toString();
    let pool = this.pools.get(id);
    if (pool === undefined) {
      if (this.pools.size >= MAX_POOLS) return;
      pool = { net, refs: 0, gateway: undefined, adopted: new Set(), addresses: undefined };
      this.pools.set(id, pool);
    }
    pool.refs++;
    pool.gateway ??= gateway?.split('/')[0];
    for (const a of addresses) pool.adopted.add(a);
    const p = pool;
    void p.addresses?.then((held) => addresses.forEach((a) => held.free.take(a))).catch(() => undefined);
  }

  private pool(id: string): Pool {
    const pool = this.pools.get(id);
    if (pool === undefined) throw new PluginCallError(`unknown pool ${id}`, 'dockerd asked for an address before the pool: restart dockerd so it replays its requests');
    return pool;
  }
}
