/**
 * TCP MSS clamping (--clamp-mss): the C++ code both engine threads run (native/src/mss.cc, ClampMss) against its
 * TypeScript twin (src/packet/tcp-mss.ts, what the JS engine runs), verdict and bytes, on hand-made SYNs and
 * thousands of mutated ones; the checksum after the incremental update (RFC 1624) equals a full recomputation; a
 * malformed options field is left untouched; the clamp a setting resolves to, and the clamp toward one peer's measured
 * path (clampForPath, twin of ClampForPath in native/src/mss.h, which both engine threads apply per peer).
 */
import t, { type Test } from 'tap';
import { loadNative } from '../../src/dataplane/native.js';
import {
  clampMss,
  encodeEthernet,
  encodeIpv4,
  encodeIpv6,
  ETHERTYPE_IPV4,
  ETHERTYPE_IPV6,
  internetChecksum,
  clampForPath,
  mssClampFor,
  parseIp,
  parseMac,
  pseudoHeaderSum,
  PROTO_TCP,
  type MssClamp,
} from '../../src/packet/index.js';
import { mulberry32 } from '../helpers/prng.js';

const native = loadNative();
const A = parseMac('02:00:00:00:00:01');
const B = parseMac('02:00:00:00:00:02');
const CLAMP: MssClamp = { ipv4: 1410, ipv6: 1390 };
const concat = (...parts: Uint8Array[]): Uint8Array => Uint8Array.from(parts.flatMap((p) => [...p]));

/** MSS 1460, SACK permitted, timestamps, NOP, window scale: what Linux sends (20 bytes of options). */
const LINUX_OPTS = [2, 4, 0x05, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7];

function tcp(o: { opts?: number[]; flags?: number; v6?: boolean; payload?: number; vlan?: boolean; frag?: boolean } = {}): Uint8Array {
  const opts = o.opts ?? LINUX_OPTS;
  const hdr = new Uint8Array(20 + opts.length);
  hdr.set([0x9c, 0x40, 0x13, 0x89, 1, 2, 3, 4, 0, 0, 0, 0, (((20 + opts.length) / 4) | 0) << 4, o.flags ?? 0x02, 0xfa, 0xf0]);
  hdr.set(opts, 20);
  const l4 = concat(hdr, new Uint8Array(o.payload ?? 0).fill(0x5a));
  const src = parseIp(o.v6 ? 'fd00::1' : '198.18.0.1');
  const dst = parseIp(o.v6 ? 'fd00::2' : '198.18.0.2');
  const sum = internetChecksum(l4, 0, l4.length, pseudoHeaderSum(src, dst, PROTO_TCP, l4.length));
  l4[16] = sum >>> 8;
  l4[17] = sum & 0xff;
  const ip = o.v6 ? encodeIpv6({ nextHeader: PROTO_TCP, src, dst, payloadLen: l4.length }) : encodeIpv4({ protocol: PROTO_TCP, src, dst, payloadLen: l4.length, dontFragment: true });
  if (o.frag) ip[6] = 0x20; // MF
  const frame = encodeEthernet(B, A, o.v6 ? ETHERTYPE_IPV6 : ETHERTYPE_IPV4, concat(ip, l4));
  return o.vlan ? concat(frame.subarray(0, 12), Uint8Array.of(0x81, 0, 0, 7), frame.subarray(12)) : frame;
}

/** The frame's TCP checksum verifies (full sum over pseudo-header and segment). */
function tcpOk(f: Uint8Array): boolean {
  const l3 = f[12] === 0x81 ? 18 : 14;
  const v6 = f[l3]! >>> 4 === 6;
  const l4 = l3 + (v6 ? 40 : (f[l3]! & 0xf) * 4);
  const end = v6 ? l4 + ((f[l3 + 4]! << 8) | f[l3 + 5]!) : l3 + ((f[l3 + 2]! << 8) | f[l3 + 3]!);
  const src = f.subarray(l3 + (v6 ? 8 : 12), l3 + (v6 ? 24 : 16));
  const dst = f.subarray(l3 + (v6 ? 24 : 16), l3 + (v6 ? 40 : 20));
  return internetChecksum(f, l4, end, pseudoHeaderSum(src, dst, PROTO_TCP, end - l4)) === 0;
}

/** Both twins on a copy each: same verdict, same bytes. */
function both(t: Test, f: Uint8Array, clamp: MssClamp = CLAMP, what = ''): { result: string; frame: Uint8Array } {
  const mine = Uint8Array.from(f);
  const result = clampMss(mine, clamp);
  const n = native.clampMss(f, clamp.ipv4, clamp.ipv6);
  t.equal(n.result, result, `native verdict ${what}`);
  t.same(Uint8Array.from(n.frame), mine, `native bytes ${what}`);
  return { result, frame: mine };
}

const mssOf = (f: Uint8Array, at: number): number => (f[at]! << 8) | f[at + 1]!;

