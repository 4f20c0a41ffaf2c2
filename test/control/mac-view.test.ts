/**
 * MacView, the MACs other hosts advertise: per VNI, the newest claim wins (a MAC or an address that moved), claims
 * two hosts hold at once are conflicts, IPv6 addresses have one spelling, bad records are counted.
 */
import t from 'tap';
import { addressScope, MAX_MACS_PER_RECORD, MacView, OWNERSHIP_BURST, OWNERSHIP_PER_SECOND, type RejectedRecord } from '../../src/control/index.js';

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
  t.same(v.macs(42, 'a'), [{ mac: '02:00:00:00:00:0b', vtep: '198.51.100.2', origin: 'etcd', revision: 6, ips: [] }], "a sees b's MAC of VNI 42, not its own");
  t.same(v.macs(7, 'a'), [{ mac: '02:00:00:00:00:0c', vtep: '198.51.100.2', origin: 'etcd', revision: 6, ips: [] }], 'per VNI');
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
  t.equal(v.claimOf(42, '02:00:00:00:00:0a'), v.claimOf(42, '02:00:00:00:00:0a'), 'claims are worked out once per change of the records (the same object until then)');
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

  // Addresses: the oldest live claim owns an address; a newer one by another MAC is a conflict until the owner goes.
  v.put('b', rec('b', '198.51.100.2', [{ vni: 42, mac: '02:00:00:00:00:0b' }]).replace('"mac":"02:00:00:00:00:0b"}', '"mac":"02:00:00:00:00:0b","ips":["198.18.0.2"]}'), 20);
  t.same(v.neighbors(42, 'x'), [{ ip: '198.18.0.2', mac: '02:00:00:00:00:0b' }]);
  v.put('c', JSON.stringify({ version: 1, hostId: 'c', vtep: '198.51.100.3', macs: [{ vni: 42, mac: '02:00:00:00:00:0f', ips: ['198.18.0.2'] }] }), 21);
  t.same(v.neighbors(42, 'x'), [{ ip: '198.18.0.2', mac: '02:00:00:00:00:0b' }], 'the newer claim does not take it');
  t.same(v.neighbors(42, 'b'), [], 'b does not answer for its own address');
  v.put('b', rec('b', '198.51.100.2', [{ vni: 42, mac: '02:00:00:00:00:0b' }]), 22);
  t.same(v.neighbors(42, 'x'), [{ ip: '198.18.0.2', mac: '02:00:00:00:00:0f' }], 'once b withdraws it, the next claim owns it');
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
  // Another writer spells the address differently: one canonical key, so it is the same address (a conflict).
  t.ok(v.put('c', JSON.stringify({ version: 1, hostId: 'c', vtep: '198.51.100.3', macs: [{ vni: 42, mac: '02:00:00:00:00:0f', ips: ['FD00:198:18:0:0:0:0:2'] }] }), 3));
  t.same(v.neighbors(42, 'x').find((n) => n.ip === 'fd00:198:18::2'), { ip: 'fd00:198:18::2', mac: '02:00:00:00:00:0b' }, 'the older claim keeps it');
  t.match(v.addressConflicts(), [{ vni: 42, ip: 'fd00:198:18::2', owner: { mac: '02:00:00:00:00:0b', hostId: 'b' }, claimants: [{ mac: '02:00:00:00:00:0f', hostId: 'c' }] }], 'under the canonical spelling');
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

