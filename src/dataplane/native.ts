/**
 * The one loader of the native addon and its typed face. Nothing else imports the .node file; tests and engines get
 * the addon from `loadNative()` (or are handed a fake `NativeAddon`). Native errors carry an errno name in `code`;
 * `toRouterError` turns them into the product's error family in this one place.
 */
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { VxlanRouterError, type ErrorCode } from '../errors.js';
import type { LocalMac, Offloads } from './engine.js';
import type { Traffic } from './traffic.js';

/** The table as the addon takes it: static MACs as [mac, vtep] pairs, remote addresses (IPv4 or IPv6) as [ip, mac]. */
export interface NativeTable {
  vnis: { vni: number; peers: string[]; macs: [mac: string, vtep: string][]; neighbors?: [ip: string, mac: string][] }[];
  /** Path MTUs measured by probing (outer IP packet bytes), where smaller than the underlay's. */
  pathMtus?: [vtep: string, mtu: number][];
}

/** Threads and sockets of one running engine (native/src/engine.h). */
export interface NativeEngineHandle {
  setTable(table: NativeTable): void;
  start(): void;
  /** Joins the threads and closes the sockets and TAP fds. Idempotent. */
  stop(): void;
  counters(): { drops: number[]; traffic: number[] };
  learned(): { vni: number; mac: string; vtep: string; ageMs: number }[];
  /** Learned entries held (what the bounds count), O(1): metrics read this, never learned(). */
  learnedCount(): number;
  /** GSO flow sockets open now (one per outer source port in use, closed after gsoSocketIdleMs unused), O(1). */
  gsoSockets(): number;
  features(): Offloads;
  /**
   * The event loop running since start(), why not io_uring when it was asked for ('' otherwise), and how the
   * io_uring loop reads the UDP socket ('' with threads; absent from older builds).
   */
  loop(): { loop: 'threads' | 'uring'; fallback: string; receive?: 'multishot' | 'poll' | '' };
  /** Sources of frames read from the TAPs (this host's own MACs), within the aging time. */
  localMacs(): LocalMac[];
  /** Writes a frame onto a VNI's bridge (gratuitous ARP, unsolicited Neighbor Advertisement). */
  injectFrame(vni: number, frame: Uint8Array): void;
  /** Per-peer and per-VNI counts and refused sources (native/src/stats.h). */
  traffic(): Traffic;
  /** Why a data-path thread stopped on its own (e.g. its poll failed), or null while all run (Engine::Fault). */
  fault(): Error | null;
  /** VNIs whose TAP was deleted under the engine (their transmit thread ended), waiting for replaceTap. */
  lostTaps(): number[];
  /** A fresh TAP in place of a lost one (fd owned from here on, also when it throws; EBUSY while the old one forwards). */
  replaceTap(vni: number, fd: number, vnetHdr: boolean): void;
  /** Stops the threads and keeps every fd open with its kernel queue (a handover); start() runs them again. */
  quiesce(): void;
  /** The fds a handover passes (still owned by this engine): the UDP socket and each VNI's TAP. */
  handoverFds(): HandoverFds;
  /** Learned MACs handed over by the engine this one replaces, each as old as it was there; returns how many were taken. */
  seedLearned(rows: readonly { vni: number; mac: string; vtep: string; ageMs: number }[]): number;
  /** Sends a peer probe with DF: 0, or the errno number (EMSGSIZE 90: larger than this host's path allows). */
  sendProbe(to: string, payload: Uint8Array): number;
  /** Probe replies received since the last call. */
  probeReplies(): { from: string; id: number; length: number; rttMs: number }[];
}

/** A running engine's fds, as a handover passes them (native/src/engine-handover.cc). */
export interface HandoverFds {
  readonly rx: number;
  readonly taps: readonly { readonly vni: number; readonly fd: number }[];
}

/** A link as rtnetlink tells it (RTM_NEWLINK / RTM_DELLINK, or getLink). */
export interface LinkInfo {
  readonly type: 'new' | 'del';
  readonly index: number;
  readonly name: string;
  /** ifindex of its bridge; 0: on none. */
  readonly master: number;
  readonly up: boolean;
  readonly mtu: number;
  /** 'bridge', 'tun', 'veth'… ('' when the kernel does not say). */
  readonly kind: string;
}

