/**
 * Every host's advertised MACs (macs/<hostId> records), who holds the latest claim of each MAC, and which MAC owns
 * each address: pure (no etcd), so it is tested on its own. It gives the data path its unicast entries and ARP / ND
 * answers, and the advertiser whether a MAC moved to another host and which addresses it may not claim.
 */
import { macRecordSchema, parseRecord, RejectedRecord, type MacRecord } from './records.js';
import { TokenBucket } from './token-bucket.js';

/** A VNI's claims: the latest claim of each MAC, and each address's owner and claims (oldest first). */
interface VniClaims {
  readonly macs: ReadonlyMap<string, Claim>;
  readonly ips: ReadonlyMap<string, { readonly owner: AddressClaim; readonly all: readonly AddressClaim[] }>;
}

/** Who holds a claim (a MAC, or an address at a MAC) and since when: the etcd revision and local time it appeared. */
/** A MAC's claim of an address: the host whose record makes it (its oldest, for a MAC on several) and since when. */
interface AddressClaim {
  readonly id: string;
  readonly mac: string;
  readonly since: number;
}

interface Claim {
  readonly id: string;
  readonly vtep: string;
  readonly since: number;
  readonly seenAt: number;
}

/** A MAC that claims an address, and the host whose record says so. */
export interface AddressClaimant {
  readonly mac: string;
  readonly hostId: string;
}

/** An address claimed by several MACs at once: its owner (the one ARP / ND answer with) and the others. */
export interface AddressConflict {
  readonly vni: number;
  readonly ip: string;
  readonly owner: AddressClaimant;
  readonly claimants: AddressClaimant[];
}

/**
 * Ownership changes of addresses (one address re-bound from one MAC to another) a network allows: a burst of
 * OWNERSHIP_BURST, then OWNERSHIP_PER_SECOND a second. Each change makes every host announce it on its bridge; past
 * the bucket a change waits (counted) and the last owner stays meanwhile.
 */
export const OWNERSHIP_BURST = 32;
export const OWNERSHIP_PER_SECOND = 8;

/** How long an address that lost its last claim remembers its MAC, so that a new MAC taking it is a change. */
const OWNER_MEMORY_MS = 60_000;
/** Addresses remembered that way, per view (the oldest forgotten first). */
const OWNER_MEMORY_MAX = 4096;

/**
 * Every host's advertised MACs, keyed by host id. A MAC two hosts claim (it moved, and the old host has not noticed
 * yet) belongs to the host that claimed it last: each MAC of a record, and each address of a MAC, carries the etcd
 * revision of the write where it first appeared in that host's record (`since`), which a later rewrite of the same
 * record for another reason (another container, an address added) does not change. So a host that moved a container
 * away cannot take it back by rewriting its record, and the advertiser can tell it to withdraw (`claimOf`). After a
 * listing the history is gone: claims date from their record's revision. Bad records are rejected as in HostView.
 *
 * An address belongs to the MAC that has claimed it longest among the live claims (records present, so their hosts'
 * leases alive, and still listing that MAC with that address; a MAC on several hosts claims since its first one). A
 * newer claim by another MAC is a conflict (`addressConflicts`), not a takeover: a container forging a neighbour's
 * address cannot re-point it. When the owner withdraws (its container gone, its host gone), the next claim owns it.
 * Only addresses `inScope` are claims at all. Ownership changes are rate-limited per view (OWNERSHIP_*).
 *
 * A record counts only for the underlay of a registered host with its id: its `vtep` must be the address that host
 * registered (`addressOf`, from the HostView). Any other record (no such host, or another address) is kept but makes
 * no claim, so it cannot point anyone's traffic elsewhere; `audit` reports each once (an E_RECORD warning, counted in
 * `rejected`) and it counts again as soon as the host record matches. Never throws.
 */
export class MacView {
  private readonly byId = new Map<string, { record: MacRecord; since: Map<string, number>; seenAt: Map<string, number> }>();
  /** Records `audit` reported as making no claim: id → why (reported again only when the reason changes). */
  private readonly ignored = new Map<string, string>();
  rejected = 0;
  /** Ownership changes that had to wait for the rate limit. */
  limitedChanges = 0;
  /** Which address may be claimed at all (the network's subnet, address-scope.ts; set once the network is known). */
  get inScope(): (ip: string) => boolean {
    return this.scope;
  }

