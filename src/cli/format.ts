/** Text forms of the control socket's answers: one screen, aligned columns, only what is not zero. */
import { offloadNames } from '../agent/control-protocol.js';
import type { Check, CounterRows, FdbRows, Method, PeerRows, Result, Status, TableRows, WhyResult } from '../agent/index.js';

export interface ShowFlags {
  socket?: string;
  json?: boolean;
  /** Only this VNI (checked to be one before use). */
  vni?: number | string;
}

/** An answer narrowed to one VNI (fdb, peers, table); the others whole. */
export function onlyVni<M extends Method>(method: M, result: Result<M>, vni: number | string | undefined): Result<M> {
  if (vni === undefined) return result;
  const r = result as Result<Method>;
  if (method === 'fdb') return (r as FdbRows).filter((e) => e.vni === vni) as Result<M>;
  if (method === 'peers') return (r as PeerRows).filter((p) => p.vnis.includes(vni as number)) as Result<M>;
  if (method === 'table') return { vnis: (r as TableRows).vnis.filter((v) => v.vni === vni) } as Result<M>;
  return result;
}

function duration(seconds: number): string {
  const d = Math.floor(seconds / 86400), h = Math.floor((seconds % 86400) / 3600), m = Math.floor((seconds % 3600) / 60), s = seconds % 60;
  return [d && `${d}d`, (d || h) && `${h}h`, (d || h || m) && `${m}m`, `${s}s`].filter(Boolean).join(' ');
}

function bytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  for (; n >= 1024 && i < units.length - 1; i++) n /= 1024;
  return `${i === 0 ? n : n.toFixed(1)} ${units[i]}`;
}

/** "1.2 s ago", "3 min ago", or "never". */
function ago(ms: number | null): string {
  if (ms === null) return 'never';
  if (ms < 1000) return `${Math.round(ms)} ms ago`;
  if (ms < 120_000) return `${(ms / 1000).toFixed(1)} s ago`;
  return `${duration(Math.round(ms / 1000))} ago`;
}

function table(rows: string[][]): string[] {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  return rows.map((r) => r.map((cell, c) => cell.padEnd(widths[c]!)).join('  ').trimEnd());
}

/** How the io_uring loop reads the UDP socket (EngineLoop.receive). */
const RECEIVES = { multishot: 'multishot recvmsg into provided buffers', poll: 'poll + recvmmsg' } as const;

/** An MSS per inner family: one figure when both are the same. */
function mssPair(v4: number | null, v6: number | null): string {
  return v4 === v6 ? String(v4) : `${v4} (IPv4) / ${v6} (IPv6)`;
}

/** --clamp-mss as status shows it: off, fixed N or per path, and the peers whose measured path lowers it. */
function clampLine(c: NonNullable<Status['networks'][number]['clampMss']>): string {
  if (c.mode === 'off') return 'off';
  const head = c.mode === 'fixed' ? `fixed ${mssPair(c.ipv4, c.ipv6)}` : `per path, at most ${mssPair(c.ipv4, c.ipv6)} (the underlay's path)`;
  const lower = c.lowered.map((l) => `${l.peer} ${mssPair(l.ipv4, l.ipv6)}`).join(', ');
  return `${head}${lower === '' ? '' : `; lower toward a smaller measured path: ${lower}`}`;
}

