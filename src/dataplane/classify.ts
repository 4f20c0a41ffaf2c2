/**
 * Receive-side validation of a VXLAN datagram, in the order the native engine applies it (its twin: Classify in
 * native/src/wire.h, exported to tests as classifyDatagram by native/src/twins.cc): the first failing check names the
 * drop reason. Pure.
 */
import { canonicalIp, ETH_HEADER_LEN, VXLAN_FLAG_I, VXLAN_HEADER_LEN } from '../packet/index.js';
import type { DropReason } from './engine.js';

/** VNI → canonical addresses of its peers (the source allow-list). */
export type VniPeers = ReadonlyMap<number, ReadonlySet<string>>;

/**
 * Peers are canonicalised here, once per table (`FD00::0001` → `fd00::1`), because `from` is compared as the kernel
 * spells a datagram's source (canonical already). Throws a PacketError on text that is not an address.
 */
export function buildVniPeers(vnis: readonly { readonly vni: number; readonly peers: readonly string[] }[]): VniPeers {
  return new Map(vnis.map((v) => [v.vni, new Set(v.peers.map(canonicalIp))]));
}

export type Verdict =
  | { readonly ok: true; readonly vni: number; readonly inner: Uint8Array }
  /** `vni` with rx_unknown_source: the VNI the refused sender used (reported as a refused source). */
  | { readonly ok: false; readonly reason: DropReason; readonly vni?: number };

export function classifyDatagram(payload: Uint8Array, from: string, vnis: VniPeers, maxFrame: number): Verdict {
  if (payload.length < VXLAN_HEADER_LEN) return { ok: false, reason: 'rx_short' };
  if ((payload[0]! & VXLAN_FLAG_I) === 0) return { ok: false, reason: 'rx_bad_flags' };
  const vni = (payload[4]! << 16) | (payload[5]! << 8) | payload[6]!;
  const peers = vnis.get(vni);
  if (peers === undefined) return { ok: false, reason: 'rx_unknown_vni' };
  if (!peers.has(from)) return { ok: false, reason: 'rx_unknown_source', vni };
  const innerLen = payload.length - VXLAN_HEADER_LEN;
  if (innerLen < ETH_HEADER_LEN) return { ok: false, reason: 'rx_truncated_inner' };
  if (innerLen > maxFrame) return { ok: false, reason: 'rx_oversize' };
  return { ok: true, vni, inner: payload.subarray(VXLAN_HEADER_LEN) };
}