  set inScope(f: (ip: string) => boolean) {
    this.scope = f;
    this.version++;
  }
  /** The owner of each address as the last table published it (`remote`); goneAt: when its last claim went. */
  private readonly published = new Map<string, { mac: string; goneAt?: number }>();
  private readonly bucket: TokenBucket;
  /** Bumped by each change of the records (or the scope): `addressOwners` is cached per version. */
  private version = 0;
  private readonly ownersCache = new Map<number, { version: number; owners: Map<string, AddressClaimant> }>();
  private readonly claimsCache = new Map<number, { version: number; claims: VniClaims }>();
  private scope: (ip: string) => boolean = () => true;
  /** A change waited for the rate limit: the caller should build the table again later (`retryInMs`). */
  deferred = false;

  /** `addressOf`: the underlay address host `id` registered; without it (tests of claims alone) every record counts. */
  constructor(
    private readonly onReject: (err: RejectedRecord) => void = () => undefined,
    private readonly now: () => number = Date.now,
    private readonly addressOf?: (id: string) => string | undefined,
  ) {
    this.bucket = new TokenBucket(OWNERSHIP_BURST, OWNERSHIP_PER_SECOND, now);
  }

  /** Something the claims depend on besides the records changed (a host record: `addressOf`). */
  invalidate(): void {
    this.version++;
  }

  /** When a deferred ownership change can go through. */
  retryInMs(): number {
    return this.bucket.msUntilToken();
  }

  /** Why host `id`'s record makes no claim (see the class comment), or undefined when it counts. */
  private unbacked(id: string, record: MacRecord): string | undefined {
    if (this.addressOf === undefined) return undefined;
    const address = this.addressOf(id);
    if (address === undefined) return `no host ${id} is registered (or its host record was rejected)`;
    if (address !== record.vtep) return `its vtep ${record.vtep} is not ${address}, the underlay address host ${id} registered`;
    return undefined;
  }

  /** Reports each record that newly makes no claim (or for a new reason); call before building a table. */
  audit(): void {
    for (const id of this.ignored.keys()) if (!this.byId.has(id)) this.ignored.delete(id);
    for (const [id, { record }] of this.byId) {
      const why = this.unbacked(id, record);
      if (why === undefined) {
        if (this.ignored.delete(id)) this.version++; // its host registered: the record counts now
      } else if (this.ignored.get(id) !== why) {
        if (!this.ignored.has(id)) this.version++;
        this.ignored.set(id, why);
        this.rejected++;
        this.onReject(new RejectedRecord(id, why, 'MAC'));
      }
    }
  }

  /** The records that make no claim now, and why (status and doctor). */
  ignoredRecords(): { id: string; reason: string }[] {
    return [...this.ignored].map(([id, reason]) => ({ id, reason }));
  }

  reset(entries: Iterable<{ readonly id: string; readonly value: string; readonly revision: number }>): void {
    this.byId.clear();
    this.version++;
    for (const e of entries) this.put(e.id, e.value, e.revision);
  }

  put(id: string, value: string, revision: number): boolean {
    const r = parseRecord(macRecordSchema, id, value);
    if ('reason' in r) return this.reject(id, r.reason);
    const prev = this.byId.get(id);
    const since = new Map<string, number>();
    const seenAt = new Map<string, number>();
    const keep = (key: string): void => {
      since.set(key, prev?.since.get(key) ?? revision);
      seenAt.set(key, prev?.seenAt.get(key) ?? this.now());
    };
    for (const m of r.record.macs) {
      keep(macKey(m.vni, m.mac));
      for (const ip of m.ips ?? []) keep(ipKey(m.vni, ip, m.mac));
    }
    this.byId.set(id, { record: r.record, since, seenAt });
    this.version++;
    return true;
  }

  delete(id: string): void {
    this.byId.delete(id);
    this.version++;
  }

  /** The latest claim of a MAC (this host's own included), or undefined when no host advertises it. */
  claimOf(vni: number, mac: string): Claim | undefined {
    return this.claims(vni).macs.get(mac);
  }

