/**
 * Container names through a real etcd on loopback (issue 16): a host's names (names/<hostId>, under its lease) reach
 * the other hosts; what a host may not name is left out (outside the subnet, an address another host's MAC owns,
 * an entry that breaks the schema: counted); an empty set deletes the key; a host that leaves takes its names along.
 */
import { spawnSync } from 'node:child_process';
import t from 'tap';
import type { HostRecord, NetworkDefinition } from '../../src/control/etcd-registry.js';
import type { NameEntry } from '../../src/control/index.js';
import { EtcdServer, etcdSkipReason } from '../../src/lab/etcd.js';
import { waitFor } from '../../src/lab/wait.js';
import { registryOpener } from '../helpers/registries.js';

const record = (hostId: string, ip: string): HostRecord => ({
  version: 1, hostId, underlay: [ip], port: 4789, networks: ['default'], mtu: 1450, software: 'test', startedAt: new Date().toISOString(),
});

t.test('names across hosts in etcd', { skip: etcdSkipReason() ?? false }, async (t) => {
  const etcd = await EtcdServer.start();
  const open = registryOpener(t, etcd.endpoint, {}, () => etcd.destroy());
  const admin = open();
  await admin.createNetwork({ version: 1, name: 'default', vni: 42, subnet: '198.18.0.0/15' });
  const network = (await admin.getNetwork('default')) as NetworkDefinition;
  const [a, b] = [open(), open()];
  await a.join(network, record('a', '198.51.100.1'));
  await b.join(network, record('b', '198.51.100.2'));
  const etcdNames = (id: string): string => spawnSync('etcdctl', ['--endpoints', etcd.endpoint, 'get', `/vxlan-router/v1/networks/default/names/${id}`, '--print-value-only'], { encoding: 'utf8' }).stdout;
  const ips = (r: typeof a, name: string): string[] => r.lookupName(name).map((x) => x.ip);

  t.equal(etcdNames('a'), '', 'no containers: no key');
  // b's container owns 198.18.2.2 (its MAC record says so); a then names a container of its own with that address.
  await b.advertise([{ vni: 42, mac: '02:42:c6:12:02:02', ips: ['198.18.2.2'], ageMs: 0 }]);
  await waitFor(() => a.addressConflicts().length === 0 && a.table().vnis[0]?.neighbors?.some((n) => n.ip === '198.18.2.2') === true, { timeoutMs: 3000, what: "a to see b's address" });
  const mine: NameEntry[] = [
    { mac: '02:42:c6:12:01:02', ips: ['198.18.1.2'], names: ['a1', 'web'] },
    { mac: '02:42:c6:12:01:03', ips: ['10.0.0.3'], names: ['outside'] },
    { mac: '02:42:c6:12:01:04', ips: ['198.18.2.2'], names: ['forger'] },
    { mac: '02:42:c6:12:01:05', ips: ['198.18.1.5'], names: ['Not Valid'] },
  ];
  await a.advertiseNames(mine);
  t.equal(a.counters().unadvertisedNames, 1, 'the invalid entry is left out, counted');
  t.match(etcdNames('a'), /"a1","web"/, 'the names are in etcd, as JSON');
  await waitFor(() => ips(b, 'a1').length > 0, { timeoutMs: 3000, what: "b to see a's names" });
  t.same(ips(b, 'a1'), ['198.18.1.2'], "b resolves a's container");
  t.same(ips(b, 'web'), ['198.18.1.2']);
  t.same(ips(a, 'a1'), ['198.18.1.2'], 'and so does a, from what it advertised');
  t.same(ips(b, 'outside'), [], 'an address outside the subnet is not answered');
  t.same(ips(b, 'forger'), [], "a name for an address b's own MAC owns is not answered");

  await b.advertiseNames([{ mac: '02:42:c6:12:02:02', ips: ['198.18.2.2'], names: ['web'] }]);
  await waitFor(() => ips(a, 'web').length === 2, { timeoutMs: 3000, what: 'a to see both webs' });
  t.same(ips(a, 'web'), ['198.18.1.2', '198.18.2.2'], 'one name on two hosts: both addresses');

  await a.advertiseNames([]);
  t.equal(etcdNames('a'), '', 'no containers left: the key is deleted');
  await waitFor(() => ips(b, 'a1').length === 0, { timeoutMs: 3000, what: "a1 to leave b's view" });
  t.pass('a removed container leaves the other hosts');

  await b.close();
  await waitFor(() => ips(a, 'web').length === 0, { timeoutMs: 3000, what: "b's names to go with its lease" });
  t.pass("a host that leaves takes its names along (its lease is revoked)");
});
