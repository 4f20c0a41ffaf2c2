/** The control-plane state machine on a fake clock, and the backoff of the registry's background retries. */
import t from 'tap';
import { ControlPlaneTracker, retryDelay } from '../../src/control/index.js';

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
