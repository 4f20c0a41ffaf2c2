/**
 * The default engine: a thin TypeScript face over the native addon's engine, which runs the whole per-packet path on
 * its own threads (see native/src/engine.h). JS only swaps table snapshots in and reads counters out; no JS runs
 * per packet.
 */
import { VxlanRouterError } from '../errors.js';
import { flowPort } from '../packet/index.js';
import { DEFAULT_LEARN_MAX, DEFAULT_LEARN_MAX_PER_PEER } from '../fdb/index.js';
import {
  dataPathStopped,
  DEFAULT_MAX_LOCAL_MACS,
  DROP_REASONS,
  NO_OFFLOADS,
  TRAFFIC_COUNTERS,
  zeroCounters,
  type Counters,
  type Engine,
  type EngineLoop,
  type EngineOptions,
  type FdbEntry,
  type FdbCounts,
  type VniTap,
  controlCounts,
  type LocalMac,
  type Offloads,
  type TableSnapshot,
} from './engine.js';
import { announcement, ReboundTracker } from './neighbors.js';
import type { Traffic } from './traffic.js';
import type { ProbeReply, ProbeSendResult } from './peer-health.js';
import { loadNative, toRouterError, type NativeAddon, type NativeEngineHandle, type NativeTable } from './native.js';

/**
 * The io_uring loop's wait ("N completions, or one after T µs"), for measuring: VXLAN_ROUTER_URING_WAIT=N,T
 * (benchmarks). Unset: the engine's default (wake on every completion).
 */
function uringWait(): { uringWaitNr?: number; uringMinWaitUs?: number } {
  const m = /^(\d+),(\d+)$/.exec(process.env.VXLAN_ROUTER_URING_WAIT ?? '');
  return m ? { uringWaitNr: Number(m[1]), uringMinWaitUs: Number(m[2]) } : {};
}

export class NativeEngine implements Engine {
  readonly kind = 'native' as const;
  private handle: NativeEngineHandle | undefined;
  private table: TableSnapshot = { vnis: [] };
  /** Which addresses changed MAC, across withdrawals (announced on the bridge). */
  private readonly rebound = new ReboundTracker();
  private closed = false;
  private statics = controlCounts({ vnis: [] });
  private faulted: VxlanRouterError | undefined;
  private pathMtus: ReadonlyMap<string, number> = new Map();

  constructor(
    private readonly opts: EngineOptions,
    private readonly addon: NativeAddon = loadNative(),
  ) {}

  async start(): Promise<void> {
    if (this.closed) throw new VxlanRouterError('E_SYSTEM', 'engine already closed');
    try {
      this.handle = this.addon.createEngine({
        local: this.opts.local,
        port: this.opts.port,
        underlayMtu: this.opts.underlayMtu,
        learning: this.opts.learning,
        agingMs: this.opts.agingMs,
        learnMaxPerPeer: this.opts.learnMaxPerPeer ?? DEFAULT_LEARN_MAX_PER_PEER,
        learnMax: this.opts.learnMax ?? DEFAULT_LEARN_MAX,
        sourceCheck: this.opts.sourceCheck ?? true,
        maxLocalMacs: this.opts.maxLocalMacs ?? DEFAULT_MAX_LOCAL_MACS,
        udpGso: this.opts.udpGso ?? true,
        udpGro: this.opts.udpGro ?? true,
        arpSuppression: this.opts.arpSuppression ?? true,
        ...(this.opts.clampMss !== undefined ? { clampMss: this.opts.clampMss } : {}),
        loop: this.opts.loop ?? 'auto',
        ...uringWait(),
        networks: this.opts.networks.map((n) => ({ vni: n.vni, tapFd: n.tapFd, mtu: n.mtu, vnetHdr: n.vnetHdr ?? false })),
        ...(this.opts.inherited !== undefined ? { rxFd: this.opts.inherited.rxFd } : {}),
      });
      this.handle.setTable(toNativeTable(this.table, this.pathMtus));
      if (this.opts.inherited !== undefined) this.handle.seedLearned(this.opts.inherited.learned);
      this.handle.start();
    } catch (err) {
      await this.close();
      throw toRouterError(err);
    }
  }

  applyTable(table: TableSnapshot): void {
    this.handle?.setTable(toNativeTable(table, this.pathMtus)); // a table the engine refuses (throws) is not kept
    this.table = table;
    this.statics = controlCounts(table);
    const rebound = this.rebound.next(table); // after the engine took the table: a refused one announces nothing
    for (const r of rebound) {
      try {
        this.handle?.injectFrame(r.vni, announcement(r.ip, r.mac));
      } catch {
        /* the TAP is going away: nobody left to tell */
      }
    }
  }

