/**
 * The composition root: turns a validated config into a running router. Order matters and is undone in reverse:
 * preflight checks (nothing created yet) → TAP (enslaved to the bridge) → engine (sockets, threads) → table from the
 * control plane. A failure at any step closes what the earlier steps made, so nothing is left half-configured.
 */
import { isIPv6 } from 'node:net';
import type { RouterConfig } from '../config/index.js';
import { staticTable } from '../control/index.js';
import {
  JsEngine,
  NativeEngine,
  loadNative,
  toRouterError,
  type Counters,
  type Engine,
  type FdbEntry,
  type NativeAddon,
} from '../dataplane/index.js';
import { overheadFor } from '../packet/index.js';
import { checkBridge, checkFreeLinkName, checkPrivileges, checkTun, findUnderlay, type Underlay } from './preflight.js';

export interface RouterInfo {
  readonly engine: Engine['kind'];
  readonly tap: string;
  readonly mtu: number;
  readonly underlay: Underlay;
  readonly vni: number;
  readonly local: string;
  readonly port: number;
  readonly peers: readonly string[];
}

export interface Router {
  readonly info: RouterInfo;
  counters(): Counters;
  fdb(): FdbEntry[];
  /** Stops forwarding and removes the TAP. Safe to call twice. */
  close(): Promise<void>;
}

export function defaultTapName(vni: number): string {
  return `vxr${vni}`;
}

export async function startRouter(config: RouterConfig, addon: () => NativeAddon = loadNative): Promise<Router> {
  checkPrivileges(config.engine === 'native');
  checkTun();
  checkBridge(config.bridge);
  const native = addon();
  const underlay = findUnderlay(config.local, (a) => native.interfaceOf(a));
  const tapName = config.tap ?? defaultTapName(config.vni);
  checkFreeLinkName(tapName);
  const mtu = config.mtu ?? underlay.mtu - overheadFor(isIPv6(config.local) ? 6 : 4);

  let tap: { fd: number; name: string };
  try {
    tap = native.openTap(tapName, mtu, config.bridge);
  } catch (err) {
    throw toRouterError(err);
  }

  const options = {
    local: config.local,
    port: config.port,
    underlayMtu: underlay.mtu,
    learning: config.learning,
    agingMs: config.agingSeconds * 1000,
    networks: [{ vni: config.vni, tapFd: tap.fd, tapName: tap.name, mtu }],
  };
  const engine: Engine = config.engine === 'native' ? new NativeEngine(options, native) : new JsEngine(options, (name) => native.deleteLink(name));
  await engine.start(); // on failure the engine has closed the TAP fd
  engine.applyTable(staticTable([{ vni: config.vni, peers: config.peers }]));

  return {
    info: {
      engine: engine.kind,
      tap: tap.name,
      mtu,
      underlay,
      vni: config.vni,
      local: config.local,
      port: config.port,
      peers: config.peers,
    },
    counters: () => engine.counters(),
    fdb: () => engine.fdb(),
    close: () => engine.close(),
  };
}
