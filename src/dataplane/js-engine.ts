/**
 * The reference engine: the whole data path in readable TypeScript; the addon only reads and sends (in batches) and opens.
 *
 * Threading and buffers: everything runs on the JS thread. Each TAP and the receiving UDP socket are watched by the
 * event loop itself and drained in batches (the addon's readTap and readUdp: up to 64 frames or datagrams per wake,
 * in order, in the reader's own Buffer, reused). Inbound frames are written to their TAP at the end of their batch,
 * in order, in one addon call (writeTap; a TAP write either queues the frame or fails, it never blocks); outbound
 * datagrams are gathered per source socket during a TAP batch and sent at its end in one sendmmsg (the addon's
 * sendUdp; blocking: a full 4 MiB send buffer waits, as the native TX thread does). (Reading a TAP one frame per `fs.read` in libuv's thread pool, datagrams one
 * `message` event each and a `dgram` send per frame made this engine a tenth as fast as a one-frame-per-syscall C
 * relay: docs/benchmarks.md.)
 *
 * Outer source ports: a socket sends from one port, so the engine binds a small pool of sockets (DF, taking nothing
 * in) to ports in 49152-65535 and picks one by flow hash: one flow keeps one port, different flows spread (RFC 7348 §5).
 *
 * Slower than the native engine by design; its job is to be obviously right and to pin the native one's behaviour.
 */
import { closeSync, writeSync } from 'node:fs';
import { isIPv6 } from 'node:net';
import { VxlanRouterError } from '../errors.js';
import { ForwardingTable, macKey } from '../fdb/index.js';
import {
  arpReply,
  arpRequestTarget,
  canonicalIp,
  clampForPath,
  clampMss,
  encodeVxlanHeader,
  flowPort,
  formatMac,
  isProbe,
  MAX_PROBE_REPLIES,
  ndAdvertReply,
  ndSolicitTarget,
  parseProbe,
  PROBE_ANSWER_BURST,
  PROBE_HEADER_LEN,
  PROBE_ANSWER_RATE,
  probeReply,
  TooBigLimiter,
  tooBigReply,
  VXLAN_HEADER_LEN,
} from '../packet/index.js';
import type { ProbeReply, ProbeSendResult } from './peer-health.js';
import { buildVniPeers, classifyDatagram } from './classify.js';
import { announcement, ReboundTracker, senderIp } from './neighbors.js';
import { toRouterError, type FdReader, type NativeSurface } from './native.js';
import { TrafficStats, type Traffic } from './traffic.js';
import {
  DEFAULT_MAX_LOCAL_MACS,
  MAX_IPS,
  NO_OFFLOADS,
  zeroCounters,
  type Counters,
  type LocalMac,
  type Offloads,
  type EngineLoop,
  type Engine,
  type VniTap,
  type EngineOptions,
  type FdbEntry,
  type FdbCounts,
  type TableSnapshot,
  controlCounts,
} from './engine.js';

const ETH_HEADER_LEN = 14;
/** Room for one 802.1Q tag on top of the Ethernet header. */
const L2_ALLOWANCE = ETH_HEADER_LEN + 4;
const SOURCE_POOL_SIZE = 8;
/** A local MAC's sighting is refreshed (and its address looked at) this often at most: native/src/tx.cc kRefreshMs. */
const REFRESH_MS = 250;
const EPHEMERAL_LOW = 49152;
/** Bytes of datagrams a source socket gathers before it sends them (at the end of a TAP batch, or when full). */
const SEND_BATCH_BYTES = 256 << 10;
/** Datagrams a source socket gathers at most before it sends them. */
const SEND_BATCH_COUNT = 256;
/** sendUdp's errno for a datagram larger than the path (DF): a probe of that size is "too big". */
const EMSGSIZE = 90;

/** What the engine takes from the addon: its batched reads and sends, and its sockets (src/dataplane/native.ts). */
export type EngineIo = Pick<NativeSurface, 'readTap' | 'readUdp' | 'bindUdp' | 'bindUdpSender' | 'sendUdp' | 'writeTap' | 'closeFd'>;

/**
 * A source-port socket (the addon's: DF, takes nothing in) and the datagrams it gathers during a TAP batch, sent in
 * one sendmmsg at the batch's end: datagram i is the lengths[i] bytes of buf after those before it, to to[i].
 */
