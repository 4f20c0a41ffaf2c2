/**
 * Address claims through a real etcd on loopback: a registry does not advertise an address another host's MAC owns
 * (counted, shown as a conflict), nor one outside the network's subnet; when the owner withdraws, the MAC the address
 * moved to claims it as soon as it is seen using it.
 */
import { spawnSync } from 'node:child_process';
import t from 'tap';
import type { HostRecord, NetworkDefinition } from '../../src/control/etcd-registry.js';
import { etcdSkipReason } from '../../src/lab/etcd.js';
import { waitFor } from '../../src/lab/wait.js';
import { twoJoined } from '../helpers/registries.js';

t.test('a registry refuses to claim an address a live MAC elsewhere owns; a move is claimed', { skip: etcdSkipReason() ?? false }, async (t) => {
  const { a, b, etcd, value } = await twoJoined(t);
  const recordOf = (id: string): string => value(`macs/${id}`);
  const owner = (r: typeof a, ip: string): string | undefined => r.table().vnis[0]?.neighbors?.find((n) => n.ip === ip)?.mac;
  const A = '02:00:00:00:00:0a';
  const F = '02:00:00:00:00:0f';
  const N = '02:00:00:00:00:0e';

  await a.advertise([{ vni: 42, mac: A, ips: ['198.18.0.10', '10.1.2.3'], ageMs: 0 }]);
  await waitFor(() => owner(b, '198.18.0.10') === A, { timeoutMs: 3000, what: "b to see a's address" });
  t.notMatch(recordOf('a'), '10.1.2.3', 'an address outside the subnet is not advertised');
  // F on b forges A's address.
  await b.advertise([{ vni: 42, mac: F, ips: ['198.18.0.10', '198.18.0.15'], ageMs: 0 }]);
  t.notMatch(recordOf('b'), '198.18.0.10', 'b does not advertise the forged address');
  t.match(recordOf('b'), '198.18.0.15', 'only F own one');
  t.equal(b.counters().refusedClaims, 1, 'counted');
  t.match(b.addressConflicts(), [{ vni: 42, ip: '198.18.0.10', owner: { mac: A, hostId: 'a' }, claimants: [{ mac: F, hostId: 'b', advertised: false }] }], 'shown as a conflict on b');
  const warned: string[] = [];
  b.on('warning', (w) => warned.push(`${w.kind}`));
  await b.advertise([{ vni: 42, mac: F, ips: ['198.18.0.10', '198.18.0.15'], ageMs: 0 }]);
  t.equal(b.counters().refusedClaims, 1, 'once per episode');
  t.same(warned, [], 'reported once');
  // A goes from a; N on b, the address's new home, keeps using it: b claims it for N (not for the forger F).
  await b.advertise([
    { vni: 42, mac: F, ips: ['198.18.0.15', '198.18.0.10'], ageMs: 500 },
    { vni: 42, mac: N, ips: ['198.18.0.10'], ageMs: 0 },
  ]);
  await a.advertise([]);
  await waitFor(() => recordOf('b').includes('198.18.0.10') || false, { timeoutMs: 500, intervalMs: 20, what: 'b to claim it' }).catch(() => undefined);
  // N speaks again after a's withdrawal reached b: claimed.
  await b.advertise([
    { vni: 42, mac: F, ips: ['198.18.0.15', '198.18.0.10'], ageMs: 700 },
    { vni: 42, mac: N, ips: ['198.18.0.10'], ageMs: 0 },
  ]);
  await waitFor(() => owner(a, '198.18.0.10') === N, { timeoutMs: 3000, what: 'a to see the address at N' });
  t.pass('the address moved to N');
  // b refuses F once its own view (its watch of its own record) has N as the owner: a tick or two after a sees it.
  const conflictAtN = (): boolean =>
    b.addressConflicts().some((c) => c.ip === '198.18.0.10' && c.owner.mac === N && c.owner.hostId === 'b' && c.claimants.some((x) => x.mac === F && !x.advertised));
  await waitFor(
    async () => {
      await b.advertise([
        { vni: 42, mac: F, ips: ['198.18.0.15', '198.18.0.10'], ageMs: 900 },
        { vni: 42, mac: N, ips: ['198.18.0.10'], ageMs: 0 },
      ]);
      return conflictAtN();
    },
    { timeoutMs: 3000, what: "b to refuse F's claim on N's address" },
  ).catch(() => undefined);
  t.match(b.addressConflicts(), [{ ip: '198.18.0.10', owner: { mac: N, hostId: 'b' }, claimants: [{ mac: F, advertised: false }] }], 'F still wants it: a conflict with its new owner N');
  t.notMatch(recordOf('b'), new RegExp(`"${F}","ips":\\["198.18.0.10"`), 'F never advertised it');
});
