/**
 * Pins native/src/arp.cc to its TypeScript twin (src/packet/neighbor.ts): which address a frame's sender uses, which
 * frames are ARP requests the engine may answer, and the answer itself, byte for byte; on crafted and random frames.
 */
import t from 'tap';
import { loadNative } from '../../src/dataplane/native.js';
import { arpReply, arpRequestTarget, decodeArp, encodeArp, encodeEthernet, ETHERTYPE_ARP, gratuitousArp, parseIp, parseMac, senderIpv4 } from '../../src/packet/index.js';
import { mulberry32 } from '../helpers/prng.js';

const n = loadNative();
const BCAST = parseMac('ff:ff:ff:ff:ff:ff');
const c1 = parseMac('02:00:00:00:00:01');
const request = encodeEthernet(BCAST, c1, ETHERTYPE_ARP, encodeArp(1, c1, parseIp('198.18.0.1'), new Uint8Array(6), parseIp('198.18.0.2')));

t.test('an ARP request: both answer it the same way', async (t) => {
  const native = n.arpAnswer(request, '02:00:00:00:00:02');
  t.equal(native?.target, '198.18.0.2');
  t.equal(arpRequestTarget(request), '198.18.0.2');
  t.same(native?.reply, Buffer.from(arpReply(request, '02:00:00:00:00:02')), 'the same 60 bytes');
  const a = decodeArp(native!.reply, 14);
  t.match(a, { op: 2, senderMac: '02:00:00:00:00:02', senderIp: '198.18.0.2', targetMac: '02:00:00:00:00:01', targetIp: '198.18.0.1' });
  t.same([...native!.reply.subarray(0, 12)], [...c1, 2, 0, 0, 0, 0, 2], 'to the requester, from the MAC that has the address');
  t.equal(n.senderIpv4(request), '198.18.0.1');
  t.equal(senderIpv4(request), '198.18.0.1');
});

t.test('what is not answered', async (t) => {
  const reply = encodeEthernet(c1, c1, ETHERTYPE_ARP, encodeArp(2, c1, parseIp('198.18.0.1'), c1, parseIp('198.18.0.2')));
  t.equal(n.arpAnswer(reply, '02:00:00:00:00:02'), null, 'a reply');
  t.equal(arpRequestTarget(reply), undefined);
  t.equal(n.arpAnswer(request.subarray(0, 41), '02:00:00:00:00:02'), null, 'a truncated request');
  const probe = encodeEthernet(BCAST, c1, ETHERTYPE_ARP, encodeArp(1, c1, new Uint8Array(4), new Uint8Array(6), parseIp('198.18.0.2')));
  t.equal(n.senderIpv4(probe), null, 'a probe (sender 0.0.0.0) says nothing about its sender');
  t.equal(senderIpv4(probe), undefined);
  const garp = gratuitousArp('198.18.0.2', '02:00:00:00:00:04');
  t.match(decodeArp(garp, 14), { op: 1, senderIp: '198.18.0.2', targetIp: '198.18.0.2', senderMac: '02:00:00:00:00:04' }, 'gratuitous ARP: sender = target');
  t.equal(garp.length, 60);
});

t.test('random and mutated frames: the twins agree, nothing throws', async (t) => {
  const r = mulberry32(1234);
  let disagreements = 0;
  for (let i = 0; i < 5000; i++) {
    const f = Buffer.from(i % 2 === 0 ? request : Uint8Array.from({ length: 14 + Math.floor(r() * 60) }, () => Math.floor(r() * 256)));
    for (let k = 0; k < 3; k++) f[Math.floor(r() * f.length)] = Math.floor(r() * 256);
    if (i % 5 === 0) f.set([0x08, 0x06], 12);
    const native = n.arpAnswer(f, '02:00:00:00:00:02');
    const ts = arpRequestTarget(f);
    if ((native?.target ?? undefined) !== ts) disagreements++;
    else if (native !== null && !native.reply.equals(Buffer.from(arpReply(f, '02:00:00:00:00:02')))) disagreements++;
    if ((n.senderIpv4(f) ?? undefined) !== senderIpv4(f)) disagreements++;
  }
  t.equal(disagreements, 0, '5000 frames, the same answers');
});
