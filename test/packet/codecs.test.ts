/** Known vectors for the packet codecs, and every decoder on every truncation of its header. */
import t from 'tap';
import { PacketError } from '../../src/errors.js';
import {
  decodeArp, decodeEthernet, decodeIpv4, decodeIpv6, decodePorts, decodeUdp, decodeVxlanHeader, encapsulate,
  encodeArp, encodeEthernet, encodeIpv4, encodeIpv6, encodeUdp, encodeVxlanHeader, formatIp, formatMac,
  internetChecksum, isMulticastMac, overheadFor, parseIp, parseMac, sum16, fold, udpChecksumOk,
  ETHERTYPE_ARP, ETHERTYPE_IPV4, PROTO_UDP, VXLAN_PORT,
} from '../../src/packet/index.js';

const hex = (s: string): Uint8Array => Uint8Array.from(s.replace(/\s+/g, '').match(/../g) ?? [], (b) => parseInt(b, 16));

t.test('Internet checksum: RFC 1071 example and an IPv4 header', async (t) => {
  const rfc = hex('0001 f203 f4f5 f6f7');
  t.equal(fold(sum16(rfc)), 0xddf2);
  t.equal(internetChecksum(rfc), 0x220d);
  const header = hex('4500 0073 0000 4000 4011 b861 c0a8 0001 c0a8 00c7');
  t.equal(internetChecksum(header), 0, 'a header with its checksum sums to zero');
  const ip = decodeIpv4(header);
  t.match(ip, { headerLen: 20, totalLen: 0x73, dontFragment: true, moreFragments: false, ttl: 64, protocol: 17, checksumOk: true, src: '192.168.0.1', dst: '192.168.0.199' });
  const rebuilt = encodeIpv4({ protocol: 17, src: parseIp('192.168.0.1'), dst: parseIp('192.168.0.199'), payloadLen: 0x73 - 20 });
  t.same(rebuilt, header, 'encodeIpv4 reproduces the header and its checksum');
});

t.test('addresses: text forms', async (t) => {
  const cases: [string, string][] = [
    ['2001:db8::1', '2001:db8::1'], ['::', '::'], ['::1', '::1'], ['2001:DB8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'], ['2001:db8::', '2001:db8::'], ['::ffff:198.51.100.1', '::ffff:198.51.100.1'],
    ['198.51.100.7', '198.51.100.7'],
  ];
  for (const [input, canonical] of cases) t.equal(formatIp(parseIp(input)), canonical, input);
  t.throws(() => parseIp('198.51.100.256'), PacketError);
  t.throws(() => formatIp(new Uint8Array(5)), PacketError);
  t.equal(formatMac(parseMac('02:AB:cd:00:00:0F')), '02:ab:cd:00:00:0f');
  t.throws(() => parseMac('02:ab:cd:00:00'), PacketError);
  t.ok(isMulticastMac(parseMac('01:00:5e:00:00:01')));
  t.notOk(isMulticastMac(parseMac('02:00:00:00:00:01')));
});

t.test('Ethernet with VLAN tags, ARP', async (t) => {
  const arp = encodeArp(1, parseMac('02:00:00:00:00:01'), parseIp('198.18.0.1'), new Uint8Array(6), parseIp('198.18.0.2'));
  const frame = encodeEthernet(parseMac('ff:ff:ff:ff:ff:ff'), parseMac('02:00:00:00:00:01'), ETHERTYPE_ARP, arp);
  t.same(frame.subarray(12, 22), hex('0806 0001 0800 06 04 0001'), 'ethertype, htype, ptype, hlen, plen, op');
  const eth = decodeEthernet(frame);
  t.same(eth, { dst: 'ff:ff:ff:ff:ff:ff', src: '02:00:00:00:00:01', tags: [], etherType: ETHERTYPE_ARP, payloadOffset: 14 });
  t.same(decodeArp(frame, eth.payloadOffset), { op: 1, senderMac: '02:00:00:00:00:01', senderIp: '198.18.0.1', targetMac: '00:00:00:00:00:00', targetIp: '198.18.0.2' });
  const qinq = new Uint8Array([...frame.subarray(0, 12), 0x88, 0xa8, 0x20, 0x05, 0x81, 0x00, 0x00, 0x07, ...frame.subarray(12)]);
  const tagged = decodeEthernet(qinq);
  t.same(tagged.tags, [{ tpid: 0x88a8, pcp: 1, vid: 5 }, { tpid: 0x8100, pcp: 0, vid: 7 }]);
  t.equal(tagged.etherType, ETHERTYPE_ARP);
  t.equal(tagged.payloadOffset, 22);
  const notArp = new Uint8Array(arp);
  notArp[1] = 6; // htype 6 (IEEE 802): not Ethernet
  t.throws(() => decodeArp(notArp), { name: 'PacketError', message: /^arp: not Ethernet\/IPv4 ARP/ });
});

