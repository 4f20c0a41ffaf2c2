/**
 * What the control socket tells about a running router: its status (one screen, like `wg show`), forwarding table
 * and peers, built from the router at the moment of asking.
 */
import type { RouterConfig } from '../config/index.js';
import type { HostRange, HostRow, NoRange, NoRangeReason } from '../control/index.js';
import type { PeerHealthRow, PeerTraffic } from '../dataplane/index.js';
import { canonicalIp, innerMtuLimit } from '../packet/index.js';
import type { Status } from './control-protocol.js';
import type { ControlSource } from './control-socket.js';
import { SOFTWARE } from './control-protocol.js';
import type { DaemonView } from './daemon.js';
import { peerPaths } from './peer-path.js';
import { explainWhy } from './why.js';

/** What the router knows of each peer address: its registry record (if any) and its traffic. */
function peerFacts(router: DaemonView): (address: string) => { host?: HostRow; traffic?: PeerTraffic } {
  const hosts = new Map(router.hosts().map((h) => [h.record.underlay[0]!, h]));
  const traffic = new Map(router.traffic().peers.map((p) => [p.address, p]));
  return (address) => ({ host: hosts.get(address), traffic: traffic.get(address) });
}

const counts = (t: PeerTraffic | undefined) => ({ rxFrames: t?.rxFrames ?? 0, rxBytes: t?.rxBytes ?? 0, txFrames: t?.txFrames ?? 0, txBytes: t?.txBytes ?? 0 });
const lastSeen = (t: PeerTraffic | undefined): number | null => (t === undefined || t.lastRxAgoMs < 0 ? null : t.lastRxAgoMs);

/** Each peer's health fields by address (all null with probing off). */
type HealthFields = { state: PeerHealthRow['state'] | null; rttMs: number | null; lossPercent: number | null; pathMtu: number | null; pathMtuMeasuring: boolean; lastAnswerAgoMs: number | null };
function peerHealth(router: DaemonView): (address: string) => HealthFields {
  const rows = new Map(router.peerHealth().map((h) => [h.address, h]));
  return (address) => {
    const h = rows.get(canonicalIp(address));
    return { state: h?.state ?? null, rttMs: h?.rttMs ?? null, lossPercent: h?.lossPercent ?? null, pathMtu: h?.pathMtu ?? h?.routeMtu ?? null, pathMtuMeasuring: h?.measuring ?? false, lastAnswerAgoMs: h?.lastAnswerAgoMs ?? null };
  };
}

