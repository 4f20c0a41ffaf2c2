/**
 * Pins native/src/nd.cc to its TypeScript twin (src/packet/nd.ts): which IPv6 address a frame's sender uses, which
 * Neighbor Solicitations the engine answers, and the answer itself, byte for byte; on crafted, random, mutated and
 * truncated frames. Also the unsolicited Neighbor Advertisement both engines put on a bridge for a re-bound address.
 */
import t from 'tap';
import { loadNative } from '../../src/dataplane/native.js';
import { announcement, senderIp } from '../../src/dataplane/neighbors.js';
import {
  decodeIpv6,
  encodeEthernet,
  encodeIpv6,
  encodeNd,
  ETHERTYPE_IPV6,
  formatIp,
  formatMac,
  internetChecksum,
  ND_ADVERTISEMENT,
  ND_SOLICITATION,
  ndAdvertReply,
  ndSolicitTarget,
  neighborSolicitation,
  parseIp,
  parseMac,
  PROTO_ICMPV6,
  PROTO_UDP,
  pseudoHeaderSum,
  senderIpv6,
  solicitedNode,
  unsolicitedNa,
} from '../../src/packet/index.js';
import { mulberry32 } from '../helpers/prng.js';

const n = loadNative();
const C1 = '02:00:00:00:00:01';
const C2 = '02:00:00:00:00:02';
const ns = neighborSolicitation(C1, 'fd00:198:18::1', 'fd00:198:18::2');

/** An ND frame's ICMPv6 checksum verifies over the IPv6 pseudo-header. */
const checksumOk = (f: Uint8Array): boolean => {
  const ip = decodeIpv6(f, 14);
  return internetChecksum(f, 54, 54 + ip.payloadLen, pseudoHeaderSum(f.subarray(22, 38), f.subarray(38, 54), PROTO_ICMPV6, ip.payloadLen)) === 0;
};

t.test('a Neighbor Solicitation: both answer it the same way', async (t) => {
  t.equal(ns.length, 86);
  t.same([...ns.subarray(0, 6)], [0x33, 0x33, 0xff, 0, 0, 2], "to the target's solicited-node MAC");
  const native = n.ndAnswer(ns, C2);
  t.equal(native?.target, 'fd00:198:18::2');
  t.equal(ndSolicitTarget(ns), 'fd00:198:18::2');
  t.same(native?.reply, Buffer.from(ndAdvertReply(ns, C2)), 'the same 86 bytes');
  const r = native!.reply;
  t.equal(formatMac(r, 0), C1, 'to the solicitor');
  t.equal(formatMac(r, 6), C2, 'from the MAC that has the address');
  t.match(decodeIpv6(r, 14), { payloadLen: 32, nextHeader: PROTO_ICMPV6, hopLimit: 255, src: 'fd00:198:18::2', dst: 'fd00:198:18::1' });
  t.equal(r[54], ND_ADVERTISEMENT, 'type 136');
  t.equal(r[55], 0, 'code 0');
  t.equal(r[58], 0x60, 'Solicited + Override, not Router');
  t.equal(formatIp(r.subarray(62, 78)), 'fd00:198:18::2', 'target');
  t.same([...r.subarray(78, 80)], [2, 1], 'Target Link-Layer Address option, 8 bytes');
  t.equal(formatMac(r, 80), C2);
  t.ok(checksumOk(r), 'ICMPv6 checksum over the pseudo-header');
  t.equal(n.senderIpv6(ns), 'fd00:198:18::1', 'an NS speaks for its source');
  t.equal(senderIpv6(ns), 'fd00:198:18::1');
  const ll = neighborSolicitation(C1, 'fe80::1', 'fe80::2');
  t.equal(n.ndAnswer(ll, C2)?.target, 'fe80::2', 'link-local targets are answered too');
  t.equal(ndSolicitTarget(ll), 'fe80::2');
});

