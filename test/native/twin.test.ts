/**
 * Twin tests: the C++ wire code (native/src/wire.cc) against the TypeScript codecs (src/packet, classify.ts).
 * Same vectors in, same bytes / ports / verdicts out, for IPv4 and IPv6 outer addresses.
 */
import t from 'tap';
import { mulberry32 } from '../helpers/prng.js';
import { buildVniPeers, classifyDatagram } from '../../src/dataplane/classify.js';
import { loadNative } from '../../src/dataplane/native.js';
import {
  encapsulate,
  encodeArp,
  encodeEthernet,
  encodeIpv4,
  encodeIpv6,
  encodeUdp,
  ETHERTYPE_ARP,
  ETHERTYPE_IPV4,
  ETHERTYPE_IPV6,
  flowPort,
  parseIp,
  parseMac,
  PROTO_TCP,
  PROTO_UDP,
} from '../../src/packet/index.js';

const native = loadNative();


const concat = (...parts: Uint8Array[]): Uint8Array => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) (out.set(p, o), (o += p.length));
  return out;
};
const A = parseMac('02:00:00:00:00:01');
const B = parseMac('02:00:00:00:00:02');
const BCAST = parseMac('ff:ff:ff:ff:ff:ff');
const ip4 = (proto: number, l4: Uint8Array, frag = false): Uint8Array => {
  const h = encodeIpv4({ protocol: proto, src: parseIp('198.18.0.1'), dst: parseIp('198.18.0.2'), payloadLen: l4.length });
  if (frag) h[6] = 0x20; // MF
  return concat(h, l4);
};
const ports = (s: number, d: number, rest = 20): Uint8Array => {
  const b = new Uint8Array(rest);
  b[0] = s >> 8; b[1] = s & 0xff; b[2] = d >> 8; b[3] = d & 0xff;
  return b;
};
const vlan = (frame: Uint8Array, tpid = 0x8100, vid = 7): Uint8Array =>
  concat(frame.subarray(0, 12), Uint8Array.of(tpid >> 8, tpid & 0xff, vid >> 8, vid & 0xff), frame.subarray(12));

