/**
 * VXLAN (RFC 7348): the specification's constants and the 8-byte header, and `encapsulate`, which builds exactly the
 * bytes our VTEP hands its raw socket (UDP header + VXLAN header + frame; the kernel adds the IP header).
 * Twin of native/src/wire.cc encapsulate(). Tunables (MTU, aging, batch sizes) live in config, not here.
 */
import { PacketError } from '../errors.js';
import { need } from './bytes.js';
import { flowPort } from './flow.js';
import { ETH_HEADER_LEN } from './ethernet.js';
import { IPV4_HEADER_LEN, IPV6_HEADER_LEN } from './ip.js';
import { encodeUdp, UDP_HEADER_LEN } from './udp.js';

export const VXLAN_PORT = 4789; // IANA-assigned (RFC 7348 §5); Linux defaults to 8472 unless told
export const VXLAN_HEADER_LEN = 8;
export const VXLAN_FLAG_I = 0x08; // "VNI present"; every other flag bit is reserved, ignored on receive
export const MAX_VNI = 0xffffff;

/** Bytes added in front of the inner IP packet: outer IP + UDP + VXLAN + inner Ethernet header. */
export function overheadFor(ipVersion: 4 | 6): number {
  return (ipVersion === 6 ? IPV6_HEADER_LEN : IPV4_HEADER_LEN) + UDP_HEADER_LEN + VXLAN_HEADER_LEN + ETH_HEADER_LEN;
}

/**
 * The largest inner MTU an underlay of `underlayMtu` carries without fragmenting, for a VTEP on `local` (IPv4: −50,
 * IPv6: −70). The one place that sum is made: the MTU in too-big answers' sense, Docker networks, status and doctor use it.
 */
/**
 * The TAP's MTU unless one is configured: far above any container's, so that the bridge hands every frame to the
 * router (a bridge silently drops frames larger than the egress port's MTU). The path limit (innerMtuLimit) is the
 * router's to enforce: too-big frames are answered with ICMP fragmentation-needed / packet-too-big. Below 64 KiB
 * with room for a virtio header and two VLAN tags, so that a whole frame always fits one read.
 */
export const DEFAULT_TAP_MTU = 65000;

export function innerMtuLimit(underlayMtu: number, local: string): number {
  return underlayMtu - overheadFor(local.includes(':') ? 6 : 4);
}

export interface VxlanHeader {
  readonly flags: number;
  readonly vni: number;
}

export function encodeVxlanHeader(vni: number): Uint8Array {
  if (!Number.isInteger(vni) || vni < 0 || vni > MAX_VNI) throw new PacketError('vxlan', 4, `VNI ${vni} out of range 0-${MAX_VNI}`);
  return Uint8Array.of(VXLAN_FLAG_I, 0, 0, 0, (vni >>> 16) & 0xff, (vni >>> 8) & 0xff, vni & 0xff, 0);
}

/** Decodes the header; the caller decides what a missing I flag means (the data path drops it as rx_bad_flags). */
export function decodeVxlanHeader(buf: Uint8Array, o = 0): VxlanHeader {
  need(buf, o, VXLAN_HEADER_LEN, 'vxlan');
  return { flags: buf[o]!, vni: (buf[o + 4]! << 16) | (buf[o + 5]! << 8) | buf[o + 6]! };
}

/** UDP(src port = flowPort(frame), dst port) + VXLAN(vni) + frame, checksummed for src → dst (4/16-byte addresses). */
export function encapsulate(frame: Uint8Array, vni: number, src: Uint8Array, dst: Uint8Array, dstPort: number): Uint8Array {
  const payload = new Uint8Array(VXLAN_HEADER_LEN + frame.length);
  payload.set(encodeVxlanHeader(vni), 0);
  payload.set(frame, VXLAN_HEADER_LEN);
  return encodeUdp(src, dst, flowPort(frame), dstPort, payload);
}
