/**
 * Pins the native offload code (native/src/offload.cc) through its test hooks: cutting a TSO super-frame into
 * segments (segmentTso: what the TX thread encapsulates) and merging received segments into super-frames for the TAP
 * (mergeSegments: what the RX thread writes). Every segment and merged frame is checked with the TypeScript
 * checksum code, independently of the C++. And the sockets the GSO sends leave from (flowSockets: FlowSockets in
 * native/src/udp-socket.h): one per outer source port, closed when unused, bounded.
 */
import { createSocket, type Socket } from 'node:dgram';
import t, { type Test } from 'tap';
import { loadNative } from '../../src/dataplane/native.js';
import { fold, internetChecksum, pseudoHeaderSum } from '../../src/packet/checksum.js';
import { mulberry32 } from '../helpers/prng.js';

const n = loadNative();
const ACK = 0x10, PSH = 0x08, FIN = 0x01, CWR = 0x80;
const GSO_TCPV4 = 1, GSO_TCPV6 = 4, NEEDS_CSUM = 1;

interface Spec {
  v6?: boolean;
  vlan?: boolean;
  seq?: number;
  flags?: number;
  id?: number;
  sport?: number;
  /** TCP options (a multiple of 4 bytes), e.g. timestamps. */
  options?: Uint8Array;
  payload: Uint8Array;
}

const be16 = (b: Uint8Array, o: number): number => (b[o]! << 8) | b[o + 1]!;
const be32 = (b: Uint8Array, o: number): number => ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0;
const put16 = (b: Uint8Array, o: number, v: number): void => void b.set([(v >> 8) & 0xff, v & 0xff], o);
const put32 = (b: Uint8Array, o: number, v: number): void => void b.set([(v >>> 24) & 0xff, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff], o);
const TIMESTAMPS = Uint8Array.from([1, 1, 8, 10, 0, 0, 0x12, 0x34, 0, 0, 0x56, 0x78]);

/** Header offsets of a frame built by `tcpFrame`. */
function layout(s: Pick<Spec, 'v6' | 'vlan' | 'options'>): { l3: number; l4: number; hdr: number } {
  const l3 = s.vlan ? 18 : 14;
  const l4 = l3 + (s.v6 ? 40 : 20);
  return { l3, l4, hdr: l4 + 20 + (s.options?.length ?? 0) };
}

/** A complete Ethernet + IPv4/IPv6 + TCP frame with correct lengths and checksums. */
function tcpFrame(s: Spec): Uint8Array {
  const { l3, l4, hdr } = layout(s);
  const f = new Uint8Array(hdr + s.payload.length);
  f.set([2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1]);
  if (s.vlan) f.set([0x81, 0x00, 0x00, 0x07], 12);
  put16(f, l3 - 2, s.v6 ? 0x86dd : 0x0800);
  if (s.v6) {
    f[l3] = 0x60;
    put16(f, l3 + 4, f.length - l4);
    f[l3 + 6] = 6;
    f[l3 + 7] = 64;
    f.set([0x20, 0x01, 0x0d, 0xb8], l3 + 8);
    f[l3 + 23] = 1;
    f.set([0x20, 0x01, 0x0d, 0xb8], l3 + 24);
    f[l3 + 39] = 2;
  } else {
    f[l3] = 0x45;
    put16(f, l3 + 2, Math.min(f.length - l3, 0xffff));
    put16(f, l3 + 4, s.id ?? 0x1000);
    put16(f, l3 + 6, 0x4000); // DF
    f[l3 + 8] = 64;
    f[l3 + 9] = 6;
    f.set([198, 18, 0, 1, 198, 18, 0, 2], l3 + 12);
    put16(f, l3 + 10, internetChecksum(f, l3, l4));
  }
  put16(f, l4, s.sport ?? 40000);
  put16(f, l4 + 2, 5001);
  put32(f, l4 + 4, s.seq ?? 1000);
  put32(f, l4 + 8, 777);
  f[l4 + 12] = ((hdr - l4) / 4) << 4;
  f[l4 + 13] = s.flags ?? ACK;
  put16(f, l4 + 14, 502);
  if (s.options) f.set(s.options, l4 + 20);
  f.set(s.payload, hdr);
  put16(f, l4 + 16, internetChecksum(f, l4, f.length, tcpPseudo(f, l3, l4, !!s.v6)));
  return f;
}