function vectors(): [string, Uint8Array][] {
  const udp = encodeUdp(parseIp('198.18.0.1'), parseIp('198.18.0.2'), 40000, 53, new TextEncoder().encode('hello'));
  const tcp4 = encodeEthernet(B, A, ETHERTYPE_IPV4, ip4(PROTO_TCP, ports(43210, 5201)));
  const v6 = concat(encodeIpv6({ nextHeader: PROTO_TCP, src: parseIp('2001:db8::1'), dst: parseIp('2001:db8::2'), payloadLen: 20 }), ports(1234, 80));
  const list: [string, Uint8Array][] = [
    ['ARP broadcast', encodeEthernet(BCAST, A, ETHERTYPE_ARP, encodeArp(1, A, parseIp('198.18.0.1'), new Uint8Array(6), parseIp('198.18.0.2')))],
    ['IPv4 UDP', encodeEthernet(B, A, ETHERTYPE_IPV4, ip4(PROTO_UDP, udp))],
    ['IPv4 TCP', tcp4],
    ['IPv4 ICMP', encodeEthernet(B, A, ETHERTYPE_IPV4, ip4(1, new Uint8Array(64)))],
    ['IPv4 fragment', encodeEthernet(B, A, ETHERTYPE_IPV4, ip4(PROTO_UDP, udp, true))],
    ['IPv6 TCP', encodeEthernet(B, A, ETHERTYPE_IPV6, v6)],
    ['802.1Q IPv4 TCP', vlan(tcp4)],
    ['QinQ IPv4 TCP', vlan(vlan(tcp4), 0x88a8, 9)],
    ['tag with nothing after it', vlan(tcp4).subarray(0, 16)],
    ['truncated IPv4', tcp4.subarray(0, 30)],
    ['short frame', A],
    ['empty', new Uint8Array(0)],
    ['odd length', encodeEthernet(B, A, 0x88b5, new Uint8Array(47).fill(0x5a))],
    ['IPv6 UDP', encodeEthernet(B, A, ETHERTYPE_IPV6, concat(encodeIpv6({ nextHeader: PROTO_UDP, src: parseIp('2001:db8::1'), dst: parseIp('2001:db8::2'), payloadLen: 12 }), ports(5353, 53, 12)))],
    ['IPv6 ICMPv6', encodeEthernet(B, A, ETHERTYPE_IPV6, concat(encodeIpv6({ nextHeader: 58, src: parseIp('2001:db8::1'), dst: parseIp('2001:db8::2'), payloadLen: 8 }), new Uint8Array(8)))],
    ['IPv6 TCP, no room for ports', encodeEthernet(B, A, ETHERTYPE_IPV6, concat(encodeIpv6({ nextHeader: PROTO_TCP, src: parseIp('2001:db8::1'), dst: parseIp('2001:db8::2'), payloadLen: 0 }), new Uint8Array(3)))],
    ['IPv4 non-first fragment', (() => { const f = tcp4.slice(); f[14 + 7] = 0x10; return f; })()],
    ['IPv4 DF set (not a fragment)', (() => { const f = tcp4.slice(); f[14 + 6] = 0x40; return f; })()],
    ['IPv4 IHL 6 (options)', encodeEthernet(B, A, ETHERTYPE_IPV4, (() => { const h = ip4(PROTO_TCP, ports(1, 2, 24)); const o = concat(h.subarray(0, 20), new Uint8Array(4), h.subarray(20)); o[0] = 0x46; return o; })())],
    ['IPv4 IHL 4 (invalid)', (() => { const f = tcp4.slice(); f[14] = 0x44; return f; })()],
    ['IPv4 version 6 in an IPv4 ethertype', (() => { const f = tcp4.slice(); f[14] = 0x65; return f; })()],
    ['three tags (only two are skipped)', vlan(vlan(vlan(tcp4), 0x88a8, 9), 0x8100, 3)],
    ['802.1Q ARP', vlan(encodeEthernet(BCAST, A, ETHERTYPE_ARP, encodeArp(1, A, parseIp('198.18.0.1'), new Uint8Array(6), parseIp('198.18.0.2'))))],
    ['ethernet header only', tcp4.subarray(0, 14)],
    ['13 bytes', tcp4.subarray(0, 13)],
  ];
  const rnd = mulberry32(42);
  for (let i = 0; i < 3000; i++) {
    const f = new Uint8Array(Math.floor(rnd() * 200));
    for (let j = 0; j < f.length; j++) f[j] = Math.floor(rnd() * 256);
    if (f.length > 14 && rnd() < 0.5) (f[12] = 0x08, (f[13] = 0), (f[14] = 0x45)); // often IPv4-looking
    if (f.length > 18 && rnd() < 0.2) (f[12] = 0x81, (f[13] = 0), (f[16] = 0x86), (f[17] = 0xdd));
    if (f.length > 22 && rnd() < 0.2) (f[12] = 0x88, (f[13] = 0xa8), (f[16] = 0x81), (f[17] = 0), (f[20] = 0x08), (f[21] = 0), (f[22] = 0x45));
    if (f.length > 14 && rnd() < 0.1) (f[12] = 0x86, (f[13] = 0xdd), f.length > 20 && (f[20] = rnd() < 0.5 ? 6 : 17));
    if (f.length > 24 && f[12] === 0x08 && rnd() < 0.5) (f[23] = rnd() < 0.5 ? 6 : 17), (f[20] = rnd() < 0.7 ? 0 : f[20]!); // TCP/UDP, often unfragmented
    list.push([`random #${i}`, f]);
  }
  return list;
}

t.test('flowPort and encapsulate agree byte for byte', async (t) => {
  let mismatches = 0;
  for (const [name, frame] of vectors()) {
    if (native.flowPort(frame) !== flowPort(frame)) t.fail(`${name}: flowPort differs`), mismatches++;
    for (const [src, dst] of [['198.51.100.1', '198.51.100.2'], ['2001:db8::1', '2001:db8::2']] as const) {
      const ts = encapsulate(frame, 0xabcdef, parseIp(src), parseIp(dst), 4789);
      const cc = native.encapsulate(frame, 0xabcdef, src, dst, 4789);
      if (Buffer.compare(Buffer.from(ts), cc) !== 0) t.fail(`${name} (${src}): bytes differ`), mismatches++;
    }
  }
  t.equal(mismatches, 0, `${vectors().length} frames, IPv4 and IPv6 outer`);
});

