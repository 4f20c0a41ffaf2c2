/**
 * `vxlan-router why <mac|ip>`: the forwarding decision for frames to a MAC or overlay address (which table entry
 * matches, with its origin and age, the VTEP, when it was last heard, the path MTU), and the receive decision for
 * datagrams from an underlay address (accepted as a peer of which VNIs, or refused and how often), with the
 * router-wide drop counters those frames and datagrams hit. Built from the router at the moment of asking; the rules
 * are the data path's (src/dataplane/js-engine.ts, native/src/tx.cc and rx.cc): static and etcd entries before
 * learned ones, unknown unicast floods, only peers of a VNI are accepted on it. The outer source port is the
 * engine's own choice for one inner flow (Engine.sourcePort), built here as the first bytes of such a frame.
 */
import { isIP } from 'node:net';
import type { RouterConfig } from '../config/index.js';
import { canonicalIp, encodeEthernet, encodeIpv4, encodeIpv6, ETHERTYPE_ARP, ETHERTYPE_IPV4, ETHERTYPE_IPV6, innerMtuLimit, parseIp, parseMac, PROTO_TCP, PROTO_UDP, type MssClamp } from '../packet/index.js';
import type { WhyQuery, WhyResult } from './control-protocol.js';
import type { DaemonView } from './daemon.js';
import { floodClamp, peerPaths } from './peer-path.js';

const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i;
const TX_DROPS = ['tx_too_big', 'icmp_too_big_sent', 'icmp_too_big_limited', 'tx_no_destination', 'tx_send_error', 'tx_flooded'] as const;
const CLAMP_COUNTERS = ['tcp_mss_clamped', 'tcp_mss_bad_options'] as const;
/** The receive rule both engines apply, in their order. */
const RX_RULE =
  'accepted when the VXLAN I flag is set (else rx_bad_flags), the VNI is served here (rx_unknown_vni) and the sender is a peer of that VNI (rx_unknown_source); ' +
  'then an inner frame whose source MAC is this host\'s or placed on another VTEP is dropped (rx_spoofed_source), as is a new source over the learning bounds (rx_learn_full)';
const RX_DROPS = ['rx_unknown_source', 'rx_unknown_vni', 'rx_spoofed_source', 'rx_learn_full'] as const;

/** Thrown for a target that is neither a MAC nor an IP address (the socket answers it as an error). */
export class WhyTargetError extends Error {}

/**
 * The first bytes of a frame of one inner flow to `mac` (and `ip`): enough for the flow hash (Ethernet, IP header,
 * ports). Without an address: a non-IP frame (ARP) from `fromMac`. Undefined when no sender is known to hash.
 */
function flowFrame(mac: string, ip: string | null, from: { mac: string | null; ip: string | null }, flow: WhyQuery['flow']): { frame: Uint8Array; flow: string } | undefined {
  const dst = parseMac(mac);
  const src = parseMac(from.mac ?? '00:00:00:00:00:00');
  if (ip === null) {
    if (from.mac === null) return undefined;
    return { frame: encodeEthernet(dst, src, ETHERTYPE_ARP, new Uint8Array(28)), flow: `non-IP frames (ARP) from ${from.mac}` };
  }
  if (from.ip === null || isIP(from.ip) !== isIP(ip)) return undefined;
  const v6 = isIP(ip) === 6;
  const proto = flow === undefined ? (v6 ? 58 : 1) : flow.proto === 'tcp' ? PROTO_TCP : PROTO_UDP;
  const ports = flow === undefined ? new Uint8Array(8) : Uint8Array.of(flow.sport >> 8, flow.sport & 0xff, flow.dport >> 8, flow.dport & 0xff, 0, 0, 0, 0);
  const header = v6
    ? encodeIpv6({ nextHeader: proto, src: parseIp(from.ip), dst: parseIp(ip), payloadLen: ports.length })
    : encodeIpv4({ protocol: proto, src: parseIp(from.ip), dst: parseIp(ip), payloadLen: ports.length });
  const packet = new Uint8Array(header.length + ports.length);
  packet.set(header);
  packet.set(ports, header.length);
  const what = flow === undefined ? `${v6 ? 'ICMPv6' : 'ICMP'} (ping)` : `${flow.proto.toUpperCase()} ${flow.sport} → ${flow.dport}`;
  return { frame: encodeEthernet(dst, src, v6 ? ETHERTYPE_IPV6 : ETHERTYPE_IPV4, packet), flow: `${what} from ${from.ip}` };
}

