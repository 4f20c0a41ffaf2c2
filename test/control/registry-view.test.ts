/**
 * The registry's pure logic: host records (bad ones ignored and counted, never a throw), the table they make, and
 * the control-plane state machine on a fake clock; advertised MAC records and which host a MAC belongs to.
 */
import t from 'tap';
import { ControlPlaneTracker, HostView, type HostRecord, type RejectedRecord } from '../../src/control/index.js';
import { MacView, retryDelay } from '../../src/control/registry-view.js';
import { mulberry32 } from '../helpers/prng.js';

const record = (hostId: string, ip: string): HostRecord => ({
  version: 1, hostId, underlay: [ip], port: 4789, networks: ['default'], mtu: 1450, software: 'test', startedAt: '2025-01-01T00:00:00Z',
});
const json = (r: unknown): string => JSON.stringify(r);

t.test('host records: valid ones make the table, bad ones are ignored and counted', async (t) => {
  const rejected: RejectedRecord[] = [];
  const v = new HostView(42, 'self', (e) => rejected.push(e));
  v.reset([
    { id: 'self', value: json(record('self', '198.51.100.1')) },
    { id: 'b', value: json(record('b', '198.51.100.2')) },
    { id: 'bad', value: '{' },
  ]);
  t.same(v.table(), { vnis: [{ vni: 42, peers: ['198.51.100.2'], macs: [] }] }, 'every other host is a peer, not this one');
  t.equal(v.size, 2);
  t.equal(v.rejected, 1);
  t.equal(rejected[0]?.message, 'ignoring the host record of bad: not JSON');

  const cases: [string, unknown, RegExp][] = [
    ['v2', { ...record('v2', '198.51.100.3'), version: 2 }, /version/],
    ['noaddr', { ...record('noaddr', '198.51.100.3'), underlay: [] }, /underlay/],
    ['badaddr', record('badaddr', '198.51.100.300'), /underlay\.0 is not an IP address/],
    ['port', { ...record('port', '198.51.100.3'), port: 0 }, /port/],
    ['null', null, /record/],
    ['array', [1, 2], /record/],
    ['string', 'hello', /record/],
    ['other', record('someone', '198.51.100.3'), /its hostId is "someone"/],
  ];
  for (const [id, value, why] of cases) {
    t.equal(v.put(id, json(value)), false, `${id} is rejected`);
    t.match(rejected.at(-1)?.message, why);
  }
  t.equal(v.rejected, 1 + cases.length, 'each counted');
  t.same(v.table().vnis[0]?.peers, ['198.51.100.2'], 'and none entered the table');

  t.ok(v.put('c', json(record('c', '198.51.100.3'))));
  t.same(v.table().vnis[0]?.peers, ['198.51.100.2', '198.51.100.3']);
  t.notOk(v.put('c', 'garbage'), 'a key overwritten with garbage ...');
  t.same(v.table().vnis[0]?.peers, ['198.51.100.2'], '... no longer holds a host');
  v.delete('b');
  v.delete('never-there');
  t.same(v.table().vnis[0]?.peers, []);
  t.same(v.hosts().map((h) => h.hostId), ['self']);
});

t.test('host rows: when each record was last put, on a fake clock', async (t) => {
  let now = 1000;
  const v = new HostView(42, 'self', () => undefined, () => now);
  v.put('a', json(record('a', '198.51.100.1')));
  now = 2000;
  v.put('b', json(record('b', '198.51.100.2')));
  now = 3000;
  v.put('a', json({ ...record('a', '198.51.100.1'), mtu: 1400 }));
  t.same(v.rows().map((r) => [r.record.hostId, r.record.mtu, r.updatedAt]), [['a', 1400, 3000], ['b', 1450, 2000]]);
  v.put('b', 'garbage');
  t.same(v.rows().map((r) => r.record.hostId), ['a'], 'a rejected put removes the row');
});

t.test('random bytes never throw', async (t) => {
  const rnd = mulberry32(3);
  const v = new HostView(42, 'self');
  const good = json(record('x', '198.51.100.7'));
  let accepted = 0;
  for (let i = 0; i < 2000; i++) {
    const chars = [...good];
    for (let k = 0; k < 1 + Math.floor(rnd() * 3); k++) chars[Math.floor(rnd() * chars.length)] = String.fromCharCode(Math.floor(rnd() * 128));
    if (v.put('x', chars.join(''))) accepted++;
  }
  t.equal(v.rejected + accepted, 2000, `${v.rejected} mutated records rejected, ${accepted} still valid, no throw`);
});

