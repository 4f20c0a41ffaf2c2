/**
 * IPv6 Neighbor Discovery (RFC 4861) as the data path uses it (twin of native/src/nd.cc): the IPv6 address a frame's
 * sender speaks for, Neighbor Solicitations the router may answer itself (suppression) and their answers, and the
 * unsolicited Neighbor Advertisement that tells a bridge an address moved to another MAC. Untagged Ethernet; ICMPv6
 * directly after the IPv6 header (no extension headers).
 */
import { formatIp, parseIp, parseMac, putU16, u16 } from './bytes.js';
import { internetChecksum, pseudoHeaderSum } from './checksum.js';
import { encodeEthernet, ETH_HEADER_LEN, ETHERTYPE_IPV6 } from './ethernet.js';
import { encodeIpv6, IPV6_HEADER_LEN } from './ip.js';

export const PROTO_ICMPV6 = 58;
export const ND_SOLICITATION = 135;
export const ND_ADVERTISEMENT = 136;
/** Neighbor Advertisement flags (the first byte after the checksum). */
export const NA_ROUTER = 0x80;
export const NA_SOLICITED = 0x40;
export const NA_OVERRIDE = 0x20;
/** ND options: Source / Target Link-Layer Address. */
export const ND_OPT_SOURCE_LLA = 1;
export const ND_OPT_TARGET_LLA = 2;
/** Ethernet + IPv6 + an ND message with a link-layer address option. */
export const ND_FRAME_LEN = ETH_HEADER_LEN + IPV6_HEADER_LEN + 32;

const IP = ETH_HEADER_LEN;
const ICMP = IP + IPV6_HEADER_LEN;
const ND_LEN = 24; // ICMPv6 header, flags/reserved, target
const ALL_NODES = parseIp('ff02::1');
const ALL_NODES_MAC = parseMac('33:33:00:00:00:01');

const isZero = (b: Uint8Array): boolean => b.every((x) => x === 0);
const equal = (a: Uint8Array, b: Uint8Array): boolean => a.length === b.length && a.every((x, i) => x === b[i]);

/** An untagged IPv6 packet whose payload lies within the frame. */
function isIpv6(f: Uint8Array): boolean {
  return f.length >= ICMP && u16(f, 12) === ETHERTYPE_IPV6 && f[IP]! >> 4 === 6 && ICMP + u16(f, IP + 4) <= f.length;
}

/** An ND message of `type` right after the IPv6 header: hop limit 255, code 0, at least 24 bytes (RFC 4861 §7.1). */
function isNd(f: Uint8Array, type: number): boolean {
  return isIpv6(f) && f[IP + 6] === PROTO_ICMPV6 && f[IP + 7] === 255 && u16(f, IP + 4) >= ND_LEN && f[ICMP] === type && f[ICMP + 1] === 0;
}

/**
 * The IPv6 address a frame's sender uses: a Neighbor Advertisement's target, else an IPv6 packet's source; undefined
 * otherwise, and for :: (DAD probes), ::1 and multicast. Link-local addresses count.
 */
export function senderIpv6(f: Uint8Array): string | undefined {
  if (!isIpv6(f)) return undefined;
  const at = isNd(f, ND_ADVERTISEMENT) ? ICMP + 8 : IP + 8;
  const ip = f.subarray(at, at + 16);
  if (ip[0] === 0xff || isZero(ip) || (isZero(ip.subarray(0, 15)) && ip[15] === 1)) return undefined;
  return formatIp(ip);
}

/** The solicited-node multicast address of `ip` (ff02::1:ffXX:XXXX) and its MAC (33:33:ff:XX:XX:XX). */
export function solicitedNode(ip: Uint8Array): { ip: Uint8Array; mac: Uint8Array } {
  const a = parseIp('ff02::1:ff00:0');
  a.set(ip.subarray(13, 16), 13);
  return { ip: a, mac: Uint8Array.of(0x33, 0x33, 0xff, ip[13]!, ip[14]!, ip[15]!) };
}

/**
 * The address a Neighbor Solicitation asks about, if the owner would answer it: hop limit 255, code 0, sent to the
 * target's solicited-node address, options well formed, checksum right, and not a DAD probe (source ::). Undefined
 * for anything else.
 */
