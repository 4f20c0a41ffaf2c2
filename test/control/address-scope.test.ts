/** addressScope and TokenBucket: which addresses a network's records may carry; the rate limit's bucket. */
import t from 'tap';
import { addressScope, TokenBucket } from '../../src/control/index.js';

t.test('addressScope: the subnet for its family; the other family unicast only', async (t) => {
  const v4 = addressScope('198.18.0.0/15');
  for (const ip of ['198.18.0.1', '198.19.255.254', 'fd00::1', 'fe80::1', '2001:db8::1']) t.ok(v4(ip), `${ip} in scope of 198.18.0.0/15`);
  for (const ip of ['198.20.0.1', '10.0.0.1', '169.254.0.1', '0.0.0.0', '127.0.0.1', '224.0.0.1', '255.255.255.255', '::', '::1', 'ff02::1']) t.notOk(v4(ip), `${ip} not`);
  const v6 = addressScope('fd00:198:18::/64');
  t.ok(v6('fd00:198:18::5'));
  t.notOk(v6('fd00:198:19::5'), 'outside the IPv6 subnet');
  t.ok(v6('198.18.0.1'), 'IPv4 next to an IPv6 subnet: not restricted by prefix');
});

t.test('TokenBucket: a burst, then a steady rate', async (t) => {
  let now = 0;
  const b = new TokenBucket(2, 4, () => now);
  t.ok(b.take());
  t.ok(b.take());
  t.notOk(b.take(), 'burst spent');
  t.equal(b.msUntilToken(), 250);
  now += 250;
  t.ok(b.take());
  now += 10_000;
  t.ok(b.take() && b.take());
  t.notOk(b.take(), 'never more than the burst');
});