t.test('a SYN and a SYN-ACK are clamped, IPv4 and IPv6, checksum updated', async (t) => {
  for (const v6 of [false, true]) {
    for (const flags of [0x02, 0x12]) {
      const f = tcp({ v6, flags });
      t.ok(tcpOk(f), 'built right');
      const r = both(t, f);
      t.equal(r.result, 'clamped');
      const at = 14 + (v6 ? 40 : 20) + 22;
      t.equal(mssOf(r.frame, at), v6 ? 1390 : 1410, `MSS lowered (${v6 ? 'IPv6' : 'IPv4'}, flags ${flags})`);
      t.ok(tcpOk(r.frame), 'the incremental checksum equals a full one');
      const changed = [...r.frame.keys()].filter((i) => r.frame[i] !== f[i]);
      const csum = 14 + (v6 ? 40 : 20) + 16;
      t.ok(changed.every((i) => i === at || i === at + 1 || i === csum || i === csum + 1), 'only the MSS and the checksum changed');
    }
  }
  const tagged = both(t, tcp({ vlan: true }));
  t.equal(tagged.result, 'clamped', 'behind an 802.1Q tag');
  t.ok(tcpOk(tagged.frame));
});

t.test('left alone: MSS already small, no MSS, not a SYN, other protocols, fragments, family off', async (t) => {
  const small = tcp({ opts: [2, 4, 0x05, 0x00] });
  t.same(both(t, small), { result: 'none', frame: small }, 'MSS 1280 stays');
  const equal = tcp({ opts: [2, 4, 0x05, 0x82] });
  t.equal(both(t, equal).result, 'none', 'MSS equal to the clamp stays');
  t.equal(both(t, tcp({ opts: [] })).result, 'none', 'no options');
  t.equal(both(t, tcp({ opts: [1, 1, 1, 1, 4, 2, 0, 0] })).result, 'none', 'options without MSS');
  t.equal(both(t, tcp({ opts: [0, 0, 0, 0, 2, 4, 0x05, 0xb4] })).result, 'none', 'MSS after the end-of-list option');
  t.equal(both(t, tcp({ flags: 0x10, payload: 100 })).result, 'none', 'an ACK with data');
  t.equal(both(t, tcp({ frag: true })).result, 'none', 'an IPv4 fragment');
  t.equal(both(t, tcp(), { ipv4: 0, ipv6: 1390 }).result, 'none', 'IPv4 not clamped');
  t.equal(both(t, tcp({ v6: true }), { ipv4: 1410, ipv6: 0 }).result, 'none', 'IPv6 not clamped');
  const udp = tcp();
  udp[14 + 9] = 17;
  t.equal(both(t, udp).result, 'none', 'UDP');
  for (let n = 0; n < tcp().length; n++) t.equal(both(t, tcp().subarray(0, n), CLAMP, `cut at ${n}`).result, 'none', `cut at ${n}: the IP length no longer fits`);
});

t.test('an MSS option at an odd offset: the checksum still verifies', async (t) => {
  const f = tcp({ opts: [1, 2, 4, 0x05, 0xb4, 1, 1, 1] });
  const r = both(t, f);
  t.equal(r.result, 'clamped');
  t.equal(mssOf(r.frame, 14 + 20 + 23), 1410);
  t.ok(tcpOk(r.frame), 'byte-swapped words');
});

t.test('malformed options: left untouched and reported', async (t) => {
  const cases: [string, number[]][] = [
    ['length 0', [3, 0, 0, 0, 2, 4, 5, 0xb4]],
    ['length 1', [3, 1, 0, 0]],
    ['an option past the header', [1, 1, 1, 8, 2, 4, 5, 0xb4]],
    ['MSS of length 3', [2, 3, 5, 0xb4]],
    ['MSS of length 6', [2, 6, 5, 0xb4, 0, 0, 1, 1]],
    ['a kind with no length byte', [1, 1, 1, 3]],
  ];
  for (const [what, opts] of cases) {
    const f = tcp({ opts });
    const r = both(t, f, CLAMP, what);
    t.equal(r.result, 'malformed', what);
    t.same(r.frame, f, `${what}: untouched`);
  }
  const longOffset = tcp({ opts: [2, 4, 5, 0xb4] });
  longOffset[14 + 20 + 12] = 0xf0; // 60-byte header in a 24-byte segment
  t.equal(both(t, longOffset).result, 'malformed', 'a data offset past the packet');
  const shortOffset = tcp({ opts: [2, 4, 5, 0xb4] });
  shortOffset[14 + 20 + 12] = 0x40;
  t.equal(both(t, shortOffset).result, 'malformed', 'a data offset below 5');
});

