/**
 * Peer probes (twin of native/src/probe.cc): the UDP payload one vxlan-router sends another's VXLAN port to learn that
 * the peer is alive, the round-trip time, and the largest datagram the path carries.
 *
 * Layout (24-byte header, then zero padding up to the probe's size):
 *
 *   0  flags 0x00       the VXLAN I flag is clear: every VTEP that is not ours (Linux's vxlan_rcv, switches) drops
 *                       the datagram before looking at a VNI, so nothing ever reaches a bridge
 *   1  'V' 'X' 'P'      magic, where VXLAN has reserved bytes
 *   4  version (1)
 *   5  kind: 1 request, 2 reply
 *   6  0, 0             reserved
 *   8  id (u32)         chosen by the sender, echoed
 *  12  sent (u64)       the sender's monotonic clock in ns, echoed (the RTT needs no state on the answering side)
 *  20  length (u32)     reply: the UDP payload length of the request as received; request: 0
 *
 * A reply is always the bare 24-byte header: never larger than the request it answers (no amplification).
 */
import { PacketError } from '../errors.js';

export const PROBE_HEADER_LEN = 24;
export const PROBE_VERSION = 1;
const MAGIC = [0x56, 0x58, 0x50] as const; // "VXP"
const KIND = { request: 1, reply: 2 } as const;
export type ProbeKind = keyof typeof KIND;

/** Answers to probes per second and at once, per router (kProbeAnswerRate / kProbeAnswerBurst in native/src/probe.h). */
export const PROBE_ANSWER_RATE = 200;
export const PROBE_ANSWER_BURST = 100;
/** Probe replies kept for the agent to collect (kMaxProbeReplies); more are dropped as rx_bad_probe. */
export const MAX_PROBE_REPLIES = 1024;

export interface Probe {
  readonly kind: ProbeKind;
  readonly id: number;
  readonly sentNs: bigint;
  /** Reply: the request's UDP payload length as the peer received it; request: 0. */
  readonly length: number;
}

/** The datagram starts like a probe (flags 0, magic): it is ours to parse, never a VXLAN frame. */
export function isProbe(p: Uint8Array): boolean {
  return p.length >= 4 && p[0] === 0 && p[1] === MAGIC[0] && p[2] === MAGIC[1] && p[3] === MAGIC[2];
}

/** A probe of `size` bytes of UDP payload (at least PROBE_HEADER_LEN; the rest zeros). */
export function encodeProbe(probe: Probe, size = PROBE_HEADER_LEN): Uint8Array {
  if (!Number.isInteger(size) || size < PROBE_HEADER_LEN || size > 65507) throw new PacketError('probe', 0, `size ${size} is out of range ${PROBE_HEADER_LEN}-65507`);
  const b = new Uint8Array(size);
  const v = new DataView(b.buffer);
  b.set([0, ...MAGIC, PROBE_VERSION, KIND[probe.kind]]);
  v.setUint32(8, probe.id >>> 0);
  v.setBigUint64(12, BigInt.asUintN(64, probe.sentNs));
  v.setUint32(20, probe.length >>> 0);
  return b;
}

/** The probe in `p`, or undefined when it is not a well-formed one (short, other version or kind, reserved bits set). */
export function parseProbe(p: Uint8Array): Probe | undefined {
  if (!isProbe(p) || p.length < PROBE_HEADER_LEN || p[4] !== PROBE_VERSION || p[6] !== 0 || p[7] !== 0) return undefined;
  const kind = p[5] === KIND.request ? 'request' : p[5] === KIND.reply ? 'reply' : undefined;
  if (kind === undefined) return undefined;
  const v = new DataView(p.buffer, p.byteOffset, p.byteLength);
  return { kind, id: v.getUint32(8), sentNs: v.getBigUint64(12), length: v.getUint32(20) };
}

/** The reply to a request (24 bytes), or undefined when `p` is not a well-formed request. */
export function probeReply(p: Uint8Array): Uint8Array | undefined {
  const req = parseProbe(p);
  if (req === undefined || req.kind !== 'request') return undefined;
  return encodeProbe({ kind: 'reply', id: req.id, sentNs: req.sentNs, length: p.length });
}

/** UDP payload bytes of a probe whose outer IP packet is `packetSize` bytes (IPv4 header 20, IPv6 40, UDP 8). */
export function probePayloadSize(packetSize: number, ipv6: boolean): number {
  return packetSize - (ipv6 ? 40 : 20) - 8;
}
