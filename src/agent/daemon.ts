/**
 * The daemon: the one composition root. It owns the engine, the control planes (one per network), the control
 * socket, metrics, logs, signals and the ready line; `vxlan-router up` only parses options and hands over.
 *
 * Start order, undone in reverse when a step fails (nothing is left half-configured):
 *   preflight checks (nothing created yet) → each control plane opened (what it serves: etcd's definition, the
 *   snapshot's, or the configured VNI; plane-setup.ts) → TAPs (enslaved to their bridges, or taken over; tap-setup.ts)
 *   → engine (sockets, threads; engine-setup.ts) → control planes started (this host joins) → the first table applied
 *   → probing, links, MAC advertising → .env files, control socket, Docker, names, metrics (services.ts).
 * Stop order: control socket and metrics, then the control planes (this host withdraws), then the engine and TAPs.
 *
 * The data path learns what changed only through `Engine.applyTable` with the union of the planes' tables.
 */
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { defaultRunDir, etcdClientConfig, joinsOf, type NetworkJoin, type RouterConfig } from '../config/index.js';
import {
  combineStates,
  staticTable,
  type AddressConflict,
  type ControlPlane,
  type ControlPlaneState,
  type HostRange,
  type HostRow,
  type MacConflict,
  type NoRange,
  type PlaneNetwork,
  type RegistryCounters,
} from '../control/index.js';
import {
  loadNative,
  PeerProber,
  toRouterError,
  type Counters,
  type Engine,
  type EngineKind,
  type FdbEntry,
  type FdbCounts,
  type LocalMac,
  type NativeAddon,
  type Offloads,
  type EngineLoop,
  type PeerHealthRow,
  type TableSnapshot,
  type Traffic,
} from '../dataplane/index.js';
import { describeError, VxlanRouterError } from '../errors.js';
import { mergeTables } from '../fdb/index.js';
import { RateLimited, silentLogger, type Logger } from '../log.js';
import { canonicalIp, innerMtuLimit, mssClampFor, type MssClamp } from '../packet/index.js';
import type { Closable } from './closable.js';
import { offloadNames, SOFTWARE } from './control-protocol.js';
import type { TakeoverSession } from './control-socket.js';
import { goSchema, HANDOVER_VERSION, refusal, takeoverRequestSchema, type HandoverState } from './handover.js';
import { dockerJoins, type DockerSync } from './docker-sync.js';
import { startEngine } from './engine-setup.js';
import type { NamesService } from './names-service.js';
import { startProbing } from './peer-probing.js';
import { openPlanes } from './plane-setup.js';
import { startAdvertising } from './mac-advertiser.js';
import type { DnsCounters } from './dns-server.js';
import { checkBridge, checkPrivileges, checkTun, findUnderlay, type Underlay } from './preflight.js';
import { BridgePresence } from './bridge-presence.js';
import { LinkKeeper, type LinkState } from './links.js';
import type { HostSlice } from './runtime-files.js';
import { startServices } from './services.js';
import { defaultTapName, openTaps, type Handed } from './tap-setup.js';

export { defaultTapName };

/** One network this router serves: its VNI, TAP, bridge and MTU, and where its definition came from. */
export interface ServedNetwork {
  /** The etcd network; null with static peers. */
  readonly name: string | null;
  readonly vni: number;
  readonly tap: string;
  readonly bridge: string;
  /** The TAP's MTU, and the one asked for (--mtu, or the network's definition; null: DEFAULT_TAP_MTU). */
  readonly mtu: number;
  readonly configuredMtu: number | null;
  /** The MTU its containers should use, which this host advertises: the configured one, else what the path fits. */
  readonly containerMtu: number;
  readonly startedFrom: PlaneNetwork['startedFrom'];
  /** The etcd network's subnet (Docker's IPAM pool); null with static peers. */
  readonly subnet: string | null;
}

export interface DaemonInfo {
  readonly engine: EngineKind;
  readonly local: string;
  readonly port: number;
  readonly underlay: Underlay;
  /** Static peers (--peer), serving every network beside what etcd says. */
  readonly peers: readonly string[];
  /** Every network served, in the order of the config; at least one. */
  readonly networks: readonly ServedNetwork[];
  /** --clamp-mss as resolved (MSS per inner family), or null when off. */
  readonly clampMss: MssClamp | null;
}