export function ndSolicitTarget(f: Uint8Array): string | undefined {
  if (!isNd(f, ND_SOLICITATION)) return undefined;
  const src = f.subarray(IP + 8, IP + 24);
  const dst = f.subarray(IP + 24, IP + 40);
  const target = f.subarray(ICMP + 8, ICMP + 24);
  if (isZero(src) || target[0] === 0xff) return undefined;
  if (!equal(dst, solicitedNode(target).ip)) return undefined;
  const plen = u16(f, IP + 4);
  for (let o = ND_LEN; o < plen; ) {
    const units = o + 2 <= plen ? f[ICMP + o + 1]! : 0;
    if (units === 0 || o + units * 8 > plen) return undefined;
    o += units * 8;
  }
  if (internetChecksum(f, ICMP, ICMP + plen, pseudoHeaderSum(src, dst, PROTO_ICMPV6, plen)) !== 0) return undefined;
  return formatIp(target);
}

/** An ND message (NS or NA) with a link-layer address option, framed for the bridge, checksum filled in. */
export function encodeNd(m: {
  readonly dstMac: Uint8Array;
  readonly srcMac: Uint8Array;
  readonly src: Uint8Array;
  readonly dst: Uint8Array;
  readonly type: typeof ND_SOLICITATION | typeof ND_ADVERTISEMENT;
  /** NA flags (NA_*); 0 for an NS. */
  readonly flags?: number;
  readonly target: Uint8Array;
  /** The option's address (SLLA in an NS, TLLA in an NA); left out when undefined (e.g. a DAD probe). */
  readonly lla?: Uint8Array;
  readonly hopLimit?: number;
}): Uint8Array {
  const body = new Uint8Array(m.lla === undefined ? ND_LEN : ND_LEN + 8);
  body[0] = m.type;
  body[4] = m.flags ?? 0;
  body.set(m.target, 8);
  if (m.lla !== undefined) {
    body[24] = m.type === ND_SOLICITATION ? ND_OPT_SOURCE_LLA : ND_OPT_TARGET_LLA;
    body[25] = 1;
    body.set(m.lla, 26);
  }
  putU16(body, 2, internetChecksum(body, 0, body.length, pseudoHeaderSum(m.src, m.dst, PROTO_ICMPV6, body.length)));
  const ip = encodeIpv6({ nextHeader: PROTO_ICMPV6, src: m.src, dst: m.dst, payloadLen: body.length, hopLimit: m.hopLimit ?? 255 });
  const payload = new Uint8Array(ip.length + body.length);
  payload.set(ip);
  payload.set(body, ip.length);
  return encodeEthernet(m.dstMac, m.srcMac, ETHERTYPE_IPV6, payload);
}

/** The Neighbor Solicitation a host sends to resolve `target` (to its solicited-node address). */
export function neighborSolicitation(srcMac: string, src: string, target: string): Uint8Array {
  const t = parseIp(target);
  const group = solicitedNode(t);
  const mac = parseMac(srcMac);
  return encodeNd({ dstMac: group.mac, srcMac: mac, src: parseIp(src), dst: group.ip, type: ND_SOLICITATION, target: t, lla: mac });
}

/** The answer to `ns`: its target is at `mac` (Solicited + Override), from the target to the solicitor. */
export function ndAdvertReply(ns: Uint8Array, mac: string): Uint8Array {
  const m = parseMac(mac);
  const target = ns.subarray(ICMP + 8, ICMP + 24);
  return encodeNd({ dstMac: ns.subarray(6, 12), srcMac: m, src: target, dst: ns.subarray(IP + 8, IP + 24), type: ND_ADVERTISEMENT, flags: NA_SOLICITED | NA_OVERRIDE, target, lla: m });
}

/** "`ip` is at `mac`", to all nodes on the bridge (Override set, Solicited clear): neighbour caches update at once. */
export function unsolicitedNa(ip: string, mac: string): Uint8Array {
  const m = parseMac(mac);
  const a = parseIp(ip);
  return encodeNd({ dstMac: ALL_NODES_MAC, srcMac: m, src: a, dst: ALL_NODES, type: ND_ADVERTISEMENT, flags: NA_OVERRIDE, target: a, lla: m });
}
