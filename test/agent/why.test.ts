/**
 * `why` without a lab (explainWhy on a fake router): an etcd entry with its revision and the outer source port of a
 * flow (the engine's choice for the very frame why builds), an etcd peer (accepted, with its host), an address never
 * seen (refused, 0 so far), a refused sender, an address registered in etcd that serves none of these networks, the
 * clamp in force and its counters; the path MTU and clamp toward a VTEP from its measured path (measured, being
 * measured, assumed for a kernel VTEP or with probing off), a flood's the smallest of its peers'; the same clamp per
 * peer in `peers` (rows and text). The lab test (test/lab/why.test.ts) checks the same against real routers.
 */
import t from 'tap';
import { controlSource, peersSchema, type DaemonView, type WhyResult } from '../../src/agent/index.js';
import { formatPeers } from '../../src/cli/format.js';
import type { RouterConfig } from '../../src/config/index.js';
import { explainWhy } from '../../src/agent/why.js';
import { zeroCounters } from '../../src/dataplane/engine.js';
import type { PeerHealthRow } from '../../src/dataplane/index.js';
import { flowPort } from '../../src/packet/index.js';

const ETCD_HOST = { record: { version: 1 as const, hostId: 'h2', underlay: ['198.51.100.2'], port: 4789, networks: ['blue'], mtu: 1500, software: 'x', startedAt: '2026-12-04T00:00:00Z' }, updatedAt: 0 };
const STRAY_HOST = { record: { ...ETCD_HOST.record, hostId: 'h9', underlay: ['198.51.100.9'], networks: ['red'] }, updatedAt: 0 };

function router(frames: Uint8Array[], health: PeerHealthRow[] = []): DaemonView {
  const fake = {
    info: {
      engine: 'native',
      local: '198.51.100.1',
      port: 4789,
      underlay: { mtu: 1500 },
      peers: [],
      networks: [{ name: 'blue', vni: 42 }],
      clampMss: { ipv4: 1410, ipv6: 1390 },
    },
    table: () => ({
      vnis: [{ vni: 42, peers: ['198.51.100.2'], macs: [{ mac: '02:00:00:00:00:02', vtep: '198.51.100.2', origin: 'etcd' as const, revision: 17 }], neighbors: [{ ip: '198.18.0.2', mac: '02:00:00:00:00:02' }] }],
    }),
    fdb: () => [{ vni: 42, mac: '02:00:00:00:00:02', vtep: '198.51.100.2', origin: 'etcd' as const, ageMs: 0 }],
    localMacs: () => [{ vni: 42, mac: '02:00:00:00:00:01', ageMs: 500, ips: ['198.18.0.1'] }],
    traffic: () => ({ peers: [{ address: '198.51.100.2', lastRxAgoMs: 300, rxFrames: 1, rxBytes: 1, txFrames: 1, txBytes: 1 }], vnis: [], rejected: [{ address: '198.51.100.9', vni: 42, count: 3, agoMs: 2000 }] }),
    counters: () => ({ ...zeroCounters(), rx_unknown_source: 3, tcp_mss_clamped: 5 }),
    hosts: () => [ETCD_HOST, STRAY_HOST],
    peerHealth: () => health,
    sourcePort: (frame: Uint8Array) => {
      frames.push(frame);
      return flowPort(frame);
    },
  };
  return fake as unknown as DaemonView;
}

t.test('an etcd entry: revision, VTEP, the outer source port of one flow, the clamp', async (t) => {
  const frames: Uint8Array[] = [];
  const w: WhyResult = explainWhy(router(frames), { learning: true }, { target: '198.18.0.2', flow: { proto: 'tcp', sport: 40000, dport: 80 } });
  t.match(w.frames, [{ vni: 42, mac: '02:00:00:00:00:02', ip: '198.18.0.2', verdict: 'remote', origin: 'etcd', revision: 17, vtep: '198.51.100.2', lastHeardAgoMs: 300, pathMtu: 1450, detail: /etcd entry \(etcd revision 17\).*clamped to 1410$/ }]);
  t.equal(frames.length, 1, 'one frame asked of the engine');
  const f = frames[0]!;
  t.same([...f.subarray(26, 34)], [198, 18, 0, 1, 198, 18, 0, 2], 'from the local container (198.18.0.1) to the target');
  t.same([f[23], (f[34]! << 8) | f[35]!, (f[36]! << 8) | f[37]!], [6, 40000, 80], 'TCP 40000 → 80');
  t.same(w.frames[0]!.sourcePort, { port: flowPort(f), flow: 'TCP 40000 → 80 from 198.18.0.1' });
  t.same(w.clampMss, { ipv4: 1410, ipv6: 1390 });
  t.match(w.counters, { tcp_mss_clamped: 5, tcp_mss_bad_options: 0, tx_too_big: 0 });

  const ping = explainWhy(router([]), { learning: true }, { target: '198.18.0.2', from: '198.18.0.1' });
  t.match(ping.frames[0]!.sourcePort, { flow: 'ICMP (ping) from 198.18.0.1' }, 'ping unless --flow');
  const arp = explainWhy(router([]), { learning: true }, { target: '02:00:00:00:00:02' });
  t.match(arp.frames[0]!.sourcePort, { flow: 'non-IP frames (ARP) from 02:00:00:00:00:01' }, 'a MAC target: non-IP frames from a local container');
  t.equal(explainWhy(router([]), { learning: true }, { target: '198.18.0.2', from: 'fd00::1' }).frames[0]!.sourcePort, null, 'a sender of the other family: no flow to hash');
  t.throws(() => explainWhy(router([]), { learning: true }, { target: '198.18.0.2', from: 'nonsense' }), /--from "nonsense" is neither a MAC nor an IP address/);
});

