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
  readonly vtep: string;
  seen: number;
}

interface VniState {
  readonly peers: readonly string[];
  readonly peerSet: ReadonlySet<string>;
  readonly statics: Map<number, { readonly vtep: string; readonly origin: MacOrigin }>;
  readonly learned: Map<number, Learned>;
  /** Learned entries per VTEP (departed VTEPs' too, until the sweep erases them): what the per-peer bound counts. */
  readonly perVtep: Map<string, number>;
  /** Where `expire` resumes: a live Map iterator survives deletions and sees insertions. */
  cursor: Iterator<[number, Learned]>;
}

/** Largest learnMax / learnMaxPerPeer (kMaxLearned in native/src/learn.h; pinned by test/native/limits.test.ts). */
export const MAX_LEARNED = 2 ** 20;
/** Learned entries each `expire` call examines per VNI (LearnTable::kExpireBuckets is the native engine's slice). */
export const EXPIRE_SLICE = 8192;

/** Default bounds (like a switch port's MAC limit); the config's defaults (src/config/schema.ts) pinned to these by test/fdb/fdb.test.ts. */
export const DEFAULT_LEARN_MAX_PER_PEER = 4096;
export const DEFAULT_LEARN_MAX = 65536;

/** What `learn` did: nothing new (refreshed, or not learnable), a new or moved entry, or refused over a bound. */
export type LearnVerdict = 'known' | 'learned' | 'full';

export interface ForwardingTableOptions {
  readonly agingMs: number;
  /** Learned MACs per (VNI, VTEP), and in all (config learnMaxPerPeer, learnMax). */
  readonly maxPerPeer?: number;
  readonly maxTotal?: number;
  readonly now?: () => number;
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

/**
 * Twin of the native LearnTable (native/src/learn.h): the same bounds, verdicts and sweep, pinned together by
 * test/native/learn.test.ts. Learned entries are bounded per (VNI, VTEP) and in all; a departed VTEP's entries stop
 * answering at once (`load`) and are erased, like aged ones, by `expire`'s bounded sweep: no call walks the table.
 */
export class ForwardingTable {
  private vniStates = new Map<number, VniState>();
  private readonly agingMs: number;
  private readonly maxPerPeer: number;
  private readonly maxTotal: number;
  private readonly now: () => number;
  private total = 0;

  constructor(opts: ForwardingTableOptions) {
    this.agingMs = opts.agingMs;
    this.maxPerPeer = opts.maxPerPeer ?? DEFAULT_LEARN_MAX_PER_PEER;
    this.maxTotal = opts.maxTotal ?? DEFAULT_LEARN_MAX;
    this.now = opts.now ?? Date.now;
  }

  /**
   * Replaces peers and static entries. Learned entries of a VNI that remains are kept (not copied): those of VTEPs no
   * longer peers stop answering now and are erased by the sweep; a VNI that goes takes its entries along.
   */
  load(table: TableSnapshot): void {
    const next = new Map<number, VniState>();
    for (const v of table.vnis) {
      const old = this.vniStates.get(v.vni);
      const statics = new Map<number, { vtep: string; origin: MacOrigin }>();
      for (const m of v.macs) statics.set(macKey(parseMac(m.mac)), { vtep: m.vtep, origin: m.origin ?? 'static' });
      const learned = old?.learned ?? new Map<number, Learned>();
      next.set(v.vni, {
        peers: [...v.peers],
        peerSet: new Set(v.peers),
        statics,
        learned,
        perVtep: old?.perVtep ?? new Map<string, number>(),
        cursor: old?.cursor ?? learned.entries(),
      });
    }
    for (const [vni, s] of this.vniStates) if (!next.has(vni)) this.total -= s.learned.size;
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
      if (l !== undefined && this.live(s, l, this.now())) return { kind: 'unicast', vtep: l.vtep };
    }
    return { kind: 'flood', vteps: s.peers };
  }

  /**
   * Records srcMac behind vtep. Multicast sources, static MACs and unknown VNIs are never learned ('known'). A new or
   * moved MAC over a bound is refused ('full': the engine drops the frame as rx_learn_full).
   */
  learn(vni: number, srcMac: Uint8Array, vtep: string): LearnVerdict {
    const s = this.vniStates.get(vni);
    if (s === undefined || isMulticastMac(srcMac)) return 'known';
    const key = macKey(srcMac);
    if (s.statics.has(key)) return 'known';
    const e = s.learned.get(key);
    const now = this.now();
    if (e !== undefined && e.vtep === vtep && this.live(s, e, now)) {
      e.seen = now;
      return 'known';
    }
    if (e !== undefined) this.forget(s, key, e); // aged, moved or departed: its slot is free again
    const count = s.perVtep.get(vtep) ?? 0;
    if (this.total >= this.maxTotal || count >= this.maxPerPeer) return 'full';
    s.learned.set(key, { vtep, seen: now });
    s.perVtep.set(vtep, count + 1);
    this.total++;
    return 'learned';
  }

  /** Where the control plane places `mac` in `vni` (a static or etcd entry), or undefined. */
  homeOf(vni: number, mac: Uint8Array): string | undefined {
    return this.vniStates.get(vni)?.statics.get(macKey(mac))?.vtep;
  }

  /**
   * Erases aged entries and those of departed VTEPs among the next `slice` entries of each VNI, resuming where the last
   * call stopped (a full sweep takes size / slice calls). Returns how many it erased.
   */
  expire(slice = EXPIRE_SLICE): number {
    const now = this.now();
    let n = 0;
    for (const s of this.vniStates.values()) {
      for (let i = 0; i < slice; i++) {
        const r = s.cursor.next();
        if (r.done === true) {
          s.cursor = s.learned.entries();
          break;
        }
        const [k, e] = r.value;
        if (!this.live(s, e, now)) {
          this.forget(s, k, e);
          n++;
        }
      }
    }
    return n;
  }

  /** Learned entries held (fresh, or waiting for the sweep): what the bounds count. O(1), for metrics. */
  learnedCount(): number {
    return this.total;
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
        if (this.live(s, e, now)) rows.push({ vni, mac: keyToMac(k), vtep: e.vtep, origin: 'learned', ageMs: now - e.seen });
      }
    }
    return rows;
  }

  /** Fresh, and its VTEP still a peer of the VNI. */
  private live(s: VniState, e: Learned, now: number): boolean {
    return now - e.seen < this.agingMs && s.peerSet.has(e.vtep);
  }

  private forget(s: VniState, key: number, e: Learned): void {
    s.learned.delete(key);
    const c = (s.perVtep.get(e.vtep) ?? 1) - 1;
    if (c === 0) s.perVtep.delete(e.vtep);
    else s.perVtep.set(e.vtep, c);
    this.total--;
  }
}
