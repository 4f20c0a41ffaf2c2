/** Receive classification: each drop reason, in the pinned order. */
import t from 'tap';
import { buildVniPeers, classifyDatagram } from '../../src/dataplane/classify.js';

const peers = buildVniPeers([{ vni: 42, peers: ['198.51.100.2'] }]);
const PEER = '198.51.100.2';
const dgram = (flags: number, vni: number, inner: number): Uint8Array =>
  Uint8Array.of(flags, 0, 0, 0, vni >> 16, (vni >> 8) & 0xff, vni & 0xff, 0, ...new Uint8Array(inner));
const reason = (p: Uint8Array, from = PEER): string => {
  const v = classifyDatagram(p, from, peers, 1468);
  return v.ok ? 'ok' : v.reason;
};

t.test('each reason', async (t) => {
  t.equal(reason(new Uint8Array(7)), 'rx_short');
  t.equal(reason(dgram(0xf7, 42, 60)), 'rx_bad_flags', 'every bit but I set');
  t.equal(reason(dgram(0xff, 42, 60)), 'ok', 'reserved bits are ignored');
  t.equal(reason(dgram(0x08, 43, 60)), 'rx_unknown_vni');
  t.equal(reason(dgram(0x08, 42, 60), '198.51.100.9'), 'rx_unknown_source');
  t.equal(reason(dgram(0x08, 42, 13)), 'rx_truncated_inner');
  t.equal(reason(dgram(0x08, 42, 14)), 'ok');
  t.equal(reason(dgram(0x08, 42, 1468)), 'ok', 'exactly maxFrame');
  t.equal(reason(dgram(0x08, 42, 1469)), 'rx_oversize');
});

t.test('order: the first failing check names the reason', async (t) => {
  t.equal(reason(new Uint8Array(7), '198.51.100.9'), 'rx_short');
  t.equal(reason(dgram(0x00, 43, 60), '198.51.100.9'), 'rx_bad_flags');
  t.equal(reason(dgram(0x08, 43, 0), '198.51.100.9'), 'rx_unknown_vni');
  t.equal(reason(dgram(0x08, 42, 0), '198.51.100.9'), 'rx_unknown_source');
  t.same(classifyDatagram(dgram(0x08, 42, 60), '198.51.100.9', peers, 1468), { ok: false, reason: 'rx_unknown_source', vni: 42 }, 'a refused source carries the VNI it used');
});

t.test('the accepted inner frame is a view of the payload', async (t) => {
  const p = dgram(0x08, 42, 20);
  const v = classifyDatagram(p, PEER, peers, 1468);
  t.ok(v.ok);
  if (v.ok) {
    t.equal(v.vni, 42);
    t.equal(v.inner.buffer, p.buffer);
    t.equal(v.inner.byteOffset, 8);
    t.equal(v.inner.length, 20);
  }
});
