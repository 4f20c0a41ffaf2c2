/**
 * Peer health: each router probes every peer (VTEP) it forwards to, through its engine (Engine.sendProbe), with the
 * probes of src/packet/probe.ts, and keeps per peer: state, round-trip time, loss over the last minute, the path MTU
 * measured with DF probes, and when it last answered.
 *
 * Schedule per peer (interval I, 5 s by default; `probeInterval`):
 *  - liveness: a 52-byte probe (IPv4; 72 on IPv6) every I. Loss is over the liveness probes of the last minute whose
 *    answer time (PROBE_TIMEOUT_MS) has passed. Up: an answer within 3 I; down: none since, having answered before, or
 *    never having answered nor been heard at all; unknown: never answered but its VXLAN traffic arrives (a VTEP that
 *    does not speak probes, e.g. the kernel's), or still in its first 3 I.
 *  - path MTU, once the peer answers: one DF probe at the underlay MTU; if it is lost (or refused locally with
 *    EMSGSIZE) a bisection between the largest size answered and the smallest lost, to the byte (one probe in flight
 *    per peer, each lost step costs PROBE_TIMEOUT_MS). Then a probe at the measured size every 2 I: two lost in a
 *    row (the path shrank: a tunnel on the underlay, a link's MTU lowered) start the bisection again below it; and a
 *    probe at the underlay MTU every 60 I, to find a path that grew back.
 *  - a peer that does not answer probes (a kernel VTEP) cannot be measured by them: with `routeMtu`, the kernel's own
 *    path MTU toward it (the route's or device's MTU, lowered by ICMP "fragmentation needed" from the underlay) is
 *    read at each liveness probe and used while it is below the underlay MTU: what that path does accept.
 *  - bounds: at most MAX_PROBED_PEERS peers are probed, and at most MAX_PROBES_PER_SECOND probes leave per second in
 *    all (a peer over the budget waits for the next tick).
 *
 * Pure apart from what it is handed: the clocks (ms for the schedule, ns written into probes) and the send function.
 * The agent ticks it; the engine hands it the replies (Engine.probeReplies). Pinned by test/dataplane/peer-health.test.ts.
 */
import { randomInt } from 'node:crypto';
import { isIPv6 } from 'node:net';
import { encodeProbe, PROBE_HEADER_LEN, probePayloadSize } from '../packet/index.js';

export type PeerState = 'up' | 'down' | 'unknown';
export type ProbeSendResult = 'sent' | 'too-big' | 'error';

/** A probe reply as the engine hands it over. */
export interface ProbeReply {
  readonly from: string;
  readonly id: number;
  /** The request's UDP payload length as the peer received it. */
  readonly length: number;
  /** Reply's arrival minus the send time the probe carried (both on this process's monotonic clock), in ms. */
  readonly rttMs: number;
}

export interface PeerHealthRow {
  readonly address: string;
  readonly state: PeerState;
  /** Smoothed round-trip time in ms (null: never answered). */
  readonly rttMs: number | null;
  /** Liveness probes lost over the last minute, percent (null: none decided yet). */
  readonly lossPercent: number | null;
  /** The largest outer IP packet the path carries (null: not measured: the peer never answered). */
  readonly pathMtu: number | null;
  /** Not measured by probes, and the kernel's path MTU toward it is below the underlay's: that one (else null). */
  readonly routeMtu: number | null;
  /** Path MTU search under way (the figure above is the last one measured). */
  readonly measuring: boolean;
  /** ms since its last answer (null: never). */
  readonly lastAnswerAgoMs: number | null;
  readonly probesSent: number;
  readonly answers: number;
}

export const PROBE_TIMEOUT_MS = 1000;
export const LOSS_WINDOW_MS = 60_000;
export const MAX_PROBED_PEERS = 1024;
export const MAX_PROBES_PER_SECOND = 200;
/** Default liveness interval (config probeInterval, seconds). */
export const DEFAULT_PROBE_INTERVAL_MS = 5000;