t.test('control-plane state on a fake clock', async (t) => {
  let now = Date.parse('2025-01-01T00:00:00Z');
  const s = new ControlPlaneTracker(() => now);
  t.same(s.state(0, 0), { state: 'starting', since: '2025-01-01T00:00:00.000Z', revision: 0, hosts: 0 });
  now += 1000;
  t.equal(s.markJoined(), true, 'joined: a change');
  t.same(s.state(5, 2), { state: 'connected', since: '2025-01-01T00:00:01.000Z', revision: 5, hosts: 2 });
  now += 1000;
  t.equal(s.set('watch', true), true);
  t.match(s.state(5, 2), { state: 'degraded', since: '2025-01-01T00:00:02.000Z' });
  now += 1000;
  t.equal(s.set('lease', true), false, 'a second problem: still degraded, since unchanged');
  t.equal(s.set('watch', false), false, 'one of two cleared: still degraded');
  t.same(s.active(), ['lease']);
  t.match(s.state(5, 2), { since: '2025-01-01T00:00:02.000Z' });
  now += 1000;
  t.equal(s.set('lease', false), true);
  t.match(s.state(9, 3), { state: 'connected', since: '2025-01-01T00:00:04.000Z', revision: 9, hosts: 3 });
  t.equal(s.set('lease', false), false, 'clearing what is clear changes nothing');

  const fresh = new ControlPlaneTracker(() => now);
  t.equal(fresh.set('join', true), true);
  t.equal(fresh.current, 'degraded', 'failing before the first join is degraded (forwarding from a snapshot)');
  t.equal(fresh.markJoined(), true);
  t.equal(fresh.current, 'connected', 'joining clears the join problem');
});

t.test('retry backoff doubles and is capped', async (t) => {
  t.same([0, 1, 2, 3, 4, 5, 100].map((n) => retryDelay(n, 100, 2000)), [100, 200, 400, 800, 1600, 2000, 2000]);
});

