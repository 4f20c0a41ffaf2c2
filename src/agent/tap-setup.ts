/**
 * The TAPs a starting router serves its networks on: opened fresh (each enslaved to its bridge), or with --takeover
 * handed over by the router that answers on the control socket (handover.ts), with its UDP socket and state.
 */
import { existsSync } from 'node:fs';
import type { NetworkJoin, RouterConfig } from '../config/index.js';
import type { PlaneNetwork } from '../control/index.js';
import { toRouterError, type NativeAddon, type VniTap } from '../dataplane/index.js';
import { VxlanRouterError } from '../errors.js';
import type { Logger } from '../log.js';
import { DEFAULT_TAP_MTU, innerMtuLimit } from '../packet/index.js';
import type { Closable } from './closable.js';
import type { ServedNetwork } from './daemon.js';
import { takeOver, type TakenOver, type TapFd } from './handover.js';
import { checkFreeLinkName, type Underlay } from './preflight.js';

export function defaultTapName(vni: number): string {
  return `vxr${vni}`;
}

/** What the router this one took over handed it, beside the TAPs: its state and its UDP socket. */
export type Handed = Pick<TakenOver, 'state' | 'rxFd'>;

export interface TapSetup {
  readonly config: RouterConfig;
  /** The networks to serve, and what each control plane serves (same order). */
  readonly joins: readonly NetworkJoin[];
  readonly served: readonly PlaneNetwork[];
  readonly underlay: Underlay;
  readonly native: NativeAddon;
  /** The control socket the router to take over answers on. */
  readonly socketPath: string;
  readonly takeover: boolean;
  readonly log: Logger;
}

export interface OpenedTaps {
  /** The engine's TAPs, in the order of the networks. */
  readonly taps: readonly VniTap[];
  readonly networks: ServedNetwork[];
  /** What the old router handed over (--takeover); undefined on a fresh start. */
  readonly handed: Handed | undefined;
  /** Hands the TAPs (and a handed UDP socket) to the engine in `owned`: it closes them from now on, also if its start fails. */
  passTo(engine: Closable): void;
}

/**
 * Opens (or takes over) a TAP for each network. What it opens is pushed to `owned` at once, so that the caller's
 * undo closes it when a later step fails.
 */
export async function openTaps(o: TapSetup, owned: Closable[]): Promise<OpenedTaps> {
  const { config, joins, served, underlay, native, log } = o;
  const taps: VniTap[] = [];
  const networks: ServedNetwork[] = [];
  const tapFds: Closable = { close: () => taps.splice(0).forEach((t) => native.closeFd(t.tapFd)) };
  owned.push(tapFds);
  const openTapOf = (tapName: string, mtu: number, bridge: string): TapFd => {
    checkFreeLinkName(tapName);
    try {
      // Offloads need the native engine: the JS engine reads and writes plain frames.
      return native.openTap(tapName, mtu, bridge, config.engine === 'native' && config.offloads.includes('tap'));
    } catch (err) {
      throw toRouterError(err);
    }
  };
  const add = (i: number, tap: TapFd, mtu: number): void => {
    const s = served[i]!;
    const j = joins[i]!;
    taps.push({ vni: s.vni, tapFd: tap.fd, tapName: tap.name, mtu, vnetHdr: tap.vnetHdr });
    const configuredMtu = j.mtu ?? s.mtu ?? null;
    networks.push({ name: s.name, vni: s.vni, tap: tap.name, bridge: j.bridge, mtu, configuredMtu, containerMtu: configuredMtu ?? innerMtuLimit(underlay.mtu, config.local), startedFrom: s.startedFrom, subnet: s.subnet ?? null });
  };
  let handed: Handed | undefined;
  let rxClose: Closable | undefined;
  if (o.takeover) {
    // Everything that can fail slowly (etcd, the network's definition) is done; the old router pauses only now.
    const wanted = joins.map((j, i) => ({ vni: served[i]!.vni, tap: j.tap ?? defaultTapName(served[i]!.vni) }));
    // A network the old router does not serve (no such TAP yet: `up --docker` after a network was defined) gets
    // its TAP before the old router pauses: nothing after `go` may fail for want of one.
    const fresh = new Map<number, TapFd & { mtu: number }>();
    for (const [i, w] of wanted.entries()) {
      if (existsSync(`/sys/class/net/${w.tap}`)) continue;
      const mtu = joins[i]!.mtu ?? served[i]!.mtu ?? DEFAULT_TAP_MTU;
      fresh.set(w.vni, { ...openTapOf(w.tap, mtu, joins[i]!.bridge), mtu });
      owned.push({ close: () => { if (fresh.has(w.vni)) native.closeFd(fresh.get(w.vni)!.fd); } });
    }
    const got = await takeOver(native, o.socketPath, { engine: config.engine, local: config.local, port: config.port, networks: wanted }, log);
    for (const [vni, t] of fresh) if (got.taps.has(vni)) native.closeFd(t.fd);
    rxClose = { close: () => native.closeFd(got.rxFd) };
    owned.push(rxClose);
    handed = { state: got.state, rxFd: got.rxFd };
    wanted.forEach((w, i) => {
      const opened = fresh.get(w.vni);
      fresh.delete(w.vni); // taps owns it from here
      const tap = got.taps.get(w.vni) ?? opened;
      if (tap === undefined) throw new VxlanRouterError('E_CONTROL', `the old router handed over no TAP for VNI ${w.vni}, and ${w.tap} exists`, { kind: 'handover' });
      add(i, tap, got.state.networks.find((n) => n.vni === w.vni)?.mtu ?? opened?.mtu ?? innerMtuLimit(underlay.mtu, config.local));
    });
  }
  if (handed === undefined) joins.forEach((j, i) => {
    const s = served[i]!;
    const mtu = j.mtu ?? s.mtu ?? DEFAULT_TAP_MTU;
    add(i, openTapOf(j.tap ?? defaultTapName(s.vni), mtu, j.bridge), mtu);
  });
  return {
    taps: [...taps],
    networks,
    handed,
    passTo: (engine) => {
      owned.splice(owned.indexOf(tapFds), 1, engine); // the engine owns the TAPs now (and closes them if start fails)
      taps.length = 0;
      if (rxClose !== undefined) owned.splice(owned.indexOf(rxClose), 1); // and the UDP socket
    },
  };
}
