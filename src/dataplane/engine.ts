/**
 * The data-path contract shared by the native and the JS engine.
 *
 * The control side (agent, fed by static config now and by etcd later) owns the forwarding state and hands the engine
 * whole snapshots through `applyTable`; an engine never reaches back into the control plane. Engines learn remote MACs
 * from inbound traffic themselves (when learning is on) and report them through `fdb()`.
 *
 * Drop reasons and counter names are part of the wire between TypeScript and C++: native/src/counters.h lists the same
 * names in the same order, and a test pins the two lists together.
 */

/** Every reason a frame or datagram is dropped. Order matters: it is the index of the native counter. */
export const DROP_REASONS = [
  'rx_short', // UDP payload shorter than the 8-byte VXLAN header
  'rx_bad_flags', // VXLAN I flag (0x08) not set
  'rx_unknown_vni', // VNI not served by this router
  'rx_unknown_source', // outer source address is not a peer of that VNI
  'rx_truncated_inner', // inner frame shorter than its Ethernet header
  'rx_oversize', // inner frame larger than the TAP can carry, or the datagram did not fit the receive buffer
  'rx_tap_write_error', // the kernel refused the frame on the TAP
  'tx_short_frame', // frame read from the TAP shorter than an Ethernet header
  'tx_too_big', // encapsulated datagram would exceed the underlay MTU (VXLAN is never fragmented), or a TAP read filled its buffer (perhaps cut short)
  'tx_no_destination', // no peer for the VNI: nowhere to send
  'tx_send_error', // the kernel refused the datagram
  'tx_bad_offload', // the TAP's virtio header asked for something we cannot do (malformed super-frame, bad offsets)
  'rx_learn_full', // a new inner source MAC from a peer over the learned-MAC bounds (learnMaxPerPeer, learnMax)
  'rx_spoofed_source', // inner source MAC is one of ours (seen on our TAP) or placed on another VTEP by the control plane
  'rx_bad_probe', // a peer probe (src/packet/probe.ts) that is malformed, from a source that is no peer, or a reply the full queue could not keep
] as const;
export type DropReason = (typeof DROP_REASONS)[number];

/** Counters that are not drops. Order matters as for DROP_REASONS. */
export const TRAFFIC_COUNTERS = [
  'rx_datagrams', // datagrams accepted and written to a TAP
  'rx_bytes', // inner frame bytes written to TAPs
  'tx_frames', // frames read from TAPs and sent (a flooded frame counts once)
  'tx_bytes', // inner frame bytes of those frames
  'tx_datagrams', // datagrams sent (a frame flooded to N peers counts N)
  'tx_flooded', // frames sent by head-end replication (broadcast, multicast, unknown unicast)
  'learned', // (VNI, MAC) entries learned or moved from inbound traffic
  'tx_tso_frames', // TCP super-frames read from the TAP (TSO) and cut into segments (native engine with offloads)
  'tx_gso_sends', // UDP_SEGMENT sends, each carrying many datagrams of one flow to one peer
  'rx_merged', // received TCP segments merged into super-frames for the TAP (GRO)
  'arp_suppressed', // ARP requests from the bridge answered by the router (the address is a known remote container's)
  'nd_suppressed', // IPv6 Neighbor Solicitations from the bridge answered by the router (likewise)
  'local_mac_refused', // sightings of a new bridge source MAC not recorded (nor advertised): its VNI holds maxLocalMacs; the frame is still sent (JS: per frame; native: at most once a second per MAC)
  'icmp_too_big_sent', // ICMP fragmentation-needed / ICMPv6 packet-too-big answers written to the bridge for frames too big for the path (each such frame is also a tx_too_big drop)
  'icmp_too_big_limited', // such answers not sent: over the rate limit (1000/s, bursts of 50, per TAP)
  'tcp_mss_clamped', // TCP SYNs / SYN-ACKs crossing the overlay (either way) whose MSS option was lowered (--clamp-mss)
  'tcp_mss_bad_options', // TCP SYNs whose options field does not parse: forwarded untouched, not clamped (--clamp-mss)
  'probes_sent', // peer probes sent (liveness and path MTU; src/dataplane/peer-health.ts)
  'probe_replies', // replies to our probes received
  'probes_answered', // peers' probe requests answered
  'probe_answers_limited', // peers' probe requests not answered: over the rate limit (200/s, bursts of 100)
  'rx_uring_no_buffers', // io_uring loop with VXLAN_ROUTER_URING_RECV=multishot: the receive ran out of provided buffers and was re-armed (datagrams wait in the socket)
  'gso_sockets_closed', // GSO flow sockets (one per outer source port, native engine) closed after a minute unused
  'gso_sockets_full', // GSO sends that went through the raw socket instead: 1024 flow sockets were open (no new one)
] as const;
export type TrafficCounter = (typeof TRAFFIC_COUNTERS)[number];

export type CounterName = DropReason | TrafficCounter;
export type Counters = Record<CounterName, number>;