/** What the control socket, metrics and doctor read from a running router. */
export interface DaemonView {
  readonly info: DaemonInfo;
  counters(): Counters;
  fdb(): FdbEntry[];
  /** This host's MACs as the data path last saw them on its bridges (with their addresses). */
  localMacs(): LocalMac[];
  /** Forwarding entries by origin, O(1) (metrics). */
  fdbCounts(): FdbCounts;
  /** Offloads in use now (GSO turns itself off if the kernel refuses it). */
  offloads(): Offloads;
  /** UDP sockets the engine holds open for GSO sends (one per outer source port in use; closed after a minute unused). O(1). */
  gsoSockets(): number;
  /** The event loop running the data path (native engine: threads or io_uring). */
  loop(): EngineLoop;
  /** The table the data path forwards with now (static peers merged with every control plane's). */
  table(): TableSnapshot;
  /** The control planes' state as one (worst state, oldest revision); null with static peers only. */
  controlPlane(): ControlPlaneState | null;
  /** Each network's control-plane state (null: static), in the order of info.networks. */
  networkStates(): (ControlPlaneState | null)[];
  /** Each network's address range for Docker, or why it has none, in the order of info.networks. */
  ranges(): (HostRange | NoRange)[];
  /** Frames and bytes per peer and per VNI, when each peer was last heard, refused sources. */
  traffic(): Traffic;
  /** The outer UDP source port the engine gives `frame`'s datagrams. */
  sourcePort(frame: Uint8Array): number;
  /** The registries' hosts (this one included); [] with static peers. */
  hosts(): HostRow[];
  /** MACs that several hosts advertise at once. */
  macConflicts(): MacConflict[];
  /** Addresses several MACs claim (forged or duplicate), with the owner ARP / ND answer for. */
  addressConflicts(): AddressConflict[];
  /** Local MACs withdrawn from the advertisement since start because they left their bridge (container gone, or moved). */
  macsLeftBridge(): number;
  /** The registries' counters summed (null with static peers only), and tables the data path refused. */
  registryCounters(): RegistryCounters | null;
  refusedTables(): number;
  /** What keeps the Docker networks from being as etcd says (up --docker); absent or [] when nothing. */
  dockerProblems?(): string[];
  /** Each network's bridge and TAP as the router follows them (bridge missing since…), in the order of info.networks. */
  links(): LinkState[];
  /** The name server's counters (`up --dns`); null (or absent) when it is off. */
  dnsCounters?(): DnsCounters | null;
  /** Per peer (canonical address): state, RTT, loss, path MTU from probing; [] with probing off (probeInterval 0). */
  peerHealth(): PeerHealthRow[];
}

export interface DaemonOptions {
  /** The addon loader (tests inject a fake). */
  readonly addon?: () => NativeAddon;
  /** Structured logs (default: none). Problems the router works around are rate-limited per kind. */
  readonly log?: Logger;
  /** Debounce of snapshot writes (default 500 ms). */
  readonly snapshotDebounceMs?: number;
  /**
   * Take over the router that answers on the control socket (`up --takeover`, handover.ts): its UDP socket, TAPs,
   * table and MACs, instead of opening new ones. It must serve the same address, port, VNIs and TAP names.
   */
  readonly takeover?: boolean;
  /**
   * Starts a new router process with this one's options and --takeover (the CLI's `up`): how `up --docker` comes to
   * serve networks defined (or stop serving networks removed) after it started. Absent: those need a restart.
   */
  readonly respawn?: () => ChildProcess;
}

/** Stable across restarts, distinct for each underlay address of one machine (and each lab namespace). */
export function defaultHostId(local: string): string {
  let machine = 'host';
  try {
    machine = readFileSync('/etc/machine-id', 'utf8').trim().slice(0, 12) || machine;
  } catch {
    /* no machine id: the address alone still tells hosts apart */
  }
  return `${machine}-${local}`;
}

/** How often the engine is asked whether its data path stopped on its own (Engine.fault). */
const FAULT_POLL_MS = 250;

