/**
 * Keeps each served network's TAP on its bridge while links come and go under the router (issue 15):
 *
 * - the bridge deleted (`docker network rm`, a host's network scripts): the TAP is kept, off any bridge, and the
 *   network is reported "bridge br0 missing since …" (status, metrics, doctor);
 * - a bridge of that name created again: the TAP joins it (port, MTU, up) as soon as rtnetlink says so;
 * - the TAP itself deleted: the engine reports it lost (Engine.lostTaps), a new TAP of the same name, MTU and
 *   offloads is opened, put on the bridge if there is one, and handed to the engine (Engine.replaceTap).
 *
 * Driven by link events (watchLinks: rtnetlink read on a native thread) and, as a safety net for lost events and for
 * an engine that notices a lost TAP after the event, a poll: the engine's lost TAPs every LOST_POLL_MS (one lock),
 * the links themselves every FULL_POLL_MS. Everything runs on the JS thread.
 */
import type { Engine, LinkInfo, LinkWatch, NativeAddon } from '../dataplane/index.js';
import { describeError } from '../errors.js';
import { RateLimited, type Logger } from '../log.js';
import { toRouterError } from '../dataplane/index.js';

/** How often the engine is asked for lost TAPs (cheap), and how often the links are looked at without an event. */
const LOST_POLL_MS = 100;
const FULL_POLL_MS = 2000;

/** One network as the keeper sees it: what its TAP must look like. */
export interface KeptNetwork {
  readonly vni: number;
  readonly tap: string;
  readonly bridge: string;
  readonly mtu: number;
  /** The TAP is opened with offloads (IFF_VNET_HDR): its replacement must be too. */
  readonly offloads: boolean;
}

/** What status, metrics and doctor tell about one network's links. */
export interface LinkState {
  /** When its bridge was found gone (null: present, with the TAP on it). */
  readonly bridgeMissingSince: Date | null;
  /** When its TAP was found deleted and not yet recreated (null: it runs). */
  readonly tapLostSince: Date | null;
  /** Times the TAP joined its bridge again after the bridge was gone. */
  readonly bridgeRejoins: number;
  /** Times the TAP was recreated after it was deleted under the router. */
  readonly tapsRecreated: number;
}

type Links = Pick<NativeAddon, 'watchLinks' | 'getLink' | 'attachLink' | 'openTap' | 'deleteLink'>;

interface Mutable {
  bridgeMissingSince: Date | null;
  tapLostSince: Date | null;
  bridgeRejoins: number;
  tapsRecreated: number;
}

