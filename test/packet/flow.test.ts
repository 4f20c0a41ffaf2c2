/** flowPort: the key rules (RFC 7348 §5 entropy), pinned; the C++ twin is compared in test/native/twin.test.ts. */
import t from 'tap';
import { encodeEthernet, encodeIpv4, encodeIpv6, ETHERTYPE_IPV4, ETHERTYPE_IPV6, flowHash, flowPort, parseIp, parseMac, PROTO_TCP } from '../../src/packet/index.js';

const MAC_A = parseMac('02:00:00:00:00:01');
const MAC_B = parseMac('02:00:00:00:00:02');

function tcp4(opts: { sport?: number; ttl?: number; mf?: boolean; offset?: number; payload?: number; macs?: [Uint8Array, Uint8Array] } = {}): Uint8Array {
  const l4 = new Uint8Array(20 + (opts.payload ?? 0));
  const sport = opts.sport ?? 40000;
  l4.set([sport >> 8, sport & 0xff, 0x14, 0x51]);
  l4.fill(0x33, 20);
  const ip = encodeIpv4({ protocol: PROTO_TCP, src: parseIp('198.18.0.1'), dst: parseIp('198.18.0.2'), payloadLen: l4.length, ttl: opts.ttl ?? 64 });
  const frag = (opts.mf ? 0x2000 : 0) | (opts.offset ?? 0);
  ip[6] = frag >> 8;
  ip[7] = frag & 0xff;
  const [dst, src] = opts.macs ?? [MAC_B, MAC_A];
  return encodeEthernet(dst, src, ETHERTYPE_IPV4, new Uint8Array([...ip, ...l4]));
}

const tag = (f: Uint8Array): Uint8Array => new Uint8Array([...f.subarray(0, 12), 0x81, 0x00, 0x00, 0x0a, ...f.subarray(12)]);

t.test('range and determinism', async (t) => {
  for (let s = 1; s < 2000; s += 7) {
    const p = flowPort(tcp4({ sport: s }));
    t.ok(p >= 49152 && p <= 65535);
    t.equal(flowPort(tcp4({ sport: s })), p);
  }
  t.equal(flowPort(new Uint8Array(3)), 49152 + ((0x811c9dc5 ^ (0x811c9dc5 >>> 16)) & 0x3fff), 'too short: the empty key');
});

t.test('IP flows: only the 5-tuple counts', async (t) => {
  const base = flowPort(tcp4());
  t.equal(flowPort(tcp4({ ttl: 3 })), base, 'TTL is not in the key');
  t.equal(flowPort(tcp4({ payload: 100 })), base, 'payload is not in the key');
  t.equal(flowPort(tcp4({ macs: [MAC_A, MAC_B] })), base, 'MACs are not in the key of an IP frame');
  t.equal(flowPort(tag(tcp4())), base, 'an 802.1Q tag does not change the flow');
  const ports = new Set(Array.from({ length: 64 }, (_, i) => flowPort(tcp4({ sport: 40000 + i }))));
  t.ok(ports.size > 48, `64 source ports spread over ${ports.size} outer ports`);
});

t.test('fragments of one datagram share a port', async (t) => {
  const first = flowPort(tcp4({ mf: true }));
  t.equal(flowPort(tcp4({ mf: true, sport: 1 })), first, 'ports bytes ignored once MF is set');
  t.equal(flowPort(tcp4({ offset: 185, sport: 2 })), first, 'and in later fragments');
  t.not(first, flowPort(tcp4()), 'the unfragmented flow hashes its ports too');
});

t.test('IPv6 and non-IP keys', async (t) => {
  const v6 = (sport: number): Uint8Array => {
    const l4 = Uint8Array.of(sport >> 8, sport & 0xff, 0, 80, ...new Uint8Array(16));
    return encodeEthernet(MAC_B, MAC_A, ETHERTYPE_IPV6, new Uint8Array([...encodeIpv6({ nextHeader: PROTO_TCP, src: parseIp('2001:db8::1'), dst: parseIp('2001:db8::2'), payloadLen: 20 }), ...l4]));
  };
  t.not(flowPort(v6(1000)), flowPort(v6(1001)), 'IPv6 ports are in the key');
  const raw = (dst: Uint8Array): Uint8Array => encodeEthernet(dst, MAC_A, 0x88b5, new Uint8Array(46));
  t.not(flowHash(raw(MAC_B)), flowHash(raw(parseMac('02:00:00:00:00:03'))), 'non-IP: the MACs are the key');
  const rawB = raw(MAC_B);
  const other = new Uint8Array(rawB);
  other[20] = 9;
  t.equal(flowHash(other), flowHash(rawB), 'non-IP: payload is not');
});