t.test('MacView: an address belongs to its oldest live claim; a forged newer claim is a conflict, a genuine move follows', async (t) => {
  const hosts = new Map([['h1', '198.51.100.1'], ['h2', '198.51.100.2'], ['h3', '198.51.100.3']]);
  const v = new MacView(undefined, Date.now, (id) => hosts.get(id));
  const rec = (hostId: string, macs: { mac: string; ips?: string[] }[]): string => JSON.stringify({ version: 1, hostId, vtep: hosts.get(hostId) ?? '198.51.100.9', macs: macs.map((m) => ({ vni: 42, ...m })) });
  const c21 = '02:00:00:00:02:01';
  const c31 = '02:00:00:00:03:01';
  const c32 = '02:00:00:00:03:02';
  v.put('h2', rec('h2', [{ mac: c21, ips: ['198.18.0.21'] }]), 10);
  v.put('h3', rec('h3', [{ mac: c31, ips: ['198.18.0.31'] }]), 11);
  t.same(v.addressOwners(42).get('198.18.0.21'), { mac: c21, hostId: 'h2' });
  // c31 forges c21's address (an older router advertises whatever a container used): a conflict, c21 keeps it.
  v.put('h3', rec('h3', [{ mac: c31, ips: ['198.18.0.21', '198.18.0.31'] }]), 12);
  t.same(v.neighbors(42, 'h1').find((n) => n.ip === '198.18.0.21'), { ip: '198.18.0.21', mac: c21 }, 'ARP / ND still answer with the owner');
  t.same(v.addressConflicts(), [{ vni: 42, ip: '198.18.0.21', owner: { mac: c21, hostId: 'h2' }, claimants: [{ mac: c31, hostId: 'h3' }] }], 'shown as a conflict: owner and claimant');
  t.same(v.macs(42, 'h1').find((m) => m.mac === c31)?.ips, ['198.18.0.31'], 'the claimant MAC carries only what it owns');
  // h2 rewrites its record for another reason (a new container): c21's claim keeps its date.
  v.put('h2', rec('h2', [{ mac: c21, ips: ['198.18.0.21'] }, { mac: '02:00:00:00:02:02', ips: ['198.18.0.22'] }]), 13);
  t.equal(v.addressOwners(42).get('198.18.0.21')?.mac, c21, 'a rewrite of the owner record is no new claim');
  // The forger's host goes away and comes back (a relisting router): still not the owner while c21 is there.
  v.delete('h3');
  t.same(v.addressConflicts(), [], 'the conflict ends with the claimant');
  // A genuine move: c21 goes (h2 withdraws it), c32 on h3 uses the address: it owns it.
  v.put('h2', rec('h2', [{ mac: '02:00:00:00:02:02', ips: ['198.18.0.22'] }]), 14);
  t.equal(v.neighbors(42, 'h1').find((n) => n.ip === '198.18.0.21'), undefined, 'withdrawn: nobody owns it');
  v.put('h3', rec('h3', [{ mac: c32, ips: ['198.18.0.21'] }]), 15);
  t.same(v.neighbors(42, 'h1').find((n) => n.ip === '198.18.0.21'), { ip: '198.18.0.21', mac: c32 }, 'the new container owns it');
  // The owner's host lease runs out (host record gone): its claims are not live.
  v.put('h2', rec('h2', [{ mac: c21, ips: ['198.18.0.23'] }]), 16);
  v.put('h3', rec('h3', [{ mac: c32, ips: ['198.18.0.21', '198.18.0.23'] }]), 17);
  t.equal(v.addressOwners(42).get('198.18.0.23')?.mac, c21);
  hosts.delete('h2');
  v.invalidate();
  t.equal(v.addressOwners(42).get('198.18.0.23')?.mac, c32, 'a claim without its host record is not live');
  // The same MAC on two hosts (it moved, the old host has not withdrawn it yet) is one claim, dated by its oldest.
  hosts.set('h2', '198.51.100.2');
  v.reset([
    { id: 'h2', value: rec('h2', [{ mac: c21, ips: ['198.18.0.21'] }]), revision: 20 },
    { id: 'h1', value: rec('h1', [{ mac: '02:00:00:00:01:01', ips: ['198.18.0.21'] }]), revision: 21 },
  ]);
  v.put('h3', rec('h3', [{ mac: c21, ips: ['198.18.0.21'] }]), 22);
  t.equal(v.addressOwners(42).get('198.18.0.21')?.mac, c21, 'a MAC that moved keeps its address');
  t.same(v.macs(42, 'x').find((m) => m.mac === c21)?.vtep, '198.51.100.3', 'and goes to its new host');
});

t.test('MacView: only addresses in scope are claims', async (t) => {
  const v = new MacView();
  v.inScope = addressScope('198.18.0.0/15');
  v.put('b', JSON.stringify({ version: 1, hostId: 'b', vtep: '198.51.100.2', macs: [{ vni: 42, mac: '02:00:00:00:00:0b', ips: ['10.0.0.1', '169.254.1.1', '198.18.0.2', 'fd00::2', 'fe80::b'] }] }), 1);
  t.same(v.neighbors(42, 'x').map((n) => n.ip).sort(), ['198.18.0.2', 'fd00::2', 'fe80::b'], 'IPv4 inside the subnet; IPv6 (no IPv6 subnet declared) under the ownership rule');
});

t.test('MacView: ownership changes are rate-limited per view, the last owner stays meanwhile', async (t) => {
  let now = 1_000_000;
  const v = new MacView(undefined, () => now);
  const ip = (i: number): string => `198.18.${i >> 8}.${i & 0xff}`;
  const n = OWNERSHIP_BURST + 5;
  // n MACs on a, one address each; then all of them move to MACs on b at once.
  const macA = (i: number): string => `02:00:00:00:0a:${i.toString(16).padStart(2, '0')}`;
  const macB = (i: number): string => `02:00:00:00:0b:${i.toString(16).padStart(2, '0')}`;
  const record = (hostId: string, vtep: string, mac: (i: number) => string): string =>
    JSON.stringify({ version: 1, hostId, vtep, macs: Array.from({ length: n }, (_, i) => ({ vni: 42, mac: mac(i), ips: [ip(i + 1)] })) });
  v.put('a', record('a', '198.51.100.1', macA), 1);
  t.equal(v.neighbors(42, 'x').length, n, 'new addresses are no changes');
  t.equal(v.limitedChanges, 0);
  v.delete('a');
  v.put('b', record('b', '198.51.100.2', macB), 2);
  const first = v.remote(42, 'x').neighbors;
  t.equal(first.filter((e) => e.mac.startsWith('02:00:00:00:0b')).length, OWNERSHIP_BURST, `a burst of ${OWNERSHIP_BURST} changes goes through`);
  t.equal(first.length, OWNERSHIP_BURST, 'the others wait (their old owner is gone: left out meanwhile)');
  t.ok(v.deferred, 'deferred: build the table again later');
  t.equal(v.limitedChanges, 5, 'each counted');
  t.ok(v.retryInMs() > 0 && v.retryInMs() <= 1000 / OWNERSHIP_PER_SECOND + 1, `a token in ${v.retryInMs()} ms`);
  now += 1000;
  t.equal(v.remote(42, 'x').neighbors.length, n, 'a second later, the rest');
  t.notOk(v.deferred);
});
