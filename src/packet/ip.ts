/** IPv4 (RFC 791) and IPv6 (RFC 8200) fixed headers, and the TCP/UDP ports that follow them. */
import { PacketError } from '../errors.js';
import { formatIp, need, putU16, u16 } from './bytes.js';
import { internetChecksum } from './checksum.js';

export const IPV4_HEADER_LEN = 20;
export const IPV6_HEADER_LEN = 40;
export const PROTO_TCP = 6;
export const PROTO_UDP = 17;

export interface Ipv4 {
  readonly headerLen: number;
  readonly totalLen: number;
  readonly id: number;
  readonly dontFragment: boolean;
  readonly moreFragments: boolean;
  /** In 8-byte units. */
  readonly fragmentOffset: number;
  readonly ttl: number;
  readonly protocol: number;
  readonly checksumOk: boolean;
  readonly src: string;
  readonly dst: string;
}

export function decodeIpv4(buf: Uint8Array, o = 0): Ipv4 {
  need(buf, o, IPV4_HEADER_LEN, 'ipv4');
  const version = buf[o]! >>> 4;
  const headerLen = (buf[o]! & 0xf) * 4;
  if (version !== 4) throw new PacketError('ipv4', o, `version ${version}, expected 4`);
  if (headerLen < IPV4_HEADER_LEN) throw new PacketError('ipv4', o, `header length ${headerLen} below 20`);
  need(buf, o, headerLen, 'ipv4');
  const flags = u16(buf, o + 6);
  return {
    headerLen,
    totalLen: u16(buf, o + 2),
    id: u16(buf, o + 4),
    dontFragment: (flags & 0x4000) !== 0,
    moreFragments: (flags & 0x2000) !== 0,
    fragmentOffset: flags & 0x1fff,
    ttl: buf[o + 8]!,
    protocol: buf[o + 9]!,
    checksumOk: internetChecksum(buf, o, o + headerLen) === 0,
    src: formatIp(buf.subarray(o + 12, o + 16)),
    dst: formatIp(buf.subarray(o + 16, o + 20)),
  };
}

/** A 20-byte IPv4 header with its checksum filled in. */
export function encodeIpv4(h: { protocol: number; src: Uint8Array; dst: Uint8Array; payloadLen: number; ttl?: number; id?: number; dontFragment?: boolean }): Uint8Array {
  const b = new Uint8Array(IPV4_HEADER_LEN);
  b[0] = 0x45;
  putU16(b, 2, IPV4_HEADER_LEN + h.payloadLen);
  putU16(b, 4, h.id ?? 0);
  putU16(b, 6, h.dontFragment === false ? 0 : 0x4000);
  b[8] = h.ttl ?? 64;
  b[9] = h.protocol;
  b.set(h.src, 12);
  b.set(h.dst, 16);
  putU16(b, 10, internetChecksum(b));
  return b;
}

export interface Ipv6 {
  readonly payloadLen: number;
  readonly nextHeader: number;
  readonly hopLimit: number;
  readonly src: string;
  readonly dst: string;
}

export function decodeIpv6(buf: Uint8Array, o = 0): Ipv6 {
  need(buf, o, IPV6_HEADER_LEN, 'ipv6');
  const version = buf[o]! >>> 4;
  if (version !== 6) throw new PacketError('ipv6', o, `version ${version}, expected 6`);
  return {
    payloadLen: u16(buf, o + 4),
    nextHeader: buf[o + 6]!,
    hopLimit: buf[o + 7]!,
    src: formatIp(buf.subarray(o + 8, o + 24)),
    dst: formatIp(buf.subarray(o + 24, o + 40)),
  };
}

export function encodeIpv6(h: { nextHeader: number; src: Uint8Array; dst: Uint8Array; payloadLen: number; hopLimit?: number }): Uint8Array {
  const b = new Uint8Array(IPV6_HEADER_LEN);
  b[0] = 0x60;
  putU16(b, 4, h.payloadLen);
  b[6] = h.nextHeader;
  b[7] = h.hopLimit ?? 64;
  b.set(h.src, 8);
  b.set(h.dst, 24);
  return b;
}

/** Source and destination port of a TCP or UDP header at `o`. */
export function decodePorts(buf: Uint8Array, o: number): { readonly srcPort: number; readonly dstPort: number } {
  need(buf, o, 4, 'ports');
  return { srcPort: u16(buf, o), dstPort: u16(buf, o + 2) };
}