/** sd_notify when run by systemd with Type=notify; a failure is logged, never fatal (the unit's timeout tells). */
function notify(native: NativeAddon, message: string, log: Logger): void {
  try {
    native.notifySystemd(message);
  } catch (err) {
    log.warn(`cannot notify systemd (${message.replace('\n', ' ')}): ${describeError(toRouterError(err))}`);
  }
}

/** The control socket: --socket, else in the run dir, named for the first TAP (--docker: one name whatever is served,
 * so that a handover to a router serving other networks finds it). */
function controlSocketPath(config: RouterConfig, joins: readonly NetworkJoin[], served: readonly PlaneNetwork[]): string {
  return config.socket ?? join(defaultRunDir(), config.docker ? 'vxlan-router.sock' : `${joins[0]!.tap ?? defaultTapName(served[0]!.vni)}.sock`);
}

export class Daemon implements DaemonView {
  private readonly startedAt = new Date();
  private current: TableSnapshot = { vnis: [] };
  private tablesRefused = 0;
  private readonly refusedWarn: RateLimited;
  private closing: Promise<void> | undefined;
  private presence: BridgePresence | undefined;
  /** The table handed over by the router this one took over, merged in until every plane has a table of its own. */
  private inherited: TableSnapshot | undefined;
  private readonly fresh = new Set<ControlPlane>();
  /** Set once this router has handed its data path to another: it stops without withdrawing. */
  private handedOver = false;
  private handingOver = false;
  private stopRun: (() => void) | undefined;
  /** The Docker networks' sync (up --docker). */
  private sync: DockerSync | undefined;
  private respawned: ChildProcess | undefined;
  private respawnFailures = 0;
  private respawnAfter = 0;
  private keeper: LinkKeeper | undefined;
  private names: NamesService | undefined;
  private prober: PeerProber | undefined;

  private constructor(
    readonly info: DaemonInfo,
    private readonly engine: Engine,
    private readonly planes: readonly ControlPlane[],
    private readonly log: Logger,
    /** Closed in reverse order by close(): engine first in, last out. */
    private readonly owned: Closable[],
    private readonly native: NativeAddon,
  ) {
    this.refusedWarn = new RateLimited(log);
  }

  /** Builds and starts everything a router is; a failure at any step closes what the earlier steps made. */
  static async start(config: RouterConfig, opts: DaemonOptions = {}): Promise<Daemon> {
    const log = opts.log ?? silentLogger;
    const warn = new RateLimited(log);
    let joins = joinsOf(config);
    checkPrivileges(config.engine === 'native');
    checkTun();
    const connection = etcdClientConfig(config);
    // --docker: every network etcd defines, each on its own bridge unless the config names one (docker-sync.ts).
    if (config.docker && connection !== undefined) joins = await dockerJoins(connection, config.stateDir, joins, log);
    for (const j of joins) checkBridge(j.bridge);
    const native = (opts.addon ?? loadNative)();
    const underlay = findUnderlay(config.local, (a) => native.interfaceOf(a));
    const hostId = config.hostId ?? defaultHostId(config.local);

    const owned: Closable[] = [];
    const undo = async (): Promise<void> => {
      for (const c of owned.splice(0).reverse()) await c.close();
    };
    try {
      const { planes, served } = await openPlanes({ config, joins, connection, hostId, snapshotDebounceMs: opts.snapshotDebounceMs, log, warn }, owned);
      const socketPath = controlSocketPath(config, joins, served);
      const opened = await openTaps({ config, joins, served, underlay, native, socketPath, takeover: opts.takeover === true, log }, owned);
      const { networks, handed } = opened;
      const clampMss = mssClampFor(config.clampMss, innerMtuLimit(underlay.mtu, config.local));
      const { engine, startUs } = await startEngine(config, native, underlay, opened, clampMss);
      if (handed !== undefined) {
        // Under systemd (Type=notify, NotifyAccess=all), this process is the service's main process from now on: the
        // old one's exit must not end the service.
        notify(native, `MAINPID=${process.pid}`, log);
        log.info({ oldPid: handed.state.pid, oldSoftware: handed.state.software, startUs }, 'took over the data path');
      }

      // The planes move behind the engine in `owned`, so they are closed first: this host withdraws, then stops forwarding.
      for (const p of planes) owned.splice(owned.indexOf(p), 1);
      owned.push(...planes);

      const info: DaemonInfo = { engine: engine.kind, local: config.local, port: config.port, underlay, peers: config.peers, networks, clampMss: clampMss ?? null };
      const daemon = new Daemon(info, engine, planes, log, owned, native);
      if (handed !== undefined) {
        daemon.inherited = handed.state.table;
        daemon.current = handed.state.table;
      }
      await daemon.joinPlanes();
      daemon.follow(config, handed, warn);
      await startServices({
        config, router: daemon, startedAt: daemon.startedAt, networks, planes, connection, socketPath, handed, hostId, log, warn,
        respawn: (why) => daemon.respawn(why, opts.respawn),
        adopt: { sync: (s) => (daemon.sync = s), names: (n) => (daemon.names = n) },
      }, owned);
      log.info({ ...info, offloads: engine.offloads(), loop: engine.loop(), socket: config.socket, metrics: config.metrics }, 'router ready');
      return daemon;
    } catch (err) {
      await undo();
      throw err;
    }
  }