/** Addresses an engine keeps per local MAC (LocalMac.ips), as LocalMacTable::kMaxIps in native/src/local-macs.h (pinned by test/native/limits.test.ts). */
export const MAX_IPS = 8;

/** Local MACs an engine keeps per VNI unless told otherwise (EngineOptions.maxLocalMacs; config maxLocalMacs). */
export const DEFAULT_MAX_LOCAL_MACS = 1024;

/** A MAC of this host's bridge side, as the engine last saw it. */
export interface LocalMac {
  readonly vni: number;
  readonly mac: string;
  readonly ageMs: number;
  /** IPv4 and IPv6 addresses it used (ARP sender, IPv4/IPv6 source, Neighbor Advertisement target), most recent first; at most MAX_IPS. */
  readonly ips: readonly string[];
}

export const NO_OFFLOADS: Offloads = { tapVnetHdr: false, udpGso: false, udpGro: false };

export function zeroCounters(): Counters {
  const c = {} as Counters;
  for (const n of [...TRAFFIC_COUNTERS, ...DROP_REASONS]) c[n] = 0;
  return c;
}

/** A MAC learned from inbound traffic, as one engine hands it to the next. */
export interface LearnedMac {
  readonly vni: number;
  readonly mac: string;
  readonly vtep: string;
  readonly ageMs: number;
}

/** One network (VNI) served by the engine: its TAP and the MTU the TAP was given. */
export interface VniTap {
  readonly vni: number;
  /** fd of an open TAP (IFF_TAP | IFF_NO_PI); the engine owns it from `start()` on and closes it. */
  readonly tapFd: number;
  readonly tapName: string;
  readonly mtu: number;
  /** The TAP was opened with IFF_VNET_HDR (native engine only): reads and writes carry a virtio-net header. */
  readonly vnetHdr?: boolean;
}

/** Offloads in use now (the native engine probes each at start; the JS engine uses none). */
export interface Offloads {
  /** TAP with a virtio-net header: TSO super-frames in, merged TCP super-frames out. */
  readonly tapVnetHdr: boolean;
  /** UDP_SEGMENT sends (turns itself off when the kernel refuses the first one). */
  readonly udpGso: boolean;
  /** UDP_GRO receives. */
  readonly udpGro: boolean;
}

/** The event loop that runs the data path: the native engine's threads or io_uring loop, or Node's (JS engine);
 * `fallback` says why not io_uring when it was asked for ('' otherwise). */
export interface EngineLoop {
  readonly kind: 'threads' | 'uring' | 'node';
  readonly fallback: string;
  /**
   * The io_uring loop only: how it reads the UDP socket. multishot: a multishot recvmsg into provided buffers
   * (VXLAN_ROUTER_URING_RECV=multishot, while the kernel takes it); poll: a multishot poll, then recvmmsg (default).
   */
  readonly receive?: 'multishot' | 'poll';
}

export interface EngineOptions {
  /** Underlay address this VTEP sends from and listens on (IPv4 or IPv6, textual). */
  readonly local: string;
  /** UDP port, both ours and the peers' (RFC 7348: 4789). */
  readonly port: number;
  /** MTU of the underlay device: an encapsulated datagram larger than this is dropped as tx_too_big. */
  readonly underlayMtu: number;
  readonly networks: readonly VniTap[];
  /** Handed over by the router this one takes over (native engine): its bound UDP socket, and the MACs it had learned. */
  readonly inherited?: { readonly rxFd: number; readonly learned: readonly LearnedMac[] };
  readonly learning: boolean;
  /** Also the time a local MAC (LocalMac) stays without being seen. */
  readonly agingMs: number;
  /** Learned MACs per (VNI, peer) and in all; a new source over either is dropped as rx_learn_full (default 4096, 65536). */
  readonly learnMaxPerPeer?: number;
  readonly learnMax?: number;
  /**
   * Drop a datagram whose inner source MAC is one of this host's (seen on its TAPs) or one the table places on
   * another VTEP, as rx_spoofed_source (default true).
   */
  readonly sourceCheck?: boolean;
  /**
   * Local MACs kept per VNI (default DEFAULT_MAX_LOCAL_MACS): a new source MAC beyond it is not recorded nor
   * advertised (counted as local_mac_refused); its frames are still sent.
   */
  readonly maxLocalMacs?: number;
  /** Native engine: try UDP GSO sends / GRO receives (default true). */
  readonly udpGso?: boolean;
  readonly udpGro?: boolean;
  /** Native engine: the event loop to run (default auto; see LoopChoice in src/config/schema.ts). */
  readonly loop?: 'threads' | 'uring' | 'auto';
  /**
   * Answer ARP requests and IPv6 Neighbor Solicitations from the bridge for known remote addresses instead of flooding
   * them (default true).
   */
  readonly arpSuppression?: boolean;
  /**
   * TCP MSS clamping of SYNs crossing the overlay, both ways (--clamp-mss): the MSS per inner family, 0 = off
   * (default: off). Resolved by the agent (mssClampFor).
   */
  readonly clampMss?: MssClamp;
}

