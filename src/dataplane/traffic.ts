/**
 * Per-peer and per-VNI traffic, and the sources refused as not being a VTEP of the VNI they sent (a peer that
 * sends from another address than the one it advertises, NAT, or a stray sender). The JS engine keeps it here;
 * the native engine keeps the same numbers in native/src/stats.cc, with the same limits.
 */

export interface FlowCounts {
  /** Datagrams from the peer / frames written to the VNI's TAP, and their inner bytes. */
  readonly rxFrames: number;
  readonly rxBytes: number;
  /** Datagrams to the peer / frames read from the VNI's TAP and forwarded, and their inner bytes. */
  readonly txFrames: number;
  readonly txBytes: number;
}

export interface PeerTraffic extends FlowCounts {
  readonly address: string;
  /** Milliseconds since a datagram from it was last accepted; -1: never. */
  readonly lastRxAgoMs: number;
}

export interface VniTraffic extends FlowCounts {
  readonly vni: number;
}

export interface RejectedSource {
  readonly address: string;
  readonly vni: number;
  readonly count: number;
  readonly agoMs: number;
}

export interface Traffic {
  readonly peers: readonly PeerTraffic[];
  readonly vnis: readonly VniTraffic[];
  /** The most recent refused sources (at most MAX_REJECTED). */
  readonly rejected: readonly RejectedSource[];
}

/** Refused sources kept, and peers counted: as TrafficStats::kMaxRejected and kMaxPeers in native/src/stats.h (pinned by test/native/limits.test.ts). */
export const MAX_REJECTED = 16;
export const MAX_PEERS = 65536;

type Row = { rxFrames: number; rxBytes: number; txFrames: number; txBytes: number };
const zero = (): Row => ({ rxFrames: 0, rxBytes: 0, txFrames: 0, txBytes: 0 });

export class TrafficStats {
  private readonly peers = new Map<string, Row & { lastRx: number }>();
  private readonly vnis = new Map<number, Row>();
  private readonly refused = new Map<string, { address: string; vni: number; count: number; last: number }>();

  constructor(private readonly now: () => number = Date.now) {}

  /** A datagram accepted from `from` for `vni`, `bytes` inner bytes written to the TAP. */
  received(from: string, vni: number, bytes: number): void {
    const p = this.peer(from);
    if (p !== undefined) {
      p.rxFrames++;
      p.rxBytes += bytes;
      p.lastRx = this.now();
    }
    const v = this.vni(vni);
    v.rxFrames++;
    v.rxBytes += bytes;
  }

  /** A frame of `vni` read from the TAP and forwarded. */
  forwarded(vni: number, bytes: number): void {
    const v = this.vni(vni);
    v.txFrames++;
    v.txBytes += bytes;
  }

  /** One datagram (of `bytes` inner bytes) sent to `to`. */
  sent(to: string, bytes: number): void {
    const p = this.peer(to);
    if (p === undefined) return;
    p.txFrames++;
    p.txBytes += bytes;
  }

  refusedSource(from: string, vni: number): void {
    const key = `${vni}/${from}`;
    const r = this.refused.get(key);
    if (r !== undefined) {
      r.count++;
      r.last = this.now();
      return;
    }
    if (this.refused.size === MAX_REJECTED) {
      let oldest: string | undefined;
      let at = Infinity;
      for (const [k, x] of this.refused) if (x.last < at) [oldest, at] = [k, x.last];
      this.refused.delete(oldest!);
    }
    this.refused.set(key, { address: from, vni, count: 1, last: this.now() });
  }

  /** Forgets peers that left the table (their series end; a returning peer starts from zero). */
  retain(peers: ReadonlySet<string>): void {
    for (const a of this.peers.keys()) if (!peers.has(a)) this.peers.delete(a);
  }

  snapshot(): Traffic {
    const now = this.now();
    return {
      peers: [...this.peers].map(([address, { lastRx, ...c }]) => ({ address, ...c, lastRxAgoMs: lastRx < 0 ? -1 : now - lastRx })),
      vnis: [...this.vnis].map(([vni, c]) => ({ vni, ...c })),
      rejected: [...this.refused.values()].map((r) => ({ address: r.address, vni: r.vni, count: r.count, agoMs: now - r.last })),
    };
  }

  private peer(address: string): (Row & { lastRx: number }) | undefined {
    let p = this.peers.get(address);
    if (p === undefined && this.peers.size < MAX_PEERS) this.peers.set(address, (p = { ...zero(), lastRx: -1 }));
    return p;
  }

  private vni(vni: number): Row {
    let v = this.vnis.get(vni);
    if (v === undefined) this.vnis.set(vni, (v = zero()));
    return v;
  }
}
