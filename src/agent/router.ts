/**
 * The composition root: turns a validated config into a running router. Order matters and is undone in reverse:
 * preflight checks (nothing created yet) → the network's definition from etcd, if used → TAP (enslaved to the
 * bridge) → engine (sockets, threads) → table from the control plane (static peers, and the registry's hosts once
 * this host has joined). A failure at any step closes what the earlier steps made, so nothing is left half-configured.
 */
import { readFileSync } from 'node:fs';
import { isIPv6 } from 'node:net';
import { etcdClientConfig, type RouterConfig } from '../config/index.js';
import {
  EtcdRegistry,
  readSnapshot,
  SnapshotWriter,
  snapshotPath,
  staticTable,
  type ControlPlaneState,
  type HostRecord,
  type NetworkConfig,
  type RegistrySnapshot,
} from '../control/index.js';
import {
  JsEngine,
  NativeEngine,
  loadNative,
  toRouterError,
  type Counters,
  type Engine,
  type FdbEntry,
  type NativeAddon,
  type Offloads,
  type TableSnapshot,
  type Traffic,
} from '../dataplane/index.js';
import { ConfigError, VxlanRouterError } from '../errors.js';
import { RateLimited, silentLogger, type Logger } from '../log.js';
import { overheadFor } from '../packet/index.js';
import { checkBridge, checkFreeLinkName, checkPrivileges, checkTun, findUnderlay, type Underlay } from './preflight.js';

export const SOFTWARE = 'vxlan-router 0.1.0';

export interface RouterInfo {
  readonly engine: Engine['kind'];
  readonly tap: string;
  readonly mtu: number;
  readonly underlay: Underlay;
  readonly vni: number;
  readonly local: string;
  readonly port: number;
  readonly peers: readonly string[];
  /** The etcd network joined, if any. */
  readonly network?: string;
  /** Where the table came from at start: etcd, or the on-disk snapshot (etcd was unreachable). */
  readonly startedFrom?: 'etcd' | 'snapshot';
}

export interface Router {
  readonly info: RouterInfo;
  counters(): Counters;
  fdb(): FdbEntry[];
  /** Offloads in use now (GSO turns itself off if the kernel refuses it). */
  offloads(): Offloads;
  /** The table the data path forwards with now (static peers merged with the registry's). */
  table(): TableSnapshot;
  /** The control plane's state (connected / degraded / starting, since when, revision, hosts); undefined without etcd. */
  controlPlane(): ControlPlaneState | undefined;
  /** Frames and bytes per peer and per VNI, when each peer was last heard, refused sources. */
  traffic(): Traffic;
  /** The registry's hosts (this one included) with when each record last changed; [] without etcd. */
  hosts(): { record: HostRecord; updatedAt: number }[];
  /** MACs that several hosts advertise at once; [] without etcd. */
  macConflicts(): { vni: number; mac: string; hostIds: string[] }[];
  /** Withdraws from the registry, stops forwarding and removes the TAP. Safe to call twice. */
  close(): Promise<void>;
}

export function defaultTapName(vni: number): string {
  return `vxr${vni}`;
}

/** Stable across restarts, distinct for each underlay address of one machine (and each lab namespace). */
function defaultHostId(local: string): string {
  let machine = 'host';
  try {
    machine = readFileSync('/etc/machine-id', 'utf8').trim().slice(0, 12) || machine;
  } catch {
    /* no machine id: the address alone still tells hosts apart */
  }
  return `${machine}-${local}`;
}

/** Static peers and the registry's hosts (with their MACs and addresses), per VNI, without duplicate peers. */
function merge(a: TableSnapshot, b: TableSnapshot): TableSnapshot {
  type Entry = { peers: Set<string>; macs: TableSnapshot['vnis'][number]['macs'][number][]; neighbors: { ip: string; mac: string }[] };
  const byVni = new Map<number, Entry>();
  for (const v of [...a.vnis, ...b.vnis]) {
    const e = byVni.get(v.vni) ?? { peers: new Set<string>(), macs: [], neighbors: [] };
    for (const p of v.peers) e.peers.add(p);
    e.macs.push(...v.macs);
    e.neighbors.push(...(v.neighbors ?? []));
    byVni.set(v.vni, e);
  }
  return { vnis: [...byVni].map(([vni, e]) => ({ vni, peers: [...e.peers], macs: e.macs, neighbors: e.neighbors })) };
}

