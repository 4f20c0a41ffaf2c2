/**
 * Structured fuzz input for a running router (issue 14): mutated VXLAN datagrams for its UDP/4789 side and mutated
 * Ethernet frames for its bridge side. Pure and deterministic: the same seed gives the same bytes, so a finding is
 * replayed from its seed and index. No I/O here; fuzz-run.ts sends what this makes.
 *
 * Every datagram carries a label, the check it was built to fail (or `ok`), so that a run can say which drop counter
 * each one must land in: the label plus whether the sender is a peer gives the expected counter (`expectedCounter`).
 * Inner frames cover every kind the engines parse (ARP, IPv4 with options, IPv6 with extension headers, ND with
 * options, VLAN and QinQ tags, runs of TCP segments of one flow for receive coalescing), with length fields at their
 * extremes, truncations at every length, runts and jumbos.
 */

/** Deterministic PRNG (xorshift128+ folded to 32 bits, seeded by splitmix32): fast, and replayable from its seed. */
export class Rng {
  private readonly s: number[] = [0, 0, 0, 0];

  constructor(seed: number) {
    let z = seed >>> 0;
    for (let i = 0; i < 4; i++) {
      z = (z + 0x9e3779b9) >>> 0;
      let x = z;
      x = Math.imul(x ^ (x >>> 16), 0x85ebca6b);
      x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35);
      this.s[i] = (x ^ (x >>> 16)) >>> 0;
    }
    if ((this.s[0]! | this.s[1]! | this.s[2]! | this.s[3]!) === 0) this.s[0] = 1;
  }

  /** A uniform 32-bit unsigned integer (xoshiro128**). */
  u32(): number {
    const s = this.s;
    const result = Math.imul(rotl(Math.imul(s[1]!, 5), 7), 9) >>> 0;
    const t = s[1]! << 9;
    s[2]! ^= s[0]!;
    s[3]! ^= s[1]!;
    s[1]! ^= s[2]!;
    s[0]! ^= s[3]!;
    s[2]! ^= t;
    s[3] = rotl(s[3]!, 11);
    return result;
  }

  /** An integer in [0, n). */
  int(n: number): number {
    return n <= 1 ? 0 : Math.floor((this.u32() / 4294967296) * n);
  }

  /** An integer in [lo, hi]. */
  range(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }

  chance(p: number): boolean {
    return this.u32() / 4294967296 < p;
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }

  bytes(n: number): Uint8Array {
    const b = new Uint8Array(n);
    for (let i = 0; i < n; i++) b[i] = this.u32() & 0xff;
    return b;
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

/** Length values a parser must survive in any 8- or 16-bit length field. */
const EXTREMES16 = [0, 1, 2, 7, 8, 13, 14, 20, 40, 0x7f, 0x80, 0xff, 0x100, 1499, 1500, 1501, 0x7fff, 0x8000, 0xfffe, 0xffff];
const EXTREMES8 = [0, 1, 2, 3, 4, 5, 6, 7, 8, 0x0f, 0x10, 0x7f, 0x80, 0xfe, 0xff];

const ETH_IPV4 = 0x0800;
const ETH_ARP = 0x0806;
const ETH_IPV6 = 0x86dd;
const ETH_VLAN = 0x8100;
const ETH_QINQ = 0x88a8;

/** The addresses the generators aim at: mostly the lab's real ones, so frames get past the cheap checks. */
export interface Targets {
  /** MAC and IPv4 address the frames are for (c1 for datagrams, c2 for bridge frames). */
  readonly dstMac: Uint8Array;
  readonly dstIp: Uint8Array;
  /** Source MACs to use: a bounded pool, so a run tests parsing rather than the (separately tested) table bounds. */
  readonly srcMacs: readonly Uint8Array[];
  readonly srcIp: Uint8Array;
}

/** `count` locally administered unicast MACs 02:fz:…, deterministic from the seed. */
export function macPool(seed: number, count: number): Uint8Array[] {
  const rng = new Rng(seed ^ 0x5a5a5a5a);
  return Array.from({ length: count }, () => {
    const m = rng.bytes(6);
    m[0] = 0x02;
    m[1] = 0xf2;
    return m;
  });
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

function be16(v: number): Uint8Array {
  return Uint8Array.of((v >>> 8) & 0xff, v & 0xff);
}

function be32(v: number): Uint8Array {
  return Uint8Array.of((v >>> 24) & 0xff, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff);
}

/** Internet checksum over `b` (plus `init`), so that well-formed frames are really well-formed. */
function checksum(b: Uint8Array, init = 0): number {
  let s = init;
  for (let i = 0; i + 1 < b.length; i += 2) s += (b[i]! << 8) | b[i + 1]!;
  if (b.length & 1) s += b[b.length - 1]! << 8;
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return ~s & 0xffff;
}

function dstMacFor(rng: Rng, t: Targets): Uint8Array {
  const r = rng.int(10);
  if (r < 6) return t.dstMac;
  if (r === 6) return Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0xff, 0xff);
  if (r === 7) return Uint8Array.of(0x33, 0x33, 0xff, rng.int(256), rng.int(256), rng.int(256));
  if (r === 8) return Uint8Array.of(0x01, 0x00, 0x5e, rng.int(128), rng.int(256), rng.int(256));
  return rng.bytes(6);
}

/** Ethernet header, sometimes with one or two VLAN tags (with random or extreme TCI). */
function ethHeader(rng: Rng, t: Targets, etherType: number): Uint8Array {
  const tags: Uint8Array[] = [];
  const n = rng.chance(0.8) ? 0 : rng.range(1, 3);
  for (let i = 0; i < n; i++) tags.push(concat(be16(i === 0 && n > 1 ? ETH_QINQ : ETH_VLAN), be16(rng.chance(0.5) ? rng.int(0x10000) : rng.pick([0, 0xfff, 0xffff]))));
  return concat(dstMacFor(rng, t), rng.pick(t.srcMacs), ...tags, be16(etherType));
}

function arp(rng: Rng, t: Targets): Uint8Array {
  const hlen = rng.chance(0.8) ? 6 : rng.pick(EXTREMES8);
  const plen = rng.chance(0.8) ? 4 : rng.pick(EXTREMES8);
  const op = rng.chance(0.8) ? rng.range(1, 2) : rng.pick(EXTREMES16);
  const sha = rng.pick(t.srcMacs);
  const body = concat(be16(rng.chance(0.9) ? 1 : rng.int(0x10000)), be16(rng.chance(0.9) ? ETH_IPV4 : rng.int(0x10000)), Uint8Array.of(hlen, plen), be16(op), sha, t.srcIp, new Uint8Array(6), t.dstIp);
  return concat(ethHeader(rng, t, ETH_ARP), body);
}

/** IPv4 header with 0-40 bytes of options (NOP, EOL, record route, timestamps, garbage) and a chosen total length. */
function ipv4Header(rng: Rng, t: Targets, protocol: number, payloadLen: number): Uint8Array {
  let opts: Uint8Array = new Uint8Array(0);
  if (rng.chance(0.3)) {
    const kind = rng.int(4);
    if (kind === 0) opts = new Uint8Array(rng.range(1, 10) * 4).fill(1); // NOPs
    else if (kind === 1) opts = concat(Uint8Array.of(7, rng.pick(EXTREMES8), 4), new Uint8Array(37)); // record route, odd lengths
    else if (kind === 2) opts = concat(Uint8Array.of(68, rng.pick(EXTREMES8), 5, 0), new Uint8Array(36)); // timestamp
    else opts = rng.bytes(rng.range(1, 10) * 4);
  }
  const ihl = rng.chance(0.9) ? 5 + opts.length / 4 : rng.int(16);
  const total = rng.chance(0.85) ? 20 + opts.length + payloadLen : rng.pick(EXTREMES16);
  const flagsFrag = rng.chance(0.85) ? 0x4000 : rng.int(0x10000);
  const h = concat(Uint8Array.of((4 << 4) | (ihl & 0xf), rng.int(256)), be16(total), be16(rng.int(0x10000)), be16(flagsFrag), Uint8Array.of(rng.range(1, 255), protocol, 0, 0), t.srcIp, t.dstIp, opts);
  h.set(be16(checksum(h.subarray(0, Math.min(h.length, 60)))), 10);
  if (rng.chance(0.2)) h[0] = (rng.int(16) << 4) | (h[0]! & 0xf); // version other than 4
  return h;
}

function l4(rng: Rng, protocol: number): Uint8Array {
  const payload = rng.bytes(rng.chance(0.7) ? rng.int(64) : rng.int(1300));
  if (protocol === 6) {
    const doff = rng.chance(0.9) ? 5 + (rng.chance(0.3) ? rng.int(11) : 0) : rng.int(16);
    const opts = new Uint8Array(Math.max(0, (doff - 5) * 4)).fill(1);
    return concat(be16(rng.int(0x10000)), be16(rng.int(0x10000)), be32(rng.u32()), be32(rng.u32()), Uint8Array.of(doff << 4, rng.int(256)), be16(rng.int(0x10000)), be16(0), be16(0), opts, payload);
  }
  if (protocol === 17) return concat(be16(rng.int(0x10000)), be16(rng.int(0x10000)), be16(rng.chance(0.8) ? 8 + payload.length : rng.pick(EXTREMES16)), be16(0), payload);
  return concat(Uint8Array.of(rng.int(256), rng.int(256), 0, 0), payload); // ICMP and others
}

function ipv4(rng: Rng, t: Targets): Uint8Array {
  const protocol = rng.pick([1, 6, 17, 47, 50, rng.int(256)]);
  const body = l4(rng, protocol);
  return concat(ethHeader(rng, t, ETH_IPV4), ipv4Header(rng, t, protocol, body.length), body);
}

const V6_SRC = Uint8Array.of(0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xfe, 0, 0, 1);

/** IPv6 with a chain of extension headers (hop-by-hop, routing, fragment, destination options) with extreme lengths. */
function ipv6(rng: Rng, t: Targets, last: number, body: Uint8Array, dst?: Uint8Array): Uint8Array {
  const chain: number[] = [];
  const n = rng.chance(0.6) ? 0 : rng.range(1, 6);
  for (let i = 0; i < n; i++) chain.push(rng.pick([0, 43, 44, 60, 51, 135]));
  let next = last;
  let ext: Uint8Array = new Uint8Array(0);
  for (let i = chain.length - 1; i >= 0; i--) {
    const hdrExtLen = rng.chance(0.8) ? rng.int(3) : rng.pick(EXTREMES8);
    const len = chain[i] === 44 ? 8 : (hdrExtLen + 1) * 8;
    const h = concat(Uint8Array.of(next, chain[i] === 44 ? 0 : hdrExtLen), rng.bytes(Math.min(len, 64) - 2));
    ext = concat(h, ext);
    next = chain[i]!;
  }
  const payloadLen = rng.chance(0.85) ? ext.length + body.length : rng.pick(EXTREMES16);
  const dstAddr = dst ?? (rng.chance(0.5) ? Uint8Array.of(0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, 0, 0, 1) : rng.bytes(16));
  const hdr = concat(Uint8Array.of(0x60, 0, 0, 0), be16(payloadLen), Uint8Array.of(next, 255), V6_SRC, dstAddr);
  return concat(ethHeader(rng, t, ETH_IPV6), hdr, ext, body);
}

/** ICMPv6 neighbour discovery (RS, RA, NS, NA, redirect) with options, including the length-0 option a loop can hang on. */
function nd(rng: Rng, t: Targets): Uint8Array {
  const type = rng.pick([133, 134, 135, 136, 137]);
  const target = rng.bytes(16);
  const fixed = type === 133 ? new Uint8Array(4) : type === 134 ? new Uint8Array(12) : type === 137 ? concat(new Uint8Array(4), target, rng.bytes(16)) : concat(new Uint8Array(4), target);
  const opts: Uint8Array[] = [];
  for (let i = rng.int(5); i > 0; i--) {
    const optType = rng.pick([1, 2, 3, 5, 14, rng.int(256)]);
    const optLen = rng.chance(0.7) ? 1 : rng.pick(EXTREMES8);
    opts.push(concat(Uint8Array.of(optType, optLen), optType <= 2 ? rng.pick(t.srcMacs) : rng.bytes(Math.min(optLen * 8, 40) > 2 ? Math.min(optLen * 8, 40) - 2 : 6)));
  }
  const body = concat(Uint8Array.of(type, rng.chance(0.9) ? 0 : rng.int(256), 0, 0), fixed, ...opts);
  return ipv6(rng, t, 58, body, rng.chance(0.5) ? Uint8Array.of(0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, target[13]!, target[14]!, target[15]!) : undefined);
}

/** Well-formed TCP/IPv4 segments of one flow with consecutive sequence numbers: what receive coalescing merges. */
export function tcpRun(rng: Rng, t: Targets, segments: number): Uint8Array[] {
  const src = t.srcMacs[0]!;
  const sport = rng.range(1024, 65535);
  let seq = rng.u32();
  const id0 = rng.int(0x10000);
  const size = rng.pick([1, 100, 536, 1000, 1348]);
  const run: Uint8Array[] = [];
  for (let i = 0; i < segments; i++) {
    const payload = rng.bytes(size);
    const tcp = concat(be16(sport), be16(5201), be32(seq), be32(1), Uint8Array.of(5 << 4, 0x10), be16(502), be16(0), be16(0), payload);
    const pseudo = concat(t.srcIp, t.dstIp, Uint8Array.of(0, 6), be16(tcp.length));
    tcp.set(be16(checksum(tcp, 0xffff - checksum(pseudo))), 16);
    const ip = concat(Uint8Array.of(0x45, 0), be16(20 + tcp.length), be16((id0 + i) & 0xffff), be16(0x4000), Uint8Array.of(64, 6, 0, 0), t.srcIp, t.dstIp);
    ip.set(be16(checksum(ip)), 10);
    run.push(concat(t.dstMac, src, be16(ETH_IPV4), ip, tcp));
    seq = (seq + size) >>> 0;
  }
  return run;
}

/** Damages a frame: flips bytes, sets a 16-bit field to an extreme, or truncates it at a random length. */
export function mutate(rng: Rng, frame: Uint8Array): Uint8Array {
  const f = frame.slice();
  const k = rng.int(4);
  if (k === 0 || f.length < 16) return f;
  if (k === 1) {
    for (let i = rng.range(1, 4); i > 0; i--) f[rng.int(f.length)] = rng.int(256);
    return f;
  }
  if (k === 2) {
    const at = rng.range(12, f.length - 2);
    f.set(be16(rng.pick(EXTREMES16)), at);
    return f;
  }
  return f.subarray(0, rng.int(f.length));
}

export type FrameKind = 'arp' | 'ipv4' | 'ipv6' | 'nd' | 'tcp-run' | 'random' | 'runt' | 'jumbo';
export const FRAME_KINDS: readonly FrameKind[] = ['arp', 'ipv4', 'ipv6', 'nd', 'tcp-run', 'random', 'runt', 'jumbo'];

/**
 * One inner frame (or a run of TCP segments, for `tcp-run`) of `kind`, `maxLen` bounding the jumbos. Most are
 * mutated once more (see `mutate`).
 */
export function frames(rng: Rng, t: Targets, kind: FrameKind, maxLen: number): Uint8Array[] {
  switch (kind) {
    case 'arp':
      return [mutate(rng, arp(rng, t))];
    case 'ipv4':
      return [mutate(rng, ipv4(rng, t))];
    case 'ipv6': {
      const proto = rng.pick([6, 17, 58, 59]);
      return [mutate(rng, ipv6(rng, t, proto, l4(rng, proto)))];
    }
    case 'nd':
      return [mutate(rng, nd(rng, t))];
    case 'tcp-run': {
      const run = tcpRun(rng, t, rng.range(2, 40));
      // A damaged segment inside the run: the merger must stop at it, not carry it into the super-frame.
      if (rng.chance(0.5)) {
        const i = rng.int(run.length);
        run[i] = mutate(rng, run[i]!);
      }
      return run;
    }
    case 'random':
      return [rng.bytes(rng.range(14, 1400))];
    case 'runt':
      return [rng.bytes(rng.int(14))];
    case 'jumbo':
      return [concat(ethHeader(rng, t, rng.pick([ETH_IPV4, ETH_IPV6, ETH_ARP, 0x88cc])), rng.bytes(rng.range(1500, Math.max(1500, maxLen - 18)))).subarray(0, maxLen)];
  }
}

/** What a datagram was built to be: the check it fails, or `ok` (well-formed, for a known VNI). */
export type DatagramLabel = 'short' | 'bad-flags' | 'wrong-vni' | 'truncated-inner' | 'oversize' | 'ok';

export interface Datagram {
  readonly label: DatagramLabel;
  readonly bytes: Uint8Array;
}

export interface DatagramOptions {
  /** The VNI the router serves. */
  readonly vni: number;
  /** Inner frames above this many bytes are built as `oversize` (the TAP MTU + 18 bounds what the router accepts). */
  readonly maxInner: number;
  /** Largest UDP payload to send (65 507 on IPv4). */
  readonly maxDatagram: number;
}

function vxlanHeader(flags: number, vni: number, rng: Rng): Uint8Array {
  // Reserved bytes are random now and then: RFC 7348 says ignore them, so such datagrams stay `ok`.
  const r = rng.chance(0.9) ? [0, 0, 0, 0] : [rng.int(256), rng.int(256), rng.int(256), rng.int(256)];
  return Uint8Array.of(flags, r[0]!, r[1]!, r[2]!, (vni >>> 16) & 0xff, (vni >>> 8) & 0xff, vni & 0xff, r[3]!);
}

/**
 * `count` labelled datagrams from `seed`. Mix: about 40 % well-formed around every inner kind (runs of TCP for
 * coalescing), the rest split between truncations at every length below the header, bad flags (every flags byte
 * without the I bit), wrong VNIs, truncated inner frames and oversize/jumbo ones.
 */
export function* datagrams(seed: number, count: number, t: Targets, o: DatagramOptions): Generator<Datagram> {
  const rng = new Rng(seed);
  let n = 0;
  const okFlags = (): number => (rng.chance(0.8) ? 0x08 : 0x08 | rng.int(256));
  while (n < count) {
    const r = rng.int(100);
    if (r < 8) {
      yield { label: 'short', bytes: rng.bytes(n % 8) }; // every length 0-7 in turn
      n++;
    } else if (r < 18) {
      const inner = frames(rng, t, rng.pick(FRAME_KINDS.filter((k) => k !== 'tcp-run' && k !== 'jumbo')), o.maxInner)[0]!;
      yield { label: 'bad-flags', bytes: concat(vxlanHeader(rng.int(256) & ~0x08, o.vni, rng), inner) };
      n++;
    } else if (r < 28) {
      const vni = rng.chance(0.5) ? rng.pick([0, 1, o.vni - 1, o.vni + 1, 0xffffff]) : rng.int(0x1000000);
      const inner = frames(rng, t, 'ipv4', o.maxInner)[0]!;
      yield { label: vni === o.vni ? (inner.length < 14 ? 'truncated-inner' : 'ok') : 'wrong-vni', bytes: concat(vxlanHeader(okFlags(), vni, rng), inner) };
      n++;
    } else if (r < 38) {
      yield { label: 'truncated-inner', bytes: concat(vxlanHeader(okFlags(), o.vni, rng), rng.bytes(n % 14)) }; // every inner length 0-13
      n++;
    } else if (r < 45) {
      const len = rng.chance(0.9) ? rng.range(o.maxInner + 1, o.maxInner + 64) : rng.range(o.maxInner + 1, o.maxDatagram - 8);
      const inner = concat(dstMacFor(rng, t), rng.pick(t.srcMacs), be16(rng.pick([ETH_IPV4, ETH_IPV6, ETH_VLAN])), rng.bytes(len - 14));
      yield { label: 'oversize', bytes: concat(vxlanHeader(okFlags(), o.vni, rng), inner) };
      n++;
    } else {
      const kind = rng.pick(FRAME_KINDS.filter((k) => k !== 'jumbo'));
      for (const inner of frames(rng, t, kind, o.maxInner)) {
        if (n >= count) break;
        const clipped = inner.subarray(0, o.maxInner);
        yield { label: clipped.length < 14 ? 'truncated-inner' : 'ok', bytes: concat(vxlanHeader(okFlags(), o.vni, rng), clipped) };
        n++;
      }
    }
  }
}

/** Frames for the bridge side: every inner kind, mutated, runts and jumbos up to `maxLen`. */
export function* bridgeFrames(seed: number, count: number, t: Targets, maxLen: number): Generator<Uint8Array> {
  const rng = new Rng(seed);
  let n = 0;
  while (n < count) {
    for (const f of frames(rng, t, rng.pick(FRAME_KINDS), maxLen)) {
      if (n >= count) return;
      yield f.subarray(0, maxLen);
      n++;
    }
  }
}

/** The counter a datagram must land in, by its label and whether it came from a peer (the engines' check order). */
export function expectedCounter(label: DatagramLabel, fromPeer: boolean): string {
  if (label === 'short') return 'rx_short';
  if (label === 'bad-flags') return 'rx_bad_flags';
  if (label === 'wrong-vni') return 'rx_unknown_vni';
  if (!fromPeer) return 'rx_unknown_source';
  if (label === 'truncated-inner') return 'rx_truncated_inner';
  if (label === 'oversize') return 'rx_oversize';
  return 'rx_datagrams';
}

/** The stream fuzz-send.cc reads: each item as a 32-bit little-endian length and its bytes. */
export function encodeStream(items: Iterable<Uint8Array>): Buffer {
  const chunks: Buffer[] = [];
  for (const it of items) {
    const len = Buffer.alloc(4);
    len.writeUInt32LE(it.length);
    chunks.push(len, Buffer.from(it.buffer, it.byteOffset, it.length));
  }
  return Buffer.concat(chunks);
}
