/** The forwarding table: static and learned entries, flooding, aging on an injected clock. */
import t from 'tap';
import { configSchema } from '../../src/config/schema.js';
import { DEFAULT_LEARN_MAX, DEFAULT_LEARN_MAX_PER_PEER, ForwardingTable } from '../../src/fdb/index.js';
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
  t.equal(fdb.learn(42, MAC, P1), 'learned', 'new entry');
  t.same(fdb.lookup(42, MAC), { kind: 'unicast', vtep: P1 });
  clock.now += 1000;
  t.equal(fdb.learn(42, MAC, P1), 'known', 'refresh');
  t.equal(fdb.learn(42, MAC, P2), 'learned', 'moved');
  t.same(fdb.lookup(42, MAC), { kind: 'unicast', vtep: P2 });
  t.equal(fdb.learn(42, parseMac('03:00:00:00:00:01'), P1), 'known', 'multicast source refused');
  t.equal(fdb.learn(42, STATIC, P1), 'known', 'a static MAC is not overridden');
  t.equal(fdb.learn(7, MAC, P1), 'known', 'unknown VNI');
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

/** The i-th locally administered unicast MAC 02:00:xx:xx:xx:xx. */
function nthMac(i: number): Uint8Array {
  return Uint8Array.of(2, 0, (i >>> 24) & 0xff, (i >>> 16) & 0xff, (i >>> 8) & 0xff, i & 0xff);
}

t.test('learning is bounded per peer and in total; a full table refuses only new sources', async (t) => {
  const clock = { now: 1000 };
  const fdb = new ForwardingTable({ agingMs: 300_000, maxPerPeer: 3, maxTotal: 5, now: () => clock.now });
  fdb.load({ vnis: [{ vni: 42, peers: [P1, P2], macs: [] }, { vni: 43, peers: [P1], macs: [] }] });
  t.same([0, 1, 2, 3].map((i) => fdb.learn(42, nthMac(i), P1)), ['learned', 'learned', 'learned', 'full'], 'per-peer bound');
  t.equal(fdb.learn(42, nthMac(0), P1), 'known', 'a known source still refreshes when its peer is full');
  t.same([10, 11, 12].map((i) => fdb.learn(42, nthMac(i), P2)), ['learned', 'learned', 'full'], 'the total bound');
  t.equal(fdb.learn(43, nthMac(20), P1), 'full', 'the total spans networks');
  t.equal(fdb.learnedCount(), 5);
  t.equal(fdb.entries().length, 5);
  t.same(fdb.lookup(42, nthMac(3)), { kind: 'flood', vteps: [P1, P2] }, 'a refused source is not in the table');
  clock.now += 300_000;
  t.equal(fdb.learn(42, nthMac(0), P1), 'learned', 'an aged entry frees its slot when its MAC comes back');
  t.equal(fdb.expire(), 4, 'the sweep erases the aged ones');
  t.equal(fdb.learnedCount(), 1);
  t.same([4, 5, 6].map((i) => fdb.learn(42, nthMac(i), P1)), ['learned', 'learned', 'full'], 'room again, per peer');
});

t.test('expire sweeps a bounded slice per call, and departed peers stop answering at once', async (t) => {
  const clock = { now: 1000 };
  const fdb = new ForwardingTable({ agingMs: 1000, maxPerPeer: 100, maxTotal: 100, now: () => clock.now });
  fdb.load({ vnis: [{ vni: 42, peers: [P1, P2], macs: [] }] });
  for (let i = 0; i < 30; i++) fdb.learn(42, nthMac(i), i < 20 ? P1 : P2);
  clock.now += 1000;
  t.equal(fdb.expire(8), 8, 'one slice: 8 entries');
  t.equal(fdb.learnedCount(), 22);
  t.equal(fdb.expire(8) + fdb.expire(8) + fdb.expire(8), 22, 'the rest in later slices (8 + 8 + 6)');
  t.equal(fdb.expire(8), 0);
  for (let i = 0; i < 30; i++) fdb.learn(42, nthMac(i), i < 20 ? P1 : P2);
  fdb.load({ vnis: [{ vni: 42, peers: [P2], macs: [] }] });
  t.same(fdb.lookup(42, nthMac(0)), { kind: 'flood', vteps: [P2] }, "a departed peer's entry no longer answers");
  t.same(fdb.lookup(42, nthMac(25)), { kind: 'unicast', vtep: P2 });
  t.equal(fdb.learnedCount(), 30, 'held until the sweep');
  while (fdb.expire(8) > 0);
  t.equal(fdb.learnedCount(), 10, "the sweep erased the departed peer's 20");
  fdb.load({ vnis: [] });
  t.equal(fdb.learnedCount(), 0, 'a network that goes takes its entries along');
});

t.test('the config defaults are the engines\' defaults', async (t) => {
  const c = configSchema.parse({ local: '198.51.100.1' });
  t.equal(c.learnMaxPerPeer, DEFAULT_LEARN_MAX_PER_PEER);
  t.equal(c.learnMax, DEFAULT_LEARN_MAX);
  t.equal(c.sourceCheck, true);
});

t.test('homeOf: where the control plane places a MAC', async (t) => {
  const { fdb } = table();
  t.equal(fdb.homeOf(42, STATIC), P2);
  t.equal(fdb.homeOf(42, MAC), undefined);
  t.equal(fdb.homeOf(7, STATIC), undefined);
});