/** What the control side knows (per VNI: peers = flood list and source allow-list, static MACs), and a table row. */
export type { TableSnapshot, FdbEntry } from '../fdb/index.js';
import type { TableSnapshot, FdbEntry, FdbOrigin } from '../fdb/index.js';
import type { Traffic } from './traffic.js';
import type { MssClamp } from '../packet/index.js';
import type { ProbeReply, ProbeSendResult } from './peer-health.js';
import { VxlanRouterError } from '../errors.js';

/** Engine.fault()'s error, one shape for both engines: E_SYSTEM, kind 'data-path-stopped', `why` in the message. */
export function dataPathStopped(why: string, cause?: unknown): VxlanRouterError {
  return new VxlanRouterError('E_SYSTEM', `data path stopped: ${why}`, {
    cause,
    kind: 'data-path-stopped',
    hint: 'the router exits non-zero so that its supervisor restarts it',
  });
}

export type EngineKind = 'native' | 'js';

/** Forwarding entries per origin; `learned` counts what the bounds count (entries waiting for the sweep too). */
export type FdbCounts = Record<FdbOrigin, number>;

/** Static and etcd entries of a table, counted once when it is applied. */
export function controlCounts(table: TableSnapshot): Omit<FdbCounts, 'learned'> {
  const c = { static: 0, etcd: 0 };
  for (const v of table.vnis) for (const m of v.macs) c[m.origin ?? 'static']++;
  return c;
}

export interface Engine {
  readonly kind: EngineKind;
  /** Open sockets and start forwarding. Rejects with a VxlanRouterError (e.g. E_PORT_IN_USE); nothing is left open. */
  start(): Promise<void>;
  /** Replace the forwarding state atomically; frames in flight see the old or the new table, never a mix. */
  applyTable(table: TableSnapshot): void;
  counters(): Counters;
  fdb(): FdbEntry[];
  /** Forwarding entries by origin, without copying the table (metrics): O(1) per call. */
  fdbCounts(): FdbCounts;
  offloads(): Offloads;
  /** UDP sockets open for GSO sends now (native engine: one per outer source port in use, at most 1024; JS: 0). O(1). */
  gsoSockets(): number;
  /** The event loop running the data path. */
  loop(): EngineLoop;
  /** This host's own MACs: sources of frames read from the TAPs, seen within the aging time (to advertise). */
  localMacs(): LocalMac[];
  /** Frames and bytes per peer and per VNI, when each peer was last heard, and refused sources. */
  traffic(): Traffic;
  /**
   * The outer UDP source port this engine gives the datagrams of `frame` (`why`): the native engine writes the flow
   * hash itself (flowPort, pinned to native/src/wire.cc by test/native/twin.test.ts); the JS engine sends from the
   * pool socket the hash picks.
   */
  sourcePort(frame: Uint8Array): number;
  /**
   * Why the data path stopped on its own (a TAP deleted under it, a thread's poll failing), or undefined while it
   * runs. Cheap: the daemon polls it and exits non-zero so that a supervisor restarts the router.
   */
  fault(): VxlanRouterError | undefined;
  /**
   * VNIs whose TAP was deleted under the engine (someone ran `ip link del` on it): they forward nothing until
   * replaceTap. Cheap: the agent polls it (src/agent/links.ts).
   */
  lostTaps(): number[];
  /**
   * A fresh TAP (same VNI, and the same vnetHdr) in place of a lost one; the engine owns its fd from here on, also
   * when this throws (a VxlanRouterError; E_SYSTEM while the old TAP still forwards).
   */
  replaceTap(tap: VniTap): void;
  /**
   * Handover to a router process that takes over (absent: this engine cannot hand over its sockets, the JS engine).
   * `quiesce` stops forwarding and keeps every fd open with what the kernel queued on it, and names the fds to pass;
   * `resume` forwards again after a handover that failed. After a handover `close` closes this process's copies
   * only: the TAPs live on in the new router.
   */
  readonly handover?: {
    quiesce(): { rx: number; taps: readonly { vni: number; fd: number }[] };
    resume(): void;
  };
  /**
   * Sends a peer probe (src/packet/probe.ts, UDP payload) to `to`'s VXLAN port from ours, with DF on the underlay:
   * 'too-big' when this host refuses it locally (EMSGSIZE: larger than its own path allows).
   */
  sendProbe(to: string, payload: Uint8Array): Promise<ProbeSendResult>;
  /** Replies to our probes received since the last call (at most MAX_PROBE_REPLIES are kept). */
  probeReplies(): ProbeReply[];
  /**
   * Path MTUs (outer IP packet bytes) measured by probing, for peers whose path is smaller than the underlay's: a
   * frame to such a peer that does not fit is dropped and answered with that MTU, as for the underlay's.
   */
  setPathMtus(mtus: ReadonlyMap<string, number>): void;
  /** Stop forwarding, close sockets and TAPs. Safe to call twice. */
  close(): Promise<void>;
}
