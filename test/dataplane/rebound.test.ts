/** ReboundTracker: an address announced when its MAC changes, also when it left the table in between (a move). */
import t from 'tap';
import { ReboundTracker, REBOUND_MEMORY_MS } from '../../src/dataplane/index.js';

t.test('ReboundTracker announces an address at a new MAC, across a withdrawal, for REBOUND_MEMORY_MS', async (t) => {
  let now = 0;
  const r = new ReboundTracker(() => now);
  const table = (neighbors: { ip: string; mac: string }[]) => ({ vnis: [{ vni: 42, peers: [], macs: [], neighbors }] });
  t.same(r.next(table([{ ip: '198.18.0.2', mac: '02:00:00:00:00:0b' }])), [], 'a new address: nothing to announce');
  t.same(r.next(table([{ ip: '198.18.0.2', mac: '02:00:00:00:00:0b' }])), []);
  t.same(r.next(table([{ ip: '198.18.0.2', mac: '02:00:00:00:00:0c' }])), [{ vni: 42, ip: '198.18.0.2', mac: '02:00:00:00:00:0c' }], 'rebound');
  t.same(r.next(table([])), [], 'withdrawn (the old container gone)');
  now += 500;
  t.same(r.next(table([{ ip: '198.18.0.2', mac: '02:00:00:00:00:0d' }])), [{ vni: 42, ip: '198.18.0.2', mac: '02:00:00:00:00:0d' }], 'claimed by a new MAC: announced');
  t.same(r.next(table([])), []);
  now += REBOUND_MEMORY_MS + 1;
  t.same(r.next(table([])), []);
  t.same(r.next(table([{ ip: '198.18.0.2', mac: '02:00:00:00:00:0e' }])), [], 'long after: a new address');
  t.same(r.next(table([{ ip: '198.18.0.2', mac: '02:00:00:00:00:0e' }])), [], 'the same MAC again: nothing');
});
