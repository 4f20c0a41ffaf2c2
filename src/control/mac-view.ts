/**
 * Every host's advertised MACs (macs/<hostId> records) and who holds the latest claim of each MAC and address: pure
 * (no etcd), so it is tested on its own. It gives the data path its unicast entries and ARP / ND answers, and the
 * advertiser whether a MAC moved to another host.
 */
import { macRecordSchema, parseRecord, RejectedRecord, type MacRecord } from './records.js';

/** Who holds a claim (a MAC, or an address at a MAC) and since when: the etcd revision and local time it appeared. */
export interface Claim {
  readonly id: string;
  readonly vtep: string;
  readonly since: number;
  readonly seenAt: number;
}

/**
 * Every host's advertised MACs, keyed by host id. A MAC two hosts claim (it moved, and the old host has not noticed
 * yet) belongs to the host that claimed it last: each MAC of a record, and each address of a MAC, carries the etcd
 * revision of the write where it first appeared in that host's record (`since`), which a later rewrite of the same
 * record for another reason (another container, an address added) does not change. So a host that moved a container
 * away cannot take it back by rewriting its record, and the advertiser can tell it to withdraw (`claimOf`). After a
 * listing the history is gone: claims date from their record's revision. Bad records are rejected as in HostView.
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

  /** `addressOf`: the underlay address host `id` registered; without it (tests of claims alone) every record counts. */
  constructor(
    private readonly onReject: (err: RejectedRecord) => void = () => undefined,
    private readonly now: () => number = Date.now,
    private readonly addressOf?: (id: string) => string | undefined,
  ) {}

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
        this.ignored.delete(id);
      } else if (this.ignored.get(id) !== why) {
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
    return true;
  }

  delete(id: string): void {
    this.byId.delete(id);
  }

  /** The latest claim of a MAC (this host's own included), or undefined when no host advertises it. */
  claimOf(vni: number, mac: string): Claim | undefined {
    return this.claims(vni).macs.get(mac);
  }

  /**
   * The latest claim of every MAC of `vni` (MAC → claim): one pass over the records. For asking about many MACs at
   * once (the advertiser, four times a second): claimOf per MAC would pass over every record for each.
   */
  macClaims(vni: number): ReadonlyMap<string, Claim> {
    return this.claims(vni).macs;
  }

  /** Other hosts' MACs of `vni` → their VTEP (the latest claim wins); none that `selfId` holds the latest claim of. */
  macs(vni: number, selfId: string): { mac: string; vtep: string; origin: 'etcd'; ips: readonly string[] }[] {
    return this.remote(vni, selfId).macs;
  }

  /** `macs` and `neighbors` of `vni` from one pass over the records (the table needs both at each change). */
  remote(vni: number, selfId: string): { macs: { mac: string; vtep: string; origin: 'etcd'; ips: readonly string[] }[]; neighbors: { ip: string; mac: string }[] } {
    const { macs, ips } = this.claims(vni);
    const ipsOf = new Map<string, string[]>();
    for (const [ip, c] of ips) ipsOf.set(c.mac, [...(ipsOf.get(c.mac) ?? []), ip]);
    return {
      macs: [...macs].filter(([, c]) => c.id !== selfId).map(([mac, c]) => ({ mac, vtep: c.vtep, origin: 'etcd' as const, ips: ipsOf.get(mac) ?? [] })),
      neighbors: [...ips].filter(([, c]) => c.id !== selfId).map(([ip, c]) => ({ ip, mac: c.mac })),
    };
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

  /**
   * Remote addresses of `vni` → MAC, for ARP and ND suppression: each from its latest claim (an address re-bound to
   * a container elsewhere belongs to the new one), and none whose latest claim is this host's own.
   */
  neighbors(vni: number, selfId: string): { ip: string; mac: string }[] {
    return this.remote(vni, selfId).neighbors;
  }

  /** The latest claim of each MAC and of each address of `vni` (ties: the lower host id, so every host agrees). */
  private claims(vni: number): { macs: Map<string, Claim>; ips: Map<string, Claim & { mac: string }> } {
    const macs = new Map<string, Claim>();
    const ips = new Map<string, Claim & { mac: string }>();
    const later = (a: Claim | undefined, b: Claim): boolean => a === undefined || b.since > a.since || (b.since === a.since && b.id < a.id);
    for (const [id, { record, since, seenAt }] of this.byId) {
      if (this.unbacked(id, record) !== undefined) continue;
      for (const m of record.macs) {
        if (m.vni !== vni) continue;
        const k = macKey(vni, m.mac);
        const c = { id, vtep: record.vtep, since: since.get(k)!, seenAt: seenAt.get(k)! };
        if (later(macs.get(m.mac), c)) macs.set(m.mac, c);
        for (const ip of m.ips ?? []) {
          const ki = ipKey(vni, ip, m.mac);
          const ci = { id, vtep: record.vtep, since: since.get(ki)!, seenAt: seenAt.get(ki)!, mac: m.mac };
          if (later(ips.get(ip), ci)) ips.set(ip, ci);
        }
      }
    }
    return { macs, ips };
  }

  private reject(id: string, reason: string): false {
    this.byId.delete(id);
    this.rejected++;
    this.onReject(new RejectedRecord(id, reason, 'MAC'));
    return false;
  }
}

const macKey = (vni: number, mac: string): string => `${vni}/${mac}`;
const ipKey = (vni: number, ip: string, mac: string): string => `${vni}/${mac}/${ip}`;