t.test('IPv6, UDP and ports', async (t) => {
  const src = parseIp('2001:db8::1');
  const dst = parseIp('2001:db8::2');
  const udp = encodeUdp(src, dst, 50000, 4789, Uint8Array.of(1, 2, 3));
  t.same(decodeUdp(udp), { srcPort: 50000, dstPort: 4789, length: 11, checksum: (udp[6]! << 8) | udp[7]! });
  t.ok(udpChecksumOk(src, dst, udp));
  udp[8] = udp[8]! ^ 0xff;
  t.notOk(udpChecksumOk(src, dst, udp), 'a flipped payload bit fails the checksum');
  const v6 = decodeIpv6(encodeIpv6({ nextHeader: PROTO_UDP, src, dst, payloadLen: 11, hopLimit: 9 }));
  t.same(v6, { payloadLen: 11, nextHeader: 17, hopLimit: 9, src: '2001:db8::1', dst: '2001:db8::2' });
  t.same(decodePorts(Uint8Array.of(0x13, 0x88, 0x00, 0x35), 0), { srcPort: 5000, dstPort: 53 });
  t.throws(() => decodeUdp(Uint8Array.of(0, 1, 0, 2, 0, 4, 0, 0)), { name: 'PacketError', message: /^udp: length 4 below 8/ });
  t.throws(() => decodeUdp(Uint8Array.of(0, 1, 0, 2, 0, 40, 0, 0)), { name: 'PacketError', message: /^udp: length 40 exceeds/ });
});

t.test('VXLAN: header and encapsulation, byte by byte (RFC 7348 §5)', async (t) => {
  t.same(encodeVxlanHeader(0x123456), hex('08 000000 123456 00'));
  t.same(decodeVxlanHeader(hex('ff 000000 00002a 00')), { flags: 0xff, vni: 42 });
  t.throws(() => encodeVxlanHeader(0x1000000), { name: 'PacketError', message: /^vxlan: VNI 16777216 out of range/ });
  t.equal(overheadFor(4), 50);
  t.equal(overheadFor(6), 70);
  const frame = encodeEthernet(parseMac('02:00:00:00:00:02'), parseMac('02:00:00:00:00:01'), ETHERTYPE_IPV4, new Uint8Array(47).fill(7));
  for (const [a, b] of [['198.51.100.1', '198.51.100.2'], ['2001:db8::1', '2001:db8::2']] as const) {
    const d = encapsulate(frame, 42, parseIp(a), parseIp(b), VXLAN_PORT);
    const u = decodeUdp(d);
    t.ok(u.srcPort >= 49152 && u.srcPort <= 65535, `${a}: entropy source port`);
    t.equal(u.dstPort, 4789);
    t.equal(u.length, 8 + 8 + frame.length);
    t.not(u.checksum, 0, 'checksum always present');
    t.ok(udpChecksumOk(parseIp(a), parseIp(b), d), 'and valid');
    t.same(d.subarray(8, 16), hex('08 000000 00002a 00'), 'I flag, reserved zero, VNI 42, reserved zero');
    t.same(d.subarray(16), frame, 'the frame follows unchanged');
  }
});

t.test('every decoder, on every truncation of its header, throws PacketError', async (t) => {
  const ipv4 = encodeIpv4({ protocol: 17, src: parseIp('198.18.0.1'), dst: parseIp('198.18.0.2'), payloadLen: 0 });
  const decoders: [string, (b: Uint8Array) => unknown, number][] = [
    ['ethernet', decodeEthernet, 14], ['arp', (b) => decodeArp(b), 28], ['ipv4', (b) => decodeIpv4(b), 20],
    ['ipv6', (b) => decodeIpv6(b), 40], ['udp', (b) => decodeUdp(b), 8], ['vxlan', (b) => decodeVxlanHeader(b), 8],
    ['ports', (b) => decodePorts(b, 0), 4],
  ];
  const full = new Uint8Array(64).fill(0x45);
  full.set(ipv4);
  for (const [name, decode, len] of decoders) {
    for (let n = 0; n < len; n++) {
      t.throws(() => decode(full.subarray(0, n)), PacketError, `${name} at ${n} bytes`);
    }
  }
  t.throws(() => decodeIpv4(Uint8Array.of(0x65, ...new Uint8Array(19))), { message: /version 6/ });
  t.throws(() => decodeIpv4(Uint8Array.of(0x44, ...new Uint8Array(19))), { message: /header length 16/ });
  t.throws(() => decodeIpv4(Uint8Array.of(0x46, ...new Uint8Array(19))), { name: 'PacketError', message: /^ipv4: needs 24 bytes/ }, 'IHL beyond the buffer');
  t.throws(() => decodeIpv6(new Uint8Array(40)), { message: /version 0/ });
  const oneTagNoType = Uint8Array.of(...new Uint8Array(12), 0x81, 0x00, 0x00);
  t.throws(() => decodeEthernet(oneTagNoType), PacketError, 'a tag without the ethertype after it');
});
