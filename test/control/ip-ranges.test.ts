/** The slicing of an overlay subnet into per-host ranges (pure; the leasing is in etcd-ranges.test.ts). */
import t from 'tap';
import { defaultHostPrefix, Slices } from '../../src/control/ip-ranges.js';

t.test('default slice sizes', async (t) => {
  t.equal(defaultHostPrefix(15), 24, 'a wide subnet: /24 a host');
  t.equal(defaultHostPrefix(20), 24);
  t.equal(defaultHostPrefix(22), 26, 'narrower: sixteen slices');
  t.equal(defaultHostPrefix(24), 28);
  t.equal(defaultHostPrefix(28), 30, 'never under four addresses');
});

t.test('slices of a subnet', async (t) => {
  const s = new Slices('198.18.0.0/15');
  t.equal(s.prefix, 24);
  t.equal(s.count, 512);
  t.same(s.at(0), { range: '198.18.0.0/24', gateway: '198.18.0.1', addresses: 256 });
  t.same(s.at(511), { range: '198.19.255.0/24', gateway: '198.19.255.1', addresses: 256 });
  t.same(new Slices('198.18.1.0/15').at(1).range, '198.18.1.0/24', 'host bits of the subnet are ignored');
  const small = new Slices('198.18.4.0/24', 27);
  t.equal(small.count, 8);
  t.same(small.at(3), { range: '198.18.4.96/27', gateway: '198.18.4.97', addresses: 32 });
  t.same(small.find('198.18.4.96/27'), small.at(3));
  t.equal(small.find('198.18.4.100/27'), undefined, 'not on a slice boundary');
  t.equal(small.find('198.18.5.0/27'), undefined, 'outside the subnet');
  t.equal(small.find('198.18.4.96/26'), undefined, 'another slice size');
  t.equal(small.find('nonsense'), undefined);
});

t.test('what cannot be sliced is refused with the fix', async (t) => {
  t.throws(() => new Slices('fd00::/64'), { code: 'E_CONFIG', message: /IPv4 subnet/ });
  t.throws(() => new Slices('198.18.0.0/24', 24), { code: 'E_CONFIG', message: /host prefix \/24 does not cut 198\.18\.0\.0\/24 into slices/, hint: /between \/25 and \/30/ });
  t.throws(() => new Slices('198.18.0.0/24', 31), { code: 'E_CONFIG', message: /does not cut/ });
  t.throws(() => new Slices('198.18.0.0/31'), { code: 'E_CONFIG', message: /too small/, hint: /\/29 or wider/ });
});

t.test('choosing a slice', async (t) => {
  const s = new Slices('198.18.0.0/24', 26); // four slices
  const first = s.choose('host-a', new Map());
  t.equal(first?.own, false);
  t.ok(s.find(first!.slice.range), 'a slice of the subnet');
  t.same(s.choose('host-a', new Map([[first!.slice.range, 'host-a']])), { slice: first!.slice, own: true }, 'a host keeps its own slice');
  t.same(s.choose('host-a', new Map([['198.18.0.192/26', 'host-a'], [first!.slice.range, 'host-b']]))?.slice.range, '198.18.0.192/26', 'whatever it holds');
  const taken = new Map([0, 1, 2].map((i) => [s.at(i).range, `h${i}`]));
  t.same(s.choose('host-z', taken), { slice: s.at(3), own: false }, 'the free one');
  taken.set(s.at(3).range, 'h3');
  t.equal(s.choose('host-z', taken), undefined, 'none left');
  taken.set('198.18.9.0/26', 'host-z');
  t.equal(s.choose('host-z', taken), undefined, 'a record outside the subnet is not a slice to keep');
  const starts = new Set(['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'].map((id) => s.choose(id, new Map())!.slice.range));
  t.ok(starts.size >= 2, `hosts start from different slices (${starts.size} of 4 for 8 ids), so joins at once rarely collide`);
});