  /** Starts the control planes (this host joins each network), then hands the engine the first table. */
  private async joinPlanes(): Promise<void> {
    const { networks } = this.info;
    const names = networks.flatMap((n) => (n.name !== null ? [n.name] : []));
    for (const [i, p] of this.planes.entries()) {
      if (p.kind === 'static') this.fresh.add(p);
      p.on('table', () => {
        this.fresh.add(p);
        this.apply();
      });
      await p.start({ mtu: networks[i]!.containerMtu, networks: names });
    }
    this.apply();
  }

  /** What follows the running data path: peer probing, the bridges and TAPs, this host's MACs (each closed before the engine). */
  private follow(config: RouterConfig, handed: Handed | undefined, warn: RateLimited): void {
    const { engine, native, info, owned } = this;
    const { networks } = info;
    // Peer health: probes to every peer, the measured path MTUs handed to the data path (peer-probing.ts).
    if (config.probeInterval > 0) {
      const probing = startProbing({ engine, native, local: info.local, underlayMtu: info.underlay.mtu, intervalSeconds: config.probeInterval, peers: allPeers(this.current), log: this.log });
      this.prober = probing.prober;
      owned.push(probing);
    }

    // The bridge and TAP followed through rtnetlink: rejoined, recreated (src/agent/links.ts). Closed before the engine.
    const tapOffloads = config.engine === 'native' && config.offloads.includes('tap');
    const keeper = new LinkKeeper(networks.map((n) => ({ vni: n.vni, tap: n.tap, bridge: n.bridge, mtu: n.mtu, offloads: tapOffloads })), engine, native, this.log);
    this.keeper = keeper;
    keeper.start();
    owned.push(keeper);

    // This host's MACs to every control plane, and the old router's until they would have aged out (mac-advertiser.ts).
    const presence = (this.presence = new BridgePresence(networks.map((n) => ({ vni: n.vni, bridge: n.bridge, tap: n.tap }))));
    owned.push(startAdvertising({ engine, planes: this.planes, presence, inherited: handed?.state.localMacs ?? [], inheritedUntil: Date.now() + config.agingSeconds * 1000, maxLocalMacs: config.maxLocalMacs, warn }));
  }