export function formatStatus(s: Status): string[] {
  const c = s.counters;
  const on = offloadNames(s.offloads).join(', ') || 'none';
  const drops = Object.entries(c).filter(([k, v]) => v > 0 && !/^(rx|tx)_(datagrams|bytes|frames|flooded|tso_frames|gso_sends|merged)$|^learned$|_suppressed$|^(probes_sent|probe_replies|probes_answered)$/.test(k));
  // A TAP MTU above the path's (the default) is not a fault: the router answers what does not fit with ICMP too-big.
  const mtuLine = s.mtu.tap > s.mtu.underlayLimit ? `${s.mtu.underlayLimit} on the path (larger IP packets are answered with ICMP too-big); TAP ${s.mtu.tap}` : String(s.mtu.tap);
  const cp = s.controlPlane;
  const etcdState =
    cp.state === 'degraded'
      ? `etcd away since ${cp.since ?? '?'} (forwarding with the last table, revision ${cp.revision ?? '?'})`
      : `${cp.state ?? '?'} since ${cp.since ?? '?'}, revision ${cp.revision ?? '?'}, ${cp.hosts ?? '?'} hosts${cp.startedFrom === 'snapshot' ? ', started from the snapshot' : ''}`;
  const plane = cp.mode === 'etcd' ? `etcd ${cp.endpoints.join(', ')}${s.network ? `, network ${s.network}` : ''}: ${etcdState}` : 'static peers';
  return [
    `router: ${s.software}, ${s.engine} engine, pid ${s.pid}, up ${duration(s.uptimeSeconds)}`,
    ...(s.networks.length > 1
      ? s.networks.map((n) => `  network ${n.name ?? '-'}: vni ${n.vni}  tap: ${n.tap} on bridge ${n.bridge}  mtu ${n.mtu}  ${n.state ?? ''}${n.revision !== null ? ` at revision ${n.revision}, ${n.hosts} hosts` : ''}${n.range ? `  range ${n.range}` : ''}`)
      : [`  vni: ${s.vni}  tap: ${s.tap} on bridge ${s.bridge}`]),
    ...(s.networks.length === 1 && s.networks[0]!.name !== null
      ? [`  address range: ${s.networks[0]!.range ? `${s.networks[0]!.range} (gateway ${s.networks[0]!.gateway}) for Docker's IPAM` : `none (${s.networks[0]!.rangeNote})`}`]
      : []),
    ...s.networks.flatMap((n) => (n.bridgeMissingSince ? [`(!) bridge ${n.bridge} missing since ${n.bridgeMissingSince}: TAP ${n.tap} kept, it joins the bridge when one of that name appears`] : [])),
    `  local: ${s.local}:${s.port} via ${s.underlay.device} (mtu ${s.underlay.mtu})`,
    `  mtu: ${mtuLine}`,
    ...s.networks.flatMap((n) => (n.clampMss === undefined ? [] : [`  ${s.networks.length > 1 ? `network ${n.name ?? n.vni} ` : ''}tcp mss clamp: ${clampLine(n.clampMss)}`])),
    `  offloads: ${on}`,
    ...(s.loop ? [`  loop: ${s.loop.kind}${s.loop.fallback ? ` (io_uring not used: ${s.loop.fallback})` : ''}${s.loop.receive ? `, receive: ${RECEIVES[s.loop.receive]}` : ''}`] : []),
    `  control plane: ${plane}`,
    ...(s.peers.length === 0
      ? ['peers: none']
      : s.peers.map(
          (p) =>
            `peer ${p.address}${p.hostId ? ` (${p.hostId})` : ''} vni ${p.vni}: last heard ${ago(p.lastSeenAgoMs)}, ` +
            `received ${bytes(p.rxBytes)} in ${p.rxFrames}, sent ${bytes(p.txBytes)} in ${p.txFrames}`,
        )),
    ...s.refusedSources.map((r) => `(!) refused ${r.count} datagram(s) of vni ${r.vni} from ${r.address}, last ${ago(r.agoMs)}: not a VTEP of that VNI (run doctor)`),
    ...(s.dockerProblems ?? []).map((p) => `(!) docker: ${p}`),
    ...s.macConflicts.map((c) => `(!) MAC ${c.mac} (vni ${c.vni}) claimed by ${c.hostIds.join(' and ')}: traffic goes to ${c.hostIds[0]}`),
    ...(s.addressConflicts ?? []).map(
      (c) =>
        `(!) address ${c.ip} (vni ${c.vni}) owned by ${c.owner.mac} on ${c.owner.hostId}, also claimed by ` +
        `${c.claimants.map((x) => `${x.mac} on ${x.hostId}${x.advertised ? '' : ' (refused here)'}`).join(', ')}: ARP / ND answer with the owner`,
    ),
    `traffic: in ${c.rx_datagrams ?? 0} datagrams (${bytes(c.rx_bytes ?? 0)}), out ${c.tx_frames ?? 0} frames (${bytes(c.tx_bytes ?? 0)}) in ${c.tx_datagrams ?? 0} datagrams, ${c.tx_flooded ?? 0} flooded, ${c.learned ?? 0} learned, answered locally ${c.arp_suppressed ?? 0} ARP / ${c.nd_suppressed ?? 0} ND`,
    `drops: ${drops.length === 0 ? 'none' : drops.map(([k, v]) => `${k} ${v}`).join(', ')}`,
    ...(s.memory ? [`memory: RSS ${bytes(s.memory.rss)}, JS heap ${bytes(s.memory.heapUsed)} used of ${bytes(s.memory.heapTotal)}, external ${bytes(s.memory.external)}`] : []),
  ];
}

export function formatFdb(rows: FdbRows): string[] {
  const shown = [...rows].sort((a, b) => a.vni - b.vni || a.mac.localeCompare(b.mac));
  if (shown.length === 0) return ['(no entries)'];
  return table([['VNI', 'MAC', 'VTEP', 'ORIGIN', 'AGE'], ...shown.map((r) => [String(r.vni), r.mac, r.vtep, r.origin, r.origin === 'learned' ? `${Math.round(r.ageMs / 1000)}s` : '-'])]);
}

export function formatWhy(w: WhyResult): string[] {
  const out: string[] = [];
  const ms = (v: number | null): string => (v === null ? '-' : ago(v));
  for (const f of w.frames) {
    out.push(`frames to ${f.ip !== null ? `${f.ip} (${f.mac})` : f.mac} on VNI ${f.vni}: ${f.verdict}`);
    if (f.origin !== null) out.push(`  entry: ${f.origin}${f.ageMs !== null ? `, seen ${ms(f.ageMs)}` : ''}${f.revision !== null ? `, etcd revision ${f.revision}` : ''}`);
    if (f.vtep !== null) out.push(`  vtep: ${f.vtep}, last heard ${ms(f.lastHeardAgoMs)}`);
    if (f.sourcePort !== null) out.push(`  outer source port: ${f.sourcePort.port} (${f.sourcePort.flow})`);
    const sources: Record<string, string> = {
      measured: ' (measured)',
      measuring: ' (being measured)',
      route: " (the kernel's path MTU toward it: it does not answer probes)",
      assumed: " (the underlay's, assumed: not measured)",
    };
    const source = f.pathMtuSource !== null ? sources[f.pathMtuSource]! : f.verdict === 'flood' ? " (the smallest of its peers')" : '';
    out.push(`  path mtu: ${f.pathMtu}${source}${f.peerState !== null ? `, peer ${f.peerState}` : ''}`);
    const clamp = f.clampMss ?? (f.verdict === 'local' ? null : w.clampMss);
    if (clamp !== null) out.push(`  tcp mss clamped to: ${f.ip === null ? `${clamp.ipv4} (IPv4) / ${clamp.ipv6} (IPv6)` : f.ip.includes(':') ? clamp.ipv6 : clamp.ipv4}`);
    out.push(`  ${f.detail}`);
  }
  if (w.sender !== null) out.push(`datagrams from ${w.sender.address}: ${w.sender.verdict}`, `  ${w.sender.detail}`, `  rule: ${w.sender.rule}`);
  if (w.frames.length === 0 && w.sender === null) out.push(`${w.target}: no table entry, neighbour or local sighting names it`);
  const c = Object.entries(w.counters);
  if (c.length > 0) out.push(`counters: ${c.map(([k, v]) => `${k} ${v}`).join(', ')}`);
  return out;
}

/** One block per peer, like `wg show`: what probing says of it first, then where it comes from and its traffic. */
export function formatPeers(rows: PeerRows): string[] {
  if (rows.length === 0) return ['(no peers)'];
  const ms = (v: number): string => (v < 10 ? v.toFixed(2) : v.toFixed(0));
  return rows.flatMap((r, i) => {
    const probed = r.state !== undefined && r.state !== null;
    const mtu = r.pathMtu ?? null;
    return [
      ...(i > 0 ? [''] : []),
      `peer: ${r.address}`,
      `  state: ${probed ? r.state : 'not probed (probeInterval 0)'}`,
      `  endpoint: ${r.address.includes(':') ? `[${r.address}]` : r.address}:${r.port}, vni ${r.vnis.join(',')}, ${r.origin}${r.hostId !== null ? `, host ${r.hostId}` : ''}${r.software !== null ? `, ${r.software}` : ''}`,
      ...(probed
        ? [
            `  latest answer: ${ago(r.lastAnswerAgoMs ?? null)}${r.rttMs != null ? `, rtt ${ms(r.rttMs)} ms` : ''}${r.lossPercent != null ? `, loss ${r.lossPercent}% (last minute)` : ''}`,
            `  path mtu: ${mtu === null ? 'not measured' : `${mtu} (overlay packets up to ${mtu - (r.address.includes(':') ? 70 : 50)})`}${r.pathMtuMeasuring === true ? ', measuring' : ''}`,
          ]
        : []),
      ...(r.clampMss != null ? [`  tcp mss clamp: ${mssPair(r.clampMss.ipv4, r.clampMss.ipv6)}`] : []),
      `  last heard: ${ago(r.lastSeenAgoMs)}${r.lastUpdateAgoMs !== null ? `, record updated ${ago(r.lastUpdateAgoMs)}` : ''}${r.mtu !== null ? `, advertised container mtu ${r.mtu}` : ''}`,
      `  transfer: ${bytes(r.rxBytes)} received, ${bytes(r.txBytes)} sent`,
    ];
  });
}

export function formatChecks(checks: readonly Check[]): string[] {
  const mark = { ok: 'ok  ', warn: 'WARN', fail: 'FAIL' } as const;
  return checks.flatMap((c) => [`${mark[c.status]}  ${c.check}: ${c.detail}`, ...(c.status !== 'ok' && c.fix ? [`      fix: ${c.fix}`] : [])]);
}

/** Every counter, traffic first, then the drops (by reason), zeros included: the list is the reference. */
export function formatCounters(c: CounterRows): string[] {
  return table([['COUNTER', 'VALUE'], ...Object.entries(c).map(([k, v]) => [k, String(v)])]);
}

export function formatTable(t: TableRows): string[] {
  if (t.vnis.length === 0) return ['(no VNIs)'];
  return t.vnis.flatMap((v) => [
    `vni ${v.vni}: ${v.peers.length} peer(s)${v.peers.length ? `: ${v.peers.join(', ')}` : ''}`,
    ...v.macs.map((m) => `  mac ${m.mac} → ${m.vtep} (${m.origin ?? 'static'})`),
    ...(v.neighbors ?? []).map((n) => `  neighbour ${n.ip} is ${n.mac}`),
  ]);
}
