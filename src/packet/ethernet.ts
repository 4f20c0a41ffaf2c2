/** Ethernet II header with up to two VLAN tags (802.1Q 0x8100, 802.1ad 0x88a8). */
import { formatMac, need, u16 } from './bytes.js';

export const ETH_HEADER_LEN = 14;
export const ETHERTYPE_IPV4 = 0x0800;
export const ETHERTYPE_ARP = 0x0806;
export const ETHERTYPE_IPV6 = 0x86dd;
export const ETHERTYPE_VLAN = 0x8100;
export const ETHERTYPE_QINQ = 0x88a8;
export const MAX_VLAN_TAGS = 2;

export interface VlanTag {
  readonly tpid: number;
  readonly pcp: number;
  readonly vid: number;
}

export interface Ethernet {
  readonly dst: string;
  readonly src: string;
  readonly tags: readonly VlanTag[];
  readonly etherType: number;
  /** Offset of the payload (after the tags). */
  readonly payloadOffset: number;
}

export function isVlanTpid(t: number): boolean {
  return t === ETHERTYPE_VLAN || t === ETHERTYPE_QINQ;
}

export function decodeEthernet(frame: Uint8Array): Ethernet {
  need(frame, 0, ETH_HEADER_LEN, 'ethernet');
  const tags: VlanTag[] = [];
  let o = 12;
  let type = u16(frame, o);
  while (isVlanTpid(type) && tags.length < MAX_VLAN_TAGS) {
    need(frame, o, 6, 'ethernet');
    const tci = u16(frame, o + 2);
    tags.push({ tpid: type, pcp: tci >>> 13, vid: tci & 0xfff });
    o += 4;
    type = u16(frame, o);
  }
  return { dst: formatMac(frame, 0), src: formatMac(frame, 6), tags, etherType: type, payloadOffset: o + 2 };
}

export function encodeEthernet(dst: Uint8Array, src: Uint8Array, etherType: number, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(ETH_HEADER_LEN + payload.length);
  out.set(dst, 0);
  out.set(src, 6);
  out[12] = etherType >>> 8;
  out[13] = etherType & 0xff;
  out.set(payload, ETH_HEADER_LEN);
  return out;
}
