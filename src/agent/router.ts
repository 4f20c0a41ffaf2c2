/**
 * The composition root: turns a validated config into a running router. Order matters and is undone in reverse:
 * preflight checks (nothing created yet) → the network's definition from etcd, if used → TAP (enslaved to the
 * bridge) → engine (sockets, threads) → table from the control plane (static peers, and the registry's hosts once
 * this host has joined). A failure at any step closes what the earlier steps made, so nothing is left half-configured.
 */
import { readFileSync } from 'node:fs';
import { isIPv6 } from 'node:net';
import type { RouterConfig } from '../config/index.js';
import { EtcdRegistry, staticTable, type NetworkConfig, type RegistryState } from '../control/index.js';
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
} from '../dataplane/index.js';
import { ConfigError } from '../errors.js';
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
}

export interface Router {
  readonly info: RouterInfo;
  counters(): Counters;
  fdb(): FdbEntry[];
  /** Offloads in use now (GSO turns itself off if the kernel refuses it). */
  offloads(): Offloads;
  /** The etcd registry's state (connected, or degraded since when; last revision), or undefined without etcd. */
  controlPlane(): RegistryState | undefined;
  /** The table the data path forwards with now (static peers merged with the registry's). */
  table(): TableSnapshot;
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

/** Static peers and the registry's hosts, per VNI, without duplicates. */
function merge(a: TableSnapshot, b: TableSnapshot): TableSnapshot {
  const byVni = new Map<number, { peers: Set<string>; macs: { mac: string; vtep: string }[] }>();
  for (const v of [...a.vnis, ...b.vnis]) {
    const e = byVni.get(v.vni) ?? { peers: new Set<string>(), macs: [] };
    for (const p of v.peers) e.peers.add(p);
    e.macs.push(...v.macs);
    byVni.set(v.vni, e);
  }
  return { vnis: [...byVni].map(([vni, e]) => ({ vni, peers: [...e.peers], macs: e.macs })) };
}

async function networkFromEtcd(registry: EtcdRegistry, name: string): Promise<NetworkConfig> {
  const network = await registry.getNetwork(name);
  if (network === undefined) {
    throw new ConfigError(
      `network ${name} is not defined in etcd: create it once with \`vxlan-router network create ${name} --vni <N> --subnet <CIDR> --etcd <url>\``,
    );
  }
  return network;
}

export interface StartOptions {
  /** The native addon (tests may pass their own). */
  readonly addon?: () => NativeAddon;
  readonly log?: Logger;
}

export async function startRouter(config: RouterConfig, opts: StartOptions = {}): Promise<Router> {
  const addon = opts.addon ?? loadNative;
  const log = opts.log ?? silentLogger;
  checkPrivileges(config.engine === 'native');
  checkTun();
  checkBridge(config.bridge);
  const native = addon();
  const underlay = findUnderlay(config.local, (a) => native.interfaceOf(a));

  const registry = config.etcd === undefined ? undefined : new EtcdRegistry({ endpoints: config.etcd, ttlSeconds: config.leaseTtl });
  let engine: Engine | undefined;
  try {
    const network = registry === undefined ? undefined : await networkFromEtcd(registry, config.network);
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
    apply(statics);
    if (registry !== undefined && network !== undefined) {
      const warn = new RateLimited(log);
      registry.on('table', (t) => apply(merge(statics, t)));
      registry.on('warning', (err) => warn.warn(err.message, `etcd: ${err.message}`, { code: (err as { code?: string }).code }));
      registry.on('state', (s) =>
        s.connected ? log.info({ revision: s.revision }, 'etcd: connected') : log.warn({ since: s.degradedSince }, 'etcd: away; forwarding with the last table'),
      );
      await registry.join(network, {
        version: 1,
        hostId: config.hostId ?? defaultHostId(config.local),
        underlay: [config.local],
        port: config.port,
        networks: [network.name],
        mtu,
        software: SOFTWARE,
        startedAt: new Date().toISOString(),
      });
    }

    let closed = false;
    return {
      info: { engine: eng.kind, tap: tap.name, mtu, underlay, vni, local: config.local, port: config.port, peers: config.peers, ...(network ? { network: network.name } : {}) },
      counters: () => eng.counters(),
      offloads: () => eng.offloads(),
      controlPlane: () => registry?.state(),
      fdb: () => eng.fdb(),
      table: () => current,
      close: async () => {
        if (closed) return;
        closed = true;
        await registry?.close();
        await eng.close();
      },
    };
  } catch (err) {
    await registry?.close();
    await engine?.close();
    throw err;
  }
}