function tcpPseudo(f: Uint8Array, l3: number, l4: number, v6: boolean): number {
  const [src, dst] = v6 ? [f.subarray(l3 + 8, l3 + 24), f.subarray(l3 + 24, l3 + 40)] : [f.subarray(l3 + 12, l3 + 16), f.subarray(l3 + 16, l3 + 20)];
  return pseudoHeaderSum(src, dst, 6, f.length - l4);
}

function vnetHeader(h: { flags?: number; gsoType?: number; hdrLen?: number; gsoSize?: number; csumStart?: number; csumOffset?: number }): Uint8Array {
  const b = Buffer.alloc(10);
  b[0] = h.flags ?? 0;
  b[1] = h.gsoType ?? 0;
  b.writeUInt16LE(h.hdrLen ?? 0, 2);
  b.writeUInt16LE(h.gsoSize ?? 0, 4);
  b.writeUInt16LE(h.csumStart ?? 0, 6);
  b.writeUInt16LE(h.csumOffset ?? 0, 8);
  return b;
}

/** A super-frame as the kernel hands it to a TAP with TSO: the TCP checksum field holds only the pseudo-header sum. */
function tsoPacket(s: Spec, mss: number): Uint8Array {
  const f = tcpFrame(s);
  const { l3, l4, hdr } = layout(s);
  put16(f, l4 + 16, fold(tcpPseudo(f, l3, l4, !!s.v6)));
  const vh = vnetHeader({ flags: NEEDS_CSUM, gsoType: s.v6 ? GSO_TCPV6 : GSO_TCPV4, hdrLen: hdr, gsoSize: mss, csumStart: l4, csumOffset: 16 });
  return Buffer.concat([vh, f]);
}

function bytes(len: number, seed: number): Uint8Array {
  const r = mulberry32(seed);
  return Uint8Array.from({ length: len }, () => Math.floor(r() * 256));
}

/** Checks one wire frame: valid IP and TCP checksums and lengths; returns its sequence number, flags and payload. */
function checkSegment(t: Test, f: Uint8Array, s: Spec, what: string): { seq: number; flags: number; id: number; payload: Uint8Array } {
  const { l3, l4, hdr } = layout(s);
  if (s.v6) {
    t.equal(be16(f, l3 + 4), f.length - l4, `${what}: IPv6 payload length`);
  } else {
    t.equal(be16(f, l3 + 2), f.length - l3, `${what}: IPv4 total length`);
    t.equal(internetChecksum(f, l3, l4), 0, `${what}: IPv4 header checksum`);
  }
  t.equal(internetChecksum(f, l4, f.length, tcpPseudo(f, l3, l4, !!s.v6)), 0, `${what}: TCP checksum`);
  return { seq: be32(f, l4 + 4), flags: f[l4 + 13]!, id: s.v6 ? 0 : be16(f, l3 + 4), payload: f.subarray(hdr) };
}

const cases: { name: string; spec: Spec; mss: number }[] = [
  { name: 'IPv4, 64 KiB, timestamps', spec: { payload: bytes(65000, 1), options: TIMESTAMPS, flags: ACK | PSH | FIN | CWR, seq: 0xfffff000 }, mss: 1398 },
  { name: 'IPv4, odd MSS and a short last segment', spec: { payload: bytes(10001, 2), flags: ACK | PSH }, mss: 1001 },
  { name: 'IPv6, 60 KB', spec: { v6: true, payload: bytes(60000, 3), options: TIMESTAMPS, flags: ACK | PSH }, mss: 1368 },
  { name: 'IPv4 behind a VLAN tag', spec: { vlan: true, payload: bytes(8000, 4), flags: ACK | PSH }, mss: 1400 },
];

