/**
 * The native engine against the real kernel, in one throwaway namespace (no second host needed):
 *
 *   [c1] eth0 198.18.0.1 ─veth─ br0 ── TAP ── engine (local 198.51.100.1:4789, peer = itself)
 *                                              │ raw socket ──▶ 198.51.100.1:4789 (loops back to its own RX)
 *   crafted datagrams from 198.51.100.1 / .5 ──▶ RX (drop reasons)
 *
 * The engine floods c1's ARP request to its only peer, itself: one pass exercises read → encapsulate → sendmmsg and
 * recvmmsg → classify → learn → TAP write; a SYN-ACK from the peer is MSS-clamped to its measured path. The addon acts on the namespace of the calling process, so the engine
 * runs in a child `node` inside the namespace; it prints one JSON line of results.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { Lab, labSkipReason } from '../../src/lab/lab.js';
import { DROP_REASONS } from '../../src/dataplane/engine.js';

const NATIVE = fileURLToPath(new URL('../../src/dataplane/native.ts', import.meta.url));
const TSX = import.meta.resolve('tsx');

const CHILD = `
const { loadNative } = await import(${JSON.stringify(NATIVE)});
const { createSocket } = await import('node:dgram');
const { execFileSync } = await import('node:child_process');
const { existsSync } = await import('node:fs');
const n = loadNative();
const out = {};
// sourceCheck off: peered with itself, the engine receives its own c1's frames back (a spoof, had another host sent them).
const opts = (tapFd, local = '198.51.100.1') => ({ local, port: 4789, underlayMtu: 1500, learning: true, agingMs: 300000, learnMaxPerPeer: 4096, learnMax: 65536, sourceCheck: false, clampMss: { ipv4: 1410, ipv6: 1390 }, networks: [{ vni: 42, tapFd, mtu: 1450 }] });
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const named = (e) => { const c = e.counters(); const o = {}; n.dropReasons.forEach((k, i) => (o[k] = c.drops[i])); n.trafficCounters.forEach((k, i) => (o[k] = c.traffic[i])); return o; };
const until = async (cond) => { for (let i = 0; i < 100 && !cond(); i++) await sleep(20); };

// Errors: the TAP fd passed in is closed (the TAP disappears) whenever createEngine throws.
let tap = n.openTap('', 1450, 'br0');
try { n.createEngine(opts(tap.fd, '198.51.100.77')); } catch (e) { out.notLocal = { code: e.code, message: e.message }; }
out.tapGoneAfterError = !existsSync('/sys/class/net/' + tap.name);
const squatter = createSocket('udp4');
await new Promise((r) => squatter.bind(4789, '198.51.100.1', r));
tap = n.openTap('', 1450, 'br0');
try { n.createEngine(opts(tap.fd)); } catch (e) { out.inUse = { code: e.code, message: e.message }; }
await new Promise((r) => squatter.close(r));

// A running engine peered with itself.
tap = n.openTap('', 1450, 'br0');
const e = n.createEngine(opts(tap.fd));
e.setTable({ vnis: [{ vni: 42, peers: ['198.51.100.1'], macs: [] }] });
e.start();
e.start();
const { readdirSync, readFileSync } = await import('node:fs');
out.threads = readdirSync('/proc/self/task').map((t) => readFileSync('/proc/self/task/' + t + '/comm', 'utf8').trim()).filter((c) => c.startsWith('vxr-')).sort();
const ping = () => { try { execFileSync('ip', ['netns', 'exec', process.env.C1, 'ping', '-c', '1', '-W', '1', '198.18.0.9']); } catch {} };
ping();
await until(() => named(e).rx_datagrams > 0);
out.loop = named(e);
out.learned = e.learned();

// Crafted datagrams, one per drop reason (from .1 = a peer, from .5 = not a peer).
const send = async (from, bytes) => {
  const s = createSocket('udp4');
  await new Promise((r) => s.bind(0, from, r));
  await new Promise((r) => s.send(Buffer.from(bytes), 4789, '198.51.100.1', r));
  s.close();
};
const vx = (flags, vni, innerLen) => [flags, 0, 0, 0, vni >> 16, (vni >> 8) & 255, vni & 255, 0, ...new Array(innerLen).fill(0x02)];
await send('198.51.100.1', [8, 0, 0]);
await send('198.51.100.1', vx(0, 42, 60));
await send('198.51.100.1', vx(8, 43, 60));
await send('198.51.100.5', vx(8, 42, 60));
await send('198.51.100.1', vx(8, 42, 13));
await send('198.51.100.1', vx(8, 42, 1450 + 18 + 1));
await until(() => named(e).rx_oversize > 0);
// --clamp-mss toward the sender's measured path (RX): a SYN-ACK with MSS 1400 from the peer is under the clamp (1410)
// until the peer's path is measured at 1400 (1350 inner: MSS 1310), then clamped.
const synAck = [8, 0, 0, 0, 0, 0, 42, 0, 2, 0, 0, 0, 0, 0x99, 2, 0, 0, 0, 0, 0x77, 8, 0,
  0x45, 0, 0, 44, 0, 1, 0x40, 0, 64, 6, 0, 0, 198, 18, 0, 7, 198, 18, 0, 1,
  0x30, 0x39, 0, 80, 0, 0, 0, 1, 0, 0, 0, 1, 0x60, 0x12, 0xff, 0xff, 0, 0, 0, 0, 2, 4, 0x05, 0x78];
const rx0 = named(e).rx_datagrams;
await send('198.51.100.1', synAck);
await until(() => named(e).rx_datagrams > rx0);
await sleep(100);
out.clampUnmeasured = named(e).tcp_mss_clamped;
e.setTable({ vnis: [{ vni: 42, peers: ['198.51.100.1'], macs: [] }], pathMtus: [['198.51.100.1', 1400]] });
await send('198.51.100.1', synAck);
await until(() => named(e).tcp_mss_clamped > out.clampUnmeasured);
out.clampMeasured = named(e).tcp_mss_clamped;
e.setTable({ vnis: [{ vni: 42, peers: ['198.51.100.1'], macs: [] }] });
out.drops = named(e);
out.traffic = e.traffic();


// Peer probes are hostile input: 300 requests at once from a peer (.1, the engine itself: its answers come back to it
// as replies), one from a non-peer (.5), one too short. Then one of its own (sendProbe), answered by itself.
const probe = (id, size) => { const b = Buffer.alloc(size); b.set([0, 0x56, 0x58, 0x50, 1, 1]); b.writeUInt32BE(id, 8); return b; };
const flood = createSocket('udp4');
await new Promise((r) => flood.bind(0, '198.51.100.1', r));
for (let i = 0; i < 300; i++) await new Promise((r) => flood.send(probe(i, 100), 4789, '198.51.100.1', r));
flood.close();
await send('198.51.100.5', probe(999, 100));
await send('198.51.100.1', probe(998, 20));
const untilLong = async (cond) => { for (let i = 0; i < 500 && !cond(); i++) await sleep(20); }; // a loaded box: up to 10 s
await untilLong(() => { const c = named(e); return c.rx_bad_probe >= 2 && c.probes_answered + c.probe_answers_limited >= 300 && c.probe_replies >= c.probes_answered; });
out.probes = { counters: named(e), replies: e.probeReplies() };
await sleep(600); // the answer budget refills
out.probes.sent = e.sendProbe('198.51.100.1', probe(7, 1472));
await untilLong(() => named(e).probe_replies > out.probes.counters.probe_replies);
out.probes.own = e.probeReplies();
out.probes.sentCount = named(e).probes_sent;

// No peers: nowhere to send (and the peer's traffic row goes with it).
e.setTable({ vnis: [{ vni: 42, peers: [], macs: [] }] });
out.trafficPeersAfterRemoval = e.traffic().peers.length;
const before = named(e).tx_no_destination;
ping();
await until(() => named(e).tx_no_destination > before);
out.noDestination = named(e).tx_no_destination - before;
out.learnedAfterPeerRemoved = e.learned().length;

e.stop();
e.stop();
out.tapGoneAfterStop = !existsSync('/sys/class/net/' + tap.name);
out.countersAfterStop = e.counters().drops.length;
console.log(JSON.stringify(out));
`;

t.test('native engine: errors, TX → RX through itself, every RX drop reason, stop', { skip: labSkipReason() ?? false }, async (t) => {
  const lab = new Lab();
  t.teardown(() => lab.destroy());
  const host = await lab.addHost('eng', '198.51.100.1');
  await lab.exec(host.ns, 'ip', ['addr', 'add', '198.51.100.5/24', 'dev', 'eth0']);
  const c1 = await lab.addContainer(host, 'c1', '198.18.0.1');
  const r = spawnSync('ip', ['netns', 'exec', host.ns, process.execPath, '--import', TSX, '--input-type=module', '-e', CHILD], {
    encoding: 'utf8',
    timeout: 30_000,
    env: { ...process.env, C1: c1.ns },
  });
  t.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}') as Record<string, unknown>;

  t.match(out.notLocal, { code: 'EADDRNOTAVAIL', message: /bind UDP 198\.51\.100\.77 port 4789/ });
  t.equal(out.tapGoneAfterError, true, 'a failed createEngine closes the TAP it was given');
  t.match(out.inUse, { code: 'EADDRINUSE', message: /bind UDP 198\.51\.100\.1 port 4789/ });

  t.same(out.threads, ['vxr-rx', 'vxr-tx-42'], 'the engine threads are named (top -H)');
  const loop = out.loop as Record<string, number>;
  t.ok(loop.tx_frames! >= 1 && loop.tx_flooded! >= 1 && loop.tx_datagrams! >= 1, 'ARP request flooded to the peer');
  t.ok(loop.rx_datagrams! >= 1 && loop.rx_bytes! >= 42, 'and received back, written to the TAP');
  const learned = out.learned as { vni: number; mac: string; vtep: string; ageMs: number }[];
  t.match(learned.find((l) => l.mac === c1.mac), { vni: 42, vtep: '198.51.100.1', ageMs: Number }, "c1's MAC learned behind 198.51.100.1");
  t.ok(learned.every((l) => l.ageMs >= 0 && l.ageMs < 300_000), 'ages within agingMs');

  const drops = out.drops as Record<string, number>;
  for (const reason of ['rx_short', 'rx_bad_flags', 'rx_unknown_vni', 'rx_unknown_source', 'rx_truncated_inner', 'rx_oversize'])
    t.equal(drops[reason], 1, `${reason} counted once`);
  t.equal(drops.rx_tap_write_error, 0);
  t.equal(drops.tx_send_error, 0);
  // Per-peer and per-VNI counts agree with the global ones; the crafted datagram from .5 is a refused source.
  type Row = { rxFrames: number; rxBytes: number; txFrames: number; txBytes: number };
  const traffic = out.traffic as { peers: (Row & { address: string; lastRxAgoMs: number })[]; vnis: (Row & { vni: number })[]; rejected: { address: string; vni: number; count: number; agoMs: number }[] };
  const peer = traffic.peers.find((p) => p.address === '198.51.100.1');
  t.ok(peer, 'a row for the peer');
  t.equal(peer?.rxFrames, drops.rx_datagrams, 'peer rx frames = rx_datagrams (its only peer)');
  t.equal(peer?.rxBytes, drops.rx_bytes);
  t.equal(peer?.txFrames, drops.tx_datagrams, 'peer tx frames = datagrams sent to it');
  t.ok(peer !== undefined && peer.lastRxAgoMs >= 0 && peer.lastRxAgoMs < 30_000, 'last heard recently');
  t.same(traffic.vnis, [{ vni: 42, rxFrames: drops.rx_datagrams, rxBytes: drops.rx_bytes, txFrames: drops.tx_frames, txBytes: drops.tx_bytes }], 'VNI 42 rows');
  t.match(traffic.rejected, [{ address: '198.51.100.5', vni: 42, count: 1, agoMs: Number }], 'the non-peer sender is a refused source');
  t.equal(traffic.peers.some((p) => p.address === '198.51.100.5'), false, 'a refused sender gets no peer row');
  t.equal(out.clampUnmeasured, 0, '--clamp-mss: a SYN-ACK with MSS 1400 from a peer whose path is the underlay\'s: under the clamp (1410)');
  t.equal(out.clampMeasured, 1, 'the same from a peer whose path is measured at 1400: clamped to what fits it (1310)');
  const probes = out.probes as { counters: Record<string, number>; replies: { from: string; id: number; length: number; rttMs: number }[]; sent: number; own: { id: number; length: number; rttMs: number }[]; sentCount: number };
  const pc = probes.counters;
  t.equal(pc.probes_answered! + pc.probe_answers_limited!, 300, `300 requests from a peer: ${pc.probes_answered} answered, ${pc.probe_answers_limited} over the rate limit`);
  t.ok(pc.probe_answers_limited! > 0 && pc.probes_answered! >= 100, 'answers are rate-limited (bursts of 100, 200/s)');
  t.equal(pc.rx_bad_probe, 2, 'a probe from a non-peer and a short one: rx_bad_probe, unanswered');
  t.equal(probes.replies.length, pc.probes_answered, 'every answer came back as a reply (peered with itself)');
  t.ok(probes.replies.every((r) => r.from === '198.51.100.1' && r.length === 100), 'replies name the request size received');
  t.equal(probes.sent, 0, 'sendProbe: sent');
  t.match(probes.own, [{ id: 7, length: 1472, rttMs: Number }], 'its own probe answered, with an RTT');
  t.equal(probes.sentCount, 1, 'probes_sent');
  // Peered with itself, every datagram it delivers is one it sent: a frame the kernel puts on the TAP meanwhile (an MLD
  // report) goes out and comes back, a probe that reached the TAP would come in without going out.
  t.ok(pc.rx_datagrams! - drops.rx_datagrams! <= pc.tx_datagrams! - drops.tx_datagrams!, `probes never reach the TAP (delivered ${pc.rx_datagrams! - drops.rx_datagrams!}, sent ${pc.tx_datagrams! - drops.tx_datagrams!} meanwhile)`);
  t.equal(out.trafficPeersAfterRemoval, 0, 'a removed peer leaves the traffic rows');
  t.ok((out.noDestination as number) >= 1, 'tx_no_destination when the VNI has no peers');
  t.equal(out.learnedAfterPeerRemoved, 0, 'learned entries of a removed peer are forgotten');
  t.equal(out.tapGoneAfterStop, true, 'stop() closes the TAP (twice is fine)');
  t.equal(out.countersAfterStop, DROP_REASONS.length, 'counters still readable after stop');
});
