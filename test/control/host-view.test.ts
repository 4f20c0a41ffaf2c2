/**
 * HostView, the hosts of a network as the registry sees them: valid records make the table, bad ones are ignored
 * and counted (a RejectedRecord each, code E_RECORD), never a throw; when each record was last put.
 */
import t from 'tap';
import { HostView, type HostRecord, type RejectedRecord } from '../../src/control/index.js';
import { VxlanRouterError } from '../../src/errors.js';
import { mulberry32 } from '../helpers/prng.js';

const record = (hostId: string, ip: string): HostRecord => ({
  version: 1, hostId, underlay: [ip], port: 4789, networks: ['default'], mtu: 1450, software: 'test', startedAt: '2025-01-01T00:00:00Z',
});
const json = (r: unknown): string => JSON.stringify(r);
const SELF = { id: 'self', underlay: '198.51.100.1' };

t.test('host records: valid ones make the table, bad ones are ignored and counted', async (t) => {
  const rejected: RejectedRecord[] = [];
  const v = new HostView(42, SELF, (e) => rejected.push(e));
  v.reset([
    { id: 'self', value: json(record('self', '198.51.100.1')) },
    { id: 'b', value: json(record('b', '198.51.100.2')) },
    { id: 'bad', value: '{' },
  ]);
  t.same(v.table(), { vnis: [{ vni: 42, peers: ['198.51.100.2'], macs: [] }] }, 'every other host is a peer, not this one');
  t.equal(v.size, 2);
  t.equal(v.rejected, 1);
  t.equal(rejected[0]?.message, 'ignoring the host record of bad: not JSON');
  t.ok(rejected[0] instanceof VxlanRouterError, 'a RejectedRecord is one of our errors');
  t.match(rejected[0], { code: 'E_RECORD', kind: 'record-rejected', recoverable: true, id: 'bad', record: 'host', reason: 'not JSON', hint: /host bad wrote it/ });

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

t.test('addresses: no zone id, this host\'s family, one spelling; never our own address under another id', async (t) => {
  const rejected: RejectedRecord[] = [];
  const v = new HostView(42, SELF, (e) => rejected.push(e));
  const cases: [string, string[], RegExp][] = [
    ['zone', ['fe80::1%eth0'], /underlay\.0 has a zone id/],
    ['zone4', ['198.51.100.9%eth0'], /underlay\.0 (is not an IP address|has a zone id)/],
    ['v6only', ['2001:db8::2'], /no IPv4 underlay address \(2001:db8::2\), and this host's underlay is IPv4/],
    ['me', ['198.51.100.1'], /its underlay address 198\.51\.100\.1 is this host's own/],
  ];
  for (const [id, underlay, why] of cases) {
    t.notOk(v.put(id, json({ ...record(id, '198.51.100.9'), underlay })), `${id} is rejected`);
    t.match(rejected.at(-1), { code: 'E_RECORD', kind: 'record-rejected', message: why });
  }
  t.equal(v.rejected, cases.length);
  t.same(v.table().vnis[0]?.peers, [], 'none reached the table');
  t.ok(v.put('both', json({ ...record('both', '198.51.100.9'), underlay: ['2001:db8::2', '198.51.100.2'] })), 'a host with both families');
  t.equal(v.addressOf('both'), '198.51.100.2', 'is reached at its address of our family');
  t.ok(v.put('self', json(record('self', '198.51.100.1'))), 'our own record with our address is fine');
  t.same(v.table().vnis[0]?.peers, ['198.51.100.2']);

  const v6 = new HostView(42, { id: 'self', underlay: 'fd00::1' });
  t.ok(v6.put('b', json(record('b', 'FD00:0:0:0:0:0:0:0002'))), 'an IPv6 address in another spelling');
  t.same(v6.table().vnis[0]?.peers, ['fd00::2'], 'reaches the table in the canonical one');
  t.equal(v6.hosts()[0]?.underlay[0], 'fd00::2');
  t.notOk(v6.put('c', json(record('c', 'fd00::0001'))), 'our own IPv6 address, spelled otherwise');
  t.notOk(v6.put('d', json(record('d', '198.51.100.4'))), 'an IPv4 peer of an IPv6 host');
  t.ok(v6.put('e', json(record('e', '::ffff:198.51.100.5'))), 'an IPv4-mapped address is IPv6 text');
  t.equal(v6.addressOf('e'), '::ffff:198.51.100.5');
  t.ok(v6.put('f', json(record('f', 'fd00::2'))), 'two hosts with one address ...');
  t.same(v6.table().vnis[0]?.peers, ['fd00::2', '::ffff:198.51.100.5'], '... are one peer');
});

t.test('host rows: when each record was last put, on a fake clock', async (t) => {
  let now = 1000;
  const v = new HostView(42, { id: 'self', underlay: '198.51.100.254' }, () => undefined, () => now);
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
  const v = new HostView(42, SELF);
  const good = json(record('x', '198.51.100.7'));
  let accepted = 0;
  for (let i = 0; i < 2000; i++) {
    const chars = [...good];
    for (let k = 0; k < 1 + Math.floor(rnd() * 3); k++) chars[Math.floor(rnd() * chars.length)] = String.fromCharCode(Math.floor(rnd() * 128));
    if (v.put('x', chars.join(''))) accepted++;
  }
  t.equal(v.rejected + accepted, 2000, `${v.rejected} mutated records rejected, ${accepted} still valid, no throw`);
});
