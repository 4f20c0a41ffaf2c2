/**
 * The path toward one peer (VTEP) as the data path uses it: the largest inner IP packet (its measured path MTU less the
 * encapsulation, or the underlay's when nothing smaller was measured) and the TCP MSS clamp toward it. The engines hold
 * frames to what PeerProber.pathMtus() hands them (measured sizes below the underlay MTU, the last figure kept while a
 * search is under way) and clamp SYNs with clampForPath of that path; `why` and `status` read it from here so they
 * say what the data path does.
 */
import type { PeerHealthRow } from '../dataplane/index.js';
import { canonicalIp, clampForPath, innerMtuLimit, type MssClamp } from '../packet/index.js';
import type { DaemonView } from './daemon.js';

/**
 * measured: probes measured it; measuring: a search is under way (the last figure, else the underlay's, in use);
 * route: a peer that does not answer probes (a kernel VTEP), whose path the kernel knows to be smaller than the
 * underlay's (the route's or device's MTU, or an ICMP "fragmentation needed" from the underlay);
 * assumed: the underlay's, not measured (probing off, a peer that does not answer probes: a kernel VTEP, or down).
 */
export type PathMtuSource = 'measured' | 'measuring' | 'route' | 'assumed';

export interface PeerPath {
  /** The largest inner IP packet toward the peer (larger ones: tx_too_big, answered with ICMP too-big). */
  readonly mtu: number;
  readonly source: PathMtuSource;
  /** The peer's probe state (null: probing off). */
  readonly state: PeerHealthRow['state'] | null;
  /** The MSS clamp toward it (null: --clamp-mss off). */
  readonly clamp: MssClamp | null;
  /** One phrase for people: where the figure comes from. */
  readonly note: string;
}

/** A function from peer address to its path, over one snapshot of the router's peer health. */
export function peerPaths(router: DaemonView): (vtep: string) => PeerPath {
  const { info } = router;
  const rows = new Map(router.peerHealth().map((h) => [canonicalIp(h.address), h]));
  const probing = rows.size > 0;
  const underlay = innerMtuLimit(info.underlay.mtu, info.local);
  return (vtep) => {
    const h = rows.get(canonicalIp(vtep));
    const clampAt = (mtu: number): MssClamp | null => (info.clampMss === null ? null : mtu < underlay ? clampForPath(info.clampMss, mtu) : info.clampMss);
    if (h !== undefined && h.pathMtu === null && h.routeMtu !== null && !h.measuring && h.state !== 'up') {
      const mtu = Math.min(underlay, innerMtuLimit(h.routeMtu, info.local));
      return { mtu, source: 'route', state: h.state, clamp: clampAt(mtu), note: `the kernel's path MTU toward it (${h.routeMtu}): it does not answer probes` };
    }
    if (h === undefined || (h.pathMtu === null && !h.measuring && h.state !== 'up')) {
      const why =
        h === undefined
          ? probing
            ? 'not probed (not yet, or over the bound of probed peers)'
            : 'probing is off (--probe-interval 0)'
          : h.state === 'unknown'
            ? 'it does not answer probes (a kernel VTEP?)'
            : 'it does not answer probes (down)';
      return { mtu: underlay, source: 'assumed', state: h?.state ?? null, clamp: clampAt(underlay), note: `the underlay's, assumed: ${why}` };
    }
    // The engines use a measured figure only below the underlay MTU (PeerProber.pathMtus()).
    const mtu = h.pathMtu === null ? underlay : Math.min(underlay, innerMtuLimit(h.pathMtu, info.local));
    const measuring = h.measuring || h.pathMtu === null;
    const note =
      h.pathMtu === null
        ? "being measured (the underlay's until then)"
        : `measured: ${h.pathMtu}-byte packets cross the underlay${h.measuring ? ' (being measured again: the last figure is used until then)' : ''}`;
    return { mtu, source: measuring ? 'measuring' : 'measured', state: h.state, clamp: clampAt(mtu), note };
  };
}

/** The clamp toward every peer of a flood: the smallest (a SYN flooded must fit every path it takes). */
export function floodClamp(paths: readonly PeerPath[], clamp: MssClamp | null): MssClamp | null {
  if (clamp === null) return null;
  return paths.reduce<MssClamp>((c, p) => (p.clamp === null ? c : { ipv4: Math.min(c.ipv4, p.clamp.ipv4), ipv6: Math.min(c.ipv6, p.clamp.ipv6) }), clamp);
}