export interface PeerProberOptions {
  /** The underlay device's MTU: the largest size probed, and the path MTU of a peer not measured. */
  readonly maxMtu: number;
  readonly intervalMs?: number;
  readonly send: (to: string, payload: Uint8Array) => Promise<ProbeSendResult>;
  readonly now?: () => number;
  readonly nowNs?: () => bigint;
  /** Called when a peer's path MTU changes (pathMtus() differs): the data path should hear of it at once. */
  readonly onPathMtu?: () => void;
  /** The kernel's path MTU toward an address (0: unknown): used for peers that do not answer probes. */
  readonly routeMtu?: (to: string) => number;
}

interface Outstanding {
  readonly peer: Peer;
  readonly kind: 'live' | 'mtu';
  readonly size: number;
  readonly sentAt: number;
}

interface Peer {
  readonly address: string;
  readonly v6: boolean;
  readonly since: number;
  nextLive: number;
  /** Liveness probes of the last minute: sent at, answered. */
  live: { at: number; answered: boolean }[];
  lastAnswer: number;
  srtt: number | null;
  sent: number;
  answers: number;
  // Path MTU: the largest size answered and the smallest lost in the current search; the result.
  good: number;
  bad: number;
  mtu: number | null;
  /** The kernel's path MTU toward it, when below the underlay's and the peer is not measured by probes. */
  routeMtu: number | null;
  searching: boolean;
  mtuInFlight: boolean;
  nextCheck: number;
  nextRaise: number;
  checkLosses: number;
  /** A search size lost once (no answer): tried again before it counts as too big (one lost probe is not a path). */
  lostOnce: number;
}

export class PeerProber {
  private readonly peers = new Map<string, Peer>();
  private readonly inFlight = new Map<number, Outstanding>();
  private readonly intervalMs: number;
  private readonly now: () => number;
  private readonly nowNs: () => bigint;
  private budget = { second: -1, used: 0 };
  /** Peers not probed: over MAX_PROBED_PEERS. */
  unprobed = 0;

  constructor(private readonly opts: PeerProberOptions) {
    this.intervalMs = opts.intervalMs ?? DEFAULT_PROBE_INTERVAL_MS;
    this.now = opts.now ?? Date.now;
    this.nowNs = opts.nowNs ?? (() => process.hrtime.bigint());
  }

  /** The peers to probe now (the union of every VNI's); others are forgotten. */
  setPeers(addresses: Iterable<string>): void {
    const want = new Set(addresses);
    for (const a of this.peers.keys()) if (!want.has(a)) this.peers.delete(a);
    for (const [id, o] of this.inFlight) if (!want.has(o.peer.address)) this.inFlight.delete(id);
    this.unprobed = 0;
    const now = this.now();
    for (const a of want) {
      if (this.peers.has(a)) continue;
      if (this.peers.size >= MAX_PROBED_PEERS) {
        this.unprobed++;
        continue;
      }
      const v6 = isIPv6(a);
      this.peers.set(a, {
        address: a,
        v6,
        since: now,
        // Spread over the first interval so that many peers do not get their probes in one burst.
        nextLive: now + Math.floor(Math.random() * Math.min(this.intervalMs, 1000)),
        live: [],
        lastAnswer: -1,
        srtt: null,
        sent: 0,
        answers: 0,
        good: this.minSize(v6),
        bad: this.opts.maxMtu + 1,
        mtu: null,
        routeMtu: null,
        searching: false,
        mtuInFlight: false,
        nextCheck: 0,
        nextRaise: 0,
        checkLosses: 0,
        lostOnce: 0,
      });
    }
  }

  /** Sends what is due: expires unanswered probes, then per peer a liveness probe and a path MTU step. */
  tick(): void {
    const now = this.now();
    for (const [id, o] of this.inFlight) {
      if (now - o.sentAt < PROBE_TIMEOUT_MS) continue;
      this.inFlight.delete(id);
      if (o.kind === 'mtu') this.mtuLost(o.peer, o.size, now, false);
    }
    for (const p of this.peers.values()) {
      if (now >= p.nextLive && this.take(now)) {
        p.nextLive = now + this.intervalMs;
        p.live.push({ at: now, answered: false });
        while (p.live.length > 0 && now - p.live[0]!.at > LOSS_WINDOW_MS) p.live.shift();
        this.send(p, 'live', this.minSize(p.v6), now);
        this.readRoute(p);
      }
      // Path MTU probes only to a peer that answers now: a dead one's losses say nothing about sizes.
      if (p.lastAnswer >= 0 && now - p.lastAnswer <= 2 * this.intervalMs && !p.mtuInFlight) this.mtuStep(p, now);
    }
  }