interface SourceSocket {
  readonly fd: number;
  readonly port: number;
  readonly buf: Buffer;
  at: number;
  readonly lengths: number[];
  readonly to: string[];
}

/** A received batch's frames for one TAP, written at the batch's end (writeTap): where each is in the batch, and from whom. */
interface Inbound {
  readonly offsets: number[];
  readonly lengths: number[];
  readonly from: string[];
}

export class JsEngine implements Engine {
  readonly kind = 'js' as const;
  private readonly counts: Counters = zeroCounters();
  /**
   * This host's own MACs (frame sources from the TAPs), per VNI then MAC, for advertisement. At most maxLocalMacs per
   * VNI, keyed by macKey (no string per frame); aged out after agingMs (swept every second). Twin: LocalMacTable in
   * native/src/local-macs.h.
   */
  private readonly local = new Map<number, Map<number, { mac: string; seen: number; ips: string[]; where: number }>>();
  private readonly maxLocalMacs: number;
  private table: TableSnapshot = { vnis: [] };
  /** Which addresses changed MAC, across withdrawals (announced on the bridge). */
  private readonly rebound: ReboundTracker;
  /** Per VNI: remote containers' addresses (IPv4 and IPv6) → MAC, for ARP and ND suppression. */
  private neighbors = new Map<number, Map<string, string>>();
  private readonly fdbTable: ForwardingTable;
  private readonly stats: TrafficStats;
  private readonly ipHeaderLen: number;
  private readonly family: 'udp4' | 'udp6';
  private readonly headers = new Map<number, Uint8Array>();
  private readonly taps = new Map<number, VniTap>();
  /** Per VNI: the reader of its TAP (none once the TAP failed, until replaceTap). */
  private readonly readers = new Map<number, FdReader>();
  /** Per VNI (TAP): the rate limit of "too big" answers. */
  private readonly tooBigLimits = new Map<number, TooBigLimiter>();
  private vniPeers = buildVniPeers([]);
  /** The receiving socket (bound to local:port by the addon) and its reader. */
  private rxFd: number | undefined;
  private rxReader: FdReader | undefined;
  /** Why the receiving socket stopped (it cannot be read any more): the engine's fault. */
  private rxFault: VxlanRouterError | undefined;
  private sourcePool: SourceSocket[] = [];
  private agingTimer: NodeJS.Timeout | undefined;
  private closed = false;
  /** VNIs whose TAP was deleted under us: their reader has ended (lostTaps, replaceTap). */
  private readonly lost = new Set<number>();
  private statics = controlCounts({ vnis: [] });
  /** Every peer of any VNI: probes are answered for these only. */
  private anyPeer = new Set<string>();
  private pathMtus = new Map<string, number>();
  private readonly probeAnswers = new TooBigLimiter(PROBE_ANSWER_RATE, PROBE_ANSWER_BURST);
  private replies: ProbeReply[] = [];
  /** Per VNI: the frames of the received batch being handled, for its TAP (reused from batch to batch). */
  private readonly inbound = new Map<number, Inbound>();

  constructor(
    private readonly opts: EngineOptions,
    private readonly io: EngineIo,
    private readonly now: () => number = Date.now,
  ) {
    this.maxLocalMacs = opts.maxLocalMacs ?? DEFAULT_MAX_LOCAL_MACS;
    this.family = isIPv6(opts.local) ? 'udp6' : 'udp4';
    this.ipHeaderLen = this.family === 'udp6' ? 40 : 20;
    this.fdbTable = new ForwardingTable({ agingMs: opts.agingMs, maxPerPeer: opts.learnMaxPerPeer, maxTotal: opts.learnMax, now });

    this.stats = new TrafficStats(now);
    this.rebound = new ReboundTracker(now);
    for (const n of opts.networks) {
      this.taps.set(n.vni, n);
      this.headers.set(n.vni, encodeVxlanHeader(n.vni));
      this.tooBigLimits.set(n.vni, new TooBigLimiter());
    }
  }

