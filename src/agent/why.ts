/**
 * `vxlan-router why <mac|ip>`: the forwarding decision for frames to a MAC or overlay address (which table entry
 * matches, with its origin and age, the VTEP, when it was last heard, the path MTU), and the receive decision for
 * datagrams from an underlay address (accepted as a peer of which VNIs, or refused and how often), with the
 * router-wide drop counters those frames and datagrams hit. Built from the router at the moment of asking; the rules
 * are the data path's (src/dataplane/js-engine.ts, native/src/tx.cc and rx.cc): static and etcd entries before
 * learned ones, unknown unicast floods, only peers of a VNI are accepted on it.
 */
import { isIP } from 'node:net';
import type { RouterConfig } from '../config/index.js';
import { canonicalIp, innerMtuLimit } from '../packet/index.js';
import type { WhyQuery, WhyResult } from './control-protocol.js';
import type { DaemonView } from './daemon.js';

const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i;
const TX_DROPS = ['tx_too_big', 'icmp_too_big_sent', 'icmp_too_big_limited', 'tx_no_destination', 'tx_send_error', 'tx_flooded'] as const;
const RX_DROPS = ['rx_unknown_source', 'rx_unknown_vni', 'rx_spoofed_source', 'rx_learn_full'] as const;

/** Thrown for a target that is neither a MAC nor an IP address (the socket answers it as an error). */
export class WhyTargetError extends Error {}

export function explainWhy(router: DaemonView, config: Pick<RouterConfig, 'learning'>, q: WhyQuery): WhyResult {
  const raw = q.target.trim();
  const isMac = MAC.test(raw);
  if (!isMac && isIP(raw) === 0) throw new WhyTargetError(`"${raw}" is neither a MAC (aa:bb:cc:dd:ee:ff) nor an IP address`);
  const target = isMac ? raw.toLowerCase() : canonicalIp(raw);
  const { info } = router;
  const pathMtu = innerMtuLimit(info.underlay.mtu, info.local);
  const table = router.table();
  const served = info.networks.map((n) => n.vni).filter((v) => q.vni === undefined || v === q.vni);
  const fdb = router.fdb();
  const local = router.localMacs();
  const heard = new Map(router.traffic().peers.map((p) => [p.address, p.lastRxAgoMs < 0 ? null : p.lastRxAgoMs]));

  // The MACs the target stands for, per VNI: itself, or what the neighbour tables (remote) and local sightings say.
  const macs: { vni: number; mac: string; ip: string | null }[] = [];
  for (const vni of served) {
    if (isMac) {
      macs.push({ vni, mac: target, ip: null });
      continue;
    }
    const found = new Set<string>();
    for (const n of table.vnis.find((v) => v.vni === vni)?.neighbors ?? []) if (canonicalIp(n.ip) === target) found.add(n.mac.toLowerCase());
    for (const m of local) if (m.vni === vni && m.ips.some((a) => canonicalIp(a) === target)) found.add(m.mac.toLowerCase());
    for (const mac of found) macs.push({ vni, mac, ip: target });
  }

  const frames = macs.map(({ vni, mac, ip }): WhyResult['frames'][number] => {
    const peers = table.vnis.find((v) => v.vni === vni)?.peers ?? [];
    const entries = fdb.filter((e) => e.vni === vni && e.mac.toLowerCase() === mac);
    const entry = entries.find((e) => e.origin !== 'learned') ?? entries[0]; // static and etcd entries win over learned ones
    const base = { vni, mac, ip, pathMtu };
    if (entry !== undefined) {
      const last = heard.get(entry.vtep) ?? null;
      return {
        ...base,
        verdict: 'remote',
        origin: entry.origin,
        vtep: entry.vtep,
        ageMs: entry.origin === 'learned' ? entry.ageMs : null,
        lastHeardAgoMs: last,
        detail: `${entry.origin} entry: unicast to VTEP ${entry.vtep}${last === null ? ' (never heard from)' : ''}; IP packets above ${pathMtu} are dropped (tx_too_big) and answered with ICMP too-big`,
      };
    }
    const mine = local.find((m) => m.vni === vni && m.mac.toLowerCase() === mac);
    if (mine !== undefined) {
      return { ...base, verdict: 'local', origin: null, vtep: null, ageMs: mine.ageMs, lastHeardAgoMs: null, detail: `on this host's bridge (seen ${Math.round(mine.ageMs / 1000)} s ago): the bridge delivers it, the router does not carry it` };
    }
    if (peers.length === 0) {
      return { ...base, verdict: 'none', origin: null, vtep: null, ageMs: null, lastHeardAgoMs: null, detail: `VNI ${vni} has no peer: frames are dropped (tx_no_destination)` };
    }
    return {
      ...base,
      verdict: 'flood',
      origin: null,
      vtep: null,
      ageMs: null,
      lastHeardAgoMs: null,
      detail: `unknown unicast: flooded to ${peers.length} peer(s) of VNI ${vni} (tx_flooded)${config.learning ? ' until an answer teaches its VTEP' : ' (learning is off)'}`,
    };
  });

  // The target as an underlay sender: accepted on the VNIs it is a peer of; refused (rx_unknown_source) elsewhere.
  let sender: WhyResult['sender'] = null;
  if (!isMac) {
    const vnis = table.vnis.filter((v) => v.peers.some((p) => canonicalIp(p) === target)).map((v) => v.vni);
    const refused = router.traffic().rejected.filter((r) => canonicalIp(r.address) === target);
    const refusedCount = refused.reduce((n, r) => n + r.count, 0);
    const lastRefusedAgoMs = refused.length === 0 ? null : Math.min(...refused.map((r) => r.agoMs));
    if (vnis.length > 0 || refused.length > 0 || frames.length === 0) {
      const servedAll = info.networks.map((n) => n.vni);
      sender =
        vnis.length > 0
          ? {
              address: target,
              verdict: 'accepted',
              vnis,
              refusedCount,
              lastRefusedAgoMs,
              detail: `a peer of VNI ${vnis.join(', ')}: its datagrams are accepted${heard.get(target) != null ? `, last ${Math.round(heard.get(target)! / 1000)} s ago` : ' (none received yet)'}${refused.length > 0 ? `; refused on VNI ${refused.map((r) => r.vni).join(', ')} (not a peer there)` : ''}`,
            }
          : {
              address: target,
              verdict: 'refused',
              vnis: [],
              refusedCount,
              lastRefusedAgoMs,
              detail: `not a peer of any VNI served here (${servedAll.join(', ')}): its datagrams are dropped (rx_unknown_source)${refused.length > 0 ? `, ${refusedCount} so far, last ${Math.round(lastRefusedAgoMs! / 1000)} s ago` : ''}; a peer comes from --peer or the etcd registry (a host behind NAT or sending from another address is refused)`,
            };
    }
  }

  const all = router.counters() as Readonly<Record<string, number>>;
  const names = [...(frames.length > 0 ? TX_DROPS : []), ...(sender !== null ? RX_DROPS : [])];
  return { target, frames, sender, counters: Object.fromEntries(names.map((n) => [n, all[n] ?? 0])) };
}