  counters(): Counters {
    const c = zeroCounters();
    if (this.handle === undefined) return c;
    const { drops, traffic } = this.handle.counters();
    DROP_REASONS.forEach((name, i) => (c[name] = drops[i] ?? 0));
    TRAFFIC_COUNTERS.forEach((name, i) => (c[name] = traffic[i] ?? 0));
    return c;
  }

  localMacs(): LocalMac[] {
    return this.handle?.localMacs() ?? [];
  }

  offloads(): Offloads {
    return this.handle?.features() ?? NO_OFFLOADS;
  }

  gsoSockets(): number {
    return this.handle?.gsoSockets() ?? 0;
  }

  sourcePort(frame: Uint8Array): number {
    return flowPort(frame);
  }

  loop(): EngineLoop {
    const l = this.handle?.loop() ?? { loop: 'threads', fallback: '' };
    return { kind: l.loop, fallback: l.fallback, ...(l.loop === 'uring' && l.receive ? { receive: l.receive } : {}) };
  }

  traffic(): Traffic {
    return this.handle?.traffic() ?? { peers: [], vnis: [], rejected: [] };
  }

  fault(): VxlanRouterError | undefined {
    const f = this.closed ? null : (this.handle?.fault() ?? null);
    if (f === null) return undefined;
    this.faulted ??= dataPathStopped(f.message, f);
    return this.faulted;
  }

  lostTaps(): number[] {
    return this.closed ? [] : (this.handle?.lostTaps() ?? []);
  }

  replaceTap(tap: VniTap): void {
    if (this.handle === undefined || this.closed) {
      this.addon.closeFd(tap.tapFd);
      throw new VxlanRouterError('E_SYSTEM', `replace the TAP of VNI ${tap.vni}: engine not running`);
    }
    try {
      this.handle.replaceTap(tap.vni, tap.tapFd, tap.vnetHdr ?? false);
    } catch (err) {
      throw toRouterError(err);
    }
  }

  fdb(): FdbEntry[] {
    const entries: FdbEntry[] = [];
    for (const v of this.table.vnis) {
      for (const m of v.macs) entries.push({ vni: v.vni, mac: m.mac, vtep: m.vtep, origin: m.origin ?? 'static', ageMs: 0 });
    }
    for (const l of this.handle?.learned() ?? []) entries.push({ ...l, origin: 'learned' });
    return entries;
  }

  fdbCounts(): FdbCounts {
    return { ...this.statics, learned: this.handle?.learnedCount() ?? 0 };
  }

  readonly handover = {
    quiesce: (): { rx: number; taps: readonly { vni: number; fd: number }[] } => {
      if (this.handle === undefined || this.closed) throw new VxlanRouterError('E_SYSTEM', 'engine not running');
      this.handle.quiesce();
      return this.handle.handoverFds();
    },
    resume: (): void => this.handle?.start(),
  };

  async sendProbe(to: string, payload: Uint8Array): Promise<ProbeSendResult> {
    if (this.handle === undefined || this.closed) return 'error';
    let errno: number;
    try {
      errno = this.handle.sendProbe(to, payload);
    } catch {
      return 'error';
    }
    return errno === 0 ? 'sent' : errno === EMSGSIZE ? 'too-big' : 'error';
  }

  probeReplies(): ProbeReply[] {
    return this.closed ? [] : (this.handle?.probeReplies() ?? []);
  }

  setPathMtus(mtus: ReadonlyMap<string, number>): void {
    this.pathMtus = new Map(mtus);
    this.handle?.setTable(toNativeTable(this.table, this.pathMtus));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // createEngine owns the TAP fds even when it failed; stop() joins the threads and closes sockets and TAPs.
    this.handle?.stop();
  }
}

/** Linux's EMSGSIZE: a datagram larger than the path (with DF) that the kernel refuses to send. */
const EMSGSIZE = 90;

function toNativeTable(t: TableSnapshot, pathMtus: ReadonlyMap<string, number>): NativeTable {
  return {
    pathMtus: [...pathMtus],
    vnis: t.vnis.map((v) => ({
      vni: v.vni,
      peers: [...v.peers],
      macs: v.macs.map((m): [string, string] => [m.mac, m.vtep]),
      neighbors: (v.neighbors ?? []).map((n): [string, string] => [n.ip, n.mac]),
    })),
  };
}
