/**
 * The composition root: turns a validated config into a running router. Order matters and is undone in reverse:
 * preflight checks (nothing created yet) → the network's definition from etcd, if used → TAP (enslaved to the
 * bridge) → engine (sockets, threads) → table from the control plane (static peers, and the registry's hosts once
 * this host has joined). A failure at any step closes what the earlier steps made, so nothing is left half-configured.
 */
import { readFileSync } from 'node:fs';
import { isIPv6 } from 'node:net';
import { etcdClientConfig, joinsOf, type NetworkJoin, type RouterConfig } from '../config/index.js';
import {
  openRegistry,
  readSnapshot,
  SnapshotWriter,
  snapshotPath,
  staticTable,
  type ControlPlaneState,
  type EtcdRegistry,
  type HostRange,
  type HostRecord,
  type NetworkDefinition,
  type RegistrySnapshot,
} from '../control/index.js';
import {
  JsEngine,
  NativeEngine,
  loadNative,
  toRouterError,
  type Counters,
  type Engine,
  type VniTap,
  type FdbEntry,
  type NativeAddon,
  type Offloads,
  type TableSnapshot,
  type Traffic,
} from '../dataplane/index.js';
import { ConfigError, VxlanRouterError } from '../errors.js';
import { RateLimited, silentLogger, type Logger } from '../log.js';
import { innerMtuLimit } from '../packet/index.js';
import { checkBridge, checkFreeLinkName, checkPrivileges, checkTun, findUnderlay, type Underlay } from './preflight.js';
import { SOFTWARE } from './control-protocol.js';

export { SOFTWARE };

/** One network this router serves. */
export interface ServedNetwork {
  /** The etcd network (absent with static peers). */
  readonly name?: string;
  readonly vni: number;
  readonly tap: string;
  readonly bridge: string;
  /** The TAP's MTU, and the one asked for (--mtu, or the network's definition; null: derived from the underlay). */
  readonly mtu: number;
  readonly configuredMtu: number | null;
  /** Where its table came from at start: etcd, or the on-disk snapshot (etcd was unreachable). */
  readonly startedFrom?: 'etcd' | 'snapshot';
}

export interface RouterInfo {
  readonly engine: Engine['kind'];
  /** The first network's TAP, MTU, VNI, etcd network and start (every network: `networks`). */
  readonly tap: string;
  readonly mtu: number;
  readonly underlay: Underlay;
  readonly vni: number;
  readonly local: string;
  readonly port: number;
  readonly peers: readonly string[];
  readonly network?: string;
  readonly startedFrom?: 'etcd' | 'snapshot';
  readonly networks: readonly ServedNetwork[];
}

export interface Router {
  readonly info: RouterInfo;
  counters(): Counters;
  fdb(): FdbEntry[];
  /** Offloads in use now (GSO turns itself off if the kernel refuses it). */
  offloads(): Offloads;
  /** The table the data path forwards with now (static peers merged with the registry's). */
  table(): TableSnapshot;
  /**
   * The control plane's state (connected / degraded / starting, since when, revision, hosts); undefined without
   * etcd. With several networks: the worst of their states, the oldest revision.
   */
  controlPlane(): ControlPlaneState | undefined;
  /** Each network's control-plane state (undefined without etcd), in the order of info.networks. */
  networkStates(): (ControlPlaneState | undefined)[];
  /** Each network's address range for Docker (this host's slice of its subnet), or why it has none. */
  ranges(): (HostRange | { none: string })[];
  /** Frames and bytes per peer and per VNI, when each peer was last heard, refused sources. */
  traffic(): Traffic;
  /** The registry's hosts (this one included) with when each record last changed; [] without etcd. */
  hosts(): { record: HostRecord; updatedAt: number }[];
  /** MACs that several hosts advertise at once; [] without etcd. */
  macConflicts(): { vni: number; mac: string; hostIds: string[] }[];
  /** Withdraws from the registry, stops forwarding and removes the TAPs. Safe to call twice. */
  close(): Promise<void>;
}

