/**
 * This host's MACs (frame sources seen on its TAPs) to every control plane (etcd: under this host's lease), so the
 * other hosts forward to them without flooding; every ADVERTISE_MS, which keeps a moved MAC's home known everywhere
 * well within a second (a plane writes only when its set changed). After a takeover the old router's MACs are added
 * until they would have aged out there: a container silent across the handover keeps its record. A MAC whose
 * container left the bridge is withdrawn at once (BridgePresence: its address is then free for a container elsewhere).
 */
import type { ControlPlane } from '../control/index.js';
import type { Engine, LocalMac } from '../dataplane/index.js';
import type { RateLimited } from '../log.js';
import type { BridgePresence } from './bridge-presence.js';

/** How often this host's MAC set is compared with what it advertised (a write only when it changed). */
const ADVERTISE_MS = 250;

export function startAdvertising(o: {
  readonly engine: Engine;
  readonly planes: readonly ControlPlane[];
  readonly presence: BridgePresence;
  /** The old router's local MACs (a takeover), advertised until `inheritedUntil` (ms since the epoch). */
  readonly inherited: readonly LocalMac[];
  readonly inheritedUntil: number;
  /** The per-network bound of local MACs (named in the warning when the engine refuses more). */
  readonly maxLocalMacs: number;
  readonly warn: RateLimited;
}): { close(): void } {
  let inherited = o.inherited;
  let refusedMacs = 0;
  const timer = setInterval(() => {
    let macs = o.engine.localMacs();
    if (inherited.length > 0) {
      const seen = new Set(macs.map((m) => `${m.vni}/${m.mac}`));
      inherited = Date.now() > o.inheritedUntil ? [] : inherited;
      macs = [...macs, ...inherited.filter((m) => !seen.has(`${m.vni}/${m.mac}`))];
    }
    macs = o.presence.filter(macs);
    for (const p of o.planes) p.advertise(macs);
    const refused = o.engine.counters().local_mac_refused;
    if (refused > refusedMacs)
      o.warn.warn('local-macs-full', `a bridge holds more than ${o.maxLocalMacs} source MACs per network: new ones are not advertised (local_mac_refused ${refused})`, { localMacRefused: refused });
    refusedMacs = refused;
  }, ADVERTISE_MS);
  timer.unref();
  return { close: () => clearInterval(timer) };
}