for (const { name, spec, mss } of cases) {
  t.test(`segmentTso: ${name}`, async (t) => {
    const segs = n.segmentTso(tsoPacket(spec, mss));
    if (segs === null) return t.fail('segmentTso refused a well-formed super-frame');
    t.equal(segs.length, Math.ceil(spec.payload.length / mss), 'ceil(payload / mss) segments');
    const parsed = segs.map((f, i) => checkSegment(t, f, spec, `segment ${i}`));
    const last = segs.length - 1;
    t.ok(parsed.every((p, i) => p.payload.length === (i < last ? mss : spec.payload.length - last * mss)), 'mss bytes each, the rest in the last');
    t.ok(parsed.every((p, i) => p.seq === ((spec.seq ?? 1000) + i * mss) >>> 0), 'sequence numbers advance by mss (and wrap)');
    if (!spec.v6) t.ok(parsed.every((p, i) => p.id === (spec.id ?? 0x1000) + i), 'IPv4 IDs advance by one');
    const flags = spec.flags ?? ACK;
    t.ok(parsed.slice(0, last).every((p) => (p.flags & (PSH | FIN)) === 0), 'PSH and FIN only on the last segment');
    t.equal(parsed[last]!.flags & (PSH | FIN), flags & (PSH | FIN), 'the last segment keeps them');
    t.ok(parsed.slice(1).every((p) => (p.flags & CWR) === 0), 'CWR only on the first');
    t.same(Buffer.concat(parsed.map((p) => p.payload)), Buffer.from(spec.payload), 'payloads concatenate to the original');

    if ((flags & ~(ACK | PSH)) !== 0) return; // FIN/CWR segments are never merged
    const writes = n.mergeSegments(segs);
    t.equal(writes.length, 1, 'mergeSegments makes them one TAP write');
    const w = writes[0]!;
    const { l3, l4, hdr } = layout(spec);
    t.same([w[0], w[1], w.readUInt16LE(2), w.readUInt16LE(4), w.readUInt16LE(6), w.readUInt16LE(8)],
      [NEEDS_CSUM, spec.v6 ? GSO_TCPV6 : GSO_TCPV4, hdr, mss, l4, 16], 'virtio header: NEEDS_CSUM, TCP GSO, mss, offsets');
    const merged = w.subarray(10);
    t.same(Buffer.from(merged.subarray(hdr)), Buffer.from(spec.payload), 'merged payload is the original');
    t.equal(be16(merged, l4 + 16), fold(tcpPseudo(merged, l3, l4, !!spec.v6)), 'TCP checksum field: the pseudo-header sum, as NEEDS_CSUM asks');
    if (!spec.v6) t.equal(internetChecksum(merged, l3, l4), 0, 'IPv4 header checksum');
    t.same(n.segmentTso(w), segs, 'and cutting the merged frame again gives the same segments');
  });
}

t.test('mergeSegments: what is not merged', async (t) => {
  const mss = 1000;
  const segs = n.segmentTso(tsoPacket({ payload: bytes(5000, 7), flags: ACK | PSH }, mss))!;
  const plain = (f: Uint8Array): Buffer => Buffer.concat([Buffer.alloc(10), f]);
  const sizes = (ws: Buffer[]): number[] => ws.map((w) => w.length);

  const corrupt = Buffer.from(segs[2]!);
  corrupt[corrupt.length - 1]! ^= 0xff;
  const withBad = n.mergeSegments([segs[0]!, segs[1]!, corrupt, segs[3]!, segs[4]!]);
  t.equal(withBad.length, 3, 'a segment with a bad checksum splits the run');
  t.same(withBad[1], plain(corrupt), 'and goes to the TAP alone, unchanged (the receiver drops it)');

  t.equal(n.mergeSegments([segs[0]!, segs[2]!, segs[3]!]).length, 2, 'a gap in the sequence splits the run');
  const other = tcpFrame({ payload: bytes(mss, 8), sport: 40001, seq: 2000 });
  t.equal(n.mergeSegments([segs[0]!, other]).length, 2, 'another flow does not join');

  const pshMiddle = tcpFrame({ payload: bytes(mss, 9), seq: 1000 + mss, flags: ACK | PSH });
  const afterPsh = tcpFrame({ payload: bytes(mss, 10), seq: 1000 + 2 * mss });
  const first = tcpFrame({ payload: bytes(mss, 11), seq: 1000 });
  const ws = n.mergeSegments([first, pshMiddle, afterPsh]);
  t.same(sizes(ws), [10 + 54 + 2 * mss, 10 + 54 + mss], 'PSH ends a run (and the merged frame keeps it)');
  t.equal(ws[0]![10 + 34 + 13]! & PSH, PSH);

  const short = tcpFrame({ payload: bytes(500, 12), seq: 1000 + mss });
  t.equal(n.mergeSegments([first, short, tcpFrame({ payload: bytes(mss, 13), seq: 1500 + mss })]).length, 2, 'a short segment ends a run');

  const arp = Uint8Array.from([...Array(12).fill(0xff), 0x08, 0x06, ...Array(28).fill(1)]);
  t.same(n.mergeSegments([arp]), [plain(arp)], 'non-TCP frames pass alone behind a zero virtio header');
  t.same(n.mergeSegments([first]), [plain(first)], 'so does a lone segment');
  const syn = tcpFrame({ payload: new Uint8Array(0), flags: 0x02 });
  t.same(n.mergeSegments([syn, syn]), [plain(syn), plain(syn)], 'and segments without payload or with SYN/FIN/RST');
});