t.test('classifyDatagram: same verdict for every case and for random datagrams', async (t) => {
  const vnis = [{ vni: 42, peers: ['198.51.100.2', '2001:db8::2'] }, { vni: 7, peers: [] }];
  const peers = buildVniPeers(vnis);
  const frame = new Uint8Array(60).fill(1);
  const hdr = (flags: number, vni: number): Uint8Array => Uint8Array.of(flags, 0, 0, 0, vni >> 16, (vni >> 8) & 0xff, vni & 0xff, 0);
  const cases: [Uint8Array, string][] = [
    [new Uint8Array(7), '198.51.100.2'],
    [concat(hdr(0x00, 42), frame), '198.51.100.2'],
    [concat(hdr(0xf7, 42), frame), '198.51.100.2'],
    [concat(hdr(0xff, 42), frame), '198.51.100.2'],
    [concat(hdr(0x08, 43), frame), '198.51.100.2'],
    [concat(hdr(0x08, 7), frame), '198.51.100.2'],
    [concat(hdr(0x08, 42), frame), '198.51.100.9'],
    [concat(hdr(0x08, 42), frame), '2001:db8::2'],
    [concat(hdr(0x08, 42), frame.subarray(0, 13)), '198.51.100.2'],
    [concat(hdr(0x08, 42), frame.subarray(0, 14)), '198.51.100.2'],
    [concat(hdr(0x08, 42), new Uint8Array(1468)), '198.51.100.2'],
    [concat(hdr(0x08, 42), new Uint8Array(1469)), '198.51.100.2'],
  ];
  const rnd = mulberry32(7);
  for (let i = 0; i < 2000; i++) {
    const p = new Uint8Array(Math.floor(rnd() * 40));
    for (let j = 0; j < p.length; j++) p[j] = rnd() < 0.3 ? 0 : Math.floor(rnd() * 256);
    if (p.length > 6 && rnd() < 0.5) (p[4] = 0, (p[5] = 0), (p[6] = 42));
    cases.push([p, rnd() < 0.7 ? '198.51.100.2' : '198.51.100.3']);
  }
  let mismatches = 0;
  for (const [payload, from] of cases) {
    const ts = classifyDatagram(payload, from, peers, 1468);
    const cc = native.classifyDatagram(payload, from, vnis, 1468);
    const tsView = ts.ok ? { vni: ts.vni, offset: ts.inner.byteOffset - payload.byteOffset } : { reason: ts.reason, ...(ts.vni !== undefined ? { vni: ts.vni } : {}) };
    if (JSON.stringify(tsView) !== JSON.stringify(cc)) t.fail(`differs: ${JSON.stringify(tsView)} vs ${JSON.stringify(cc)}`), mismatches++;
  }
  t.equal(mismatches, 0, `${cases.length} datagrams`);
  t.same(native.classifyDatagram(concat(hdr(0x08, 42), frame), '198.51.100.2', vnis, 1468), { vni: 42, offset: 8 });
  t.same(native.classifyDatagram(new Uint8Array(3), '198.51.100.9', vnis, 1468), { reason: 'rx_short' });
  t.same(vnis, [{ vni: 42, peers: ['198.51.100.2', '2001:db8::2'] }, { vni: 7, peers: [] }], 'the input is left as it was');
});

t.test('bad arguments are TypeErrors that name the argument, never crashes', async (t) => {
  t.throws(() => native.encapsulate(new Uint8Array(14), 1 << 24, '198.51.100.1', '198.51.100.2', 4789), { name: 'TypeError', message: /vni/ });
  t.throws(() => native.encapsulate(new Uint8Array(14), 1, '198.51.100.1', '2001:db8::2', 4789), { name: 'TypeError', message: /one family/ });
  t.throws(() => native.flowPort('x' as unknown as Uint8Array), { name: 'TypeError', message: /frame/ });
  t.throws(() => native.classifyDatagram(new Uint8Array(8), 'nope', [], 1500), { name: 'TypeError', message: /from/ });
  t.throws(() => native.openTap('x', 10, 'br0'), { name: 'TypeError', message: /mtu/ });
  t.throws(() => native.createEngine({} as Parameters<typeof native.createEngine>[0]), { name: 'TypeError', message: /createEngine/ });
});
