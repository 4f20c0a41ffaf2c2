/**
 * Per-host address ranges for Docker's IPAM (like flannel's subnet leases): a network's IPv4 overlay subnet is cut
 * into equal slices, and each host leases one, so Docker networks on different hosts never hand out the same address.
 * This module is the pure part: the slicing, the choice of a slice, and what "no range" means. The leasing
 * (compare-and-swap in etcd, renewal, reclaiming one's own slice after a restart) is in range-lease.ts; the record
 * kept under ranges/<cidr> is in records.ts.
 */
import { isIPv4 } from 'node:net';
import { ConfigError } from '../errors.js';

/** A host's slice: the CIDR, the gateway Docker puts on the bridge (its first address) and its size. */
export interface HostRange {
  readonly range: string;
  readonly gateway: string;
  readonly addresses: number;
}

/**
 * Why a network has no address range on this host, for callers to branch on (`none` says it for people):
 * - 'not-leased': not yet (etcd has not answered since the router started, and no snapshot named one);
 * - 'unsliceable': the subnet cannot be cut into per-host slices (IPv6, narrower than /30, or a host prefix that
 *   does not fit): nothing to lease, nothing to fix on this host;
 * - 'exhausted': every slice is leased by another host (free the slices of hosts gone for good, or a longer
 *   --host-prefix);
 * - 'no-registry': static peers, no etcd to lease from.
 */
export const NO_RANGE_REASONS = ['not-leased', 'unsliceable', 'exhausted', 'no-registry'] as const;
export type NoRangeReason = (typeof NO_RANGE_REASONS)[number];

/** A network without an address range for Docker: why, for people (`none`) and for code (`reason`). */
export interface NoRange {
  readonly none: string;
  readonly reason: NoRangeReason;
}

const toInt = (ip: string): number => ip.split('.').reduce((n, b) => n * 256 + Number(b), 0);
const toIp = (n: number): string => [24, 16, 8, 0].map((s) => Math.floor(n / 2 ** s) % 256).join('.');

/** An IPv4 subnet in canonical form (198.18.1.0/15 is 198.18.0.0/15), with the arithmetic the IPAM needs. */
export class Ipv4Subnet {
  private constructor(
    readonly base: number,
    readonly prefix: number,
  ) {}

  /** Undefined unless `cidr` is an IPv4 CIDR with a prefix in [minPrefix, maxPrefix]. */
  static parse(cidr: string, minPrefix = 0, maxPrefix = 32): Ipv4Subnet | undefined {
    const m = /^([0-9.]+)\/(\d{1,2})$/.exec(cidr);
    if (m === null || !isIPv4(m[1]!)) return undefined;
    const prefix = Number(m[2]);
    if (prefix < minPrefix || prefix > maxPrefix) return undefined;
    const size = 2 ** (32 - prefix);
    return new Ipv4Subnet(toInt(m[1]!) - (toInt(m[1]!) % size), prefix);
  }

  get size(): number {
    return 2 ** (32 - this.prefix);
  }

  toString(): string {
    return `${toIp(this.base)}/${this.prefix}`;
  }

  /** The address `offset` places into the subnet (a negative offset counts from its end: -1 is the broadcast). */
  at(offset: number): string {
    return toIp(this.base + (offset < 0 ? this.size + offset : offset));
  }

  contains(ip: string): boolean {
    return isIPv4(ip) && toInt(ip) >= this.base && toInt(ip) < this.base + this.size;
  }
}

/**
 * Slices of /24 in a subnet of /20 or wider (256 addresses a host, flannel's default); in a narrower one, sixteen
 * slices (a /24 gives 16 hosts 16 addresses each), at least four addresses each.
 */
export function defaultHostPrefix(subnetPrefix: number): number {
  return subnetPrefix <= 20 ? 24 : Math.min(subnetPrefix + 4, 30);
}

/** The slices of a network's subnet; a ConfigError says why there are none (IPv6, or a prefix that does not fit). */
export class Slices {
  readonly base: number;
  readonly subnetPrefix: number;
  readonly prefix: number;