export function controlSource(router: DaemonView, config: RouterConfig, startedAt: Date): ControlSource {
  const { info } = router;
  const first = info.networks[0]!;
  const statics = new Set(config.peers);
  return {
    status: () => ({
      software: SOFTWARE,
      pid: process.pid,
      startedAt: startedAt.toISOString(),
      uptimeSeconds: Math.round((Date.now() - startedAt.getTime()) / 1000),
      engine: info.engine,
      network: first.name,
      vni: first.vni,
      tap: first.tap,
      bridge: first.bridge,
      local: info.local,
      port: info.port,
      underlay: { device: info.underlay.device, mtu: info.underlay.mtu },
      mtu: { tap: first.mtu, configured: first.configuredMtu, underlayLimit: innerMtuLimit(info.underlay.mtu, info.local) },
      networks: (() => {
        const states = router.networkStates();
        const ranges = router.ranges();
        const links = router.links();
        const pathTo = peerPaths(router);
        const vnis = router.table().vnis;
        const clampOf = (vni: number): NonNullable<Status['networks'][number]['clampMss']> => {
          const c = info.clampMss;
          if (c === null || config.clampMss === false) return { mode: 'off', ipv4: null, ipv6: null, lowered: [] };
          const lowered = (vnis.find((v) => v.vni === vni)?.peers ?? []).flatMap((peer) => {
            const p = pathTo(peer).clamp;
            return p !== null && (p.ipv4 < c.ipv4 || p.ipv6 < c.ipv6) ? [{ peer, ipv4: p.ipv4, ipv6: p.ipv6 }] : [];
          });
          return { mode: config.clampMss === true ? 'per-path' : 'fixed', ipv4: c.ipv4, ipv6: c.ipv6, lowered };
        };
        return info.networks.map((n, i) => ({
          name: n.name,
          vni: n.vni,
          tap: n.tap,
          bridge: n.bridge,
          mtu: n.mtu,
          configuredMtu: n.configuredMtu,
          containerMtu: n.containerMtu,
          subnet: n.subnet,
          state: states[i]?.state ?? null,
          revision: states[i]?.revision ?? null,
          hosts: states[i]?.hosts ?? null,
          ...rangeFields(ranges[i]!),
          bridgeMissingSince: links[i]?.bridgeMissingSince?.toISOString() ?? null,
          bridgeRejoins: links[i]?.bridgeRejoins ?? 0,
          tapsRecreated: links[i]?.tapsRecreated ?? 0,
          clampMss: clampOf(n.vni),
        }));
      })(),
      dockerProblems: router.dockerProblems?.() ?? [],
      offloads: { ...router.offloads() },
      loop: { ...router.loop() },
      controlPlane: controlPlane(router, config),
      peers: (() => {
        const facts = peerFacts(router);
        const health = peerHealth(router);
        return router.table().vnis.flatMap((v) =>
          v.peers.map((address) => {
            const { host, traffic } = facts(address);
            return { vni: v.vni, address, hostId: host?.record.hostId ?? null, lastSeenAgoMs: lastSeen(traffic), ...counts(traffic), ...health(address) };
          }),
        );
      })(),
      refusedSources: [...router.traffic().rejected],
      macConflicts: router.macConflicts(),
      addressConflicts: router.addressConflicts(),
      counters: { ...router.counters() },
      memory: (({ rss, heapTotal, heapUsed, external, arrayBuffers }) => ({ rss, heapTotal, heapUsed, external, arrayBuffers }))(memoryNow()),
    }),
    counters: () => router.counters(),
    why: (q) => explainWhy(router, config, q),
    table: () => router.table(),
    fdb: () => router.fdb().map((e) => ({ vni: e.vni, mac: e.mac, vtep: e.vtep, origin: e.origin, ageMs: e.ageMs })),
    peers: () => {
      const byAddress = new Map<string, number[]>();
      for (const v of router.table().vnis) for (const p of v.peers) byAddress.set(p, [...(byAddress.get(p) ?? []), v.vni]);
      const facts = peerFacts(router);
      const health = peerHealth(router);
      const pathTo = peerPaths(router);
      const now = Date.now();
      return [...byAddress].map(([address, vnis]) => {
        const { host, traffic } = facts(address);
        return {
          address,
          port: host?.record.port ?? info.port,
          vnis,
          origin: statics.has(address) ? ('static' as const) : ('etcd' as const),
          hostId: host?.record.hostId ?? null,
          networks: host?.record.networks ?? [],
          mtu: host?.record.mtu ?? null,
          software: host?.record.software ?? null,
          lastUpdateAgoMs: host === undefined ? null : Math.max(0, now - host.updatedAt),
          lastSeenAgoMs: lastSeen(traffic),
          ...counts(traffic),
          ...health(address),
          clampMss: pathTo(address).clamp,
        };
      });
    },
  };
}

function rangeFields(r: HostRange | NoRange): { range: string | null; gateway: string | null; rangeNote: string | null; rangeReason: NoRangeReason | null } {
  return 'none' in r ? { range: null, gateway: null, rangeNote: r.none, rangeReason: r.reason } : { range: r.range, gateway: r.gateway, rangeNote: null, rangeReason: null };
}

function controlPlane(router: DaemonView, config: RouterConfig): Status['controlPlane'] {
  const endpoints = [...(config.etcd ?? [])];
  const s = router.controlPlane();
  if (s === null) return { mode: 'static', endpoints, tablesRefused: router.refusedTables() };
  const startedFrom = router.info.networks[0]!.startedFrom;
  return {
    mode: 'etcd',
    endpoints,
    ...s,
    leaseTtlSeconds: config.leaseTtl,
    ...(startedFrom !== 'config' ? { startedFrom } : {}),
    ...(router.registryCounters() ?? {}),
    ...(router.registryCounters() !== null ? { macsLeftBridge: router.macsLeftBridge() } : {}),
    tablesRefused: router.refusedTables(),
  };
}

/**
 * process.memoryUsage(), after a full collection when node runs with --expose-gc (the fuzz harness starts its router
 * so): heapUsed is then live objects, not live plus garbage a major collection has not reached yet.
 */
function memoryNow(): NodeJS.MemoryUsage {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (typeof gc === 'function') gc();
  return process.memoryUsage();
}