t.test('senders: an etcd peer, an unknown address, a refused one, a registered host of another network', async (t) => {
  const ask = (target: string): WhyResult['sender'] => explainWhy(router([]), { learning: true }, { target }).sender;
  t.match(ask('198.51.100.2'), { verdict: 'accepted', vnis: [42], peerOf: [{ vni: 42, origin: 'etcd', hostId: 'h2' }], rule: /I flag .* served here .* peer of that VNI/, detail: /^etcd host h2, a peer of VNI 42: its datagrams are accepted, last 0 s ago/ });
  t.match(ask('198.51.100.77'), { verdict: 'refused', vnis: [], peerOf: [], refusedCount: 0, lastRefusedAgoMs: null, detail: /^not a peer of any VNI served here \(42\): its datagrams are dropped \(rx_unknown_source\);/ });
  t.notMatch(ask('198.51.100.77')!.detail, /registered/);
  t.match(ask('198.51.100.9'), { verdict: 'refused', refusedCount: 3, lastRefusedAgoMs: 2000, detail: /3 so far, last 2 s ago.*registered in etcd as host h9, but serves none of these networks/ });
});

const health = (o: Partial<PeerHealthRow>): PeerHealthRow => ({ address: '198.51.100.2', state: 'up', rttMs: 0.3, lossPercent: 0, pathMtu: 1500, routeMtu: null, measuring: false, lastAnswerAgoMs: 100, probesSent: 9, answers: 9, ...o });

t.test('the path MTU and clamp toward a VTEP are its measured ones', async (t) => {
  const ask = (rows: PeerHealthRow[], target = '198.18.0.2') => explainWhy(router([], rows), { learning: true }, { target }).frames[0]!;
  // Measured below the underlay (1400-byte outer packets: 1350 inner): the too-big answer and the clamp follow it.
  const low = ask([health({ pathMtu: 1400 })]);
  t.match(low, { verdict: 'remote', pathMtu: 1350, pathMtuSource: 'measured', peerState: 'up', clampMss: { ipv4: 1310, ipv6: 1290 } });
  t.match(low.detail, /, up; path MTU 1350, measured: 1400-byte packets cross the underlay: IP packets above 1350 are dropped \(tx_too_big\) and answered with ICMP too-big \(mtu 1350\); TCP SYNs' MSS is clamped to 1310$/);
  t.match(ask([health({ pathMtu: 1500 })]), { pathMtu: 1450, pathMtuSource: 'measured', clampMss: { ipv4: 1410, ipv6: 1390 } }, 'the underlay MTU measured: the configured clamp');
  t.match(ask([health({ pathMtu: 1400, measuring: true })]), { pathMtu: 1350, pathMtuSource: 'measuring', detail: /being measured again: the last figure is used until then/ });
  t.match(ask([health({ pathMtu: null, measuring: true })]), { pathMtu: 1450, pathMtuSource: 'measuring', detail: /being measured \(the underlay's until then\)/ });
  t.match(ask([health({ state: 'unknown', pathMtu: null, lastAnswerAgoMs: null })]), { pathMtu: 1450, pathMtuSource: 'assumed', peerState: 'unknown', detail: /the underlay's, assumed: it does not answer probes \(a kernel VTEP\?\)/ });
  t.match(ask([health({ state: 'down', pathMtu: null })]), { pathMtuSource: 'assumed', peerState: 'down', detail: /\(down\)/ });
  t.match(ask([]), { pathMtu: 1450, pathMtuSource: 'assumed', peerState: null, clampMss: { ipv4: 1410, ipv6: 1390 }, detail: /probing is off/ });

  // Unknown unicast floods: the smallest path of the VNI's peers, and its clamp.
  const flood = explainWhy(router([], [health({ pathMtu: 1300 })]), { learning: true }, { target: '02:00:00:00:00:99' }).frames[0]!;
  t.match(flood, { verdict: 'flood', pathMtu: 1250, clampMss: { ipv4: 1210, ipv6: 1190 }, detail: /dropped for that peer \(tx_too_big; smallest 1250\)/ });
});

t.test('peers: the clamp toward each peer, as status and why give it, in the rows and the wg-show-like text', async (t) => {
  const config = { peers: [], clampMss: true } as unknown as RouterConfig;
  const rows = (h: PeerHealthRow[]) => peersSchema.parse(controlSource(router([], h), config, new Date()).peers());
  const low = rows([health({ pathMtu: 1400 })]);
  t.match(low, [{ address: '198.51.100.2', origin: 'etcd', hostId: 'h2', clampMss: { ipv4: 1310, ipv6: 1290 } }], 'lowered to the measured path');
  t.same(rows([])[0]!.clampMss, { ipv4: 1410, ipv6: 1390 }, "probing off: the configured one (the underlay's path)");
  const text = formatPeers(low);
  t.match(text, ['peer: 198.51.100.2', '  state: up', /^  endpoint: /, /^  latest answer: /, '  path mtu: 1400 (overlay packets up to 1350)', '  tcp mss clamp: 1310 (IPv4) / 1290 (IPv6)', /^  last heard: /, /^  transfer: /]);
  t.ok(formatPeers([{ ...low[0]!, clampMss: { ipv4: 1300, ipv6: 1300 } }]).includes('  tcp mss clamp: 1300'), 'one figure when both families agree');
  t.notOk(formatPeers([{ ...low[0]!, clampMss: null }]).some((l) => l.includes('mss')), 'clamp off: no line');
  const { clampMss: _, ...older } = low[0]!;
  t.notOk(formatPeers([older]).some((l) => l.includes('mss')), 'an older router (no field): no line');
});
