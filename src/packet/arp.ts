/** ARP for Ethernet/IPv4 (RFC 826): the only kind a bridge of containers carries. */
import { PacketError } from '../errors.js';
import { formatIp, formatMac, need, putU16, u16 } from './bytes.js';
import { ETHERTYPE_IPV4 } from './ethernet.js';

export const ARP_LEN = 28;
export const ARP_REQUEST = 1;
export const ARP_REPLY = 2;

export interface Arp {
  readonly op: number;
  readonly senderMac: string;
  readonly senderIp: string;
  readonly targetMac: string;
  readonly targetIp: string;
}

export function decodeArp(buf: Uint8Array, offset = 0): Arp {
  need(buf, offset, ARP_LEN, 'arp');
  if (u16(buf, offset) !== 1 || u16(buf, offset + 2) !== ETHERTYPE_IPV4 || buf[offset + 4] !== 6 || buf[offset + 5] !== 4) {
    throw new PacketError('arp', offset, 'not Ethernet/IPv4 ARP');
  }
  return {
    op: u16(buf, offset + 6),
    senderMac: formatMac(buf, offset + 8),
    senderIp: formatIp(buf.subarray(offset + 14, offset + 18)),
    targetMac: formatMac(buf, offset + 18),
    targetIp: formatIp(buf.subarray(offset + 24, offset + 28)),
  };
}

export function encodeArp(op: number, senderMac: Uint8Array, senderIp: Uint8Array, targetMac: Uint8Array, targetIp: Uint8Array): Uint8Array {
  const b = new Uint8Array(ARP_LEN);
  putU16(b, 0, 1);
  putU16(b, 2, ETHERTYPE_IPV4);
  b[4] = 6;
  b[5] = 4;
  putU16(b, 6, op);
  b.set(senderMac, 8);
  b.set(senderIp, 14);
  b.set(targetMac, 18);
  b.set(targetIp, 24);
  return b;
}
