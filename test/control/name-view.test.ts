/**
 * Container names in etcd (names/<hostId>, NameRecord): the schema bounds what another host may write (names of a
 * fixed charset and length, counts), NameView answers a name's addresses from every host's record, and a bad record
 * is counted and reported, never thrown. Old routers never see the names: they are a key of their own.
 */
import t from 'tap';
import {
  CONTAINER_NAME_PATTERN,
  keys,
  macRecordSchema,
  MAX_NAME_ENTRIES,
  MAX_NAMES_PER_ENTRY,
  nameRecordSchema,
  NameView,
  type RejectedRecord,
} from '../../src/control/index.js';
import { recordKeyOf } from '../../src/control/network-watch.js';

const rec = (hostId: string, names: unknown[]): string => JSON.stringify({ version: 1, hostId, names });
const entry = (mac: string, ip: string, ...names: string[]): { mac: string; ips: string[]; names: string[] } => ({ mac, ips: [ip], names });

t.test('container names: the pattern', async (t) => {
  for (const ok of ['a1', 'web', 'my-app_1', 'proj-web-1', 'a.b', '0', 'x'.repeat(63)]) t.ok(CONTAINER_NAME_PATTERN.test(ok), `${ok} is a name`);
  for (const bad of ['', 'Web', '-a', '_a', 'a..b', '.a', 'a.', 'a b', 'a/b', 'x'.repeat(64), 'a\u0000', 'é', 'a.-b'])
    t.notOk(CONTAINER_NAME_PATTERN.test(bad), `${JSON.stringify(bad)} is not`);
});

t.test('NameView: names of every host, bad records rejected whole and counted', async (t) => {
  const rejected: RejectedRecord[] = [];
  const v = new NameView((e) => rejected.push(e));
  v.reset([
    { id: 'h1', value: rec('h1', [entry('02:42:c6:12:1c:02', '198.18.28.2', 'a1', 'web')]) },
    { id: 'h2', value: rec('h2', [entry('02:42:c6:12:1d:02', '198.18.29.2', 'a2', 'web'), { mac: '02:42:c6:12:1d:03', ips: ['198.18.29.3', 'FD00::3'], names: ['b2'] }]) },
  ]);
  t.same(v.lookup('a1'), [{ ip: '198.18.28.2', mac: '02:42:c6:12:1c:02', hostId: 'h1' }]);
  t.same(v.lookup('web').map((a) => a.ip), ['198.18.28.2', '198.18.29.2'], 'a name on two hosts has both addresses, in one order everywhere');
  t.same(v.lookup('web', 'h1').map((a) => a.hostId), ['h2'], "skipping this host's own record");
  t.same(v.lookup('b2').map((a) => a.ip), ['198.18.29.3', 'fd00::3'], 'IPv6 in its one spelling');
  t.same(v.lookup('nope'), []);
  t.equal(v.size, 2);

  const bad: [string, string, RegExp][] = [
    ['not JSON', '{', /not JSON/],
    ['another host', rec('h9', []), /hostId is "h9"/],
    ['uppercase name', rec('h2', [entry('02:42:c6:12:1d:02', '198.18.29.2', 'A2')]), /names\.0\.names\.0 is not a container name/],
    ['long name', rec('h2', [entry('02:42:c6:12:1d:02', '198.18.29.2', 'x'.repeat(64))]), /is not a container name/],
    ['too many names', rec('h2', [entry('02:42:c6:12:1d:02', '198.18.29.2', ...Array.from({ length: MAX_NAMES_PER_ENTRY + 1 }, (_, i) => `n${i}`))]), /names\.0\.names/],
    ['no names', rec('h2', [entry('02:42:c6:12:1d:02', '198.18.29.2')]), /names\.0\.names/],
    ['not an address', rec('h2', [entry('02:42:c6:12:1d:02', '198.18.29.999', 'a2')]), /is not an IP address/],
    ['a zone id', rec('h2', [entry('02:42:c6:12:1d:02', 'fe80::1%eth0', 'a2')]), /zone id/],
    ['a bad MAC', rec('h2', [entry('02:42:C6:12:1d:02', '198.18.29.2', 'a2')]), /names\.0\.mac/],
    ['an unknown field', rec('h2', [{ ...entry('02:42:c6:12:1d:02', '198.18.29.2', 'a2'), ttl: 5 }]), /names\.0/],
    ['too many containers', rec('h2', Array.from({ length: MAX_NAME_ENTRIES + 1 }, (_, i) => entry('02:42:c6:12:1d:02', `198.18.${i >> 8}.${i & 255}`, 'a'))), /more than 1024 containers/],
  ];
  for (const [what, value, reason] of bad) {
    v.put('h1', rec('h1', [entry('02:42:c6:12:1c:02', '198.18.28.2', 'a1')]));
    t.notOk(v.put('h2', value), `${what}: rejected`);
    t.match(rejected.at(-1)?.message, reason, `${what}: ${rejected.at(-1)?.message}`);
    t.same(v.lookup('a2'), [], `${what}: h2's names are gone with it`);
    t.same(v.lookup('a1').length, 1, `${what}: h1's stay`);
    v.put('h2', rec('h2', [entry('02:42:c6:12:1d:02', '198.18.29.2', 'a2')]));
  }
  t.equal(v.rejected, bad.length, 'each counted');
  t.match(rejected[0], { code: 'E_RECORD', kind: 'record-rejected', record: 'name' });
  v.delete('h2');
  t.same(v.lookup('a2'), [], 'a deleted record (its lease ended) takes its names');
});

t.test('the names are a key of their own: old routers, which reject unknown MAC fields, never read them', async (t) => {
  t.equal(keys.names('blue', 'h1'), '/vxlan-router/v1/networks/blue/names/h1');
  t.same(recordKeyOf(keys.names('blue', 'h1'), 'blue'), { kind: 'names', id: 'h1' });
  t.same(recordKeyOf(keys.macs('blue', 'h1'), 'blue'), { kind: 'macs', id: 'h1' });
  // What an old router would have done with names inside the MAC record: refused the whole record.
  const withNames = { version: 1, hostId: 'h1', vtep: '198.51.100.1', macs: [{ vni: 42, mac: '02:42:c6:12:1c:02', names: ['a1'] }] };
  t.notOk(macRecordSchema.safeParse(withNames).success, 'a MAC record with names would be refused by the MAC schema');
  t.ok(nameRecordSchema.safeParse({ version: 1, hostId: 'h1', names: [] }).success, 'an empty names record is valid');
});