  /** A reply from the engine; one that matches nothing in flight (late, duplicated, forged) is ignored. */
  answer(r: ProbeReply): void {
    const o = this.inFlight.get(r.id);
    if (o === undefined || o.peer.address !== r.from || this.peers.get(r.from) !== o.peer) return;
    this.inFlight.delete(r.id);
    const p = o.peer;
    const now = this.now();
    p.lastAnswer = now;
    p.answers++;
    const rtt = Math.max(0, r.rttMs);
    p.srtt = p.srtt === null ? rtt : p.srtt + (rtt - p.srtt) / 8;
    if (o.kind === 'live') {
      const slot = p.live.find((l) => l.at === o.sentAt);
      if (slot !== undefined) slot.answered = true;
      return;
    }
    p.mtuInFlight = false;
    // The size that arrived, as the peer counted it: what crossed the path (never more than was sent).
    const size = Math.min(o.size, r.length + (p.v6 ? 40 : 20) + 8);
    if (p.searching) {
      p.good = Math.max(p.good, size);
      this.settle(p, now);
    } else {
      p.checkLosses = 0;
      if (size > (p.mtu ?? 0)) {
        p.mtu = size; // the raise probe came back: the path grew
        this.opts.onPathMtu?.();
      }
    }
  }

  /** Per peer, as `peers` shows it. `heardAgoMs`: when its VXLAN traffic last arrived (undefined: never). */
  rows(heardAgoMs: (address: string) => number | undefined = () => undefined): PeerHealthRow[] {
    const now = this.now();
    return [...this.peers.values()].map((p) => {
      const decided = p.live.filter((l) => now - l.at >= PROBE_TIMEOUT_MS && now - l.at <= LOSS_WINDOW_MS);
      const lost = decided.filter((l) => !l.answered).length;
      return {
        address: p.address,
        state: this.state(p, now, heardAgoMs(p.address)),
        rttMs: p.srtt,
        lossPercent: decided.length === 0 ? null : Math.round((1000 * lost) / decided.length) / 10,
        pathMtu: p.mtu,
        routeMtu: p.mtu === null ? p.routeMtu : null,
        measuring: p.searching,
        lastAnswerAgoMs: p.lastAnswer < 0 ? null : now - p.lastAnswer,
        probesSent: p.sent,
        answers: p.answers,
      };
    });
  }

  /** Measured path MTUs below the underlay's: what the data path must hold frames to (others use the underlay MTU). */
  pathMtus(): Map<string, number> {
    const out = new Map<string, number>();
    for (const p of this.peers.values()) {
      const mtu = p.mtu ?? p.routeMtu;
      if (mtu !== null && mtu < this.opts.maxMtu) out.set(p.address, mtu);
    }
    return out;
  }

  /** The kernel's path MTU toward a peer probes have not measured (a kernel VTEP), kept when below the underlay's. */
  private readRoute(p: Peer): void {
    if (this.opts.routeMtu === undefined || p.mtu !== null) return;
    const r = this.opts.routeMtu(p.address);
    const next = r >= this.minSize(p.v6) && r < this.opts.maxMtu ? r : null;
    if (next === p.routeMtu) return;
    p.routeMtu = next;
    this.opts.onPathMtu?.();
  }

  private state(p: Peer, now: number, heardAgo: number | undefined): PeerState {
    const downAfter = 3 * this.intervalMs;
    if (p.lastAnswer >= 0) return now - p.lastAnswer <= downAfter ? 'up' : 'down';
    if (heardAgo !== undefined && heardAgo <= LOSS_WINDOW_MS) return 'unknown'; // alive, but does not answer probes
    return now - p.since < downAfter + PROBE_TIMEOUT_MS ? 'unknown' : 'down';
  }

  private minSize(v6: boolean): number {
    return PROBE_HEADER_LEN + 8 + (v6 ? 40 : 20);
  }

