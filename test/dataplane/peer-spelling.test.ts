/**
 * The JS engine compares addresses as text: a peer or MAC home written in another spelling (`FD00::0001`, from etcd
 * or --peer) must match the kernel's spelling of a datagram's source (`fd00::1`). Canonicalised once per table: in
 * buildVniPeers (the receive allow-list) and in JsEngine.applyTable (flood lists, MAC homes, neighbours). Also, per
 * peer on receive: --clamp-mss lowered to the sender's measured path (setPathMtus), without a namespace.
 */
import t from 'tap';
import { buildVniPeers, classifyDatagram } from '../../src/dataplane/classify.js';
import { JsEngine } from '../../src/dataplane/js-engine.js';
import { encodeVxlanHeader } from '../../src/packet/index.js';

const datagram = (vni: number): Uint8Array => {
  const d = new Uint8Array(8 + 60);
  d.set(encodeVxlanHeader(vni), 0);
  return d;
};

t.test('classify: a peer written FD00::0001 accepts datagrams from fd00::1', async (t) => {
  const peers = buildVniPeers([{ vni: 42, peers: ['FD00::0001', '198.51.100.2'] }]);
  t.match(classifyDatagram(datagram(42), 'fd00::1', peers, 1518), { ok: true, vni: 42 });
  t.match(classifyDatagram(datagram(42), '198.51.100.2', peers, 1518), { ok: true, vni: 42 });
  t.match(classifyDatagram(datagram(42), 'fd00::2', peers, 1518), { ok: false, reason: 'rx_unknown_source' });
  t.throws(() => buildVniPeers([{ vni: 42, peers: ['not-an-address'] }]), 'text that is not an address is refused');
});

t.test('JsEngine.applyTable: MAC homes and neighbours in canonical spelling; a bad address refuses the table whole', async (t) => {
  const e = new JsEngine({ local: 'fd00::9', port: 4789, underlayMtu: 1500, networks: [], learning: true, agingMs: 300_000 }, { readTap: () => ({ close: () => undefined }), readUdp: () => ({ close: () => undefined }), bindUdp: () => 0, bindUdpSender: () => 0, sendUdp: () => ({ failed: 0, errno: 0 }), writeTap: () => [], closeFd: () => undefined });
  t.teardown(() => e.close());
  e.applyTable({ vnis: [{ vni: 42, peers: ['FD00::0001'], macs: [{ mac: '02:00:00:00:00:01', vtep: 'FD00:0:0::0001' }], neighbors: [{ ip: 'FD00::00AB', mac: '02:00:00:00:00:01' }] }] });
  t.match(e.fdb(), [{ vni: 42, mac: '02:00:00:00:00:01', vtep: 'fd00::1' }]);
  t.throws(() => e.applyTable({ vnis: [{ vni: 42, peers: ['not-an-address'], macs: [] }] }));
  t.match(e.fdb(), [{ vtep: 'fd00::1' }], 'the last good table stays');
});

t.test('JsEngine --clamp-mss on receive: a SYN-ACK from a peer is clamped to what fits our measured path to it', async (t) => {
  // receive() and deliver() run whole (classify, learn, clamp, write) without a namespace; the counters tell.
  const { openSync, closeSync } = await import('node:fs');
  const tap = openSync('/dev/null', 'w');
  t.teardown(() => closeSync(tap));
  const io = { readTap: () => ({ close: () => undefined }), readUdp: () => ({ close: () => undefined }), bindUdp: () => 0, bindUdpSender: () => 0, sendUdp: () => ({ failed: 0, errno: 0 }), writeTap: () => [], closeFd: () => undefined };
  const e = new JsEngine({ local: '198.51.100.1', port: 4789, underlayMtu: 1500, networks: [{ vni: 42, tapFd: tap, tapName: 'x', mtu: 1450 }], learning: true, agingMs: 300_000, clampMss: { ipv4: 1410, ipv6: 1390 } }, io);
  e.applyTable({ vnis: [{ vni: 42, peers: ['198.51.100.2'], macs: [] }] });
  // VXLAN, then a SYN-ACK 198.18.0.7:12345 → 198.18.0.1:80 with MSS 1400 (under the 1410 clamp, over a 1400-byte path's 1310).
  const synAck = Buffer.from([8, 0, 0, 0, 0, 0, 42, 0, 2, 0, 0, 0, 0, 0x99, 2, 0, 0, 0, 0, 0x77, 8, 0,
    0x45, 0, 0, 44, 0, 1, 0x40, 0, 64, 6, 0, 0, 198, 18, 0, 7, 198, 18, 0, 1,
    0x30, 0x39, 0, 80, 0, 0, 0, 1, 0, 0, 0, 1, 0x60, 0x12, 0xff, 0xff, 0, 0, 0, 0, 2, 4, 0x05, 0x78]);
  const receive = (d: Buffer): void => {
    const batch = Buffer.from(d);
    const inside = e as unknown as { receive(p: Buffer, from: string, batch: Buffer): void; deliver(batch: Buffer): void };
    inside.receive(batch, '198.51.100.2', batch);
    inside.deliver(batch);
  };
  receive(synAck);
  t.equal(e.counters().tcp_mss_clamped, 0, 'the path not measured: MSS 1400 is under the clamp');
  e.setPathMtus(new Map([['198.51.100.2', 1400]]));
  receive(synAck);
  t.equal(e.counters().tcp_mss_clamped, 1, 'measured at 1400: clamped (to 1310)');
  t.equal(e.counters().rx_datagrams, 2, 'both delivered');
});
