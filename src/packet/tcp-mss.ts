/**
 * TCP MSS clamping (`--clamp-mss`): a SYN or SYN-ACK crossing the overlay whose MSS option is above the clamp gets
 * the clamp instead, and its TCP checksum is updated incrementally (RFC 1624, eqn. 3), so the two ends never agree on
 * segments larger than the path carries, even where ICMP too-big answers are filtered. Pure, in place, bounds-checked.
 * Twin of ClampMss in native/src/mss.cc (pinned by test/native/mss.test.ts).
 *
 * Only a SYN's MSS option (kind 2, length 4) is lowered, never raised; a SYN without one is left alone (its peer
 * assumes 536 / 1220). Not looked at: IPv4 fragments, IPv6 packets with extension headers before TCP, frames with
 * more than MAX_VLAN_TAGS tags. An options field that does not parse (an option running past the header, a length
 * below 2, an MSS option not 4 bytes long) is left untouched and reported as 'malformed'.
 */
import { ETH_HEADER_LEN, ETHERTYPE_IPV4, ETHERTYPE_IPV6, isVlanTpid, MAX_VLAN_TAGS } from './ethernet.js';
import { IPV6_HEADER_LEN, PROTO_TCP } from './ip.js';

/** MSS for a path MTU: minus the IP header (20 / 40) and the TCP header (20). */
export const mssForMtu = (mtu: number, family: 4 | 6): number => mtu - (family === 4 ? 40 : 60);

/** The smallest MSS clamped to (config clampMss's lower bound). */
export const MIN_CLAMP_MSS = 88;

/** The MSS values to clamp to per inner family (0: that family is not clamped). */
export interface MssClamp {
  readonly ipv4: number;
  readonly ipv6: number;
}

/**
 * The clamp for a `--clamp-mss` setting: off (false), derived from the path MTU (true: − 40 for IPv4, − 60 for IPv6)
 * or one MSS for both families.
 */
export function mssClampFor(setting: boolean | number, pathMtu: number): MssClamp | undefined {
  if (setting === false) return undefined;
  if (setting === true) return { ipv4: mssForMtu(pathMtu, 4), ipv6: mssForMtu(pathMtu, 6) };
  return { ipv4: setting, ipv6: setting };
}

/**
 * The clamp toward one peer whose path carries inner IP packets of at most `ipMtu` bytes (its measured path MTU less
 * the encapsulation): each family's MSS no higher than what fits that path, and never above `clamp` (an explicit
 * `--clamp-mss N` stays the ceiling); a family at 0 (off) stays off; never below MIN_CLAMP_MSS (the smallest `--clamp-mss`:
 * 0 would mean off). Twin: ClampForPath in native/src/mss.h.
 */
export function clampForPath(clamp: MssClamp, ipMtu: number): MssClamp {
  const fit = (mss: number, family: 4 | 6): number => (mss === 0 ? 0 : Math.min(mss, Math.max(MIN_CLAMP_MSS, mssForMtu(ipMtu, family))));
  return { ipv4: fit(clamp.ipv4, 4), ipv6: fit(clamp.ipv6, 6) };
}

/** 'none': not a SYN with an MSS above the clamp (or not TCP at all); 'clamped': lowered; 'malformed': see above. */
export type MssClampResult = 'none' | 'clamped' | 'malformed';

const TCP_SYN = 0x02;
const OPT_EOL = 0;
const OPT_NOP = 1;
const OPT_MSS = 2;

/** Lowers the MSS option of a TCP SYN in `frame` (an Ethernet frame) to `clamp` for its family, in place. */
export function clampMss(frame: Uint8Array, clamp: MssClamp): MssClampResult {
  let typeAt = 12;
  if (frame.length < ETH_HEADER_LEN) return 'none';
  for (let tags = 0; isVlanTpid((frame[typeAt]! << 8) | frame[typeAt + 1]!); tags++) {
    if (tags === MAX_VLAN_TAGS || typeAt + 6 > frame.length) return 'none';
    typeAt += 4;
  }
  const type = (frame[typeAt]! << 8) | frame[typeAt + 1]!;
  const l3 = typeAt + 2;
  let l4: number;
  let end: number; // end of the IP packet within the frame
  let mss: number;
  if (type === ETHERTYPE_IPV4) {
    if (clamp.ipv4 === 0 || l3 + 20 > frame.length || frame[l3]! >>> 4 !== 4) return 'none';
    const ihl = (frame[l3]! & 0xf) * 4;
    const total = (frame[l3 + 2]! << 8) | frame[l3 + 3]!;
    if (ihl < 20 || total < ihl || l3 + total > frame.length || frame[l3 + 9] !== PROTO_TCP) return 'none';
    if ((((frame[l3 + 6]! << 8) | frame[l3 + 7]!) & 0x3fff) !== 0) return 'none'; // a fragment (MF or offset)
    l4 = l3 + ihl;
    end = l3 + total;
    mss = clamp.ipv4;
  } else if (type === ETHERTYPE_IPV6) {
    if (clamp.ipv6 === 0 || l3 + IPV6_HEADER_LEN > frame.length || frame[l3]! >>> 4 !== 6 || frame[l3 + 6] !== PROTO_TCP) return 'none';
    l4 = l3 + IPV6_HEADER_LEN;
    end = l4 + ((frame[l3 + 4]! << 8) | frame[l3 + 5]!);
    if (end > frame.length) return 'none';
    mss = clamp.ipv6;
  } else {
    return 'none';
  }
  if (l4 + 20 > end || (frame[l4 + 13]! & TCP_SYN) === 0) return 'none';
  const hdrEnd = l4 + (frame[l4 + 12]! >>> 4) * 4;
  if (hdrEnd < l4 + 20 || hdrEnd > end) return 'malformed';
  for (let i = l4 + 20; i < hdrEnd; ) {
    const kind = frame[i]!;
    if (kind === OPT_EOL) break;
    if (kind === OPT_NOP) {
      i++;
      continue;
    }
    if (i + 1 >= hdrEnd) return 'malformed';
    const len = frame[i + 1]!;
    if (len < 2 || i + len > hdrEnd) return 'malformed';
    if (kind === OPT_MSS) {
      if (len !== 4) return 'malformed';
      const old = (frame[i + 2]! << 8) | frame[i + 3]!;
      if (old <= mss) return 'none';
      frame[i + 2] = mss >>> 8;
      frame[i + 3] = mss & 0xff;
      // RFC 1624: HC' = ~(~HC + ~m + m'). A field at an odd offset from the TCP header straddles two 16-bit words:
      // its bytes count swapped (the one's-complement sum is byte-order independent, RFC 1071 §2(B)).
      const odd = ((i + 2 - l4) & 1) === 1;
      const m = odd ? swap16(old) : old;
      const m2 = odd ? swap16(mss) : mss;
      const hc = (frame[l4 + 16]! << 8) | frame[l4 + 17]!;
      let s = (~hc & 0xffff) + (~m & 0xffff) + m2;
      while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
      const sum = ~s & 0xffff;
      frame[l4 + 16] = sum >>> 8;
      frame[l4 + 17] = sum & 0xff;
      return 'clamped';
    }
    i += len;
  }
  return 'none';
}

const swap16 = (v: number): number => ((v & 0xff) << 8) | (v >>> 8);
