/**
 * Too-big answers (no MTU black holes): the C++ builder (native/src/icmp.cc, what the TX thread writes to the bridge)
 * against its TypeScript twin (src/packet/icmp.ts, what the JS engine writes), byte for byte, on hand-made frames and
 * thousands of mutated ones; the answers' fields and checksums; and the rate limiter both engines use.
 */
import t from 'tap';
import { loadNative } from '../../src/dataplane/native.js';
import {
  decodeIpv4,
  decodeIpv6,
  encodeEthernet,
  encodeIpv4,
  encodeIpv6,
  ETHERTYPE_IPV4,
  ETHERTYPE_IPV6,
  formatMac,
  internetChecksum,
  parseIp,
  parseMac,
  pseudoHeaderSum,
  PROTO_TCP,
  PROTO_UDP,
  TOO_BIG_BURST,
  TOO_BIG_RATE,
  TooBigLimiter,
  tooBigReply,
} from '../../src/packet/index.js';
import { mulberry32 } from '../helpers/prng.js';

const native = loadNative();
const A = parseMac('02:00:00:00:00:01');
const B = parseMac('02:00:00:00:00:02');
const concat = (...parts: Uint8Array[]): Uint8Array => Uint8Array.from(parts.flatMap((p) => [...p]));

const v4 = (o: { size?: number; df?: boolean; proto?: number; src?: string; dst?: string; l4?: Uint8Array; dstMac?: Uint8Array } = {}): Uint8Array => {
  const l4 = o.l4 ?? new Uint8Array((o.size ?? 1500) - 20).map((_, i) => i & 0xff);
  const ip = encodeIpv4({ protocol: o.proto ?? PROTO_TCP, src: parseIp(o.src ?? '198.18.0.1'), dst: parseIp(o.dst ?? '198.18.0.2'), payloadLen: l4.length, dontFragment: o.df ?? true });
  return encodeEthernet(o.dstMac ?? B, A, ETHERTYPE_IPV4, concat(ip, l4));
};
const v6 = (o: { size?: number; next?: number; src?: string; dst?: string; l4?: Uint8Array } = {}): Uint8Array => {
  const l4 = o.l4 ?? new Uint8Array((o.size ?? 1500) - 40).map((_, i) => (i * 7) & 0xff);
  return encodeEthernet(B, A, ETHERTYPE_IPV6, concat(encodeIpv6({ nextHeader: o.next ?? PROTO_TCP, src: parseIp(o.src ?? 'fd00::1'), dst: parseIp(o.dst ?? 'fd00::2'), payloadLen: l4.length }), l4));
};

t.test('IPv4 with DF: fragmentation needed, from the destination, with the MTU that fits', async (t) => {
  const f = v4();
  const r = tooBigReply(f, 1450)!;
  t.same(native.tooBigReply(f, 1450), Buffer.from(r), 'native writes the same bytes');
  t.equal(r.length, 14 + 20 + 8 + 548, 'quotes 548 bytes: the answer fits 576');
  t.equal(formatMac(r, 0), formatMac(A), 'to the sender');
  t.equal(formatMac(r, 6), formatMac(B), 'from the MAC it sent to');
  const ip = decodeIpv4(r, 14);
  t.match(ip, { src: '198.18.0.2', dst: '198.18.0.1', protocol: 1, ttl: 64, checksumOk: true, totalLen: 576 });
  t.same([r[34], r[35]], [3, 4], 'type 3 code 4');
  t.equal((r[40]! << 8) | r[41]!, 1450, 'next-hop MTU');
  t.equal(internetChecksum(r, 34), 0, 'ICMP checksum');
  t.same(r.subarray(42), f.subarray(14, 14 + 548), 'the offending packet quoted from its IP header');
  const small = v4({ size: 100 });
  t.equal(tooBigReply(small, 60)!.length, 14 + 28 + 100, 'a short packet is quoted whole');
});

t.test('IPv6: packet too big, checksum over the pseudo-header', async (t) => {
  const f = v6();
  const r = tooBigReply(f, 1430)!;
  t.same(native.tooBigReply(f, 1430), Buffer.from(r));
  t.equal(r.length, 14 + 40 + 8 + 1232, 'the answer fits 1280');
  t.match(decodeIpv6(r, 14), { src: 'fd00::2', dst: 'fd00::1', nextHeader: 58, payloadLen: 1240 });
  t.same([r[54], r[55]], [2, 0]);
  t.equal(new DataView(r.buffer, r.byteOffset).getUint32(58), 1430);
  t.equal(internetChecksum(r, 54, r.length, pseudoHeaderSum(r.subarray(22, 38), r.subarray(38, 54), 58, 1240)), 0);
});

