/**
 * What the control socket tells about a running router: its status (one screen, like `wg show`), forwarding table
 * and peers, built from the router at the moment of asking.
 */
import { isIPv6 } from 'node:net';
import type { RouterConfig } from '../config/index.js';
import { overheadFor } from '../packet/index.js';
import type { Status } from './control-protocol.js';
import type { ControlSource } from './control-socket.js';
import { SOFTWARE, type Router } from './router.js';

export function controlSource(router: Router, config: RouterConfig, startedAt: Date): ControlSource {
  const { info } = router;
  const statics = new Set(config.peers);
  return {
    status: () => ({
      software: SOFTWARE,
      pid: process.pid,
      startedAt: startedAt.toISOString(),
      uptimeSeconds: Math.round((Date.now() - startedAt.getTime()) / 1000),
      engine: info.engine,
      network: info.network ?? null,
      vni: info.vni,
      tap: info.tap,
      bridge: config.bridge,
      local: info.local,
      port: info.port,
      underlay: { device: info.underlay.device, mtu: info.underlay.mtu },
      mtu: { tap: info.mtu, underlayLimit: info.underlay.mtu - overheadFor(isIPv6(info.local) ? 6 : 4) },
      offloads: { ...router.offloads() },
      controlPlane: controlPlane(router, config),
      peers: router.table().vnis.flatMap((v) => v.peers.map((address) => ({ vni: v.vni, address }))),
      counters: { ...router.counters() },
    }),
    fdb: () => router.fdb().map((e) => ({ vni: e.vni, mac: e.mac, vtep: e.vtep, origin: e.origin, ageMs: e.ageMs })),
    peers: () => {
      const byAddress = new Map<string, number[]>();
      for (const v of router.table().vnis) for (const p of v.peers) byAddress.set(p, [...(byAddress.get(p) ?? []), v.vni]);
      return [...byAddress].map(([address, vnis]) => ({ address, port: info.port, vnis, origin: statics.has(address) ? 'static' : 'etcd' }));
    },
  };
}

function controlPlane(router: Router, config: RouterConfig): Status['controlPlane'] {
  const endpoints = [...(config.etcd ?? [])];
  const s = router.controlPlane();
  if (s === undefined) return { mode: 'static', endpoints };
  return { mode: 'etcd', endpoints, ...s, ...(router.info.startedFrom ? { startedFrom: router.info.startedFrom } : {}) };
}