t.test('mergeSegments: a run whose outer UDP checksum the kernel verified is not summed again', async (t) => {
  const mss = 1000;
  const segs = n.segmentTso(tsoPacket({ payload: bytes(5000, 7), flags: ACK | PSH }, mss))!;
  const corrupt = Buffer.from(segs[2]!);
  corrupt[corrupt.length - 1]! ^= 0xff;
  const frames = [segs[0]!, segs[1]!, corrupt, segs[3]!, segs[4]!];
  t.equal(n.mergeSegments(frames).length, 3, 'unverified: the corrupt segment is caught by the TCP checksum pass');
  // Verified: the engine trusts the outer checksum (which covers these bytes), so it does not look at the inner one.
  const ws = n.mergeSegments(frames, true);
  t.equal(ws.length, 1, 'verified: one super-frame, no TCP checksum pass');
  t.equal(ws[0]![0], 1, 'handed over as NEEDS_CSUM (the kernel trusts it as GRO output)');
  t.same(n.mergeSegments(segs, true), n.mergeSegments(segs), 'good segments: the same writes either way');
  const plain = (f: Uint8Array): Buffer => Buffer.concat([Buffer.alloc(10), f]);
  t.same(n.mergeSegments([corrupt], true), [plain(corrupt)], 'a lone segment still goes behind a zero header: the receiver checks it');
  t.throws(() => (n.mergeSegments as (f: unknown, v: unknown) => unknown)([segs[0]!], 'yes'), TypeError);
});

t.test('outerChecksumVerified: which datagrams the RX path trusts', async (t) => {
  t.equal(n.outerChecksumVerified('198.51.100.2', false), false, 'a lone IPv4 datagram may carry checksum 0 (not verified)');
  t.equal(n.outerChecksumVerified('198.51.100.2', true), true, 'an IPv4 UDP_GRO super-datagram: the kernel merges only non-zero, verified checksums');
  t.equal(n.outerChecksumVerified('fd00:198:51:100::2', false), true, 'IPv6: a zero checksum is dropped by the kernel');
  t.equal(n.outerChecksumVerified('::ffff:198.51.100.2', false), false, 'IPv4-mapped on an IPv6 socket: IPv4 rules');
  t.equal(n.outerChecksumVerified('::ffff:198.51.100.2', true), true);
  t.throws(() => n.outerChecksumVerified('nope', false), TypeError);
});