/** A TAP or UDP socket being read (readTap, readUdp); close() stops it (idempotent), and must come before the fd is closed. */
export interface FdReader {
  close(): void;
}

/** Link events being delivered (watchLinks); close() stops them (idempotent). */
export interface LinkWatch {
  close(): void;
}

export type TapOffload = 'csum' | 'tso4' | 'tso6';

/**
 * Bounds of the engine's tables that TypeScript shares (native/src: TrafficStats::kMaxRejected and kMaxPeers in
 * stats.h, LocalMacTable::kMaxIps in local-macs.h, kMaxVni in wire.h). Frozen. Pinned by test/native/limits.test.ts to
 * MAX_REJECTED, MAX_PEERS (traffic.ts), MAX_IPS (engine.ts) and MAX_VNI (src/packet/vxlan.ts).
 */
export interface NativeLimits {
  readonly maxRejected: number;
  readonly maxPeers: number;
  readonly maxIps: number;
  readonly maxVni: number;
  /** Largest learnMax / learnMaxPerPeer (kMaxLearned in learn.h; MAX_LEARNED in src/fdb/fdb.ts). */
  readonly maxLearned: number;
}

/** The addon's production surface (native/src/addon.cc). */
export interface NativeSurface {
  /** Counter names by index (native/src/counters.h); pinned to DROP_REASONS / TRAFFIC_COUNTERS by test/native/names.test.ts. */
  readonly dropReasons: readonly string[];
  readonly trafficCounters: readonly string[];
  readonly limits: NativeLimits;
  /**
   * Opens a TAP (IFF_TAP | IFF_NO_PI), sets its MTU, enslaves it to `bridge`, brings it up. Closing fd removes it.
   * With `offloads`, also IFF_VNET_HDR and the TUN_F_* offloads the kernel takes (`offloads` lists them). An empty
   * `bridge` puts it on none (attachLink does later).
   */
  openTap(name: string, mtu: number, bridge: string, offloads?: boolean): { fd: number; name: string; vnetHdr: boolean; offloads: TapOffload[] };
  closeFd(fd: number): void;
  /** Deletes a link (RTM_DELLINK); for a TAP this also wakes a read() blocked on it. */
  deleteLink(name: string): void;
  /**
   * Reads a TAP from the JS thread's event loop (fd made O_NONBLOCK): on each wake up to 64 frames, one read of
   * `readSize` bytes each, in one call of `onFrames`: frame i is the lengths[i] bytes after the frames before it in
   * `data` (a length equal to readSize: the frame did not fit and was cut short). `onError` once if the fd fails (a
   * TAP deleted under us), and the reader stops. `data` is the reader's own buffer, valid during the call only (the next
   * batch overwrites it): copy what must outlive it. The reference engine's reads (native/src/fd-reader.cc). The fd stays
   * the caller's. Holds the event loop open until closed or failed. Neither callback may throw.
   */
  readTap(fd: number, readSize: number, onFrames: (data: Buffer, lengths: readonly number[]) => void, onError: (err: Error) => void): FdReader;
  /** The same for a UDP socket (bindUdp): up to 64 datagrams per wake (one recvmmsg), with their senders (canonical text). */
  readUdp(
    fd: number,
    readSize: number,
    onDatagrams: (data: Buffer, lengths: readonly number[], senders: readonly string[]) => void,
    onError: (err: Error) => void,
  ): FdReader;
  /** A UDP socket bound to address:port with a 4 MiB receive buffer (SO_RCVBUFFORCE), for readUdp; close with closeFd. */
  bindUdp(address: string, port: number): number;
  /** A UDP socket that only sends (sendUdp), bound to address:port: DF, a filter that takes nothing in, a 4 MiB send buffer. */
  bindUdpSender(address: string, port: number): number;
  /**
   * Sends datagrams in sendmmsg calls (blocking: a full send buffer waits): datagram i is the lengths[i] bytes of
   * `data` after those before it, to to[i]:port. A datagram the kernel refuses (EMSGSIZE past the path, no route) is
   * skipped and counted in `failed`; `errno` is the last refusal's (0: none). Throws TypeError on bad arguments.
   */
  sendUdp(fd: number, data: Uint8Array, lengths: readonly number[], to: readonly string[], port: number): { failed: number; errno: number };
  /**
   * Writes frames to a TAP in order, one write() each: frame i is the lengths[i] bytes of `data` at offsets[i]. Returns
   * the indices of the frames the kernel refused (a TAP down or deleted), usually none. Throws TypeError on bad
   * arguments, before writing anything.
   */
  writeTap(fd: number, data: Uint8Array, offsets: readonly number[], lengths: readonly number[]): number[];
  /**
   * Link events of this network namespace (rtnetlink RTMGRP_LINK, read on a native thread), in batches on the JS
   * thread. `overflow`: some were lost (queue full), so look again with getLink. Does not hold the event loop open.
   * `onEvents` must not throw.
   */
  watchLinks(onEvents: (events: LinkInfo[], overflow: boolean) => void): LinkWatch;
  /** The link called `name` now, or null. */
  getLink(name: string): LinkInfo | null;
  /**
   * The kernel's path MTU from `local` toward `to` (the route's or device's MTU, lowered by an ICMP "fragmentation
   * needed" from the underlay), or 0 when it cannot tell. A connected UDP socket's IP_MTU: nothing is sent.
   */
  routeMtu(local: string, to: string): number;
  /** Sets a link's MTU, makes it a port of `bridge` (when not already) and brings it up. */
  attachLink(link: string, bridge: string, mtu: number): void;
  /** Name of the interface holding `address` (up or not), or null. */
  interfaceOf(address: string): string | null;
  /**
   * Handover (native/src/fd-passing.h): a listening Unix socket at `path` for one connection (mode 0600); one message
   * of `fds` and a short `header` (≤ 4096 bytes) to whoever listens at `path` (ours stay open); the fds and header of
   * one such message within `timeoutMs` (the caller owns them; the peer must be root or our user).
   */
  listenHandover(path: string): number;
  sendFds(path: string, fds: readonly number[], header: string): void;
  acceptFds(listenFd: number, timeoutMs: number): { fds: number[]; header: string };
  /** A TAP fd's interface name and whether it carries virtio-net headers (TUNGETIFF). */
  inspectTap(fd: number): { name: string; vnetHdr: boolean };
  /** sd_notify(3) to $NOTIFY_SOCKET ("READY=1", "MAINPID=<pid>"); false when unset (not under systemd Type=notify). */
  notifySystemd(message: string): boolean;
  /** Opens and binds the sockets; takes ownership of every tapFd (and rxFd), also when it throws. */
  createEngine(options: {
    local: string;
    port: number;
    underlayMtu: number;
    learning: boolean;
    agingMs: number;
    learnMaxPerPeer: number;
    learnMax: number;
    sourceCheck?: boolean;
    /** Local MACs kept per VNI (default 1024). */
    maxLocalMacs?: number;
    /** Try UDP GSO sends and GRO receives (each default true). */
    udpGso?: boolean;
    udpGro?: boolean;
    arpSuppression?: boolean;
    clampMss?: { ipv4: number; ipv6: number };
    /** Event loop (default threads): uring and auto fall back to threads when io_uring is missing or forbidden. */
    loop?: 'threads' | 'uring' | 'auto';
    /** io_uring loop: wait for this many completions (1-64), or at least one after uringMinWaitUs µs (kernel ≥ 6.12). */
    uringWaitNr?: number;
    uringMinWaitUs?: number;
    /** Tests only: how long a GSO flow socket stays open unused (default 60000; closed on the next once-a-second tick). */
    gsoSocketIdleMs?: number;
    networks: { vni: number; tapFd: number; mtu: number; vnetHdr?: boolean }[];
    /** The UDP socket handed over by the router this one replaces (already bound); absent: open and bind one. */
    rxFd?: number;
  }): NativeEngineHandle;
}

