/**
 * Which addresses this host claims for its MACs (what its MAC record's `ips` say): pure, so the rules are tested on
 * their own. The registry composes its record through it at each advertiser tick and each change of the views.
 *
 * - Only addresses in the network's scope (address-scope.ts).
 * - Not an address another MAC owns (MacView: the oldest live claim), wherever that MAC is: refused (a container
 *   forging a neighbour's address, or a duplicate), reported as a conflict. A refused address stays refused for that
 *   MAC after the owner withdrew, until the MAC is seen using it again (its most recent address, in a frame after the
 *   owner went): a container that forged an address once does not inherit it when its owner leaves, while the
 *   container the address moved to, which keeps using it, claims it at once.
 * - Of several local MACs that may claim one free address, the one that used it last (its most recent address, then
 *   the most recent frame). An owner of ours keeps its address while it still wants it.
 */
import type { AdvertisedMac } from './control-plane.js';
import type { AddressClaimant } from './mac-view.js';

/** A local claim left out because another MAC owns the address. */
export interface RefusedClaim {
  readonly vni: number;
  readonly ip: string;
  readonly mac: string;
  readonly owner: AddressClaimant;
}

/** A MAC's addresses in the form the record carries them (canonical, in scope), most recent first. */
export interface LocalMacIps {
  readonly vni: number;
  readonly mac: string;
  /** Canonical, in scope, most recently used first (as the engine lists them). */
  readonly ips: readonly string[];
  /** When its last frame was seen (ms, the caller's clock). */
  readonly lastSeen: number;
}

export class LocalClaims {
  /** vni/mac/ip refused because another MAC owned it; freeSince: when the address was first seen free again. */
  private readonly tainted = new Map<string, { freeSince?: number }>();

  /**
   * Each MAC's claimable addresses, and the claims refused now. `owners(vni)`: each address's owner per MacView
   * (this host's own claims included, as etcd has them); `selfId`: this host.
   */
  compose(macs: readonly LocalMacIps[], owners: (vni: number) => ReadonlyMap<string, AddressClaimant>, selfId: string | undefined, now: number): { ips: Map<string, string[]>; refused: RefusedClaim[] } {
    const key = (vni: number, mac: string, ip: string): string => `${vni}/${mac}/${ip}`;
    const wants = new Set(macs.flatMap((m) => m.ips.map((ip) => key(m.vni, m.mac, ip))));
    const refused: RefusedClaim[] = [];
    /** vni/ip → the local MACs that may claim it, with how recently they used it. */
    const contenders = new Map<string, { mac: string; rank: number; lastSeen: number }[]>();
    const live = new Set<string>();
    for (const m of macs) {
      const own = owners(m.vni);
      m.ips.forEach((ip, rank) => {
        const k = key(m.vni, m.mac, ip);
        live.add(k);
        const owner = own.get(ip);
        // An owner of ours that no longer wants the address (its container left) is a claim about to go: not an owner.
        const owned = owner !== undefined && owner.mac !== m.mac && !(owner.hostId === selfId && !wants.has(key(m.vni, owner.mac, ip)));
        if (owned) {
          refused.push({ vni: m.vni, ip, mac: m.mac, owner });
          this.tainted.set(k, {});
          return;
        }
        const taint = this.tainted.get(k);
        if (taint !== undefined) {
          taint.freeSince ??= now;
          if (!(rank === 0 && m.lastSeen > taint.freeSince)) return;
          this.tainted.delete(k);
        }
        const ck = `${m.vni}/${ip}`;
        contenders.set(ck, [...(contenders.get(ck) ?? []), { mac: m.mac, rank, lastSeen: m.lastSeen }]);
      });
    }
    for (const k of this.tainted.keys()) if (!live.has(k)) this.tainted.delete(k);
    const ips = new Map<string, string[]>();
    for (const [ck, cs] of contenders) {
      const slash = ck.indexOf('/');
      const vni = Number(ck.slice(0, slash));
      const ip = ck.slice(slash + 1);
      const owner = owners(vni).get(ip);
      const best = cs.find((c) => c.mac === owner?.mac) ?? [...cs].sort((a, b) => a.rank - b.rank || b.lastSeen - a.lastSeen || a.mac.localeCompare(b.mac))[0]!;
      const mk = `${vni}/${best.mac}`;
      ips.set(mk, [...(ips.get(mk) ?? []), ip]);
    }
    return { ips, refused };
  }
}

/** The engine's view of a MAC (AdvertisedMac) as LocalClaims takes it. */
export function localMacIps(m: AdvertisedMac, now: number, canonical: (ip: string) => string | undefined, inScope: (ip: string) => boolean): LocalMacIps {
  const ips: string[] = [];
  for (const raw of m.ips ?? []) {
    const ip = canonical(raw);
    if (ip !== undefined && inScope(ip) && !ips.includes(ip)) ips.push(ip);
  }
  return { vni: m.vni, mac: m.mac.toLowerCase(), ips, lastSeen: now - (m.ageMs ?? 0) };
}
