/**
 * MacView, the MACs other hosts advertise: per VNI, the newest claim wins (a MAC or an address that moved), claims
 * two hosts hold at once are conflicts, IPv6 addresses have one spelling, bad records are counted.
 */
import t from 'tap';
import { MAX_MACS_PER_RECORD, MacView, type RejectedRecord } from '../../src/control/index.js';

t.test('MacView: other hosts MACs per VNI, the newest claim wins, bad records are counted', async (t) => {
  const rejected: string[] = [];
  const kinds = new Set<string>();
  const v = new MacView((e) => {
    rejected.push(e.message);
    kinds.add(`${e.code} ${e.kind} ${e.record}`);
  });
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
  const all = v.macClaims(42);
  t.same([...all.keys()].sort(), ['02:00:00:00:00:0a', '02:00:00:00:00:0b', '02:00:00:00:00:0d'], 'macClaims: every MAC of the VNI in one pass');
  for (const [mac, c] of all) t.same(c, v.claimOf(42, mac), `macClaims agrees with claimOf for ${mac}`);
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
  t.same([...kinds], ['E_RECORD record-rejected MAC'], 'each a RejectedRecord of a MAC record: code E_RECORD, kind record-rejected');

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

t.test('MacView: addresses without zone ids, one spelling; at most MAX_MACS_PER_RECORD MACs', async (t) => {
  const rejected: string[] = [];
  const v = new MacView((e) => rejected.push(e.message));
  const rec = (hostId: string, vtep: string, macs: unknown[]): string => JSON.stringify({ version: 1, hostId, vtep, macs });
  const mac = (i: number): string => `02:00:00:00:${((i >> 8) & 0xff).toString(16).padStart(2, '0')}:${(i & 0xff).toString(16).padStart(2, '0')}`;
  t.notOk(v.put('z', rec('z', 'fe80::1%eth0', []), 1), 'a vtep with a zone id');
  t.notOk(v.put('z', rec('z', '198.51.100.2', [{ vni: 42, mac: mac(1), ips: ['fe80::b%br0'] }]), 2), 'an address with a zone id');
  t.match(rejected, [/vtep has a zone id/, /macs\.0\.ips\.0 has a zone id/]);
  t.ok(v.put('b', rec('b', 'FD00::0:2', [{ vni: 42, mac: mac(1) }]), 3));
  t.same(v.macs(42, 'x')[0]?.vtep, 'fd00::2', 'the vtep in its canonical spelling');
  const many = Array.from({ length: MAX_MACS_PER_RECORD + 1 }, (_, i) => ({ vni: 42, mac: mac(i) }));
  t.ok(v.put('c', rec('c', '198.51.100.3', many.slice(0, MAX_MACS_PER_RECORD)), 4), `${MAX_MACS_PER_RECORD} MACs fit`);
  t.notOk(v.put('c', rec('c', '198.51.100.3', many), 5), 'one more does not: the record is rejected, not truncated');
  t.match(rejected.at(-1), new RegExp(`macs has more than ${MAX_MACS_PER_RECORD} MACs`));
  t.same(v.macs(42, 'x').length, 1, 'and what the key held before is gone');
});

t.test('MacView: a record counts only for the underlay address its host registered; audit reports the others once', async (t) => {
  const rejected: RejectedRecord[] = [];
  const hosts = new Map<string, string>([['b', '198.51.100.2']]);
  const v = new MacView((e) => rejected.push(e), Date.now, (id) => hosts.get(id));
  const rec = (hostId: string, vtep: string, mac: string): string => JSON.stringify({ version: 1, hostId, vtep, macs: [{ vni: 42, mac, ips: ['198.18.0.9'] }] });
  t.ok(v.put('b', rec('b', '198.51.100.2', '02:00:00:00:00:0b'), 1));
  t.ok(v.put('ghost', rec('ghost', '198.51.100.66', '02:00:00:00:00:0c'), 2), 'a record of no registered host parses ...');
  t.ok(v.put('liar', rec('liar', '198.51.100.2', '02:00:00:00:00:0b'), 3), "... and so does one naming b's address");
  hosts.set('liar', '198.51.100.77');
  v.audit();
  t.same(v.macs(42, 'x').map((m) => [m.mac, m.vtep]), [['02:00:00:00:00:0b', '198.51.100.2']], '... but only b makes claims');
  t.same(v.neighbors(42, 'x'), [{ ip: '198.18.0.9', mac: '02:00:00:00:00:0b' }], 'of addresses too');
  t.equal(v.claimOf(42, '02:00:00:00:00:0c'), undefined);
  t.same(v.conflicts(), [], 'a record that makes no claim makes no conflict');
  t.match(rejected, [
    { code: 'E_RECORD', kind: 'record-rejected', record: 'MAC', id: 'ghost', message: /no host ghost is registered/ },
    { id: 'liar', message: /its vtep 198\.51\.100\.2 is not 198\.51\.100\.77, the underlay address host liar registered/ },
  ]);
  t.equal(v.rejected, 2);
  v.audit();
  t.equal(v.rejected, 2, 'reported once, not at every table');
  t.same(v.ignoredRecords().map((r) => r.id), ['ghost', 'liar']);
  hosts.set('ghost', '198.51.100.66');
  v.audit();
  t.same(v.macs(42, 'x').map((m) => m.vtep).sort(), ['198.51.100.2', '198.51.100.66'], 'once its host registers, the record counts');
  t.same(v.ignoredRecords().map((r) => r.id), ['liar']);
  v.delete('liar');
  v.audit();
  t.same(v.ignoredRecords(), []);
});