t.test('segmentTso: bad virtio headers are refused, never a crash', async (t) => {
  const good = tsoPacket({ payload: bytes(4000, 20) }, 1000);
  const v4 = Buffer.from(good);
  v4[1] = GSO_TCPV6;
  t.equal(n.segmentTso(v4), null, 'TCPv6 GSO on an IPv4 frame');
  const zero = Buffer.from(good);
  zero.writeUInt16LE(0, 4);
  t.equal(n.segmentTso(zero), null, 'gso_size 0');
  t.equal(n.segmentTso(good.subarray(0, 10 + 14 + 20 + 10)), null, 'truncated TCP header');
  const csum = Buffer.concat([vnetHeader({ flags: NEEDS_CSUM, csumStart: 60, csumOffset: 16 }), tcpFrame({ payload: bytes(10, 21) })]);
  t.equal(n.segmentTso(csum), null, 'checksum offsets beyond the frame');

  // NEEDS_CSUM without GSO: the checksum is finished over [csum_start, end).
  const f = tcpFrame({ payload: bytes(999, 22) });
  const partial = Buffer.from(f);
  put16(partial, 34 + 16, fold(tcpPseudo(f, 14, 34, false)));
  const done = n.segmentTso(Buffer.concat([vnetHeader({ flags: NEEDS_CSUM, csumStart: 34, csumOffset: 16 }), partial]));
  t.same(done, [Buffer.from(f)], 'a partial checksum is finished (odd payload length)');

  const r = mulberry32(99);
  let refused = 0;
  for (let i = 0; i < 3000; i++) {
    const p = Buffer.from(good.subarray(0, 10 + Math.floor(r() * (good.length - 10))));
    for (let k = 0; k < 4; k++) p[Math.floor(r() * p.length)] = Math.floor(r() * 256);
    const out = n.segmentTso(p);
    if (out === null) refused++;
    else if (!out.every((s) => s.length <= 65536)) t.fail(`mutant ${i} gave an oversized segment`);
  }
  t.pass(`3000 mutated super-frames handled (${refused} refused)`);
  const segs = n.segmentTso(good)!;
  for (let i = 0; i < 1000; i++) {
    const fs = segs.map((s) => Buffer.from(s));
    const x = fs[Math.floor(r() * fs.length)]!;
    x[Math.floor(r() * x.length)] = Math.floor(r() * 256);
    const total = n.mergeSegments(fs).reduce((a, w) => a + w.length - 10, 0);
    if (total < fs.reduce((a, s) => a + s.length, 0) - 54 * fs.length) t.fail(`mutant ${i}: bytes lost in merging`);
  }
  t.pass('1000 mutated segment runs merged without a crash or a lost byte');
});

/** A UDP socket of this test's on 127.0.0.1:port (0: any free port). */
async function udpOn(port: number): Promise<Socket> {
  const s = createSocket('udp4');
  await new Promise<void>((resolve, reject) => {
    s.once('error', reject);
    s.bind(port, '127.0.0.1', () => resolve());
  });
  return s;
}

t.test('GSO flow sockets: one per port, closed once unused for idleMs, at most max (the rest go raw)', async (t) => {
  // Free ports to bind (nothing is sent); the fourth stays taken by a socket of ours.
  const probes = await Promise.all([0, 0, 0, 0].map(udpOn));
  const [p1, p2, p3, p4] = probes.map((s) => s.address().port) as [number, number, number, number];
  for (const s of probes.slice(0, 3)) s.close();
  t.teardown(() => probes[3]!.close());
  const r = n.flowSockets({ local: '127.0.0.1', idleMs: 1000, max: 3 }, [
    ['get', p1, 0],
    ['free', p1],
    ['get', p2, 100],
    ['get', p4, 200],
    ['get', p3, 300],
    ['open'],
    ['get', p1, 900],
    ['sweep', 1150],
    ['free', p2],
    ['open'],
    ['sweep', 1250],
    ['get', p3, 1300],
    ['sweep', 2299],
    ['sweep', 2400],
    ['open'],
    ['free', p1],
    ['free', p3],
  ]);
  t.same(r.slice(0, 6), ['open', false, 'open', 'taken', 'full', 2], 'opened on first use and held; a taken port goes raw (and holds a slot); the 4th port: full');
  t.same(r.slice(6, 11), ['open', 1, true, 1, 0], 'unused for idleMs: closed (counted), the port bindable again; a used one kept; a taken port forgotten (nothing to close)');
  t.same(r.slice(11), ['open', 1, 1, 0, true, true], 'a freed slot takes a new port; each closes idleMs after its last use (p3 at 999 ms: not yet)');
  t.throws(() => n.flowSockets({ local: '127.0.0.1', idleMs: 1000, max: 3 }, [['nope' as 'open']]), /flowSockets: options must be/, 'a bad step is a TypeError, not a crash');
});