/** `ns` with bytes changed, its checksum redone unless `keepSum`. */
function variant(change: (f: Uint8Array) => void, keepSum = false): Uint8Array {
  const f = Uint8Array.from(ns);
  change(f);
  if (!keepSum) {
    f[56] = 0;
    f[57] = 0;
    const plen = (f[18]! << 8) | f[19]!;
    const sum = internetChecksum(f, 54, Math.min(f.length, 54 + plen), pseudoHeaderSum(f.subarray(22, 38), f.subarray(38, 54), PROTO_ICMPV6, plen));
    f[56] = sum >> 8;
    f[57] = sum & 0xff;
  }
  return f;
}

t.test('what is not answered', async (t) => {
  const group = solicitedNode(parseIp('fd00:198:18::2'));
  const cases: [string, Uint8Array][] = [
    ['a DAD probe (source ::)', encodeNd({ dstMac: group.mac, srcMac: parseMac(C1), src: new Uint8Array(16), dst: group.ip, type: ND_SOLICITATION, target: parseIp('fd00:198:18::2') })],
    ['hop limit 254 (a router forwarded it)', variant((f) => (f[21] = 254))],
    ['ICMPv6 code 1', variant((f) => (f[55] = 1))],
    ['a bad checksum', variant((f) => (f[57]! ^= 1), true)],
    ['an option of length 0', variant((f) => (f[79] = 0))],
    ['an option running past the payload', variant((f) => (f[79] = 2))],
    ['payload length beyond the frame', variant((f) => (f[19] = 40))],
    ['payload length below 24', variant((f) => (f[19] = 16))],
    ['not to the solicited-node address', variant((f) => (f[53] = 3))],
    ['a multicast target', variant((f) => (f[62] = 0xff))],
    ['an extension header before ICMPv6 (hop-by-hop)', variant((f) => (f[20] = 0))],
    ['a Neighbor Advertisement', variant((f) => (f[54] = ND_ADVERTISEMENT))],
    ['IPv4 version nibble', variant((f) => (f[14] = 0x40))],
    ['a VLAN tag', Uint8Array.from([...ns.subarray(0, 12), 0x81, 0, 0, 7, ...ns.subarray(12)])],
    ['truncated by one byte', ns.subarray(0, ns.length - 1)],
  ];
  for (const [what, f] of cases) {
    t.equal(n.ndAnswer(f, C2), null, `native: ${what}`);
    t.equal(ndSolicitTarget(f), undefined, `TypeScript: ${what}`);
  }
  t.equal(n.senderIpv6(cases[0]![1]), null, 'a DAD probe says nothing about its sender');
  t.equal(senderIpv6(cases[0]![1]), undefined);
  const padded = Uint8Array.from([...ns, 0, 0, 0, 0]);
  t.equal(n.ndAnswer(padded, C2)?.target, 'fd00:198:18::2', 'trailing padding beyond the payload is fine');
  t.equal(ndSolicitTarget(padded), 'fd00:198:18::2');
});

t.test('which IPv6 address a frame speaks for', async (t) => {
  const udp = (src: string): Uint8Array =>
    encodeEthernet(parseMac(C2), parseMac(C1), ETHERTYPE_IPV6, Uint8Array.from([...encodeIpv6({ nextHeader: PROTO_UDP, src: parseIp(src), dst: parseIp('fd00:198:18::2'), payloadLen: 8 }), ...new Uint8Array(8)]));
  const na = encodeNd({ dstMac: parseMac(C2), srcMac: parseMac(C1), src: parseIp('fe80::1'), dst: parseIp('fe80::2'), type: ND_ADVERTISEMENT, flags: 0x60, target: parseIp('fd00:198:18::1'), lla: parseMac(C1) });
  const cases: [string, Uint8Array, string | null][] = [
    ['an IPv6 packet: its source', udp('fd00:198:18::1'), 'fd00:198:18::1'],
    ['link-local sources count', udp('fe80::1'), 'fe80::1'],
    ['a Neighbor Advertisement: its target', na, 'fd00:198:18::1'],
    ['the unspecified address', udp('::'), null],
    ['loopback', udp('::1'), null],
    ['a multicast source', udp('ff02::1'), null],
    ['an IPv6 header cut short', udp('fd00:198:18::1').subarray(0, 53), null],
  ];
  for (const [what, f, want] of cases) {
    t.equal(n.senderIpv6(f), want, `native: ${what}`);
    t.equal(senderIpv6(f) ?? null, want, `TypeScript: ${what}`);
  }
  t.equal(senderIp(udp('fd00:198:18::1')), 'fd00:198:18::1', 'senderIp falls back to IPv6');
});