  /**
   * Prints the ready line and runs until SIGINT or SIGTERM, then closes everything. The ready line comes after the
   * signal handlers are in place: whoever reads it may signal at once.
   */
  run(out: (line: string) => void): Promise<void> {
    const { info } = this;
    const all = <K extends keyof ServedNetwork>(k: K): string => info.networks.map((n) => n[k]).join(',');
    return new Promise((resolve, reject) => {
      // The native engine's threads are invisible to the event loop: hold it open until a signal says stop.
      const keepAlive = setInterval(() => undefined, 1 << 30);
      // A data-path thread that stopped on its own for a reason the link keeper cannot mend (a TAP deleted under it
      // is recreated: links.ts) ends the process non-zero, logged, so that a supervisor restarts the router.
      const watch = setInterval(() => {
        const fault = this.engine.fault();
        if (fault === undefined) return;
        clearInterval(watch);
        this.log.error({ code: fault.code, kind: fault.kind }, describeError(fault));
        stop(fault);
      }, FAULT_POLL_MS);
      // Node's default for SIGUSR1 opens the inspector on a TCP port: a daemon must not. Everything the router can
      // tell is on its control socket.
      const usr1 = (): void => this.log.info('SIGUSR1 ignored: ask the control socket (vxlan-router status | counters | table)');
      const stop = (fault?: unknown): void => {
        clearInterval(keepAlive);
        clearInterval(watch);
        this.stopRun = undefined;
        process.off('SIGINT', stop).off('SIGTERM', stop).off('SIGUSR1', usr1);
        void this.close().then(() => (fault instanceof VxlanRouterError ? reject(fault) : resolve()));
      };
      this.stopRun = () => stop();
      process.on('SIGINT', stop).on('SIGTERM', stop).on('SIGUSR1', usr1);
      const names = info.networks.some((n) => n.name !== null) ? ` network=${all('name')}` : '';
      out(
        `vxlan-router: ready engine=${info.engine} tap=${all('tap')} tap-mtu=${all('mtu')} path-mtu=${innerMtuLimit(info.underlay.mtu, info.local)} vni=${all('vni')} local=${info.local}:${info.port} ` +
          `underlay=${info.underlay.device}/${info.underlay.mtu} peers=${info.peers.join(',') || '(none)'}${names} offloads=${offloadNames(this.offloads()).join(',') || 'none'}`,
      );
      notify(this.native, `READY=1\nMAINPID=${process.pid}`, this.log);
    });
  }