t.test('what gets no answer', async (t) => {
  const icmp = (type: number): Uint8Array => Uint8Array.of(type, 0, 0, 0, ...new Array(1476).fill(1));
  const vlan = ((f: Uint8Array) => concat(f.subarray(0, 12), Uint8Array.of(0x81, 0, 0, 7), f.subarray(12)))(v4());
  const cases: [string, Uint8Array][] = [
    ['IPv4 without DF (dropped as today)', v4({ df: false })],
    ['a later fragment', (() => { const f = v4(); f[20] = 0x40; f[21] = 0x10; return f; })()],
    ['an ICMP error (dest unreachable)', v4({ proto: 1, l4: icmp(3) })],
    ['an ICMP error (time exceeded)', v4({ proto: 1, l4: icmp(11) })],
    ['an ICMPv6 error', v6({ next: 58, l4: icmp(1) })],
    ['a multicast destination MAC', v4({ dstMac: parseMac('01:00:5e:00:00:01') })],
    ['a multicast destination address', v4({ dst: '239.1.2.3' })],
    ['the broadcast address', v4({ dst: '255.255.255.255' })],
    ['source 0.0.0.0', v4({ src: '0.0.0.0' })],
    ['a loopback source', v4({ src: '127.0.0.1' })],
    ['IPv6 source ::', v6({ src: '::' })],
    ['IPv6 multicast destination', v6({ dst: 'ff02::1' })],
    ['ARP', encodeEthernet(B, A, 0x0806, new Uint8Array(28))],
    ['a VLAN tag (not parsed)', vlan],
    ['IPv4 header cut short', v4().subarray(0, 30)],
    ['IPv6 header cut short', v6().subarray(0, 50)],
    ['IHL 4', (() => { const f = v4(); f[14] = 0x44; return f; })()],
    ['total length below the header', (() => { const f = v4(); f[16] = 0; f[17] = 10; return f; })()],
    ['empty', new Uint8Array(0)],
  ];
  for (const [what, f] of cases) {
    t.equal(tooBigReply(f, 1450), undefined, `TypeScript: ${what}`);
    t.equal(native.tooBigReply(f, 1450), null, `native: ${what}`);
  }
  t.ok(tooBigReply(v4({ proto: 1, l4: icmp(8) }), 1450), 'an echo request is answered (ping -M do sees it)');
  t.ok(tooBigReply(v6({ next: 58, l4: icmp(128) }), 1430), 'an ICMPv6 echo request too');
  t.ok(tooBigReply(v4({ proto: PROTO_UDP }), 1450), 'UDP with DF too');
});

t.test('random and mutated frames: same answer from both', async (t) => {
  const rnd = mulberry32(18);
  const seeds = [v4(), v6(), v4({ size: 200 }), v6({ size: 300 }), v4({ proto: 1, l4: Uint8Array.of(8, 0, 0, 0, 1, 2) })];
  let n = 0;
  let answered = 0;
  let mismatches = 0;
  for (let i = 0; i < 20000; i++) {
    const f = Uint8Array.from(seeds[i % seeds.length]!).subarray(0, rnd() < 0.3 ? Math.floor(rnd() * 120) : undefined);
    const flips = Math.floor(rnd() * 4);
    for (let k = 0; k < flips && f.length > 0; k++) f[Math.floor(rnd() * Math.min(f.length, 70))] = Math.floor(rnd() * 256);
    const mtu = rnd() < 0.1 ? Math.floor(rnd() * 0x100000) : 1200 + Math.floor(rnd() * 300);
    const ts = tooBigReply(f, mtu);
    const cc = native.tooBigReply(f, mtu);
    n++;
    if (ts !== undefined) answered++;
    if ((ts === undefined) !== (cc === null) || (ts !== undefined && Buffer.compare(Buffer.from(ts), cc!) !== 0)) {
      if (mismatches++ < 5) t.fail(`frame #${i} (${f.length} bytes, mtu ${mtu}) differs`);
    }
  }
  t.equal(mismatches, 0, `${n} frames, ${answered} answered`);
  t.ok(answered > 1000 && answered < n, 'both kinds of verdict were exercised');
});

t.test('rate limit: a token bucket, the same in both engines', async (t) => {
  const times = [0, 0, 0, 0, 1, 2, 2, 3, 10, 10, 10, 11, 500, 500, 500, 500, 500, 2000, 2000, 2001];
  const ts = new TooBigLimiter(200, 3);
  const got = times.map((ms) => ts.take(ms));
  t.same(native.tooBigLimiter(200, 3, times), got, 'same verdicts');
  t.same(got.slice(0, 4), [true, true, true, false], 'a burst of 3, then limited');
  const l = new TooBigLimiter(TOO_BIG_RATE, TOO_BIG_BURST);
  let sent = 0;
  for (let ms = 0; ms < 1000; ms++) for (let k = 0; k < 10; k++) sent += l.take(ms) ? 1 : 0;
  t.ok(sent >= TOO_BIG_RATE && sent <= TOO_BIG_RATE + TOO_BIG_BURST, `10 000 asked in a second, ${sent} answered`);
});