  async start(): Promise<void> {
    try {
      this.rxFd = bindUdp(this.io, this.opts.local, this.opts.port);
      for (let i = 0; i < SOURCE_POOL_SIZE; i++) this.sourcePool.push(this.bindSource());
    } catch (err) {
      await this.close();
      throw err;
    }
    // Room for the largest datagram we take, and one byte more: a datagram that fills it is oversize (rx_oversize).
    this.rxReader = this.io.readUdp(
      this.rxFd,
      VXLAN_HEADER_LEN + this.maxFrame() + 1,
      (data, lengths, senders) => {
        let at = 0;
        for (let i = 0; i < lengths.length; i++) {
          this.receive(data.subarray(at, at + lengths[i]!), senders[i]!, data);
          at += lengths[i]!;
        }
        this.deliver(data);
      },
      (err) => {
        this.rxReader = undefined;
        this.rxFault = new VxlanRouterError('E_SYSTEM', `the UDP socket on ${this.opts.local} port ${this.opts.port} cannot be read: ${err.message}`, { cause: err });
      },
    );
    this.agingTimer = setInterval(() => {
      this.fdbTable.expire();
      this.expireLocal();
    }, 1000).unref();
    for (const n of this.opts.networks) this.readTap(n);
  }

  applyTable(given: TableSnapshot): void {
    // Addresses compared as text (sources, flood lists, neighbours) in one spelling: FD00::0001 is fd00::1. Done before
    // any state changes, so a table with an address that does not parse is refused whole (PacketError).
    const table = canonicalTable(given);
    const rebound = this.rebound.next(table);
    this.table = table;
    this.fdbTable.load(table);
    this.statics = controlCounts(table);
    this.vniPeers = buildVniPeers(table.vnis);
    this.anyPeer = new Set(table.vnis.flatMap((v) => v.peers));
    this.stats.retain(new Set(table.vnis.flatMap((v) => v.peers)));
    this.neighbors = new Map(table.vnis.map((v) => [v.vni, new Map((v.neighbors ?? []).map((n) => [n.ip, n.mac]))]));
    for (const r of rebound) this.writeTap(r.vni, announcement(r.ip, r.mac));
  }

  counters(): Counters {
    return { ...this.counts };
  }

  fdb(): FdbEntry[] {
    return this.fdbTable.entries();
  }

  fdbCounts(): FdbCounts {
    return { ...this.statics, learned: this.fdbTable.learnedCount() };
  }

  localMacs(): LocalMac[] {
    this.expireLocal();
    const now = this.now();
    const rows: LocalMac[] = [];
    for (const [vni, macs] of this.local) for (const e of macs.values()) rows.push({ vni, mac: e.mac, ageMs: now - e.seen, ips: [...e.ips] });
    return rows;
  }

  /** The receiving socket that failed, if it did; a TAP that fails is reported through lostTaps (and recreated by the agent). */
  fault(): VxlanRouterError | undefined {
    return this.rxFault;
  }

  lostTaps(): number[] {
    return [...this.lost];
  }

  replaceTap(tap: VniTap): void {
    const old = this.taps.get(tap.vni);
    if (this.closed || old === undefined || !this.lost.has(tap.vni)) {
      closeSync(tap.tapFd);
      throw new VxlanRouterError('E_SYSTEM', `replace the TAP of VNI ${tap.vni}: ${this.closed ? 'engine closed' : old === undefined ? 'not served' : 'the current one still forwards'}`);
    }
    closeSync(old.tapFd);
    this.taps.set(tap.vni, tap);
    this.lost.delete(tap.vni);
    this.readTap(tap);
  }

  sourcePort(frame: Uint8Array): number {
    return this.sourcePool[flowPort(frame) % SOURCE_POOL_SIZE]?.port ?? 0; // 0: not started
  }

  traffic(): Traffic {
    return this.stats.snapshot();
  }

  /** None: one frame per datagram through dgram (the reference path). */
  offloads(): Offloads {
    return NO_OFFLOADS;
  }

  gsoSockets(): number {
    return 0; // no GSO: sends go through the pool sockets
  }

  /** Node's own event loop (dgram and the TAP streams). */
  loop(): EngineLoop {
    return { kind: 'node', fallback: '' };
  }

  /** Sent with DF from a pool socket (the receiving one only reads); answers come back to our port either way. */
  async sendProbe(to: string, payload: Uint8Array): Promise<ProbeSendResult> {
    const socket = this.sourcePool[0];
    if (socket === undefined || this.closed) return 'error';
    const r = this.io.sendUdp(socket.fd, payload, [payload.length], [to], this.opts.port);
    if (r.failed > 0) return r.errno === EMSGSIZE ? 'too-big' : 'error';
    this.counts.probes_sent++;
    return 'sent';
  }

