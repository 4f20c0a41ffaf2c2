/**
 * Peer probes: the TypeScript codec (src/packet/probe.ts, what the JS engine and the prober use) and the C++ one
 * (native/src/probe.cc, what the native RX thread answers with), byte for byte on hand-made and mutated datagrams;
 * replies never larger than the request; what a VTEP that is not ours would make of a probe (I flag clear).
 */
import t from 'tap';
import { loadNative } from '../../src/dataplane/native.js';
import { decodeVxlanHeader, encodeProbe, isProbe, parseProbe, PROBE_HEADER_LEN, probePayloadSize, probeReply } from '../../src/packet/index.js';
import { mulberry32 } from '../helpers/prng.js';

const native = loadNative();
const hex = (b: Uint8Array | null | undefined): string | null => (b == null ? null : Buffer.from(b).toString('hex'));

t.test('encode and parse', async (t) => {
  const req = encodeProbe({ kind: 'request', id: 0xdeadbeef, sentNs: 123456789012345n, length: 0 }, 1472);
  t.equal(req.length, 1472, 'padded to the size asked');
  t.equal(hex(req.subarray(0, PROBE_HEADER_LEN)), '0056585001010000deadbeef00007048860ddf7900000000', 'header layout');
  t.ok(req.subarray(PROBE_HEADER_LEN).every((b) => b === 0), 'padding is zeros');
  t.same(parseProbe(req), { kind: 'request', id: 0xdeadbeef, sentNs: 123456789012345n, length: 0 });
  const reply = probeReply(req)!;
  t.equal(reply.length, PROBE_HEADER_LEN, 'a reply is the bare header');
  t.same(parseProbe(reply), { kind: 'reply', id: 0xdeadbeef, sentNs: 123456789012345n, length: 1472 }, 'echoes id and time, says what arrived');
  t.equal(probeReply(reply), undefined, 'a reply is not answered');
  t.equal(probePayloadSize(1500, false), 1472);
  t.equal(probePayloadSize(1500, true), 1452);
  t.throws(() => encodeProbe({ kind: 'request', id: 1, sentNs: 0n, length: 0 }, 23), /out of range/);
});

t.test('a VTEP that is not ours sees VXLAN without the I flag, and drops it', async (t) => {
  const req = encodeProbe({ kind: 'request', id: 1, sentNs: 1n, length: 0 });
  t.equal(decodeVxlanHeader(req).flags & 0x08, 0, 'I flag clear (Linux vxlan_rcv drops it before any VNI lookup)');
});

t.test('malformed probes are not answered', async (t) => {
  const good = encodeProbe({ kind: 'request', id: 7, sentNs: 9n, length: 0 }, 64);
  const bad: [string, Uint8Array][] = [
    ['short', good.subarray(0, PROBE_HEADER_LEN - 1)],
    ['other version', Uint8Array.from(good, (b, i) => (i === 4 ? 2 : b))],
    ['other kind', Uint8Array.from(good, (b, i) => (i === 5 ? 3 : b))],
    ['reserved set', Uint8Array.from(good, (b, i) => (i === 7 ? 1 : b))],
    ['I flag set (VXLAN)', Uint8Array.from(good, (b, i) => (i === 0 ? 8 : b))],
  ];
  for (const [what, p] of bad) {
    t.equal(probeReply(p), undefined, `${what}: TypeScript`);
    t.equal(native.probeReply(p), null, `${what}: C++`);
  }
  t.ok(isProbe(good.subarray(0, 4)) && native.isProbe(good.subarray(0, 4)), 'four bytes are enough to be taken for a probe (then refused)');
  t.notOk(isProbe(good.subarray(0, 3)) || native.isProbe(good.subarray(0, 3)), 'three are not');
});

t.test('C++ and TypeScript agree, byte for byte, on thousands of mutated datagrams', async (t) => {
  const rnd = mulberry32(18);
  let answered = 0;
  for (let i = 0; i < 5000; i++) {
    const size = PROBE_HEADER_LEN + Math.floor(rnd() * 200) - 4;
    const base = encodeProbe({ kind: rnd() < 0.8 ? 'request' : 'reply', id: Math.floor(rnd() * 2 ** 32), sentNs: BigInt(Math.floor(rnd() * 2 ** 52)), length: 0 }, Math.max(PROBE_HEADER_LEN, size));
    const p = base.subarray(0, Math.max(0, size));
    for (let k = Math.floor(rnd() * 3); k > 0; k--) if (p.length > 0) p[Math.floor(rnd() * Math.min(p.length, 24))] = Math.floor(rnd() * 256);
    const ts = probeReply(p);
    const cc = native.probeReply(p);
    if (hex(ts) !== hex(cc)) t.fail(`datagram ${hex(p)}: TS ${hex(ts)} C++ ${hex(cc)}`);
    if (isProbe(p) !== native.isProbe(p)) t.fail(`isProbe differs on ${hex(p)}`);
    if (ts !== undefined) {
      answered++;
      if (ts.length > p.length) t.fail('a reply larger than its request');
    }
  }
  t.ok(answered > 1000, `${answered} answered, the rest refused alike`);
});
