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
