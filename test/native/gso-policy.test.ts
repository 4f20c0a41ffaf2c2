/**
 * Where UDP GSO may be used (GsoPolicy in native/src/tx.h, through the gsoPolicy twin): a send refused with EINVAL or
 * EIO turns GSO off for that destination only; ENOPROTOOPT / EOPNOTSUPP (no UDP GSO in the kernel) for every one; an
 * ordinary send error changes nothing; the table of refused destinations is bounded (the 65th turns GSO off).
 */
import { constants } from 'node:os';
import t from 'tap';
import { loadNative } from '../../src/dataplane/native.js';

const n = loadNative();
const { EINVAL, EIO, ENOPROTOOPT, EOPNOTSUPP, ENOBUFS } = constants.errno;

t.test('one EINVAL turns GSO off for its destination only', async (t) => {
  const r = n.gsoPolicy([['198.51.100.2', EINVAL]], ['198.51.100.2', '198.51.100.3', 'fd00::2']);
  t.same(r, { actedOn: [true], allowed: [false, true, true], on: true });
});

t.test('EIO likewise, per destination, IPv6 too', async (t) => {
  const r = n.gsoPolicy([['fd00::2', EIO], ['fd00::2', EIO]], ['fd00::2', 'fd00::3']);
  t.same(r, { actedOn: [true, true], allowed: [false, true], on: true });
});

t.test('no UDP GSO in the kernel: off everywhere', async (t) => {
  for (const err of [ENOPROTOOPT, EOPNOTSUPP]) {
    const r = n.gsoPolicy([['198.51.100.2', err]], ['198.51.100.2', '198.51.100.3']);
    t.same(r, { actedOn: [true], allowed: [false, false], on: false }, `errno ${err}`);
  }
});

t.test('an ordinary send error is not a GSO verdict', async (t) => {
  const r = n.gsoPolicy([['198.51.100.2', ENOBUFS]], ['198.51.100.2']);
  t.same(r, { actedOn: [false], allowed: [true], on: true });
});

t.test('bounded: 64 refused destinations are remembered, the 65th turns GSO off', async (t) => {
  const addrs = Array.from({ length: 65 }, (_, i) => `198.51.100.${i + 1}`);
  const first = n.gsoPolicy(addrs.slice(0, 64).map((a) => [a, EINVAL] as [string, number]), ['198.51.100.100']);
  t.same(first.allowed, [true], 'after 64: others still use GSO');
  t.equal(first.on, true);
  const all = n.gsoPolicy(addrs.map((a) => [a, EINVAL] as [string, number]), ['198.51.100.100']);
  t.same({ allowed: all.allowed, on: all.on }, { allowed: [false], on: false }, 'the 65th: off everywhere');
});
