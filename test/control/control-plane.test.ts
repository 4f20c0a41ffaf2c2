/**
 * The pieces beside the ControlPlane interface: static peers as a control plane, several planes' states combined
 * into one, and the tables of several planes merged into the one the data path gets.
 */
import t from 'tap';
import { combineStates, StaticPeers, staticTable, type ControlPlane } from '../../src/control/index.js';
import { mergeTables, tableSchema } from '../../src/fdb/index.js';

t.test('static peers are a control plane like any other', async (t) => {
  const plane: ControlPlane = new StaticPeers(42, ['198.51.100.2', '198.51.100.3']);
  t.equal(plane.kind, 'static');
  t.same(await plane.open(), { name: null, vni: 42, mtu: undefined, startedFrom: 'config' });
  await plane.start({ mtu: 1450, networks: [] });
  t.same(plane.table(), { vnis: [{ vni: 42, peers: ['198.51.100.2', '198.51.100.3'], macs: [] }] });
  t.equal(plane.state(), null, 'nothing to lose: no state');
  t.match(plane.range(), { none: /static peers/ });
  t.same(plane.hosts(), []);
  t.same(plane.macConflicts(), []);
  plane.advertise([{ vni: 42, mac: '02:00:00:00:00:01' }]);
  await plane.close();
  await plane.close();
  t.pass('close twice is fine');
});

t.test('states combine into the worst, the oldest revision, the most hosts', async (t) => {
  const s = (state: 'starting' | 'connected' | 'degraded', revision: number, hosts: number, since = '2026-01-01T00:00:00.000Z') => ({ state, since, revision, hosts });
  t.equal(combineStates([]), null);
  t.equal(combineStates([null, null]), null, 'static planes only');
  t.same(combineStates([null, s('connected', 5, 2)]), s('connected', 5, 2), 'one etcd plane beside static peers');
  t.same(combineStates([s('connected', 9, 3), s('degraded', 7, 2, 'x')]), s('degraded', 7, 3, 'x'));
  t.same(combineStates([s('starting', 4, 1), s('connected', 8, 5)]), s('starting', 4, 5));
});

t.test('tables merge per VNI, peers without duplicates, MACs and neighbours kept', async (t) => {
  const etcd = {
    vnis: [
      { vni: 42, peers: ['198.51.100.2'], macs: [{ mac: '02:00:00:00:00:02', vtep: '198.51.100.2', origin: 'etcd' as const }], neighbors: [{ ip: '198.18.0.2', mac: '02:00:00:00:00:02' }] },
      { vni: 7, peers: ['198.51.100.3'], macs: [] },
    ],
  };
  const merged = mergeTables(staticTable([42, 7], ['198.51.100.2', '198.51.100.9']), etcd);
  t.same(merged, {
    vnis: [
      { vni: 42, peers: ['198.51.100.2', '198.51.100.9'], macs: [{ mac: '02:00:00:00:00:02', vtep: '198.51.100.2', origin: 'etcd' }], neighbors: [{ ip: '198.18.0.2', mac: '02:00:00:00:00:02' }] },
      { vni: 7, peers: ['198.51.100.2', '198.51.100.9', '198.51.100.3'], macs: [], neighbors: [] },
    ],
  });
  t.ok(tableSchema.safeParse(merged).success, 'the merged table is what the schema describes');
  t.same(tableSchema.parse({ vnis: [{ vni: 1, peers: [], macs: [{ mac: 'a', vtep: 'b', extra: 1 }], future: true }] }), { vnis: [{ vni: 1, peers: [], macs: [{ mac: 'a', vtep: 'b' }] }] }, 'keys a newer writer added are dropped');
  t.notOk(tableSchema.safeParse({ vnis: [{ vni: 1, peers: [], macs: [{ mac: 'a', vtep: 'b', origin: 'learned' }] }] }).success, 'a table never carries learned entries');
});