  /** Other hosts' MACs of `vni` → their VTEP (the latest claim wins); none that `selfId` holds the latest claim of. */
  macs(vni: number, selfId: string): { mac: string; vtep: string; origin: 'etcd'; revision: number; ips: readonly string[] }[] {
    return this.remote(vni, selfId).macs;
  }

  /**
   * `macs` and `neighbors` of `vni` from one pass over the records (the table needs both at each change). An address
   * whose owner changed since the last call takes a token of the rate limit; without one, the last owner stays (or,
   * if it is gone, the address is left out) until `retryInMs`, and `deferred` says so.
   */
  remote(vni: number, selfId: string): { macs: { mac: string; vtep: string; origin: 'etcd'; revision: number; ips: readonly string[] }[]; neighbors: { ip: string; mac: string }[] } {
    const { macs, ips } = this.claims(vni);
    const now = this.now();
    this.deferred = false;
    const owners = new Map<string, { mac: string; id: string }>();
    for (const [ip, c] of ips) {
      const key = `${vni}/${ip}`;
      const was = this.published.get(key);
      const changed = was !== undefined && was.mac !== c.owner.mac && (was.goneAt === undefined || now - was.goneAt < OWNER_MEMORY_MS);
      if (changed && !this.bucket.take()) {
        this.limitedChanges++;
        this.deferred = true;
        if (was.goneAt === undefined) {
          const stay = c.all.find((a) => a.mac === was.mac);
          if (stay !== undefined) owners.set(ip, { mac: was.mac, id: stay.id });
        }
        continue;
      }
      this.published.set(key, { mac: c.owner.mac });
      owners.set(ip, { mac: c.owner.mac, id: c.owner.id });
    }
    const prefix = `${vni}/`;
    for (const [key, p] of this.published) {
      if (!key.startsWith(prefix) || ips.has(key.slice(prefix.length))) continue;
      if (p.goneAt === undefined) this.published.set(key, { mac: p.mac, goneAt: now });
      else if (now - p.goneAt >= OWNER_MEMORY_MS) this.published.delete(key);
    }
    for (const key of this.published.keys()) {
      if (this.published.size <= OWNER_MEMORY_MAX) break;
      if (this.published.get(key)!.goneAt !== undefined) this.published.delete(key);
    }
    const ipsOf = new Map<string, string[]>();
    for (const [ip, o] of owners) ipsOf.set(o.mac, [...(ipsOf.get(o.mac) ?? []), ip]);
    return {
      macs: [...macs].filter(([, c]) => c.id !== selfId).map(([mac, c]) => ({ mac, vtep: c.vtep, origin: 'etcd' as const, revision: c.since, ips: ipsOf.get(mac) ?? [] })),
      neighbors: [...owners].filter(([, o]) => o.id !== selfId).map(([ip, o]) => ({ ip, mac: o.mac })),
    };
  }

  /**
   * The owner of each address of `vni` (MAC and host), for the advertiser: it leaves out of a MAC's claims an address
   * another MAC owns. Cached until the records change (the advertiser asks four times a second).
   */
  addressOwners(vni: number): ReadonlyMap<string, AddressClaimant> {
    const cached = this.ownersCache.get(vni);
    if (cached !== undefined && cached.version === this.version) return cached.owners;
    const owners = new Map<string, AddressClaimant>();
    for (const [ip, c] of this.claims(vni).ips) owners.set(ip, { mac: c.owner.mac, hostId: c.owner.id });
    this.ownersCache.set(vni, { version: this.version, owners });
    return owners;
  }

  /** Addresses several MACs claim at once, with the owner and the other claimants (newest last). */
  addressConflicts(): AddressConflict[] {
    const vnis = new Set<number>();
    for (const { record } of this.byId.values()) for (const m of record.macs) vnis.add(m.vni);
    const out: AddressConflict[] = [];
    for (const vni of [...vnis].sort((a, b) => a - b)) {
      for (const [ip, c] of this.claims(vni).ips) {
        const others = c.all.filter((a) => a.mac !== c.owner.mac);
        if (others.length === 0) continue;
        out.push({ vni, ip, owner: { mac: c.owner.mac, hostId: c.owner.id }, claimants: others.map((a) => ({ mac: a.mac, hostId: a.id })) });
      }
    }
    return out;
  }

