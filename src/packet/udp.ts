/** UDP (RFC 768) header, with the checksum over the IPv4 or IPv6 pseudo-header. */
import { PacketError } from '../errors.js';
import { need, putU16, u16 } from './bytes.js';
import { internetChecksum, pseudoHeaderSum } from './checksum.js';
import { PROTO_UDP } from './ip.js';

export const UDP_HEADER_LEN = 8;

export interface Udp {
  readonly srcPort: number;
  readonly dstPort: number;
  readonly length: number;
  readonly checksum: number;
}

export function decodeUdp(buf: Uint8Array, o = 0): Udp {
  need(buf, o, UDP_HEADER_LEN, 'udp');
  const length = u16(buf, o + 4);
  if (length < UDP_HEADER_LEN) throw new PacketError('udp', o, `length ${length} below 8`);
  if (o + length > buf.length) throw new PacketError('udp', o, `length ${length} exceeds the ${buf.length - o} bytes present`);
  return { srcPort: u16(buf, o), dstPort: u16(buf, o + 2), length, checksum: u16(buf, o + 6) };
}

/**
 * A whole UDP datagram (header + payload) with its checksum computed over the pseudo-header of `src` → `dst`
 * (4- or 16-byte addresses). A computed 0 is sent as 0xffff (RFC 768: 0 means "no checksum").
 */
export function encodeUdp(src: Uint8Array, dst: Uint8Array, srcPort: number, dstPort: number, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(UDP_HEADER_LEN + payload.length);
  putU16(out, 0, srcPort);
  putU16(out, 2, dstPort);
  putU16(out, 4, out.length);
  out.set(payload, UDP_HEADER_LEN);
  const sum = internetChecksum(out, 0, out.length, pseudoHeaderSum(src, dst, PROTO_UDP, out.length));
  putU16(out, 6, sum === 0 ? 0xffff : sum);
  return out;
}

/** True when the datagram's checksum verifies (or is 0, "none", which IPv4 allows). */
export function udpChecksumOk(src: Uint8Array, dst: Uint8Array, datagram: Uint8Array): boolean {
  if (src.length === 4 && u16(datagram, 6) === 0) return true;
  return internetChecksum(datagram, 0, datagram.length, pseudoHeaderSum(src, dst, PROTO_UDP, datagram.length)) === 0;
}