export function explainWhy(router: DaemonView, config: Pick<RouterConfig, 'learning'>, q: WhyQuery): WhyResult {
  const raw = q.target.trim();
  const isMac = MAC.test(raw);
  if (!isMac && isIP(raw) === 0) throw new WhyTargetError(`"${raw}" is neither a MAC (aa:bb:cc:dd:ee:ff) nor an IP address`);
  const target = isMac ? raw.toLowerCase() : canonicalIp(raw);
  const { info } = router;
  const pathMtu = innerMtuLimit(info.underlay.mtu, info.local);
  const pathTo = peerPaths(router);
  const table = router.table();
  const served = info.networks.map((n) => n.vni).filter((v) => q.vni === undefined || v === q.vni);
  const fdb = router.fdb();
  const local = router.localMacs();
  const heard = new Map(router.traffic().peers.map((p) => [p.address, p.lastRxAgoMs < 0 ? null : p.lastRxAgoMs]));
  const fromRaw = q.from?.trim();
  if (fromRaw !== undefined && !MAC.test(fromRaw) && isIP(fromRaw) === 0) throw new WhyTargetError(`--from "${fromRaw}" is neither a MAC nor an IP address`);
  /** The sender whose flow the source port is shown for: --from, else a local container of the VNI (of the target's family). */
  const senderOn = (vni: number, ip: string | null): { mac: string | null; ip: string | null } => {
    const family = ip === null ? 0 : isIP(ip);
    if (fromRaw !== undefined) {
      if (MAC.test(fromRaw)) return { mac: fromRaw.toLowerCase(), ip: local.find((m) => m.vni === vni && m.mac.toLowerCase() === fromRaw.toLowerCase())?.ips.find((a) => isIP(a) === family) ?? null };
      const owner = local.find((m) => m.vni === vni && m.ips.some((a) => canonicalIp(a) === canonicalIp(fromRaw)));
      return { mac: owner?.mac.toLowerCase() ?? null, ip: canonicalIp(fromRaw) };
    }
    const mine = local.filter((m) => m.vni === vni && m.mac.toLowerCase() !== target);
    const withIp = mine.find((m) => m.ips.some((a) => isIP(a) === family));
    const pick = ip === null ? mine[0] : withIp;
    return { mac: pick?.mac.toLowerCase() ?? null, ip: pick?.ips.find((a) => isIP(a) === family) ?? null };
  };
  const sourcePortOf = (vni: number, mac: string, ip: string | null): WhyResult['frames'][number]['sourcePort'] => {
    const f = flowFrame(mac, ip, senderOn(vni, ip), q.flow);
    return f === undefined ? null : { port: router.sourcePort(f.frame), flow: f.flow };
  };
  const revisionOf = (vni: number, mac: string): number | null =>
    table.vnis.find((v) => v.vni === vni)?.macs.find((m) => m.mac.toLowerCase() === mac && m.origin === 'etcd')?.revision ?? null;

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

  const clamp = router.info.clampMss;
  const clampNote = (c: MssClamp | null, ip: string | null): string =>
    c === null ? '' : `; TCP SYNs' MSS is clamped to ${ip === null ? `${c.ipv4} (IPv4) / ${c.ipv6} (IPv6)` : isIP(ip) === 6 ? c.ipv6 : c.ipv4}`;
  const frames = macs.map(({ vni, mac, ip }): WhyResult['frames'][number] => {
    const peers = table.vnis.find((v) => v.vni === vni)?.peers ?? [];
    const entries = fdb.filter((e) => e.vni === vni && e.mac.toLowerCase() === mac);
    const entry = entries.find((e) => e.origin !== 'learned') ?? entries[0]; // static and etcd entries win over learned ones
    const base = { vni, mac, ip, pathMtu, pathMtuSource: null, peerState: null, clampMss: null, revision: null, sourcePort: null };
    if (entry !== undefined) {
      const last = heard.get(entry.vtep) ?? null;
      const revision = entry.origin === 'etcd' ? revisionOf(vni, mac) : null;
      const path = pathTo(entry.vtep);
      return {
        ...base,
        verdict: 'remote',
        pathMtu: path.mtu,
        pathMtuSource: path.source,
        peerState: path.state,
        clampMss: path.clamp,
        revision,
        sourcePort: sourcePortOf(vni, mac, ip),
        origin: entry.origin,
        vtep: entry.vtep,
        ageMs: entry.origin === 'learned' ? entry.ageMs : null,
        lastHeardAgoMs: last,
        detail: `${entry.origin} entry${revision !== null ? ` (etcd revision ${revision})` : ''}: unicast to VTEP ${entry.vtep}${last === null ? ' (never heard from)' : ''}${path.state !== null ? `, ${path.state}` : ''}; path MTU ${path.mtu}, ${path.note}: IP packets above ${path.mtu} are dropped (tx_too_big) and answered with ICMP too-big (mtu ${path.mtu})${clampNote(path.clamp, ip)}`,
      };
    }
    const mine = local.find((m) => m.vni === vni && m.mac.toLowerCase() === mac);
    if (mine !== undefined) {
      return { ...base, verdict: 'local', origin: null, vtep: null, ageMs: mine.ageMs, lastHeardAgoMs: null, detail: `on this host's bridge (seen ${Math.round(mine.ageMs / 1000)} s ago): the bridge delivers it, the router does not carry it` };
    }
    if (peers.length === 0) {
      return { ...base, verdict: 'none', origin: null, vtep: null, ageMs: null, lastHeardAgoMs: null, detail: `VNI ${vni} has no peer: frames are dropped (tx_no_destination)` };
    }
    // A flooded copy too big for one peer's path is dropped for that peer only (counted, unanswered).
    const paths = peers.map(pathTo);
    const smallest = Math.min(...paths.map((p) => p.mtu));
    return {
      ...base,
      pathMtu: smallest,
      clampMss: floodClamp(paths, clamp),
      sourcePort: sourcePortOf(vni, mac, ip),
      verdict: 'flood',
      origin: null,
      vtep: null,
      ageMs: null,
      lastHeardAgoMs: null,
      detail: `unknown unicast: flooded to ${peers.length} peer(s) of VNI ${vni} (tx_flooded)${config.learning ? ' until an answer teaches its VTEP' : ' (learning is off)'}${smallest < pathMtu ? `; a copy above a peer's path MTU is dropped for that peer (tx_too_big; smallest ${smallest})` : ''}${clampNote(floodClamp(paths, clamp), ip)}`,
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
      const hostOf = router.hosts().find((h) => h.record.underlay.some((a) => canonicalIp(a) === target))?.record.hostId ?? null;
      const isStatic = info.peers.some((p) => canonicalIp(p) === target);
      const peerOf = vnis.map((vni) => ({ vni, origin: isStatic ? ('static' as const) : ('etcd' as const), hostId: isStatic ? null : hostOf }));
      const origins = isStatic ? 'a static peer (--peer)' : `etcd host ${hostOf ?? '(record gone)'}`;
      const registered = hostOf !== null ? ` It is registered in etcd as host ${hostOf}, but serves none of these networks.` : '';
      sender =
        vnis.length > 0
          ? {
              address: target,
              verdict: 'accepted',
              vnis,
              refusedCount,
              lastRefusedAgoMs,
              peerOf,
              rule: RX_RULE,
              detail: `${origins}, a peer of VNI ${vnis.join(', ')}: its datagrams are accepted${heard.get(target) != null ? `, last ${Math.round(heard.get(target)! / 1000)} s ago` : ' (none received yet)'}${refused.length > 0 ? `; refused on VNI ${refused.map((r) => r.vni).join(', ')} (not a peer there)` : ''}`,
            }
          : {
              address: target,
              verdict: 'refused',
              vnis: [],
              refusedCount,
              lastRefusedAgoMs,
              peerOf: [],
              rule: RX_RULE,
              detail: `not a peer of any VNI served here (${servedAll.join(', ')}): its datagrams are dropped (rx_unknown_source)${refused.length > 0 ? `, ${refusedCount} so far, last ${Math.round(lastRefusedAgoMs! / 1000)} s ago` : ''}; a peer comes from --peer or the etcd registry (a host behind NAT or sending from another address is refused).${registered}`,
            };
    }
  }

  const all = router.counters() as Readonly<Record<string, number>>;
  const names = [...(frames.length > 0 ? TX_DROPS : []), ...(frames.length > 0 && clamp !== null ? CLAMP_COUNTERS : []), ...(sender !== null ? RX_DROPS : [])];
  return { target, frames, sender, clampMss: clamp, counters: Object.fromEntries(names.map((n) => [n, all[n] ?? 0])) };
}