/** Twins of the TypeScript codecs, for tests only (native/src/twins.cc): each carries its TypeScript twin's name. */
export interface NativeTwins {
  /** Twin of encapsulate in src/packet/vxlan.ts. */
  encapsulate(frame: Uint8Array, vni: number, src: string, dst: string, dstPort: number): Buffer;
  /** Twin of flowPort in src/packet/flow.ts. */
  flowPort(frame: Uint8Array): number;
  /** Twin of classifyDatagram in ./classify.ts (peers as lists; the verdict's inner frame as an offset). */
  classifyDatagram(
    payload: Uint8Array,
    from: string,
    vnis: { vni: number; peers: string[] }[],
    maxFrame: number,
  ): { vni: number; offset: number } | { reason: string; vni?: number };
  /** What the TX thread makes of a TAP read (virtio header + frame): the frames it encapsulates, or null (tx_bad_offload). */
  segmentTso(packet: Uint8Array): Buffer[] | null;
  /** The TAP writes the RX thread makes of these inner frames (each: virtio header + frame; TCP runs merged);
   * `verified`: their outer UDP checksum was checked by the kernel, so no TCP checksum pass before merging. */
  mergeSegments(frames: readonly Uint8Array[], verified?: boolean): Buffer[];
  /** Whether the RX path trusts the outer UDP checksum of a datagram from `sender` (with or without UDP_GRO). */
  outerChecksumVerified(sender: string, udpGro: boolean): boolean;
  /** Twins of src/packet/neighbor.ts: the sender's IPv4 address; the engine's answer to an ARP request. */
  senderIpv4(frame: Uint8Array): string | null;
  arpAnswer(frame: Uint8Array, mac: string): { target: string; reply: Buffer } | null;
  /** Twins of src/packet/nd.ts: the sender's IPv6 address; the engine's answer to a Neighbor Solicitation. */
  senderIpv6(frame: Uint8Array): string | null;
  ndAnswer(frame: Uint8Array, mac: string): { target: string; reply: Buffer } | null;
  /** The learned-MAC table (LearnTable) run through `steps`, one result each. Twin of ForwardingTable in src/fdb/fdb.ts. */
  learnScript(options: { agingMs: number; maxPerPeer: number; maxTotal: number }, steps: readonly LearnStep[]): (string | number | null)[];
  /** A fresh GsoPolicy (native/src/tx.h) told of each refused GSO send ([address, errno]), then asked about each probe. */
  gsoPolicy(refusals: [address: string, errno: number][], probes: string[]): { actedOn: boolean[]; allowed: boolean[]; on: boolean };
  /**
   * One FlowSockets (native/src/udp-socket.h: the GSO flow sockets, bound to local:port) run through `steps` on the
   * clock they give: get → 'open' | 'taken' | 'full', sweep → sockets closed as idle, open → sockets open, free → whether
   * local:port can be bound now. Every socket is closed when it returns.
   */
  flowSockets(options: { local: string; idleMs: number; max: number }, steps: readonly FlowSocketStep[]): (string | number | boolean)[];
  /** Twin of tooBigReply in src/packet/icmp.ts: the ICMP / ICMPv6 "too big" answer to a frame, or null. */
  tooBigReply(frame: Uint8Array, mtu: number): Buffer | null;
  /** Twins of probeReply and isProbe in src/packet/probe.ts: the reply to a probe request (or null); a probe at all. */
  probeReply(datagram: Uint8Array): Buffer | null;
  isProbe(datagram: Uint8Array): boolean;
  /** A fresh TooBigLimiter (native/src/icmp.h) asked at each time (ms); twin of TooBigLimiter in src/packet/icmp.ts. */
  tooBigLimiter(rate: number, burst: number, times: readonly number[]): boolean[];
  /**
   * Twin of clampMss in src/packet/tcp-mss.ts, on a copy of the frame (ipv4 / ipv6: the MSS to clamp to, 0 = off); with
   * ipMtu, the clamp is first lowered to what fits a path of that inner IP MTU (twin of clampForPath).
   */
  clampMss(frame: Uint8Array, ipv4: number, ipv6: number, ipMtu?: number): { result: 'none' | 'clamped' | 'malformed'; frame: Buffer };
}

