/**
 * "Too big" answers (twin of native/src/icmp.cc): for a frame from the bridge that does not fit the path to its VTEP,
 * an ICMP Destination Unreachable / Fragmentation Needed (RFC 792, RFC 1191; IPv4 with DF) or an ICMPv6 Packet Too
 * Big (RFC 4443) carrying the MTU that fits, written back to the sender so that its path MTU discovery adapts.
 *
 * Source: the overlay has no router address of ours, so the answer comes from the offending packet's destination
 * address and MAC, as the kernel's VXLAN device answers on bridged set-ups (skb_tunnel_check_pmtu, Linux 5.9+).
 */
import { putU16, u16 } from './bytes.js';
import { internetChecksum, pseudoHeaderSum } from './checksum.js';
import { ETH_HEADER_LEN, ETHERTYPE_IPV4, ETHERTYPE_IPV6 } from './ethernet.js';

/** What an answer quotes of the offending packet: 576-byte IPv4 errors (RFC 1812), 1280-byte ICMPv6 errors (RFC 4443). */
export const TOO_BIG_QUOTE_V4 = 576 - 20 - 8;
export const TOO_BIG_QUOTE_V6 = 1280 - 40 - 8;
/** Answers per second and at once, per TAP (Linux's icmp_msgs_per_sec / icmp_msgs_burst defaults); kTooBigRate / kTooBigBurst. */
export const TOO_BIG_RATE = 1000;
export const TOO_BIG_BURST = 50;

const IP = ETH_HEADER_LEN;
const ICMP4_ERRORS = new Set([3, 4, 5, 11, 12]);
const isZero = (b: Uint8Array): boolean => b.every((x) => x === 0);

/**
 * The answer to `f` saying the path carries IP packets of `mtu` bytes, or undefined when `f` gets none: not untagged
 * unicast Ethernet carrying IPv4 with DF (first fragment) or IPv6; an ICMP / ICMPv6 error itself; a source that names
 * no host (0.0.0.0, 127/8, multicast, broadcast; ::, ::1, multicast) or a multicast destination; a header that does
 * not fit the frame.
 */
export function tooBigReply(f: Uint8Array, mtu: number): Uint8Array | undefined {
  if (f.length < IP || (f[0]! & 1) !== 0) return undefined;
  const type = u16(f, 12);
  if (type === ETHERTYPE_IPV4) return tooBig4(f, mtu);
  if (type === ETHERTYPE_IPV6) return tooBig6(f, mtu);
  return undefined;
}

function tooBig4(f: Uint8Array, mtu: number): Uint8Array | undefined {
  if (f.length < IP + 20) return undefined;
  const ihl = (f[IP]! & 0xf) * 4;
  const total = u16(f, IP + 2);
  if (f[IP]! >> 4 !== 4 || ihl < 20 || total < ihl || IP + ihl > f.length) return undefined;
  const frag = u16(f, IP + 6);
  if ((frag & 0x4000) === 0 || (frag & 0x1fff) !== 0) return undefined;
  const src = f.subarray(IP + 12, IP + 16);
  const dst = f.subarray(IP + 16, IP + 20);
  if (isZero(src) || src[0] === 127 || src[0]! >= 224 || dst[0]! >= 224) return undefined;
  if (f[IP + 9] === 1 && (IP + ihl >= f.length || ICMP4_ERRORS.has(f[IP + ihl]!))) return undefined;
  const quote = Math.min(total, f.length - IP, TOO_BIG_QUOTE_V4);
  const out = new Uint8Array(IP + 28 + quote);
  swapEthernet(f, ETHERTYPE_IPV4, out);
  const o = out.subarray(IP);
  o[0] = 0x45;
  putU16(o, 2, 28 + quote);
  o[8] = 64;
  o[9] = 1;
  o.set(dst, 12);
  o.set(src, 16);
  putU16(o, 10, internetChecksum(o, 0, 20));
  const icmp = o.subarray(20);
  icmp[0] = 3; // Destination Unreachable
  icmp[1] = 4; // Fragmentation Needed and DF set
  putU16(icmp, 6, Math.min(mtu, 0xffff));
  icmp.set(f.subarray(IP, IP + quote), 8);
  putU16(icmp, 2, internetChecksum(icmp));
  return out;
}

function tooBig6(f: Uint8Array, mtu: number): Uint8Array | undefined {
  if (f.length < IP + 40 || f[IP]! >> 4 !== 6) return undefined;
  const src = f.subarray(IP + 8, IP + 24);
  const dst = f.subarray(IP + 24, IP + 40);
  const loopback = isZero(src.subarray(0, 15)) && src[15] === 1;
  if (isZero(src) || loopback || src[0] === 0xff || dst[0] === 0xff) return undefined;
  if (f[IP + 6] === 58 && (IP + 40 >= f.length || f[IP + 40]! < 128)) return undefined;
  const quote = Math.min(40 + u16(f, IP + 4), f.length - IP, TOO_BIG_QUOTE_V6);
  const plen = 8 + quote;
  const out = new Uint8Array(IP + 40 + plen);
  swapEthernet(f, ETHERTYPE_IPV6, out);
  const o = out.subarray(IP);
  o[0] = 0x60;
  putU16(o, 4, plen);
  o[6] = 58;
  o[7] = 64;
  o.set(dst, 8);
  o.set(src, 24);
  const icmp = o.subarray(40);
  icmp[0] = 2; // Packet Too Big
  new DataView(icmp.buffer, icmp.byteOffset).setUint32(4, mtu >>> 0);
  icmp.set(f.subarray(IP, IP + quote), 8);
  putU16(icmp, 2, internetChecksum(icmp, 0, plen, pseudoHeaderSum(o.subarray(8, 24), o.subarray(24, 40), 58, plen)));
  return out;
}

/** To the sender, from the MAC it sent to. */
function swapEthernet(f: Uint8Array, type: number, out: Uint8Array): void {
  out.set(f.subarray(6, 12), 0);
  out.set(f.subarray(0, 6), 6);
  putU16(out, 12, type);
}

/** At most `rate` answers a second, `burst` at once: a token bucket in thousandths of a token (twin of native TooBigLimiter). */
export class TooBigLimiter {
  private tokensMilli: number;
  private lastMs = -1;
  constructor(
    private readonly rate = TOO_BIG_RATE,
    private readonly burst = TOO_BIG_BURST,
  ) {
    this.tokensMilli = burst * 1000;
  }

  /** True when an answer may be sent at `nowMs` (takes a token). */
  take(nowMs: number): boolean {
    if (this.lastMs >= 0 && nowMs > this.lastMs) this.tokensMilli = Math.min(this.burst * 1000, this.tokensMilli + (nowMs - this.lastMs) * this.rate);
    if (nowMs > this.lastMs) this.lastMs = nowMs;
    if (this.tokensMilli < 1000) return false;
    this.tokensMilli -= 1000;
    return true;
  }
}