async function networkFromEtcd(registry: EtcdRegistry, name: string, timeoutMs?: number): Promise<NetworkConfig> {
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

export async function startRouter(config: RouterConfig, opts: StartOptions = {}): Promise<Router> {
  const log = opts.log ?? silentLogger;
  const warn = new RateLimited(log);
  checkPrivileges(config.engine === 'native');
  checkTun();
  checkBridge(config.bridge);
  const native = (opts.addon ?? loadNative)();
  const underlay = findUnderlay(config.local, (a) => native.interfaceOf(a));

  const connection = etcdClientConfig(config);
  const registry = connection === undefined ? undefined : new EtcdRegistry({ ...connection, ttlSeconds: config.leaseTtl });
  const hostId = config.hostId ?? defaultHostId(config.local);
  const statePath = snapshotPath(config.stateDir, config.network);
  let engine: Engine | undefined;
  let writer: SnapshotWriter | undefined;
  let advertiser: NodeJS.Timeout | undefined;
  try {
    let network: NetworkConfig | undefined;
    let snapshot: RegistrySnapshot | undefined;
    if (registry !== undefined) {
      const read = readSnapshot(statePath, { hostId, network: config.network });
      if (!read.ok && !read.missing) log.warn(`ignoring the snapshot ${statePath}: ${read.reason}`);
      try {
        network = await networkFromEtcd(registry, config.network, read.ok ? SNAPSHOT_PROBE_MS : undefined);
      } catch (err) {
        if (!read.ok || !unreachable(err)) throw err;
        snapshot = read.snapshot;
        network = snapshot.network;
        const peers = snapshot.table.vnis.reduce((n, v) => n + v.peers.length, 0);
        log.warn(
          `etcd is unreachable (${(err as Error).message}); forwarding from the snapshot ${statePath} ` +
            `(revision ${snapshot.revision}, ${peers} peers, saved ${snapshot.savedAt}); joining etcd in the background`,
        );
      }
    }
    const vni = network?.vni ?? config.vni!;
    const tapName = config.tap ?? defaultTapName(vni);
    checkFreeLinkName(tapName);
    const mtu = config.mtu ?? network?.mtu ?? underlay.mtu - overheadFor(isIPv6(config.local) ? 6 : 4);

    let tap: { fd: number; name: string; vnetHdr: boolean };
    try {
      // Offloads need the native engine: the JS engine reads and writes plain frames.
      tap = native.openTap(tapName, mtu, config.bridge, config.engine === 'native' && config.offloads.includes('tap'));
    } catch (err) {
      throw toRouterError(err);
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
      networks: [{ vni, tapFd: tap.fd, tapName: tap.name, mtu, vnetHdr: tap.vnetHdr }],
    };
    const eng: Engine = config.engine === 'native' ? new NativeEngine(options, native) : new JsEngine(options, (name) => native.deleteLink(name));
    engine = eng;
    await eng.start(); // on failure the engine has closed the TAP fd

    const statics = staticTable([{ vni, peers: config.peers }]);
    let current: TableSnapshot = statics;
    const apply = (t: TableSnapshot): void => {
      current = t;
      eng.applyTable(t);
    };
    apply(snapshot === undefined ? statics : merge(statics, snapshot.table));
    if (registry !== undefined && network !== undefined) {
      const net = network;
      const w = new SnapshotWriter({
        path: statePath,
        ...(opts.snapshotDebounceMs !== undefined ? { debounceMs: opts.snapshotDebounceMs } : {}),
        onError: (err) => warn.warn('snapshot', `cannot write the snapshot ${statePath}: ${err.message}`),
      });
      writer = w;
      registry.on('table', (t) => {
        apply(merge(statics, t));
        w.save({ savedAt: new Date().toISOString(), hostId, revision: registry.controlPlane().revision, network: net, table: t });
      });
      // Keyed by the message's first words, so one kind of trouble logs once per window however often it repeats.
      registry.on('warning', (err) => warn.warn(err.message.split(/[(:]/)[0]!, `etcd: ${err.message}`, { code: (err as VxlanRouterError).code }));
      registry.on('state', (s) => {
        const line = `control plane ${s.state} since ${s.since} (revision ${s.revision}, ${s.hosts} hosts)`;
        if (s.state === 'degraded') log.warn(`${line}: etcd is away, forwarding with the last table`);
        else log.info(line);
      });
      const record: HostRecord = {
        version: 1,
        hostId,
        underlay: [config.local],
        port: config.port,
        networks: [net.name],
        mtu,
        software: SOFTWARE,
        startedAt: new Date().toISOString(),
      };
      if (snapshot === undefined) {
        await registry.join(net, record);
      } else {
        registry.assumeSnapshot(snapshot.revision, snapshot.table.vnis.reduce((n, v) => n + v.peers.length, 1));
        void registry.joinInBackground(net, record);
      }
      // This host's MACs (frame sources seen on its TAP) go to etcd, so the other hosts forward to them without
      // flooding; a quarter second keeps a moved MAC's new home known everywhere well within a second.
      const reg = registry;
      advertiser = setInterval(() => {
        void reg.advertise(eng.localMacs()).catch((err: Error) => warn.warn('advertise', `cannot advertise this host's MACs: ${err.message}`));
      }, ADVERTISE_MS);
      advertiser.unref();
    }

    let closed = false;
    return {
      info: {
        engine: eng.kind,
        tap: tap.name,
        mtu,
        underlay,
        vni,
        local: config.local,
        port: config.port,
        peers: config.peers,
        ...(network ? { network: network.name, startedFrom: snapshot === undefined ? 'etcd' : 'snapshot' } : {}),
      },
      counters: () => eng.counters(),
      offloads: () => eng.offloads(),
      fdb: () => eng.fdb(),
      table: () => current,
      controlPlane: () => registry?.controlPlane(),
      traffic: () => eng.traffic(),
      hosts: () => registry?.hostRows() ?? [],
      macConflicts: () => registry?.macConflicts() ?? [],
      close: async () => {
        if (closed) return;
        closed = true;
        clearInterval(advertiser);
        await registry?.close();
        writer?.close();
        await eng.close();
      },
    };
  } catch (err) {
    clearInterval(advertiser);
    await registry?.close();
    writer?.close();
    await engine?.close();
    throw err;
  }
}