t.test('fuzz: mutated SYNs give the same verdict and bytes in both twins; a clamp always leaves a valid checksum', async (t) => {
  const rnd = mulberry32(18);
  const seeds = [tcp(), tcp({ v6: true }), tcp({ flags: 0x12, opts: [1, 2, 4, 0x05, 0xb4, 1, 1, 1] }), tcp({ vlan: true, v6: true })];
  let clamped = 0;
  let malformed = 0;
  let mismatches = 0;
  for (let i = 0; i < 20_000; i++) {
    const f = Uint8Array.from(seeds[i % seeds.length]!);
    const l3 = f[12] === 0x81 ? 18 : 14;
    const l4 = l3 + (f[l3]! >>> 4 === 6 ? 40 : 20);
    for (let k = 1 + Math.floor(rnd() * 3); k > 0; k--) {
      // Mostly the options and data offset; sometimes anywhere (lengths, versions, protocols).
      const at = rnd() < 0.8 ? l4 + 12 + Math.floor(rnd() * (f.length - l4 - 12)) : Math.floor(rnd() * f.length);
      f[at] = Math.floor(rnd() * 256);
    }
    const cut = rnd() < 0.1 ? f.subarray(0, Math.floor(rnd() * f.length)) : f;
    const before = tcpOk(cut.length > l4 + 18 ? cut : f);
    const mine = Uint8Array.from(cut);
    const r = clampMss(mine, CLAMP);
    const n = native.clampMss(cut, CLAMP.ipv4, CLAMP.ipv6);
    if (n.result !== r || Buffer.compare(n.frame, Buffer.from(mine)) !== 0) mismatches++;
    if (r === 'malformed') {
      malformed++;
      if (Buffer.compare(Buffer.from(mine), Buffer.from(cut)) !== 0) mismatches++;
    }
    if (r === 'clamped') {
      clamped++;
      if (before && !tcpOk(mine)) mismatches++;
    }
  }
  t.equal(mismatches, 0, 'no mismatch between twins, no broken checksum, no malformed frame touched');
  t.ok(clamped > 1000 && malformed > 1000, `both verdicts exercised (${clamped} clamped, ${malformed} malformed)`);
});

t.test('the clamp a setting resolves to', async (t) => {
  t.equal(mssClampFor(false, 1450), undefined, 'off');
  t.same(mssClampFor(true, 1450), { ipv4: 1410, ipv6: 1390 }, 'path MTU − 40 / − 60');
  t.same(mssClampFor(true, 1430), { ipv4: 1390, ipv6: 1370 }, 'IPv6 underlay');
  t.same(mssClampFor(1300, 1450), { ipv4: 1300, ipv6: 1300 }, 'a number: both families');
});

t.test('toward a peer with a measured path: no higher than what fits it, the configured clamp the ceiling, both twins', async (t) => {
  t.same(clampForPath({ ipv4: 1410, ipv6: 1390 }, 1350), { ipv4: 1310, ipv6: 1290 }, 'bare --clamp-mss, a 1400-byte path (1350 inner)');
  t.same(clampForPath({ ipv4: 1300, ipv6: 1300 }, 1350), { ipv4: 1300, ipv6: 1290 }, '--clamp-mss 1300: the smaller of the two, per family');
  t.same(clampForPath({ ipv4: 1410, ipv6: 0 }, 1350), { ipv4: 1310, ipv6: 0 }, 'a family off stays off');
  t.same(clampForPath({ ipv4: 1410, ipv6: 1390 }, 60), { ipv4: 88, ipv6: 88 }, 'never below 88 (0 would mean off)');
  t.same(clampForPath({ ipv4: 1410, ipv6: 1390 }, 1450), { ipv4: 1410, ipv6: 1390 }, 'the underlay path: unchanged');
  // The native twin (clampMss with an ipMtu: ClampForPath first) on real SYNs, every path size from tiny to large.
  let mismatches = 0;
  for (const f of [tcp(), tcp({ v6: true }), tcp({ flags: 0x12, vlan: true })]) {
    for (let mtu = 0; mtu <= 1600; mtu += 7) {
      for (const base of [CLAMP, { ipv4: 1300, ipv6: 0 }, { ipv4: 0, ipv6: 1200 }]) {
        const mine = Uint8Array.from(f);
        const r = clampMss(mine, clampForPath(base, mtu));
        const n = native.clampMss(f, base.ipv4, base.ipv6, mtu);
        if (n.result !== r || Buffer.compare(n.frame, Buffer.from(mine)) !== 0) mismatches++;
      }
    }
  }
  t.equal(mismatches, 0, 'native ClampForPath + ClampMss = clampForPath + clampMss');
  const syn = tcp();
  const l4 = 14 + 20;
  t.equal(mssOf(native.clampMss(syn, 1410, 1390, 1350).frame, l4 + 22), 1310, 'a 1460 SYN toward a 1350 path: 1310');
  t.throws(() => native.clampMss(syn, 1410, 1390, 70000), /ipMtu must be 0-65535/);
});
