/**
 * The outer UDP source port of a frame: a hash of its inner flow, so the underlay's ECMP spreads flows while one
 * flow keeps one path (RFC 7348 §5). Twin of native/src/wire.cc flow_port(); the key and hash are pinned there too.
 *
 * Key: IPv4/IPv6 src ‖ dst ‖ protocol (‖ TCP/UDP ports unless a fragment) when an IP header is present, else
 * dst MAC ‖ src MAC ‖ ethertype. Hash: FNV-1a 32, folded into 49152-65535.
 */
import { ETH_HEADER_LEN, ETHERTYPE_IPV4, ETHERTYPE_IPV6, isVlanTpid, MAX_VLAN_TAGS } from './ethernet.js';
import { IPV6_HEADER_LEN, PROTO_TCP, PROTO_UDP } from './ip.js';

export const FLOW_PORT_MIN = 49152;
const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;

function fnv(h: number, buf: Uint8Array, start: number, end: number): number {
  let x = h;
  for (let i = start; i < end; i++) x = Math.imul(x ^ buf[i]!, FNV_PRIME) >>> 0;
  return x;
}

export function flowHash(frame: Uint8Array): number {
  if (frame.length < ETH_HEADER_LEN) return FNV_OFFSET;
  let typeAt = 12;
  for (let tags = 0; tags < MAX_VLAN_TAGS && isVlanTpid((frame[typeAt]! << 8) | frame[typeAt + 1]!); tags++) {
    if (typeAt + 6 > frame.length) return macKey(frame, typeAt);
    typeAt += 4;
  }
  const type = (frame[typeAt]! << 8) | frame[typeAt + 1]!;
  const l3 = typeAt + 2;
  if (type === ETHERTYPE_IPV4 && l3 + 20 <= frame.length && frame[l3]! >>> 4 === 4) {
    const ihl = (frame[l3]! & 0xf) * 4;
    if (ihl >= 20 && l3 + ihl <= frame.length) {
      let h = fnv(FNV_OFFSET, frame, l3 + 12, l3 + 20); // src, dst
      h = fnv(h, frame, l3 + 9, l3 + 10); // protocol
      const proto = frame[l3 + 9];
      const fragment = (((frame[l3 + 6]! << 8) | frame[l3 + 7]!) & 0x3fff) !== 0; // MF or offset
      if ((proto === PROTO_TCP || proto === PROTO_UDP) && !fragment && l3 + ihl + 4 <= frame.length) {
        h = fnv(h, frame, l3 + ihl, l3 + ihl + 4);
      }
      return h;
    }
  } else if (type === ETHERTYPE_IPV6 && l3 + IPV6_HEADER_LEN <= frame.length) {
    let h = fnv(FNV_OFFSET, frame, l3 + 8, l3 + 40); // src, dst
    h = fnv(h, frame, l3 + 6, l3 + 7); // next header
    const next = frame[l3 + 6];
    if ((next === PROTO_TCP || next === PROTO_UDP) && l3 + 44 <= frame.length) h = fnv(h, frame, l3 + 40, l3 + 44);
    return h;
  }
  return macKey(frame, typeAt);
}

function macKey(frame: Uint8Array, typeAt: number): number {
  return fnv(fnv(FNV_OFFSET, frame, 0, 12), frame, typeAt, typeAt + 2);
}

export function flowPort(frame: Uint8Array): number {
  const h = flowHash(frame);
  return FLOW_PORT_MIN + ((h ^ (h >>> 16)) & 0x3fff);
}
