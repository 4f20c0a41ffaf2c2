/** The forwarding table: static and learned entries, flooding, aging on an injected clock. */
import t from 'tap';
import { ForwardingTable } from '../../src/fdb/index.js';
import { parseMac } from '../../src/packet/index.js';

const P1 = '198.51.100.2';
const P2 = '198.51.100.3';
const MAC = parseMac('02:00:00:00:00:0a');
const STATIC = parseMac('02:00:00:00:00:0b');

function table(): { fdb: ForwardingTable; clock: { now: number } } {
  const clock = { now: 1000 };
  const fdb = new ForwardingTable({ agingMs: 300_000, now: () => clock.now });
  fdb.load({ vnis: [{ vni: 42, peers: [P1, P2], macs: [{ mac: '02:00:00:00:00:0b', vtep: P2 }] }] });
  return { fdb, clock };
}

t.test('lookup: static, broadcast, multicast, unknown, unknown VNI', async (t) => {
  const { fdb } = table();
  t.same(fdb.lookup(42, STATIC), { kind: 'unicast', vtep: P2 });
  t.same(fdb.lookup(42, parseMac('ff:ff:ff:ff:ff:ff')), { kind: 'flood', vteps: [P1, P2] });
  t.same(fdb.lookup(42, parseMac('01:00:5e:00:00:01')), { kind: 'flood', vteps: [P1, P2] });
  t.same(fdb.lookup(42, MAC), { kind: 'flood', vteps: [P1, P2] });
  t.same(fdb.lookup(7, MAC), { kind: 'flood', vteps: [] });
  t.ok(fdb.isPeer(42, P1));
  t.notOk(fdb.isPeer(42, '198.51.100.9'));
  t.same(fdb.vnis(), [42]);
});

t.test('learning and aging', async (t) => {
  const { fdb, clock } = table();
  t.equal(fdb.learn(42, MAC, P1), true, 'new entry');
  t.same(fdb.lookup(42, MAC), { kind: 'unicast', vtep: P1 });
  clock.now += 1000;
  t.equal(fdb.learn(42, MAC, P1), false, 'refresh');
  t.equal(fdb.learn(42, MAC, P2), true, 'moved');
  t.same(fdb.lookup(42, MAC), { kind: 'unicast', vtep: P2 });
  t.equal(fdb.learn(42, parseMac('03:00:00:00:00:01'), P1), false, 'multicast source refused');
  t.equal(fdb.learn(42, STATIC, P1), false, 'a static MAC is not overridden');
  t.equal(fdb.learn(7, MAC, P1), false, 'unknown VNI');
  t.match(fdb.entries(), [
    { vni: 42, mac: '02:00:00:00:00:0b', vtep: P2, origin: 'static', ageMs: 0 },
    { vni: 42, mac: '02:00:00:00:00:0a', vtep: P2, origin: 'learned', ageMs: 0 },
  ]);
  clock.now += 299_999;
  t.same(fdb.lookup(42, MAC), { kind: 'unicast', vtep: P2 }, 'still fresh 1 ms before aging');
  clock.now += 1;
  t.same(fdb.lookup(42, MAC), { kind: 'flood', vteps: [P1, P2] }, 'aged out at agingMs');
  t.equal(fdb.expire(), 1);
  t.equal(fdb.entries().length, 1);
});

t.test('load keeps learned entries only for remaining peers', async (t) => {
  const { fdb } = table();
  fdb.learn(42, MAC, P1);
  fdb.learn(42, parseMac('02:00:00:00:00:0c'), P2);
  fdb.load({ vnis: [{ vni: 42, peers: [P2], macs: [] }] });
  t.same(fdb.entries().map((e) => e.mac), ['02:00:00:00:00:0c']);
  fdb.load({ vnis: [] });
  t.same(fdb.entries(), []);
});