/**
 * One step of learnScript: a table (→ null), a sighting at a time (→ 'known' | 'learned' | 'full'), a lookup (→ the
 * VTEP or null), a whole expiry sweep (→ entries held).
 */
export type LearnStep =
  | readonly ['table', readonly { vni: number; peers: readonly string[] }[]]
  | readonly ['learn', number, string, string, number]
  | readonly ['lookup', number, string, number]
  | readonly ['sweep', number];

/** One step of flowSockets: at a time (ms) get a port's socket, sweep the idle ones; count the open ones; try a bind. */
export type FlowSocketStep =
  | readonly ['get', port: number, nowMs: number]
  | readonly ['sweep', nowMs: number]
  | readonly ['open']
  | readonly ['free', port: number];

/** The benchmark hook (native/src/bench.cc). */
export interface NativeBench {
  /** Mean ns per (VNI, MAC) lookup in a table of `entries` MACs (the benchmark's lookup-cost figure). */
  benchLookup(entries: number, lookups: number): number;
}

/** Everything the .node file exports. */
export interface NativeAddon extends NativeSurface, NativeTwins, NativeBench {}

/** From src/dataplane (tests, through tap's TypeScript loader) and from dist/dataplane alike: two levels up. */
const ADDON_PATH = fileURLToPath(new URL('../../native/build/Release/vxlan_native.node', import.meta.url));
let cached: NativeAddon | undefined;