  probeReplies(): ProbeReply[] {
    const r = this.replies;
    this.replies = [];
    return r;
  }

  setPathMtus(mtus: ReadonlyMap<string, number>): void {
    this.pathMtus = new Map([...mtus].map(([a, m]) => [canonicalIp(a), m]));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.agingTimer);
    for (const s of this.sourcePool) this.io.closeFd(s.fd);
    this.sourcePool = [];
    for (const r of [this.rxReader, ...this.readers.values()]) r?.close(); // before the fds close: the event loop watches them
    this.readers.clear();
    if (this.rxFd !== undefined) this.io.closeFd(this.rxFd);
    for (const n of this.taps.values()) closeSync(n.tapFd); // a TAP goes with its last fd
  }

  /** TAP → VXLAN: frames in the order the bridge sent them, a batch per event-loop wake. */
  private readTap(net: VniTap): void {
    const size = net.mtu + L2_ALLOWANCE;
    // One byte more than a frame may have: a read that fills its slot was cut short by the kernel (it copies what
    // fits and says so only by filling it).
    const onFrames = (data: Buffer, lengths: readonly number[]): void => {
      let at = 0;
      for (const n of lengths) {
        if (n > size) this.counts.tx_too_big++; // larger than the TAP's MTU allows, and perhaps cut short: dropped whole
        else this.transmit(net.vni, data.subarray(at, at + n));
        at += n;
      }
      this.flush();
    };
    // A TAP that fails has been deleted under us: this VNI waits for replaceTap (the agent recreates the TAP),
    // reported through lostTaps, never a silent end.
    const onError = (): void => {
      this.readers.delete(net.vni);
      if (!this.closed && this.taps.get(net.vni) === net) this.lost.add(net.vni);
    };
    const reader = this.io.readTap(net.tapFd, size + 1, onFrames, onError);
    this.readers.set(net.vni, reader);
  }

  private transmit(vni: number, frame: Buffer): void {
    if (frame.length < ETH_HEADER_LEN) {
      this.counts.tx_short_frame++;
      return;
    }
    const maxFrame = this.maxFrameTo(undefined);
    if (frame.length > maxFrame) {
      // Never fragmented: dropped, and (IPv4 with DF, IPv6) answered on the bridge with the MTU that fits, so that
      // the sender's path MTU discovery adapts. Twin of the native TX thread's rule.
      this.tooBig(vni, frame, maxFrame - ETH_HEADER_LEN);
      return;
    }
    if ((frame[6]! & 1) === 0) this.noteLocal(vni, frame);
    if (frame[0]! & 1 && this.opts.arpSuppression !== false) {
      // Broadcast / multicast floods, except an ARP request or Neighbor Solicitation for a known remote address.
      const target = arpRequestTarget(frame);
      const mac = target === undefined ? undefined : this.neighbors.get(vni)?.get(target);
      if (mac !== undefined) {
        if (this.writeTap(vni, arpReply(frame, mac))) this.counts.arp_suppressed++;
        return;
      }
      const target6 = ndSolicitTarget(frame);
      const mac6 = target6 === undefined ? undefined : this.neighbors.get(vni)?.get(target6);
      if (mac6 !== undefined) {
        if (this.writeTap(vni, ndAdvertReply(frame, mac6))) this.counts.nd_suppressed++;
        return;
      }
    }
    const route = this.fdbTable.lookup(vni, frame.subarray(0, 6));
    let vteps = route.kind === 'unicast' ? [route.vtep] : route.vteps;
    if (this.pathMtus.size > 0) {
      // Measured paths smaller than the underlay's: a unicast frame is answered with its peer's MTU; a flooded copy
      // is dropped for that peer only (unanswered). Twin of the native TX thread's path MTU stage.
      if (route.kind === 'unicast' && frame.length > this.maxFrameTo(route.vtep)) {
        this.tooBig(vni, frame, this.maxFrameTo(route.vtep) - ETH_HEADER_LEN);
        return;
      }
      vteps = vteps.filter((v) => frame.length <= this.maxFrameTo(v) || (this.counts.tx_too_big++, false));
    }
    if (vteps.length === 0) {
      this.counts.tx_no_destination++;
      return;
    }
    this.clamp(frame, vteps);
    const source = this.sourcePool[flowPort(frame) % this.sourcePool.length]!;
    const header = this.headers.get(vni)!;
    for (const vtep of vteps) {
      this.gather(source, header, frame, vtep);
      this.stats.sent(vtep, frame.length);
    }
    this.stats.forwarded(vni, frame.length);
    this.counts.tx_frames++;
    this.counts.tx_bytes += frame.length;
    this.counts.tx_datagrams += vteps.length;
    if (route.kind === 'flood') this.counts.tx_flooded++;
  }

  /** The largest inner frame the path to `vtep` carries (undefined: the underlay's). */
  private maxFrameTo(vtep: string | undefined): number {
    const underlay = this.opts.underlayMtu - this.ipHeaderLen - 8 - VXLAN_HEADER_LEN;
    const measured = vtep === undefined ? undefined : this.pathMtus.get(vtep);
    return measured === undefined ? underlay : Math.min(underlay, measured - this.ipHeaderLen - 8 - VXLAN_HEADER_LEN);
  }

  /** A frame too big for its path: dropped, and answered (rate-limited) with the IP MTU that fits. */
  private tooBig(vni: number, frame: Uint8Array, mtu: number): void {
    this.counts.tx_too_big++;
    const answer = tooBigReply(frame, mtu);
    if (answer === undefined) return;
    if (!this.tooBigLimits.get(vni)!.take(this.now())) this.counts.icmp_too_big_limited++;
    else if (this.writeTap(vni, answer)) this.counts.icmp_too_big_sent++;
  }

  /** A source socket on a random free port in 49152-65535 (the outer source ports of the flows it carries). */
  private bindSource(): SourceSocket {
    let last: unknown;
    for (let attempt = 0; attempt < 32; attempt++) {
      const port = EPHEMERAL_LOW + Math.floor(Math.random() * (65536 - EPHEMERAL_LOW));
      try {
        const fd = this.io.bindUdpSender(this.opts.local, port);
        return { fd, port, buf: Buffer.allocUnsafe(SEND_BATCH_BYTES), at: 0, lengths: [], to: [] };
      } catch (err) {
        last = err;
      }
    }
    throw new VxlanRouterError('E_SYSTEM', `no free UDP source port in ${EPHEMERAL_LOW}-65535 on ${this.opts.local}`, { cause: last });
  }

  /** Adds a datagram (VXLAN header + frame) to `s`'s batch; a full batch is sent first. */
  private gather(s: SourceSocket, header: Uint8Array, frame: Uint8Array, to: string): void {
    const len = header.length + frame.length;
    if (s.at + len > s.buf.length || s.lengths.length >= SEND_BATCH_COUNT) this.send(s);
    s.buf.set(header, s.at);
    s.buf.set(frame, s.at + header.length);
    s.at += len;
    s.lengths.push(len);
    s.to.push(to);
  }

  /** Sends every source socket's batch (the end of a TAP batch). */
  private flush(): void {
    for (const s of this.sourcePool) if (s.lengths.length > 0) this.send(s);
  }

  /** One sendmmsg of `s`'s batch; the kernel's refusals (no route, too big for the path) are counted. */
  private send(s: SourceSocket): void {
    this.counts.tx_send_error += this.io.sendUdp(s.fd, s.buf.subarray(0, s.at), s.lengths, s.to, this.opts.port).failed;
    s.at = 0;
    s.lengths.length = 0;
    s.to.length = 0;
  }

  /**
   * A peer probe (never a frame for the bridge). Hostile input: only peers are answered, rate-limited, with a reply
   * never larger than the request; replies to ours are kept (bounded) for the agent. Twin: native/src/probe-engine.cc.
   */
  private probe(payload: Buffer, from: string): void {
    const p = parseProbe(payload);
    if (p === undefined || !this.anyPeer.has(from)) {
      this.counts.rx_bad_probe++;
      return;
    }
    if (p.kind === 'request') {
      if (!this.probeAnswers.take(this.now())) {
        this.counts.probe_answers_limited++;
        return;
      }
      const source = this.sourcePool[0];
      if (source !== undefined) this.counts.tx_send_error += this.io.sendUdp(source.fd, probeReply(payload)!, [PROBE_HEADER_LEN], [from], this.opts.port).failed;
      this.counts.probes_answered++;
      return;
    }
    if (this.replies.length >= MAX_PROBE_REPLIES) {
      this.counts.rx_bad_probe++;
      return;
    }
    this.replies.push({ from, id: p.id, length: p.length, rttMs: Number(process.hrtime.bigint() - p.sentNs) / 1e6 });
    this.counts.probe_replies++;
  }

  /**
   * --clamp-mss: lowers a TCP SYN's MSS option in place (either way across the overlay), counted; no higher than what
   * fits the measured path to `peers` (the VTEPs it goes to, or the one it came from), as the native threads do.
   */
  private clamp(frame: Uint8Array, peers: readonly string[]): void {
    const c = this.opts.clampMss;
    if (c === undefined || (c.ipv4 === 0 && c.ipv6 === 0)) return;
    let max = Infinity;
    if (this.pathMtus.size > 0) for (const p of peers) if (this.pathMtus.has(p)) max = Math.min(max, this.maxFrameTo(p));
    const r = clampMss(frame, max === Infinity ? c : clampForPath(c, max - ETH_HEADER_LEN));
    if (r === 'clamped') this.counts.tcp_mss_clamped++;
    else if (r === 'malformed') this.counts.tcp_mss_bad_options++;
  }

  /**
   * Records a frame's source MAC (and the IPv4 or IPv6 address it used) as one of this host's own. A MAC seen with
   * that address in the last REFRESH_MS is left as it is, as the native TX thread does.
   */
  private noteLocal(vni: number, frame: Buffer): void {
    const key = macKey(frame, 6);
    const now = this.now();
    let macs = this.local.get(vni);
    if (macs === undefined) this.local.set(vni, (macs = new Map()));
    let e = macs.get(key);
    if (e === undefined) {
      if (macs.size >= this.maxLocalMacs) {
        this.counts.local_mac_refused++; // not recorded nor advertised; the frame still goes out
        return;
      }
      macs.set(key, (e = { mac: formatMac(frame, 6), seen: 0, ips: [], where: 0 }));
    }
    // Within the window only an address the MAC has not used yet is news (an IPv6 link-local after its ULA, an address
    // taken over): per (MAC, address), as the native TX thread keeps it. The stream's frames are told apart by a hash
    // of their sender-address bytes, not by parsing and formatting each one.
    const where = senderBytesHash(frame);
    const fresh = e.seen !== 0 && now - e.seen < REFRESH_MS;
    if (fresh && where === e.where) return;
    e.where = where;
    const ip = senderIp(frame);
    if (fresh && (ip === undefined || e.ips.includes(ip))) return;
    e.seen = now;
    if (ip !== undefined && e.ips[0] !== ip) e.ips = [ip, ...e.ips.filter((x) => x !== ip)].slice(0, MAX_IPS);
  }

  /** Forgets local MACs not seen for agingMs. */
  private expireLocal(): void {
    const now = this.now();
    for (const macs of this.local.values()) for (const [key, e] of macs) if (now - e.seen >= this.opts.agingMs) macs.delete(key);
  }

  /** A frame of our own onto a VNI's bridge (ARP / ND answers and announcements); false when the TAP refused it. */
  private writeTap(vni: number, frame: Uint8Array): boolean {
    const tap = this.taps.get(vni);
    try {
      if (tap === undefined) return false;
      writeSync(tap.tapFd, frame);
      return true;
    } catch {
      this.counts.rx_tap_write_error++;
      return false;
    }
  }

  /** VXLAN → TAP: validate (source, VNI, flags, lengths), learn, strip; written with the batch (deliver). `payload` is in `batch`. */
  private receive(payload: Buffer, from: string, batch: Buffer): void {
    if (isProbe(payload)) {
      this.probe(payload, from);
      return;
    }
    const verdict = classifyDatagram(payload, from, this.vniPeers, this.maxFrame());
    if (!verdict.ok) {
      this.counts[verdict.reason]++;
      if (verdict.reason === 'rx_unknown_source' && verdict.vni !== undefined) this.stats.refusedSource(from, verdict.vni);
      return;
    }
    const tap = this.taps.get(verdict.vni);
    if (tap === undefined) {
      this.counts.rx_unknown_vni++;
      return;
    }
    const inner = verdict.inner;
    const src = inner.subarray(6, 12);
    if (this.opts.sourceCheck !== false && this.spoofed(verdict.vni, src, from)) {
      this.counts.rx_spoofed_source++;
      return;
    }
    if (this.opts.learning) {
      const learned = this.fdbTable.learn(verdict.vni, src, from);
      if (learned === 'full') {
        this.counts.rx_learn_full++;
        return;
      }
      if (learned === 'learned') this.counts.learned++;
    }
    this.clamp(inner, [from]);
    let pending = this.inbound.get(verdict.vni);
    if (pending === undefined) this.inbound.set(verdict.vni, (pending = { offsets: [], lengths: [], from: [] }));
    pending.offsets.push(inner.byteOffset - batch.byteOffset);
    pending.lengths.push(inner.length);
    pending.from.push(from);
  }

  /**
   * Writes a received batch's frames to their TAPs, in the order they came, one writeTap per TAP (the batch's buffer
   * is the reader's, valid until this returns); counts what the TAPs took.
   */
  private deliver(batch: Buffer): void {
    for (const [vni, p] of this.inbound) {
      if (p.lengths.length === 0) continue;
      const tap = this.taps.get(vni);
      const refused = tap === undefined ? p.lengths.map((_, i) => i) : this.io.writeTap(tap.tapFd, batch, p.offsets, p.lengths);
      let r = 0;
      for (let i = 0; i < p.lengths.length; i++) {
        if (refused[r] === i) {
          r++;
          this.counts.rx_tap_write_error++;
          continue;
        }
        this.counts.rx_datagrams++;
        this.counts.rx_bytes += p.lengths[i]!;
        this.stats.received(p.from[i]!, vni, p.lengths[i]!);
      }
      p.offsets.length = 0;
      p.lengths.length = 0;
      p.from.length = 0;
    }
  }

  /**
   * A unicast inner source that is one of this host's MACs (seen on our TAP), or that the table places on another VTEP:
   * delivering it would move that MAC to our TAP port on the bridge. Twin: the source check in native/src/rx.cc.
   */
  private spoofed(vni: number, src: Uint8Array, from: string): boolean {
    if (src[0]! & 1) return false;
    const home = this.fdbTable.homeOf(vni, src);
    if (home !== undefined) return home !== from; // the control plane's word outranks our sighting (a container that moved)
    const local = this.local.get(vni)?.get(macKey(src));
    return local !== undefined && this.now() - local.seen < this.opts.agingMs; // the clock noteLocal stamps with
  }

  private maxFrame(): number {
    let mtu = 0;
    for (const n of this.opts.networks) mtu = Math.max(mtu, n.mtu);
    return mtu + L2_ALLOWANCE;
  }
}

