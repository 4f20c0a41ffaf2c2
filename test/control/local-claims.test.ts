/** LocalClaims: which addresses this host claims for its MACs (forged ones refused, moves followed, duplicates resolved). */
import t from 'tap';
import { LocalClaims, localMacIps } from '../../src/control/local-claims.js';
import type { AddressClaimant } from '../../src/control/index.js';

t.test('LocalClaims: refuse what another MAC owns; a forger does not inherit it; the new owner claims it at once', async (t) => {
  const c = new LocalClaims();
  const forger = '02:00:00:00:03:01';
  const mover = '02:00:00:00:03:02';
  let owners = new Map<string, AddressClaimant>([['198.18.0.21', { mac: '02:00:00:00:02:01', hostId: 'h2' }]]);
  const of = () => owners;
  // The forger used 198.18.0.21 (most recently) and its own address.
  let r = c.compose([{ vni: 42, mac: forger, ips: ['198.18.0.21', '198.18.0.31'], lastSeen: 1000 }], of, 'h3', 1000);
  t.same(r.ips.get(`42/${forger}`), ['198.18.0.31'], 'only its own address');
  t.same(r.refused, [{ vni: 42, ip: '198.18.0.21', mac: forger, owner: { mac: '02:00:00:00:02:01', hostId: 'h2' } }], 'refused: a conflict');
  // The owner leaves; the forger is silent since: it does not inherit the address.
  owners = new Map();
  r = c.compose([{ vni: 42, mac: forger, ips: ['198.18.0.21', '198.18.0.31'], lastSeen: 1000 }], of, 'h3', 2000);
  t.same(r.ips.get(`42/${forger}`), ['198.18.0.31'], 'a forger does not inherit the address when its owner leaves');
  t.same(r.refused, []);
  // The container the address moved to uses it: it claims it at once.
  r = c.compose(
    [
      { vni: 42, mac: forger, ips: ['198.18.0.21', '198.18.0.31'], lastSeen: 1000 },
      { vni: 42, mac: mover, ips: ['198.18.0.21', '198.18.0.32'], lastSeen: 2100 },
    ],
    of,
    'h3',
    2200,
  );
  t.same(r.ips.get(`42/${mover}`)?.sort(), ['198.18.0.21', '198.18.0.32'], 'the new container claims it');
  // Once it owns it (etcd says so), the forger trying again is refused, though on the same host.
  owners = new Map([['198.18.0.21', { mac: mover, hostId: 'h3' }]]);
  r = c.compose(
    [
      { vni: 42, mac: forger, ips: ['198.18.0.21'], lastSeen: 3000 },
      { vni: 42, mac: mover, ips: ['198.18.0.32', '198.18.0.21'], lastSeen: 2900 },
    ],
    of,
    'h3',
    3000,
  );
  t.same(r.ips.get(`42/${forger}`), undefined);
  t.same(r.ips.get(`42/${mover}`)?.sort(), ['198.18.0.21', '198.18.0.32']);
  t.equal(r.refused.length, 1, 'a local duplicate of an owned address is refused too');
});

t.test('LocalClaims: a container that overlaps with the old one claims the address once it is free and it speaks', async (t) => {
  const c = new LocalClaims();
  const mac = '02:00:00:00:03:02';
  let owners = new Map<string, AddressClaimant>([['198.18.0.21', { mac: '02:00:00:00:02:01', hostId: 'h2' }]]);
  let r = c.compose([{ vni: 42, mac, ips: ['198.18.0.21'], lastSeen: 100 }], () => owners, 'h3', 100);
  t.equal(r.refused.length, 1, 'refused while the old container is there');
  owners = new Map();
  r = c.compose([{ vni: 42, mac, ips: ['198.18.0.21'], lastSeen: 100 }], () => owners, 'h3', 200);
  t.same([...r.ips], [], 'free now, but not seen using it since');
  r = c.compose([{ vni: 42, mac, ips: ['198.18.0.21'], lastSeen: 250 }], () => owners, 'h3', 300);
  t.same(r.ips.get(`42/${mac}`), ['198.18.0.21'], 'its next frame claims it');
  // A local owner whose container left (no longer wanted) does not block another local MAC.
  const other = '02:00:00:00:03:03';
  owners = new Map([['198.18.0.21', { mac, hostId: 'h3' }]]);
  r = c.compose([{ vni: 42, mac: other, ips: ['198.18.0.21'], lastSeen: 400 }], () => owners, 'h3', 400);
  t.same(r.ips.get(`42/${other}`), ['198.18.0.21'], 'our own stale claim is not an owner');
  t.same(localMacIps({ vni: 42, mac: 'AA:BB:CC:DD:EE:FF', ips: ['10.0.0.1', 'FD00::1', 'fd00::1'], ageMs: 50 }, 1000, (ip) => ip.toLowerCase(), (ip) => !ip.startsWith('10.')), {
    vni: 42,
    mac: 'aa:bb:cc:dd:ee:ff',
    ips: ['fd00::1'],
    lastSeen: 950,
  }, 'localMacIps: canonical, in scope, once each');
});