export function defaultTapName(vni: number): string {
  return `vxr${vni}`;
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

/** Static peers and the registries' hosts (with their MACs and addresses), per VNI, without duplicate peers. */
function merge(...tables: TableSnapshot[]): TableSnapshot {
  type Entry = { peers: Set<string>; macs: TableSnapshot['vnis'][number]['macs'][number][]; neighbors: { ip: string; mac: string }[] };
  const byVni = new Map<number, Entry>();
  for (const v of tables.flatMap((t) => t.vnis)) {
    const e = byVni.get(v.vni) ?? { peers: new Set<string>(), macs: [], neighbors: [] };
    for (const p of v.peers) e.peers.add(p);
    e.macs.push(...v.macs);
    e.neighbors.push(...(v.neighbors ?? []));
    byVni.set(v.vni, e);
  }
  return { vnis: [...byVni].map(([vni, e]) => ({ vni, peers: [...e.peers], macs: e.macs, neighbors: e.neighbors })) };
}

/** Several networks' states as one: the worst state (since when), the oldest revision, the most hosts. */
function combine(states: ControlPlaneState[]): ControlPlaneState | undefined {
  if (states.length <= 1) return states[0];
  const rank = { connected: 0, starting: 1, degraded: 2 } as const;
  const worst = states.reduce((a, b) => (rank[b.state] > rank[a.state] ? b : a));
  return { ...worst, revision: Math.min(...states.map((s) => s.revision)), hosts: Math.max(...states.map((s) => s.hosts)) };
}

async function networkFromEtcd(registry: EtcdRegistry, name: string, timeoutMs?: number): Promise<NetworkDefinition> {
  const network = await registry.getNetwork(name, timeoutMs);
  if (network === undefined) {
    throw new ConfigError(
      `network ${name} is not defined in etcd: create it once with \`vxlan-router network create ${name} --vni <N> --subnet <CIDR> --etcd <url>\``,
    );
  }
  return network;
}

export interface StartOptions {
  /** The addon loader (tests inject a fake). */
  readonly addon?: () => NativeAddon;
  /** Structured logs (default: none). Problems the router works around are rate-limited per kind. */
  readonly log?: Logger;
  /** Debounce of snapshot writes (default 500 ms). */
  readonly snapshotDebounceMs?: number;
}

/** How often this host's MAC set is compared with what it advertised in etcd (a write only when it changed). */
const ADVERTISE_MS = 250;

/** With a snapshot to fall back on, how long the first etcd call may take before the router starts from it. */
const SNAPSHOT_PROBE_MS = 3000;

/** etcd is away (as opposed to refusing us, or the network not being defined): the snapshot can stand in. */
function unreachable(err: unknown): boolean {
  return err instanceof VxlanRouterError && err.code === 'E_ETCD' && err.recoverable;
}

/** A network being served: what the config asked, its registry and definition (etcd), its snapshot and latest table. */
interface Served {
  readonly join: NetworkJoin;
  readonly registry?: EtcdRegistry;
  readonly statePath?: string;
  network?: NetworkDefinition;
  snapshot?: RegistrySnapshot;
  /** The registry's newest table (the snapshot's until the first listing). */
  latest: TableSnapshot;
  info?: ServedNetwork;
}

export async function startRouter(config: RouterConfig, opts: StartOptions = {}): Promise<Router> {
  const log = opts.log ?? silentLogger;
  const warn = new RateLimited(log);
  const joins = joinsOf(config);
  checkPrivileges(config.engine === 'native');
  checkTun();
  for (const j of joins) checkBridge(j.bridge);
  const native = (opts.addon ?? loadNative)();
  const underlay = findUnderlay(config.local, (a) => native.interfaceOf(a));

  const connection = etcdClientConfig(config);
  const hostId = config.hostId ?? defaultHostId(config.local);
  const served: Served[] = [];
  const tapFds: number[] = []; // opened, not yet handed to the engine
  let engine: Engine | undefined;
  const writers: SnapshotWriter[] = [];
  let advertiser: NodeJS.Timeout | undefined;
  const undo = async (): Promise<void> => {
    clearInterval(advertiser);
    for (const s of served) await s.registry?.close();
    for (const w of writers) w.close();
    for (const fd of tapFds.splice(0)) native.closeFd(fd);
    await engine?.close();
  };
  try {
    for (const join of joins) {
      if (connection === undefined || join.name === undefined) {
        served.push({ join, latest: { vnis: [] } });
        continue;
      }
      const s: Served = {
        join,
        registry: await openRegistry({ ...connection, ttlSeconds: config.leaseTtl }),
        statePath: snapshotPath(config.stateDir, join.name),
        latest: { vnis: [] },
      };
      served.push(s);
      const read = readSnapshot(s.statePath!, { hostId, network: join.name });
      if (!read.ok && !read.missing) log.warn(`ignoring the snapshot ${s.statePath}: ${read.reason}`);
      try {
        s.network = await networkFromEtcd(s.registry!, join.name, read.ok ? SNAPSHOT_PROBE_MS : undefined);
      } catch (err) {
        if (!read.ok || !unreachable(err)) throw err;
        s.snapshot = read.snapshot;
        s.network = read.snapshot.network;
        s.latest = read.snapshot.table;
        const peers = read.snapshot.table.vnis.reduce((n, v) => n + v.peers.length, 0);
        log.warn(
          `etcd is unreachable (${(err as Error).message}); forwarding from the snapshot ${s.statePath} ` +
            `(revision ${read.snapshot.revision}, ${peers} peers, saved ${read.snapshot.savedAt}); joining etcd in the background`,
        );
      }
    }
    const vnis = new Map<number, string>();
    for (const s of served) {
      const vni = s.network?.vni ?? config.vni!;
      if (vnis.has(vni)) throw new ConfigError(`networks ${vnis.get(vni)} and ${s.join.name} both have VNI ${vni}: serve one of them`);
      vnis.set(vni, s.join.name ?? String(vni));
    }

    const networks: VniTap[] = [];
    for (const s of served) {
      const vni = s.network?.vni ?? config.vni!;
      const tapName = s.join.tap ?? defaultTapName(vni);
      checkFreeLinkName(tapName);
      const configuredMtu = s.join.mtu ?? s.network?.mtu ?? null;
      const mtu = configuredMtu ?? innerMtuLimit(underlay.mtu, config.local);
      let tap: { fd: number; name: string; vnetHdr: boolean };
      try {
        // Offloads need the native engine: the JS engine reads and writes plain frames.
        tap = native.openTap(tapName, mtu, s.join.bridge, config.engine === 'native' && config.offloads.includes('tap'));
      } catch (err) {
        throw toRouterError(err);
      }
      tapFds.push(tap.fd);
      networks.push({ vni, tapFd: tap.fd, tapName: tap.name, mtu, vnetHdr: tap.vnetHdr });
      s.info = {
        ...(s.join.name !== undefined && s.network !== undefined ? { name: s.join.name, startedFrom: s.snapshot === undefined ? ('etcd' as const) : ('snapshot' as const) } : {}),
        vni,
        tap: tap.name,
        bridge: s.join.bridge,
        mtu,
        configuredMtu,
      };
    }
    const options = {
      local: config.local,
      port: config.port,
      underlayMtu: underlay.mtu,
      learning: config.learning,
      agingMs: config.agingSeconds * 1000,
      udpGso: config.offloads.includes('gso'),
      udpGro: config.offloads.includes('gro'),
      arpSuppression: config.arpSuppression,
      networks,
    };
    const eng: Engine = config.engine === 'native' ? new NativeEngine(options, native) : new JsEngine(options, (name) => native.deleteLink(name));
    engine = eng;
    tapFds.length = 0; // the engine owns them now (and closes them if start fails)
    await eng.start();

    // Static peers (--peer) serve every network, beside what etcd says.
    const statics = staticTable(networks.map((n) => ({ vni: n.vni, peers: config.peers })));
    let current: TableSnapshot = statics;
    const apply = (): void => {
      current = merge(statics, ...served.map((s) => s.latest));
      eng.applyTable(current);
    };
    apply();
    const names = served.flatMap((s) => (s.join.name !== undefined ? [s.join.name] : []));
    for (const s of served) {
      const registry = s.registry;
      const net = s.network;
      if (registry === undefined || net === undefined) continue;
      const w = new SnapshotWriter({
        path: s.statePath!,
        ...(opts.snapshotDebounceMs !== undefined ? { debounceMs: opts.snapshotDebounceMs } : {}),
        onError: (err) => warn.warn('snapshot', `cannot write the snapshot ${s.statePath}: ${err.message}`),
      });
      writers.push(w);
      const tag = served.length > 1 ? `network ${net.name}: ` : '';
      registry.on('table', (t) => {
        s.latest = t;
        apply();
        const range = registry.range();
        w.save({ savedAt: new Date().toISOString(), hostId, revision: registry.controlPlane().revision, network: net, table: t, ...('range' in range ? { range: range.range } : {}) });
      });
      // Keyed by the message's first words, so one kind of trouble logs once per window however often it repeats.
      registry.on('warning', (err) => warn.warn(tag + err.message.split(/[(:]/)[0]!, `${tag}etcd: ${err.message}`, { code: (err as VxlanRouterError).code }));
      registry.on('state', (st) => {
        const line = `${tag}control plane ${st.state} since ${st.since} (revision ${st.revision}, ${st.hosts} hosts)`;
        if (st.state === 'degraded') log.warn(`${line}: etcd is away, forwarding with the last table`);
        else log.info(line);
      });
      const record: HostRecord = {
        version: 1,
        hostId,
        underlay: [config.local],
        port: config.port,
        networks: names,
        mtu: s.info!.mtu,
        software: SOFTWARE,
        startedAt: new Date().toISOString(),
      };
      if (s.snapshot === undefined) {
        await registry.join(net, record);
      } else {
        registry.assumeSnapshot(s.snapshot.revision, s.snapshot.table.vnis.reduce((n, v) => n + v.peers.length, 1), s.snapshot.range);
        void registry.joinInBackground(net, record);
      }
    }
    if (served.some((s) => s.registry !== undefined)) {
      // This host's MACs (frame sources seen on its TAPs) go to etcd, each network's under its own lease, so the
      // other hosts forward to them without flooding; a quarter second keeps a moved MAC's new home known everywhere
      // well within a second.
      advertiser = setInterval(() => {
        const macs = eng.localMacs();
        for (const s of served) {
          if (s.registry === undefined || s.info === undefined) continue;
          const vni = s.info.vni;
          void s.registry.advertise(macs.filter((m) => m.vni === vni)).catch((err: Error) => warn.warn('advertise', `cannot advertise this host's MACs: ${err.message}`));
        }
      }, ADVERTISE_MS);
      advertiser.unref();
    }

    const infos = served.map((s) => s.info!);
    const first = infos[0]!;
    const registries = served.flatMap((s) => (s.registry ? [s.registry] : []));
    let closed = false;
    return {
      info: {
        engine: eng.kind,
        tap: first.tap,
        mtu: first.mtu,
        underlay,
        vni: first.vni,
        local: config.local,
        port: config.port,
        peers: config.peers,
        ...(first.name !== undefined ? { network: first.name, startedFrom: first.startedFrom! } : {}),
        networks: infos,
      },
      counters: () => eng.counters(),
      offloads: () => eng.offloads(),
      fdb: () => eng.fdb(),
      table: () => current,
      controlPlane: () => combine(registries.map((r) => r.controlPlane())),
      networkStates: () => served.map((s) => s.registry?.controlPlane()),
      ranges: () => served.map((s) => s.registry?.range() ?? { none: 'static peers: no etcd to lease a range from' }),
      traffic: () => eng.traffic(),
      hosts: () => registries.flatMap((r) => r.hostRows()),
      macConflicts: () => registries.flatMap((r) => r.macConflicts()),
      close: async () => {
        if (closed) return;
        closed = true;
        await undo();
      },
    };
  } catch (err) {
    await undo();
    throw err;
  }
}
