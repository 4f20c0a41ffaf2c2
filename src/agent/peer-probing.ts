/**
 * Peer health wired to a running engine (src/dataplane/peer-health.ts): probes to every peer of the table, the
 * engine's replies collected, and the path MTUs hand to the data path the moment they change (not at the next tick:
 * a frame in between would leave too big). A peer that does not answer probes (a kernel VTEP) gets the kernel's own
 * path MTU toward it (the addon's routeMtu).
 */
import { PeerProber, type Engine, type NativeAddon } from '../dataplane/index.js';
import type { Logger } from '../log.js';
import { innerMtuLimit } from '../packet/index.js';

/** How often probe replies are collected and due probes sent (at most; a quarter of the probe interval when shorter). */
const PROBE_TICK_MS = 250;

export interface PeerProbing {
  readonly prober: PeerProber;
  close(): void;
}

export function startProbing(o: {
  readonly engine: Engine;
  readonly native: NativeAddon;
  readonly local: string;
  /** The underlay device's MTU: the largest size probed. */
  readonly underlayMtu: number;
  readonly intervalSeconds: number;
  readonly peers: Iterable<string>;
  readonly log: Logger;
}): PeerProbing {
  const { engine, log, underlayMtu } = o;
  let mtus = new Map<string, number>();
  const push = (): void => {
    const next = prober.pathMtus();
    if (next.size === mtus.size && [...next].every(([a, m]) => mtus.get(a) === m)) return;
    for (const [a, m] of next) if (mtus.get(a) !== m) log.info({ peer: a, pathMtu: m }, `path MTU to ${a} is ${m} (underlay ${underlayMtu}): frames are held to ${innerMtuLimit(m, o.local)}`);
    for (const a of mtus.keys()) if (!next.has(a)) log.info({ peer: a, pathMtu: underlayMtu }, `path MTU to ${a} is the underlay's again (${underlayMtu})`);
    mtus = next;
    engine.setPathMtus(next);
  };
  const prober: PeerProber = new PeerProber({
    maxMtu: underlayMtu,
    intervalMs: o.intervalSeconds * 1000,
    send: (to, p) => engine.sendProbe(to, p),
    onPathMtu: push,
    routeMtu: (to) => routeMtu(o.native, o.local, to),
  });
  prober.setPeers(o.peers);
  const timer = setInterval(() => {
    for (const r of engine.probeReplies()) prober.answer(r);
    prober.tick();
    push(); // peers that left the table
  }, Math.min(PROBE_TICK_MS, (o.intervalSeconds * 1000) / 4));
  timer.unref();
  return { prober, close: () => clearInterval(timer) };
}

/** The kernel's path MTU toward a peer (0: it cannot tell, e.g. an address of the other family). */
function routeMtu(native: NativeAddon, local: string, to: string): number {
  try {
    return native.routeMtu(local, to);
  } catch {
    return 0;
  }
}