  constructor(subnet: string, hostPrefix?: number) {
    const net = Ipv4Subnet.parse(subnet);
    if (net === undefined) throw new ConfigError(`per-host ranges need an IPv4 subnet; ${subnet} is not one`);
    this.subnetPrefix = net.prefix;
    if (this.subnetPrefix > 30) throw new ConfigError(`subnet ${subnet} is too small to share between hosts`, { hint: 'per-host slices need a /29 or wider subnet' });
    this.prefix = hostPrefix ?? defaultHostPrefix(this.subnetPrefix);
    if (this.prefix <= this.subnetPrefix || this.prefix > 30) {
      throw new ConfigError(`host prefix /${this.prefix} does not cut ${subnet} into slices`, { hint: `use one between /${this.subnetPrefix + 1} and /30` });
    }
    this.base = net.base; // 198.18.1.0/15 means 198.18.0.0/15
  }

  get count(): number {
    return 2 ** (this.prefix - this.subnetPrefix);
  }

  at(i: number): HostRange {
    const size = 2 ** (32 - this.prefix);
    const start = this.base + i * size;
    return { range: `${toIp(start)}/${this.prefix}`, gateway: toIp(start + 1), addresses: size };
  }

  /** The slice named by a key's CIDR, or undefined when it is not one of ours. */
  find(range: string): HostRange | undefined {
    const m = /^(.+)\/(\d+)$/.exec(range);
    if (m === null || !isIPv4(m[1]!) || Number(m[2]) !== this.prefix) return undefined;
    const offset = toInt(m[1]!) - this.base;
    const size = 2 ** (32 - this.prefix);
    if (offset < 0 || offset % size !== 0 || offset / size >= this.count) return undefined;
    return this.at(offset / size);
  }

  /**
   * The slice to lease, given the leased ones (range → holder): the one `hostId` already holds (a restart keeps
   * its addresses), else the first free one, starting from a point derived from the host id so that hosts joining
   * at once rarely race for the same slice; undefined when all are taken.
   */
  choose(hostId: string, leased: ReadonlyMap<string, string>): { slice: HostRange; own: boolean } | undefined {
    for (const [range, holder] of leased) {
      const s = holder === hostId ? this.find(range) : undefined;
      if (s !== undefined) return { slice: s, own: true };
    }
    let h = 0;
    for (const c of hostId) h = (h * 31 + c.charCodeAt(0)) >>> 0;
    for (let k = 0; k < this.count; k++) {
      const s = this.at((h + k) % this.count);
      if (!leased.has(s.range)) return { slice: s, own: false };
    }
    return undefined;
  }
}

/**
 * The addresses a host hands out from its slice (Docker's IPAM plugin): never the slice's first address (a `.0`
 * surprises people and some tools) nor its gateway (kept for the host's bridge), nor the subnet's broadcast
 * address, nor any address the caller reserves. Bounded by the slice's size; in memory (dockerd replays its
 * requests after a restart).
 */
export class SliceAddresses {
  private readonly start: number;
  private readonly size: number;
  private readonly excluded: ReadonlySet<number>;
  private readonly taken = new Set<number>();

  constructor(subnet: string, slice: HostRange, reserved: readonly string[] = []) {
    const own = Ipv4Subnet.parse(slice.range);
    const net = Ipv4Subnet.parse(subnet);
    if (own === undefined || net === undefined) throw new ConfigError(`slice ${slice.range} of ${subnet} is not an IPv4 range`);
    this.start = own.base;
    this.size = own.size;
    this.excluded = new Set([this.start, toInt(slice.gateway), toInt(net.at(-1)), ...reserved.filter((a) => isIPv4(a)).map(toInt)]);
  }

  get inUse(): number {
    return this.taken.size;
  }

  /** Whether `ip` is one this slice may hand out at all. */
  owns(ip: string): boolean {
    if (!isIPv4(ip)) return false;
    const n = toInt(ip);
    return n >= this.start && n < this.start + this.size && !this.excluded.has(n);
  }

  /** Takes `wanted` (a replay, or `--ip`) or the first free address; undefined when it is taken or not ours, or none is left. */
  take(wanted?: string): string | undefined {
    if (wanted !== undefined) {
      if (!this.owns(wanted) || this.taken.has(toInt(wanted))) return undefined;
      this.taken.add(toInt(wanted));
      return wanted;
    }
    for (let n = this.start; n < this.start + this.size; n++) {
      if (!this.excluded.has(n) && !this.taken.has(n)) {
        this.taken.add(n);
        return toIp(n);
      }
    }
    return undefined;
  }

  /** Gives an address back; false when it was not taken. */
  release(ip: string): boolean {
    return isIPv4(ip) && this.taken.delete(toInt(ip));
  }
}