  /**
   * Withdraws from the registries, stops forwarding, removes the TAPs and the control socket. Safe to call twice.
   * After a handover: closes this process's copies only, and leaves the etcd lease to run out.
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      const opts = { keepLease: this.handedOver };
      for (const c of this.owned.splice(0).reverse()) {
        try {
          await c.close(opts);
        } catch (err) {
          this.log.warn({ code: err instanceof VxlanRouterError ? err.code : undefined }, `while stopping: ${describeError(err)}`);
        }
      }
    })();
    return this.closing;
  }

  counters(): Counters {
    return this.engine.counters();
  }

  fdb(): FdbEntry[] {
    return this.engine.fdb();
  }

  localMacs(): LocalMac[] {
    return this.engine.localMacs();
  }

  fdbCounts(): FdbCounts {
    return this.engine.fdbCounts();
  }

  offloads(): Offloads {
    return this.engine.offloads();
  }

  gsoSockets(): number {
    return this.engine.gsoSockets();
  }

  loop(): EngineLoop {
    return this.engine.loop();
  }

  table(): TableSnapshot {
    return this.current;
  }

  controlPlane(): ControlPlaneState | null {
    return combineStates(this.planes.map((p) => p.state()));
  }

  networkStates(): (ControlPlaneState | null)[] {
    return this.planes.map((p) => p.state());
  }

  ranges(): (HostRange | NoRange)[] {
    return this.planes.map((p) => p.range());
  }

  traffic(): Traffic {
    return this.engine.traffic();
  }

  sourcePort(frame: Uint8Array): number {
    return this.engine.sourcePort(frame);
  }

  hosts(): HostRow[] {
    return this.planes.flatMap((p) => p.hosts());
  }

  macConflicts(): MacConflict[] {
    return this.planes.flatMap((p) => p.macConflicts());
  }

  addressConflicts(): AddressConflict[] {
    return this.planes.flatMap((p) => p.addressConflicts());
  }

  macsLeftBridge(): number {
    return this.presence?.withdrawn ?? 0;
  }

  registryCounters(): RegistryCounters | null {
    const all = this.planes.map((p) => p.counters()).filter((c): c is RegistryCounters => c !== null);
    if (all.length === 0) return null;
    const sum = (k: keyof RegistryCounters): number => all.reduce((n, c) => n + c[k], 0);
    return {
      relists: sum('relists'),
      rejectedRecords: sum('rejectedRecords'),
      leaseRegrants: sum('leaseRegrants'),
      unadvertisedMacs: sum('unadvertisedMacs'),
      refusedClaims: sum('refusedClaims'),
      limitedOwnershipChanges: sum('limitedOwnershipChanges'),
      unadvertisedNames: sum('unadvertisedNames'),
    };
  }

  /**
   * The old router's side of a takeover (handover.ts): checks the request (a refusal changes nothing), answers with
   * its state while it still forwards, and on the new router's go pauses the data path, sends the fds, and stops
   * without withdrawing once its last answer is out.
   */
  handOver(raw: unknown, session: TakeoverSession): void {
    const refuse = (message: string): void => session.end({ ok: false, error: message });
    const parsed = takeoverRequestSchema.safeParse(raw);
    if (!parsed.success) {
      const version = (raw as { handover?: unknown }).handover;
      return refuse(typeof version === 'number' && version !== HANDOVER_VERSION
        ? `handover version ${version} is not this router's ${HANDOVER_VERSION} (${SOFTWARE}): stop this router and start the new one instead (a plain restart)`
        : `bad takeover request: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
    }
    const req = parsed.data;
    const handover = this.engine.handover;
    const why = refusal(req, { engine: this.info.engine, local: this.info.local, port: this.info.port, networks: this.info.networks, canHandOver: handover !== undefined });
    if (why !== undefined || handover === undefined) {
      this.log.warn({ newPid: req.pid, newSoftware: req.software }, `takeover refused: ${why}`);
      return refuse(why ?? 'cannot hand over');
    }
    if (this.handingOver || this.closing !== undefined) return refuse('this router is already stopping or handing over');
    this.handingOver = true;
    const learned = this.engine.fdb().flatMap((e) => (e.origin === 'learned' ? [{ vni: e.vni, mac: e.mac, vtep: e.vtep, ageMs: Math.round(e.ageMs) }] : []));
    const state: HandoverState = {
      handover: HANDOVER_VERSION,
      software: SOFTWARE,
      pid: process.pid,
      table: this.current as HandoverState['table'], // only serialized
      learned,
      localMacs: this.engine.localMacs().map((m) => ({ vni: m.vni, mac: m.mac, ageMs: m.ageMs, ips: [...m.ips] })),
      networks: this.info.networks.map((n) => ({ vni: n.vni, tap: n.tap, mtu: n.mtu })),
      ...(this.names?.addedAddress() !== undefined ? { dnsAdded: this.names.addedAddress() } : {}),
    };
    session.send(state);
    void session.next(10_000).then((go) => {
      if (!goSchema.safeParse(go).success) {
        this.handingOver = false;
        this.log.warn({ newPid: req.pid }, 'takeover abandoned by the new router: forwarding on');
        return refuse('takeover abandoned');
      }
      const t0 = process.hrtime.bigint();
      const fds = handover.quiesce();
      try {
        const header = { handover: HANDOVER_VERSION, rx: 0, taps: fds.taps.map((t, i) => ({ vni: t.vni, index: i + 1 })) };
        this.native.sendFds(req.path, [fds.rx, ...fds.taps.map((t) => t.fd)], JSON.stringify(header));
      } catch (err) {
        handover.resume();
        this.handingOver = false;
        const e = toRouterError(err);
        this.log.warn({ code: e.code }, `takeover failed, forwarding again: ${describeError(e)}`);
        return refuse(`cannot pass the fds: ${describeError(e)}`);
      }
      const pauseUs = Number((process.hrtime.bigint() - t0) / 1000n);
      this.handedOver = true;
      this.names?.keepAddress(); // the name server's address stays routed; only its socket is closed until the new one binds
      this.log.info({ newPid: req.pid, newSoftware: req.software, pauseUs }, 'handed the data path over; stopping without withdrawing');
      session.end({ ok: true, result: { pauseUs } }, () => {
        if (this.stopRun !== undefined) this.stopRun();
        else void this.close();
      });
    });
  }

  /** The union of every plane's table, with the static peers (--peer) on every VNI (and, until every plane has its
   * own, the table handed over by the router this one took over). */
  private merged(): TableSnapshot {
    const vnis = this.info.networks.map((n) => n.vni);
    if (this.inherited !== undefined && this.planes.every((p) => this.fresh.has(p))) this.inherited = undefined;
    return mergeTables(staticTable(vnis, this.info.peers), ...this.planes.map((p) => p.table()), ...(this.inherited !== undefined ? [this.inherited] : []));
  }

  /**
   * Hands the engine the newest union of the tables. A table the engine refuses (an address it cannot use) must not
   * take the process down, nor stop forwarding: it is counted and logged, and the last good table stays.
   */
  private apply(): void {
    const next = this.merged();
    try {
      this.engine.applyTable(next);
      this.current = next;
      this.prober?.setPeers(allPeers(next));
    } catch (err) {
      this.tablesRefused++;
      this.refusedWarn.warn('table-refused', `the data path refused a new table (${describeError(err)}); forwarding with the last good one`, { tablesRefused: this.tablesRefused });
    }
  }

  /**
   * Hands over to a new router process (`respawn`: this one's options, --takeover) that serves what etcd defines now.
   * One at a time; a new process that fails (it exits without taking over; this one forwards on) is tried again
   * after a growing pause. The native engine only (the JS engine cannot pass its sockets on): otherwise a warning.
   */
  respawn(why: string, start: (() => ChildProcess) | undefined): void {
    if (this.respawned !== undefined || this.handingOver || this.handedOver || this.closing !== undefined || Date.now() < this.respawnAfter) return;
    if (start === undefined || this.engine.handover === undefined) {
      this.respawnAfter = Date.now() + 60_000;
      this.log.warn(`${why}: restart the router to serve the new list (${start === undefined ? 'not started by vxlan-router up' : 'the js engine cannot hand over'})`);
      return;
    }
    this.log.info(`${why}: handing over to a new router process that serves them`);
    let child: ChildProcess;
    try {
      child = start();
    } catch (err) {
      this.respawnAfter = Date.now() + 10_000;
      this.log.warn(`${why}: cannot start a new router: ${describeError(err)}`);
      return;
    }
    this.respawned = child;
    child.once('exit', (code) => {
      this.respawned = undefined;
      if (this.handedOver) return;
      this.respawnFailures++;
      const pause = Math.min(60_000, 2000 * 2 ** Math.min(this.respawnFailures, 5));
      this.respawnAfter = Date.now() + pause;
      this.log.warn(`the new router exited (status ${code}) before taking over: forwarding on, trying again in ${pause / 1000} s`);
    });
  }

  /** Problems the Docker networks' sync has now (up --docker), for status. */
  dockerProblems(): string[] {
    return this.sync?.problems ?? [];
  }

  /** Each served network that has a slice on this host, as runtimes see it (runtime-files.ts). */
  slices(): HostSlice[] {
    const ranges = this.ranges();
    return this.info.networks.flatMap((n, i): HostSlice[] => {
      const r = ranges[i];
      if (n.name === null || n.subnet === null || r === undefined || 'none' in r) return [];
      return [{ network: n.name, vni: n.vni, bridge: n.bridge, subnet: n.subnet, slice: r, mtu: n.containerMtu }];
    });
  }

  peerHealth(): PeerHealthRow[] {
    if (this.prober === undefined) return [];
    const heard = new Map(this.engine.traffic().peers.map((p) => [canonicalIp(p.address), p.lastRxAgoMs]));
    return this.prober.rows((a) => {
      const ago = heard.get(a);
      return ago === undefined || ago < 0 ? undefined : ago;
    });
  }

  links(): LinkState[] {
    return this.keeper?.state() ?? this.info.networks.map(() => ({ bridgeMissingSince: null, tapLostSince: null, bridgeRejoins: 0, tapsRecreated: 0 }));
  }

  dnsCounters(): DnsCounters | null {
    return this.names?.counters() ?? null;
  }

  /** Tables the engine refused since start (each logged, rate-limited). */
  refusedTables(): number {
    return this.tablesRefused;
  }
}

/** Every peer of any VNI, once each, in canonical spelling (the prober's key; engines report replies that way). */
function allPeers(t: TableSnapshot): Set<string> {
  return new Set(t.vnis.flatMap((v) => v.peers.map(canonicalIp)));
}