export class LinkKeeper {
  private readonly states: Mutable[];
  private readonly warn: RateLimited;
  private watch: LinkWatch | undefined;
  private lostTimer: NodeJS.Timeout | undefined;
  private fullTimer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    private readonly networks: readonly KeptNetwork[],
    private readonly engine: Pick<Engine, 'lostTaps' | 'replaceTap'>,
    private readonly links: Links,
    private readonly log: Logger,
    private readonly now: () => Date = () => new Date(),
  ) {
    this.states = networks.map(() => ({ bridgeMissingSince: null, tapLostSince: null, bridgeRejoins: 0, tapsRecreated: 0 }));
    this.warn = new RateLimited(log);
  }

  /** Starts following the links (and looks once at once). */
  start(): void {
    const names = new Set(this.networks.flatMap((n) => [n.tap, n.bridge]));
    this.watch = this.links.watchLinks((events: LinkInfo[], overflow: boolean) => {
      // Called from native code: nothing may escape (it would be an uncaught exception).
      if (this.closed) return;
      if (overflow || events.some((e) => names.has(e.name))) this.guard(() => this.reconcile());
    });
    this.lostTimer = setInterval(() => {
      if (this.engine.lostTaps().length > 0) this.guard(() => this.reconcile());
    }, LOST_POLL_MS).unref();
    this.fullTimer = setInterval(() => this.guard(() => this.reconcile()), FULL_POLL_MS).unref();
    this.guard(() => this.reconcile());
  }

  /** Each network's link state, in the order given. */
  state(): LinkState[] {
    return this.states.map((s) => ({ ...s }));
  }

  close(): void {
    this.closed = true;
    clearInterval(this.lostTimer);
    clearInterval(this.fullTimer);
    this.watch?.close();
  }

  private guard(f: () => void): void {
    try {
      f();
    } catch (err) {
      this.warn.warn('links', `following the bridge and TAP: ${describeError(err)}`);
    }
  }

  /** Brings every network's links to what they should be, as far as the links present allow. Idempotent. */
  reconcile(): void {
    if (this.closed) return;
    const lost = new Set(this.engine.lostTaps());
    this.networks.forEach((n, i) => {
      const st = this.states[i]!;
      const bridge = this.links.getLink(n.bridge);
      if (bridge === null && st.bridgeMissingSince === null) {
        st.bridgeMissingSince = this.now();
        this.log.warn({ bridge: n.bridge, tap: n.tap, vni: n.vni }, `bridge ${n.bridge} missing since ${st.bridgeMissingSince.toISOString()}: TAP ${n.tap} kept, it joins the bridge when one of that name appears`);
      }
      if (lost.has(n.vni)) this.recreateTap(n, st, bridge !== null);
      if (bridge === null || (lost.has(n.vni) && st.tapLostSince !== null)) return;
      const tap = this.links.getLink(n.tap);
      if (tap === null) return; // deleted: the engine says so shortly (lostTaps), then it is recreated
      if (tap.master !== bridge.index) {
        try {
          this.links.attachLink(n.tap, n.bridge, n.mtu);
        } catch (err) {
          this.warn.warn(`attach ${n.vni}`, `cannot put TAP ${n.tap} on bridge ${n.bridge} (${describeError(toRouterError(err))}); trying again when it changes`, { bridge: n.bridge, tap: n.tap });
          return;
        }
        if (st.bridgeMissingSince !== null) {
          st.bridgeRejoins++;
          this.log.info({ bridge: n.bridge, tap: n.tap, vni: n.vni, missingMs: this.now().getTime() - st.bridgeMissingSince.getTime() }, `bridge ${n.bridge} is back: TAP ${n.tap} on it again (MTU ${n.mtu})`);
        } else {
          this.log.info({ bridge: n.bridge, tap: n.tap, vni: n.vni }, `TAP ${n.tap} was off bridge ${n.bridge}: put back (MTU ${n.mtu})`);
        }
      }
      st.bridgeMissingSince = null;
    });
  }

  /** A new TAP of the same name, MTU and offloads, on the bridge when there is one, handed to the engine. */
  private recreateTap(n: KeptNetwork, st: Mutable, bridgePresent: boolean): void {
    st.tapLostSince ??= this.now();
    // A link of that name left behind (the old TAP not yet gone, or someone else's) would make the open fail.
    if (this.links.getLink(n.tap) !== null) {
      try {
        this.links.deleteLink(n.tap);
      } catch {
        /* gone meanwhile */
      }
    }
    let tap: ReturnType<Links['openTap']>;
    try {
      tap = this.links.openTap(n.tap, n.mtu, bridgePresent ? n.bridge : '', n.offloads);
    } catch (err) {
      this.warn.warn(`tap ${n.vni}`, `TAP ${n.tap} was deleted and cannot be recreated (${describeError(toRouterError(err))}); trying again`, { tap: n.tap });
      return;
    }
    try {
      this.engine.replaceTap({ vni: n.vni, tapFd: tap.fd, tapName: tap.name, mtu: n.mtu, vnetHdr: tap.vnetHdr });
    } catch (err) {
      this.warn.warn(`tap ${n.vni}`, `TAP ${n.tap} recreated but not taken by the data path (${describeError(err)}); trying again`, { tap: n.tap });
      return;
    }
    st.tapsRecreated++;
    this.log.warn({ tap: n.tap, vni: n.vni, lostMs: this.now().getTime() - st.tapLostSince.getTime() }, `TAP ${n.tap} was deleted under the router: recreated${bridgePresent ? ` on bridge ${n.bridge}` : ` (bridge ${n.bridge} missing: it joins when the bridge returns)`}`);
    st.tapLostSince = null;
  }
}
