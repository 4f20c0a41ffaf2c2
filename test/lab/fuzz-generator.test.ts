/**
 * The fuzz generator (src/lab/fuzz.ts) is deterministic, covers what issue 14 asks for, and labels each datagram with
 * the counter the engines really put it in: every label is checked against classifyDatagram (the JS twin of the
 * native Classify), for a peer and a non-peer sender.
 */
import { createHash } from 'node:crypto';
import t from 'tap';
import { buildVniPeers, classifyDatagram } from '../../src/dataplane/classify.js';
import { bridgeFrames, datagrams, encodeStream, expectedCounter, FRAME_KINDS, frames, macPool, Rng, tcpRun, type Targets } from '../../src/lab/fuzz.js';

const targets: Targets = {
  dstMac: Uint8Array.of(2, 0, 0, 0, 0, 1),
  dstIp: Uint8Array.of(198, 18, 0, 1),
  srcMacs: macPool(1, 50),
  srcIp: Uint8Array.of(198, 18, 0, 200),
};
const OPTS = { vni: 42, maxInner: 1468, maxDatagram: 65_507 };
const hash = (items: Iterable<Uint8Array>): string => createHash('sha256').update(encodeStream(items)).digest('hex');

t.test('Rng: replayable from its seed, in range', async (t) => {
  const a = new Rng(7);
  const b = new Rng(7);
  const c = new Rng(8);
  const sa = Array.from({ length: 100 }, () => a.u32());
  t.same(sa, Array.from({ length: 100 }, () => b.u32()), 'same seed, same sequence');
  t.not(JSON.stringify(sa), JSON.stringify(Array.from({ length: 100 }, () => c.u32())), 'another seed, another sequence');
  const r = new Rng(1);
  let bad = 0;
  const seen = new Set<number>();
  for (let i = 0; i < 10_000; i++) {
    const v = r.range(3, 9);
    seen.add(v);
    if (v < 3 || v > 9 || !Number.isInteger(v)) bad++;
  }
  t.equal(bad, 0, 'range(3, 9) stays in [3, 9]');
  t.equal(seen.size, 7, 'and reaches every value');
});

t.test('datagrams: deterministic, exact count, labels match the engines\' classifier', async (t) => {
  const n = 20_000;
  const list = [...datagrams(99, n, targets, OPTS)];
  t.equal(list.length, n, 'exactly the count asked for');
  t.equal(hash(list.map((d) => d.bytes)), hash([...datagrams(99, n, targets, OPTS)].map((d) => d.bytes)), 'same seed, same bytes');
  const peer = '198.51.100.2';
  const vnis = buildVniPeers([{ vni: 42, peers: [peer] }]);
  const mismatches: string[] = [];
  const labels = new Map<string, number>();
  const shortLens = new Set<number>();
  const innerLens = new Set<number>();
  let maxLen = 0;
  for (const [i, d] of list.entries()) {
    labels.set(d.label, (labels.get(d.label) ?? 0) + 1);
    if (d.label === 'short') shortLens.add(d.bytes.length);
    if (d.label === 'truncated-inner') innerLens.add(d.bytes.length - 8);
    maxLen = Math.max(maxLen, d.bytes.length);
    for (const [from, isPeer] of [[peer, true], ['198.51.100.99', false]] as const) {
      const v = classifyDatagram(d.bytes, from, vnis, OPTS.maxInner);
      const got = v.ok ? 'rx_datagrams' : v.reason;
      const want = expectedCounter(d.label, isPeer);
      if (got !== want && mismatches.length < 5) mismatches.push(`#${i} ${d.label} from ${from}: classifier ${got}, label ${want}`);
    }
  }
  t.same(mismatches, [], 'every label names the counter the classifier picks');
  t.same([...labels.keys()].sort(), ['bad-flags', 'ok', 'oversize', 'short', 'truncated-inner', 'wrong-vni'], 'every label occurs');
  t.ok((labels.get('ok') ?? 0) > n * 0.3, 'a good share is well-formed (it reaches the inner parsers)');
  t.same([...shortLens].sort((a, b) => a - b), [0, 1, 2, 3, 4, 5, 6, 7], 'truncations at every length below the VXLAN header');
  t.same([...innerLens].sort((a, b) => a - b), [...Array(14).keys()], 'inner frames at every length below an Ethernet header');
  t.ok(maxLen > 9000 && maxLen <= OPTS.maxDatagram, `jumbos up to the UDP limit (largest ${maxLen})`);
});