/** The table with every address (peers, MAC homes, neighbour addresses) in canonical text (canonicalIp). */
function canonicalTable(t: TableSnapshot): TableSnapshot {
  return {
    vnis: t.vnis.map((v) => ({
      vni: v.vni,
      peers: [...new Set(v.peers.map(canonicalIp))],
      macs: v.macs.map((m) => ({ ...m, vtep: canonicalIp(m.vtep) })),
      ...(v.neighbors === undefined ? {} : { neighbors: v.neighbors.map((n) => ({ ...n, ip: canonicalIp(n.ip) })) }),
    })),
  };
}

/** The receiving socket, with the addon's errors in the product's words (EADDRINUSE → E_PORT_IN_USE). */
function bindUdp(io: EngineIo, address: string, port: number): number {
  try {
    return io.bindUdp(address, port);
  } catch (err) {
    throw toRouterError(err);
  }
}

/**
 * A hash of the bytes where an untagged frame's sender address sits (ARP sender IP, IPv4 or IPv6 source), without
 * parsing it: equal for a stream's frames, so noteLocal parses (senderIp) only when it changes. Other frames hash
 * their ethertype alone (they are parsed when that changes).
 */
function senderBytesHash(frame: Uint8Array): number {
  const type = frame.length >= 14 ? (frame[12]! << 8) | frame[13]! : 0;
  const from = type === 0x0806 ? 28 : type === 0x0800 ? 26 : type === 0x86dd ? 22 : 12;
  const to = type === 0x0806 ? 32 : type === 0x0800 ? 30 : type === 0x86dd ? 38 : 14;
  let h = 0x811c9dc5 ^ type;
  for (let i = from; i < to && i < frame.length; i++) h = Math.imul(h ^ frame[i]!, 0x01000193) >>> 0;
  return h;
}