t.test('the unsolicited Neighbor Advertisement for a re-bound address', async (t) => {
  const f = unsolicitedNa('fd00:198:18::2', '02:00:00:00:00:04');
  t.same(Buffer.from(announcement('fd00:198:18::2', '02:00:00:00:00:04')), Buffer.from(f), 'announcement picks ND for IPv6');
  t.equal(announcement('198.18.0.2', '02:00:00:00:00:04').length, 60, '... and ARP for IPv4');
  t.equal(formatMac(f, 0), '33:33:00:00:00:01', 'to all nodes');
  t.equal(formatMac(f, 6), '02:00:00:00:00:04');
  t.match(decodeIpv6(f, 14), { nextHeader: PROTO_ICMPV6, hopLimit: 255, src: 'fd00:198:18::2', dst: 'ff02::1', payloadLen: 32 });
  t.equal(f[54], ND_ADVERTISEMENT);
  t.equal(f[58], 0x20, 'Override set, Solicited clear');
  t.equal(formatIp(f.subarray(62, 78)), 'fd00:198:18::2');
  t.same([...f.subarray(78, 80)], [2, 1]);
  t.equal(formatMac(f, 80), '02:00:00:00:00:04', 'TLLA: the new MAC');
  t.ok(checksumOk(f));
  t.equal(n.senderIpv6(f), 'fd00:198:18::2', 'the native engine would record its target');
});

t.test('random, mutated and truncated frames: the twins agree, nothing throws, no reply from junk', async (t) => {
  const r = mulberry32(4321);
  let disagreements = 0;
  let answered = 0;
  let junkAnswered = 0;
  for (let i = 0; i < 6000; i++) {
    const kind = i % 3;
    let f: Buffer;
    if (kind === 0) {
      f = Buffer.from(ns); // a valid NS with a few bytes changed: most stop being answerable, some (the MACs) do not
      for (let k = 0; k < 1 + Math.floor(r() * 3); k++) f[Math.floor(r() * f.length)] = Math.floor(r() * 256);
    } else if (kind === 1) {
      f = Buffer.from(ns.subarray(0, Math.floor(r() * ns.length))); // every strict prefix of a valid NS
    } else {
      f = Buffer.from(Uint8Array.from({ length: Math.floor(r() * 120) }, () => Math.floor(r() * 256)));
      if (f.length >= 15 && r() < 0.7) f.set([0x86, 0xdd, 0x60], 12);
      if (f.length > 55 && r() < 0.7) (f[20] = PROTO_ICMPV6), (f[21] = 255), (f[54] = ND_SOLICITATION), (f[55] = 0);
    }
    const native = n.ndAnswer(f, C2);
    const ts = ndSolicitTarget(f);
    if ((native?.target ?? undefined) !== ts) disagreements++;
    else if (native !== null && !native.reply.equals(Buffer.from(ndAdvertReply(f, C2)))) disagreements++;
    if ((n.senderIpv6(f) ?? undefined) !== senderIpv6(f)) disagreements++;
    if (native !== null) {
      answered++;
      if (kind !== 0) junkAnswered++;
    }
  }
  t.equal(disagreements, 0, '6000 frames, the same answers');
  t.equal(junkAnswered, 0, 'no truncated or random frame is answered');
  t.ok(answered > 0, `some mutated solicitations are still answerable (${answered}), and agree`);
});
