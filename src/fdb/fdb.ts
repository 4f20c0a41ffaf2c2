/**
 * The forwarding table: (VNI, MAC) → VTEP. Static entries come whole from the control plane (`load`); learned ones
 * from inbound traffic (`learn`) and expire after `agingMs` on an injected clock, so aging is testable without
 * waiting. Lookup answers one VTEP for known unicast, or the VNI's flood list (head-end replication) otherwise.
 *
 * Keys: one Map per VNI, keyed by the MAC's 48 bits as a number (exact below 2^53): no allocation per lookup.
 */
import { formatMac, isMulticastMac, parseMac } from '../packet/index.js';
import type { FdbEntry, MacOrigin, TableSnapshot } from './table.js';

export type Route = { readonly kind: 'unicast'; readonly vtep: string } | { readonly kind: 'flood'; readonly vteps: readonly string[] };

interface Learned {
  vtep: string;
  seen: number;
}

interface VniState {
  readonly peers: readonly string[];
  readonly peerSet: ReadonlySet<string>;
  readonly statics: Map<number, { readonly vtep: string; readonly origin: MacOrigin }>;
  readonly learned: Map<number, Learned>;
}

/** A MAC's 48 bits as a number (exact: below 2^53). */
export function macKey(buf: Uint8Array, o = 0): number {
  return (buf[o]! * 2 ** 40) + (buf[o + 1]! * 2 ** 32) + ((buf[o + 2]! << 24) >>> 0) + (buf[o + 3]! << 16) + (buf[o + 4]! << 8) + buf[o + 5]!;
}

function keyToMac(key: number): string {
  const b = new Uint8Array(6);
  let k = key;
  for (let i = 5; i >= 0; i--) {
    b[i] = k % 256;
    k = Math.floor(k / 256);
  }
  return formatMac(b);
}

export class ForwardingTable {
  private vniStates = new Map<number, VniState>();
  private readonly agingMs: number;
  private readonly now: () => number;

  constructor(opts: { agingMs: number; now?: () => number }) {
    this.agingMs = opts.agingMs;
    this.now = opts.now ?? Date.now;
  }

  /** Replaces peers and static entries; learned entries survive for VNIs that remain, from VTEPs still peers. */
  load(table: TableSnapshot): void {
    const next = new Map<number, VniState>();
    for (const v of table.vnis) {
      const old = this.vniStates.get(v.vni);
      const peerSet = new Set(v.peers);
      const learned = new Map<number, Learned>();
      for (const [k, e] of old?.learned ?? []) if (peerSet.has(e.vtep)) learned.set(k, e);
      const statics = new Map<number, { vtep: string; origin: MacOrigin }>();
      for (const m of v.macs) statics.set(macKey(parseMac(m.mac)), { vtep: m.vtep, origin: m.origin ?? 'static' });
      next.set(v.vni, { peers: [...v.peers], peerSet, statics, learned });
    }
    this.vniStates = next;
  }

  lookup(vni: number, dstMac: Uint8Array): Route {
    const s = this.vniStates.get(vni);
    if (s === undefined) return { kind: 'flood', vteps: [] };
    if (!isMulticastMac(dstMac)) {
      const key = macKey(dstMac);
      const known = s.statics.get(key);
      if (known !== undefined) return { kind: 'unicast', vtep: known.vtep };
      const l = s.learned.get(key);
      if (l !== undefined && this.now() - l.seen < this.agingMs) return { kind: 'unicast', vtep: l.vtep };
    }
    return { kind: 'flood', vteps: s.peers };
  }

  /** Records srcMac behind vtep. True when the entry is new or moved. Multicast sources and static MACs are refused. */
  learn(vni: number, srcMac: Uint8Array, vtep: string): boolean {
    const s = this.vniStates.get(vni);
    if (s === undefined || isMulticastMac(srcMac)) return false;
    const key = macKey(srcMac);
    if (s.statics.has(key)) return false;
    const e = s.learned.get(key);
    const now = this.now();
    if (e !== undefined && e.vtep === vtep && now - e.seen < this.agingMs) {
      e.seen = now;
      return false;
    }
    s.learned.set(key, { vtep, seen: now });
    return true;
  }

  /** Drops learned entries older than agingMs. */
  expire(): number {
    const now = this.now();
    let n = 0;
    for (const s of this.vniStates.values()) {
      for (const [k, e] of s.learned) {
        if (now - e.seen >= this.agingMs) {
          s.learned.delete(k);
          n++;
        }
      }
    }
    return n;
  }

  isPeer(vni: number, addr: string): boolean {
    return this.vniStates.get(vni)?.peerSet.has(addr) ?? false;
  }

  vnis(): number[] {
    return [...this.vniStates.keys()];
  }

  entries(): FdbEntry[] {
    const now = this.now();
    const rows: FdbEntry[] = [];
    for (const [vni, s] of this.vniStates) {
      for (const [k, e] of s.statics) rows.push({ vni, mac: keyToMac(k), vtep: e.vtep, origin: e.origin, ageMs: 0 });
      for (const [k, e] of s.learned) {
        if (now - e.seen < this.agingMs) rows.push({ vni, mac: keyToMac(k), vtep: e.vtep, origin: 'learned', ageMs: now - e.seen });
      }
    }
    return rows;
  }
}