/** The addon, loaded once. A missing or broken build becomes E_NATIVE with the command that fixes it. */
export function loadNative(): NativeAddon {
  if (cached === undefined) {
    try {
      cached = createRequire(import.meta.url)(ADDON_PATH) as NativeAddon;
    } catch (cause) {
      const why = cause instanceof Error ? cause.message : String(cause);
      throw new VxlanRouterError('E_NATIVE', `native addon not built: run \`npm run build\` (${ADDON_PATH}: ${why})`, { cause });
    }
  }
  return cached;
}

/** What the addon's errors carry (ThrowSys in native/src/js-error.cc): errno name, and the call and what it acted on. */
interface NativeSysError {
  readonly code?: unknown;
  readonly syscall?: unknown;
  readonly message?: unknown;
}

/** errno name (+ the call that failed, where the same errno means different things) → our error code. */
function errorCodeOf(errno: string, syscall: string): ErrorCode {
  if (syscall.startsWith('open /dev/net/tun') && (errno === 'ENOENT' || errno === 'ENODEV' || errno === 'ENXIO')) return 'E_NO_TUN';
  if (syscall.startsWith('SIOCBRADDIF') && (errno === 'ENODEV' || errno === 'EOPNOTSUPP' || errno === 'EINVAL')) return 'E_NO_BRIDGE';
  switch (errno) {
    case 'EADDRINUSE':
      return 'E_PORT_IN_USE';
    case 'EPERM':
    case 'EACCES':
      return 'E_PRIVILEGE';
    case 'EADDRNOTAVAIL':
      return 'E_ADDRESS';
    default:
      return 'E_SYSTEM';
  }
}

const HINTS: Partial<Record<ErrorCode, string>> = {
  E_PORT_IN_USE: 'stop the other VTEP (a kernel vxlan device or another router) or pass --port',
  E_PRIVILEGE: 'run as root (CAP_NET_ADMIN and CAP_NET_RAW)',
  E_ADDRESS: 'pass an address of this host to --local',
  E_NO_BRIDGE: 'create the bridge (ip link add <name> type bridge) or fix the --bridge name',
  E_NO_TUN: 'load the tun module (modprobe tun) or create /dev/net/tun (mknod /dev/net/tun c 10 200)',
};

/**
 * A native Error (code = errno name, syscall = what was attempted) → VxlanRouterError with the fix in the message.
 * EADDRINUSE → E_PORT_IN_USE, EPERM/EACCES → E_PRIVILEGE, EADDRNOTAVAIL → E_ADDRESS, ENODEV (or EOPNOTSUPP/EINVAL)
 * from enslaving to the bridge → E_NO_BRIDGE, ENOENT/ENODEV opening /dev/net/tun → E_NO_TUN, anything else E_SYSTEM.
 * VxlanRouterErrors pass through unchanged.
 */
export function toRouterError(err: unknown): VxlanRouterError {
  if (err instanceof VxlanRouterError) return err;
  const e: NativeSysError = typeof err === 'object' && err !== null ? (err as NativeSysError) : {};
  const errno = typeof e.code === 'string' ? e.code : '';
  const syscall = typeof e.syscall === 'string' ? e.syscall : '';
  const code = errorCodeOf(errno, syscall);
  const fix = HINTS[code];
  const message = typeof e.message === 'string' ? e.message : String(err);
  return new VxlanRouterError(code, `${message}${fix ? `: ${fix}` : ''}`, { cause: err });
}