  /** The next path MTU probe of `p`, if one is due. */
  private mtuStep(p: Peer, now: number): void {
    if (p.mtu === null && !p.searching) {
      if (now < p.nextCheck) return; // the last search was inconclusive: again after 2 intervals
      // First measurement: the underlay MTU itself first (the usual answer), bisecting only when it is lost.
      p.searching = true;
      p.good = this.minSize(p.v6);
      p.bad = this.opts.maxMtu + 1;
    }
    let size: number;
    if (p.searching) {
      size = p.bad > this.opts.maxMtu ? this.opts.maxMtu : Math.floor((p.good + p.bad) / 2);
    } else if (now >= p.nextRaise && p.mtu! < this.opts.maxMtu) {
      size = this.opts.maxMtu;
      p.nextRaise = now + 60 * this.intervalMs;
      p.nextCheck = now + 2 * this.intervalMs;
    } else if (now >= p.nextCheck) {
      size = p.mtu!;
      p.nextCheck = now + 2 * this.intervalMs;
    } else {
      return;
    }
    if (!this.take(now)) return;
    p.mtuInFlight = true;
    this.send(p, 'mtu', size, now);
  }

  private mtuLost(p: Peer, size: number, now: number, refusedHere: boolean): void {
    p.mtuInFlight = false;
    if (p.searching) {
      if (!refusedHere && p.lostOnce !== size) {
        p.lostOnce = size; // the next step tries the same size again
        return;
      }
      p.lostOnce = 0;
      p.bad = Math.min(p.bad, size);
      this.settle(p, now);
      return;
    }
    if (size !== p.mtu) return; // a raise probe lost: the path has not grown
    // The measured size no longer crosses: once may be chance, twice in a row is a smaller path. Retried at once.
    p.checkLosses++;
    p.nextCheck = now;
    if (p.checkLosses < 2) return;
    p.checkLosses = 0;
    // Searched again from the top, as at first: if the losses were the peer's absence rather than the path, the
    // underlay MTU is answered at once when it is back, not a byte less.
    p.searching = true;
    p.good = this.minSize(p.v6);
    p.bad = this.opts.maxMtu + 1;
  }

  /** Ends the search when the bounds meet: the largest size answered is the path MTU. */
  private settle(p: Peer, now: number): void {
    if (p.bad - p.good > 1 && p.good < this.opts.maxMtu) return;
    p.searching = false;
    // Below the smallest MTU IP allows (576, IPv6 1280) is not a path but a peer that stopped answering: inconclusive,
    // the last figure stays and the check tries again.
    if (p.good >= (p.v6 ? 1280 : 576) && p.mtu !== p.good) {
      p.mtu = p.good;
      this.opts.onPathMtu?.();
    }
    p.checkLosses = 0;
    p.nextCheck = now + 2 * this.intervalMs;
    p.nextRaise = now + 60 * this.intervalMs;
  }

  private take(now: number): boolean {
    const second = Math.floor(now / 1000);
    if (second !== this.budget.second) this.budget = { second, used: 0 };
    if (this.budget.used >= MAX_PROBES_PER_SECOND) return false;
    this.budget.used++;
    return true;
  }

  private send(p: Peer, kind: 'live' | 'mtu', size: number, now: number): void {
    // Random ids: a forged reply (the peer's address spoofed) must guess one of the few in flight.
    let id = randomInt(1, 0x100000000);
    while (this.inFlight.has(id)) id = randomInt(1, 0x100000000);
    const payload = encodeProbe({ kind: 'request', id, sentNs: this.nowNs(), length: 0 }, probePayloadSize(size, p.v6));
    this.inFlight.set(id, { peer: p, kind, size, sentAt: now });
    p.sent++;
    void this.opts.send(p.address, payload).then(
      (r) => {
        // Refused locally (EMSGSIZE: larger than this host's own path allows): as good as lost, and known at once.
        if (r === 'sent' || !this.inFlight.has(id)) return;
        this.inFlight.delete(id);
        if (kind !== 'mtu' || this.peers.get(p.address) !== p) return;
        this.mtuLost(p, size, this.now(), true);
        // Known at once, without a round trip: the search goes on now rather than at the next tick.
        if (p.searching && !p.mtuInFlight) this.mtuStep(p, this.now());
      },
      () => undefined,
    );
  }
}