t.test('MacView: other hosts MACs per VNI, the newest claim wins, bad records are counted', async (t) => {
  const rejected: string[] = [];
  const v = new MacView((e) => rejected.push(e.message));
  const rec = (hostId: string, vtep: string, macs: { vni: number; mac: string }[]): string => JSON.stringify({ version: 1, hostId, vtep, macs });
  v.reset([
    { id: 'a', value: rec('a', '198.51.100.1', [{ vni: 42, mac: '02:00:00:00:00:0a' }]), revision: 5 },
    { id: 'b', value: rec('b', '198.51.100.2', [{ vni: 42, mac: '02:00:00:00:00:0b' }, { vni: 7, mac: '02:00:00:00:00:0c' }]), revision: 6 },
  ]);
  t.same(v.macs(42, 'a'), [{ mac: '02:00:00:00:00:0b', vtep: '198.51.100.2', origin: 'etcd', ips: [] }], "a sees b's MAC of VNI 42, not its own");
  t.same(v.macs(7, 'a'), [{ mac: '02:00:00:00:00:0c', vtep: '198.51.100.2', origin: 'etcd', ips: [] }], 'per VNI');
  // 0a moves to c (a newer revision): everyone, a included, now sends to c.
  t.ok(v.put('c', rec('c', '198.51.100.3', [{ vni: 42, mac: '02:00:00:00:00:0a' }]), 9));
  t.same(v.macs(42, 'a').map((m) => [m.mac, m.vtep]), [['02:00:00:00:00:0a', '198.51.100.3'], ['02:00:00:00:00:0b', '198.51.100.2']]);
  t.same(v.macs(42, 'c').map((m) => m.mac), ['02:00:00:00:00:0b'], 'c does not install the MAC it owns');
  t.same(v.conflicts(), [{ vni: 42, mac: '02:00:00:00:00:0a', hostIds: ['c', 'a'] }], 'a MAC two hosts claim is a conflict, newest claimant first');
  // a rewrites its record for another reason (a new container) while still listing 0a: that is no new claim of 0a.
  v.put('a', rec('a', '198.51.100.1', [{ vni: 42, mac: '02:00:00:00:00:0a' }, { vni: 42, mac: '02:00:00:00:00:0d' }]), 11);
  t.same(v.macs(42, 'b').find((m) => m.mac === '02:00:00:00:00:0a')?.vtep, '198.51.100.3', 'c keeps the MAC that moved to it');
  t.match(v.claimOf(42, '02:00:00:00:00:0a'), { id: 'c', since: 9 }, 'the latest claim: c, since revision 9');
  t.match(v.claimOf(42, '02:00:00:00:00:0d'), { id: 'a', since: 11 });
  t.equal(v.claimOf(42, '02:00:00:00:00:ff'), undefined);
  // a withdraws 0a (it moved away), then 0a comes back to a: a new claim, which wins.
  v.put('a', rec('a', '198.51.100.1', [{ vni: 42, mac: '02:00:00:00:00:0d' }]), 12);
  v.put('a', rec('a', '198.51.100.1', [{ vni: 42, mac: '02:00:00:00:00:0a' }, { vni: 42, mac: '02:00:00:00:00:0d' }]), 13);
  t.same(v.macs(42, 'b').find((m) => m.mac === '02:00:00:00:00:0a')?.vtep, '198.51.100.1', 'the MAC moved back to a');
  t.same(v.conflicts()[0]?.hostIds, ['a', 'c']);
  v.delete('a');
  t.same(v.macs(42, 'b').find((m) => m.mac === '02:00:00:00:00:0a')?.vtep, '198.51.100.3', "when a's record goes, c's claim stands");
  t.same(v.conflicts(), [], 'and the conflict ends');

  t.notOk(v.put('d', '{', 13), 'not JSON');
  t.notOk(v.put('d', rec('d', 'nope', []), 14), 'a VTEP that is not an address');
  t.notOk(v.put('d', rec('d', '198.51.100.4', [{ vni: 42, mac: 'AA:BB' }]), 15), 'a MAC that is not one');
  t.notOk(v.put('e', rec('d', '198.51.100.4', []), 16), 'a record naming another host than its key');
  t.equal(v.rejected, 4);
  t.match(rejected, [/ignoring the MAC record of d: not JSON/, /vtep/, /mac/, /hostId/]);

  // Addresses: the newest record claiming an address names its MAC (an address re-bound elsewhere).
  v.put('b', rec('b', '198.51.100.2', [{ vni: 42, mac: '02:00:00:00:00:0b' }]).replace('"mac":"02:00:00:00:00:0b"}', '"mac":"02:00:00:00:00:0b","ips":["198.18.0.2"]}'), 20);
  t.same(v.neighbors(42, 'x'), [{ ip: '198.18.0.2', mac: '02:00:00:00:00:0b' }]);
  v.put('c', JSON.stringify({ version: 1, hostId: 'c', vtep: '198.51.100.3', macs: [{ vni: 42, mac: '02:00:00:00:00:0f', ips: ['198.18.0.2'] }] }), 21);
  t.same(v.neighbors(42, 'x'), [{ ip: '198.18.0.2', mac: '02:00:00:00:00:0f' }], 'the newer claim names the new MAC');
  t.same(v.neighbors(42, 'c'), [], 'c does not answer for its own address');
});

t.test('MacView: IPv6 addresses in ips, next to IPv4 ones; records without IPv6 parse as before', async (t) => {
  const rejected: string[] = [];
  const v = new MacView((e) => rejected.push(e.message));
  const rec = (hostId: string, ips: unknown[]): string =>
    JSON.stringify({ version: 1, hostId, vtep: '198.51.100.2', macs: [{ vni: 42, mac: '02:00:00:00:00:0b', ips }] });
  t.ok(v.put('old', rec('old', ['198.18.0.9']), 1), 'an IPv4-only record (as older routers write it)');
  t.ok(v.put('b', rec('b', ['198.18.0.2', 'fd00:198:18::2', 'fe80::b']), 2), 'IPv4, ULA and link-local together');
  t.same(v.neighbors(42, 'x').map((n) => n.ip).sort(), ['198.18.0.2', '198.18.0.9', 'fd00:198:18::2', 'fe80::b']);
  // Another writer spells the address differently: one canonical key, so the newer claim still replaces the older.
  t.ok(v.put('c', JSON.stringify({ version: 1, hostId: 'c', vtep: '198.51.100.3', macs: [{ vni: 42, mac: '02:00:00:00:00:0f', ips: ['FD00:198:18:0:0:0:0:2'] }] }), 3));
  t.same(v.neighbors(42, 'x').find((n) => n.ip === 'fd00:198:18::2'), { ip: 'fd00:198:18::2', mac: '02:00:00:00:00:0f' }, 'the newer claim, under the canonical spelling');
  t.equal(v.neighbors(42, 'x').filter((n) => n.ip.startsWith('fd00')).length, 1);
  t.notOk(v.put('d', rec('d', ['fd00::zz']), 4), 'an address that is not one is refused');
  t.match(rejected, [/ignoring the MAC record of d: macs.0.ips.0 is not an IP address/]);
});
