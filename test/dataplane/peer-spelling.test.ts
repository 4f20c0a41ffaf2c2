/**
 * The JS engine compares addresses as text: a peer or MAC home written in another spelling (`FD00::0001`, from etcd
 * or --peer) must match the kernel's spelling of a datagram's source (`fd00::1`). Canonicalised once per table: in
 * buildVniPeers (the receive allow-list) and in JsEngine.applyTable (flood lists, MAC homes, neighbours).
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
  const e = new JsEngine({ local: 'fd00::9', port: 4789, underlayMtu: 1500, networks: [], learning: true, agingMs: 300_000 }, { readTap: () => ({ close: () => undefined }), readUdp: () => ({ close: () => undefined }), bindUdp: () => 0, closeFd: () => undefined });
  t.teardown(() => e.close());
  e.applyTable({ vnis: [{ vni: 42, peers: ['FD00::0001'], macs: [{ mac: '02:00:00:00:00:01', vtep: 'FD00:0:0::0001' }], neighbors: [{ ip: 'FD00::00AB', mac: '02:00:00:00:00:01' }] }] });
  t.match(e.fdb(), [{ vni: 42, mac: '02:00:00:00:00:01', vtep: 'fd00::1' }]);
  t.throws(() => e.applyTable({ vnis: [{ vni: 42, peers: ['not-an-address'], macs: [] }] }));
  t.match(e.fdb(), [{ vtep: 'fd00::1' }], 'the last good table stays');
});