  /**
   * MACs that several hosts claim at once, with the claimants latest first (the first one gets the traffic). A MAC
   * that moved is claimed twice only until the old host withdraws it; one claimed for long is a conflict.
   */
  conflicts(): { vni: number; mac: string; hostIds: string[] }[] {
    const claims = new Map<string, { vni: number; mac: string; by: { id: string; since: number }[] }>();
    for (const [id, { record, since }] of this.byId) {
      if (this.unbacked(id, record) !== undefined) continue;
      for (const m of record.macs) {
        const key = macKey(m.vni, m.mac);
        const c = claims.get(key) ?? { vni: m.vni, mac: m.mac, by: [] };
        c.by.push({ id, since: since.get(key)! });
        claims.set(key, c);
      }
    }
    return [...claims.values()]
      .filter((c) => c.by.length > 1)
      .map((c) => ({ vni: c.vni, mac: c.mac, hostIds: c.by.sort((a, b) => b.since - a.since || a.id.localeCompare(b.id)).map((b) => b.id) }));
  }

  /** Remote addresses of `vni` → their owner's MAC, for ARP and ND suppression; none this host owns. */
  neighbors(vni: number, selfId: string): { ip: string; mac: string }[] {
    return this.remote(vni, selfId).neighbors;
  }

  /**
   * The latest claim of each MAC of `vni` (ties: the lower host id, so every host agrees), and each address's claims:
   * its owner (the oldest claim: lowest revision, then host id, then MAC) and every claim, oldest first. A MAC on
   * several hosts makes one claim of an address, dated by its oldest.
   */
  private claims(vni: number): VniClaims {
    // Cached per version: the advertiser asks for many MACs four times a second, and a pass over every record per
    // MAC was most of the router's garbage under MAC churn (it grew V8's young generation).
    const cached = this.claimsCache.get(vni);
    if (cached !== undefined && cached.version === this.version) return cached.claims;
    const claims = this.computeClaims(vni);
    this.claimsCache.set(vni, { version: this.version, claims });
    return claims;
  }

  private computeClaims(vni: number): VniClaims {
    const macs = new Map<string, Claim>();
    const byIp = new Map<string, Map<string, AddressClaim>>();
    const later = (a: Claim | undefined, b: Claim): boolean => a === undefined || b.since > a.since || (b.since === a.since && b.id < a.id);
    const older = (a: AddressClaim, b: AddressClaim): number => a.since - b.since || a.id.localeCompare(b.id) || a.mac.localeCompare(b.mac);
    for (const [id, { record, since }] of this.byId) {
      if (this.unbacked(id, record) !== undefined) continue;
      for (const m of record.macs) {
        if (m.vni !== vni) continue;
        const k = macKey(vni, m.mac);
        const c = { id, vtep: record.vtep, since: since.get(k)!, seenAt: this.byId.get(id)!.seenAt.get(k)! };
        if (later(macs.get(m.mac), c)) macs.set(m.mac, c);
        for (const ip of m.ips ?? []) {
          if (!this.inScope(ip)) continue;
          const ci = { id, since: since.get(ipKey(vni, ip, m.mac))!, mac: m.mac };
          const claims = byIp.get(ip) ?? new Map<string, AddressClaim>();
          const had = claims.get(m.mac);
          if (had === undefined || older(ci, had) < 0) claims.set(m.mac, ci);
          byIp.set(ip, claims);
        }
      }
    }
    const ips = new Map<string, { owner: AddressClaim; all: AddressClaim[] }>();
    for (const [ip, claims] of byIp) {
      const all = [...claims.values()].sort(older);
      ips.set(ip, { owner: all[0]!, all });
    }
    return { macs, ips };
  }

  private reject(id: string, reason: string): false {
    this.byId.delete(id);
    this.version++;
    this.rejected++;
    this.onReject(new RejectedRecord(id, reason, 'MAC'));
    return false;
  }
}

const macKey = (vni: number, mac: string): string => `${vni}/${mac}`;
const ipKey = (vni: number, ip: string, mac: string): string => `${vni}/${mac}/${ip}`;