t.test('inner frames: every kind, VLAN/QinQ tags, IPv4 options, IPv6 extension headers, ND options', async (t) => {
  const rng = new Rng(5);
  const ethertypes = new Set<number>();
  let v4opts = 0;
  let v6ext = 0;
  let ndZeroOpt = 0;
  let runts = 0;
  for (let i = 0; i < 5000; i++) {
    for (const f of frames(rng, targets, FRAME_KINDS[i % FRAME_KINDS.length]!, 9000)) {
      if (f.length < 14) {
        runts++;
        continue;
      }
      const et = (f[12]! << 8) | f[13]!;
      ethertypes.add(et);
      if (et === 0x0800 && (f[14]! >> 4) === 4 && (f[14]! & 0xf) > 5) v4opts++;
      if (et === 0x86dd && f.length > 20 && [0, 43, 44, 60].includes(f[20]!)) v6ext++;
      if (et === 0x86dd && f.length > 64 && f[20] === 58 && f[54]! >= 133 && f[54]! <= 137) {
        for (let o = 54 + (f[54] === 133 ? 8 : f[54] === 134 ? 16 : 24); o + 1 < f.length; o += Math.max(8, f[o + 1]! * 8)) if (f[o + 1] === 0) ndZeroOpt++;
      }
    }
  }
  for (const et of [0x0800, 0x0806, 0x86dd, 0x8100, 0x88a8]) t.ok(ethertypes.has(et), `ethertype 0x${et.toString(16)}`);
  t.ok(v4opts > 50, `IPv4 with options (${v4opts})`);
  t.ok(v6ext > 50, `IPv6 with extension headers (${v6ext})`);
  t.ok(ndZeroOpt > 0, `ND with a zero-length option (${ndZeroOpt})`);
  t.ok(runts > 50, `runts (${runts})`);
});

t.test('tcpRun: one flow, consecutive sequence numbers, valid IPv4 checksums', async (t) => {
  const run = tcpRun(new Rng(3), targets, 10);
  t.equal(run.length, 10);
  const seq = (f: Uint8Array): number => new DataView(f.buffer, f.byteOffset).getUint32(14 + 20 + 4);
  const payload = run[0]!.length - 14 - 40;
  for (let i = 1; i < run.length; i++) t.equal(seq(run[i]!), (seq(run[i - 1]!) + payload) >>> 0, `segment ${i} follows on`);
  for (const f of run) {
    let s = 0;
    for (let i = 14; i < 34; i += 2) s += (f[i]! << 8) | f[i + 1]!;
    while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
    t.equal(s, 0xffff, 'IPv4 header checksum holds');
  }
});

t.test('bridgeFrames: exact count, bounded length, deterministic; encodeStream frames each item', async (t) => {
  const list = [...bridgeFrames(4, 3000, targets, 1464)];
  t.equal(list.length, 3000);
  t.ok(list.every((f) => f.length <= 1464), 'no frame over the bound');
  t.equal(hash(list), hash(bridgeFrames(4, 3000, targets, 1464)), 'same seed, same frames');
  const s = encodeStream([Uint8Array.of(1, 2, 3), new Uint8Array(0)]);
  t.same([...s], [3, 0, 0, 0, 1, 2, 3, 0, 0, 0, 0], 'little-endian length, then the bytes');
});
