/**
 * Hostile and mistaken records in etcd (issue 14, findings 1 and 7), against two native routers:
 *
 *   [c1] h1 .1 ┐                                  ┌ h2 .2 [c2]
 *              ╞═ switch (etcd at 198.51.100.254) ╡
 *                 etcdctl put: host and MAC records with a zone id, of the wrong family, naming h1's own address,
 *                 naming an address no host registered
 *
 * Both routers stay up and go on forwarding; none of those records reaches a table (no peer, no MAC entry); each is
 * reported as an E_RECORD warning; a router restarted with those records in etcd starts and forwards.
 */
import t from 'tap';
import { statusSchema, type FdbRows } from '../../src/agent/index.js';
import { ask } from '../../src/cli/control-client.js';
import { etcdLab, etcdSkipReason } from '../../src/lab/etcd.js';
import { labSkipReason, VNI, type Host } from '../../src/lab/lab.js';
import type { RouterProcess } from '../../src/lab/router-process.js';
import { waitFor } from '../../src/lab/wait.js';

const ETCD_IP = '198.51.100.254';
const skip = labSkipReason() ?? etcdSkipReason();
const PREFIX = '/vxlan-router/v1/networks/default';
const GHOST_MAC = '02:de:ad:00:00:01';

const hostRecord = (hostId: string, underlay: string[]): string =>
  JSON.stringify({ version: 1, hostId, underlay, port: 4789, networks: ['default'], mtu: 1450, software: 'hostile', startedAt: new Date().toISOString() });
const macRecord = (hostId: string, vtep: string): string => JSON.stringify({ version: 1, hostId, vtep, macs: [{ vni: VNI, mac: GHOST_MAC, ips: ['198.18.0.66'] }] });

t.test('hostile records in etcd: both routers stay up, none reaches a table, each is reported', { skip: skip ?? false }, async (t) => {
  const { lab, etcd, defineNetwork, destroy } = await etcdLab(ETCD_IP);
  t.teardown(destroy);
  const h1 = await lab.addHost('h1', '198.51.100.1');
  const h2 = await lab.addHost('h2', '198.51.100.2');
  const c1 = await lab.addContainer(h1, 'c1', '198.18.0.1');
  const c2 = await lab.addContainer(h2, 'c2', '198.18.0.2');
  await defineNetwork(h1);
  const args = ['--etcd', etcd.endpoint, '--lease-ttl', '2', '--no-learning'];
  const start = (h: Host): Promise<RouterProcess> => lab.startRouter(h, { peers: [], engine: 'native', vni: null, args });
  const r1 = await start(h1);
  let r2 = await start(h2);
  await waitFor(async () => (await r1.peers())[VNI]?.length === 1 && (await r2.peers())[VNI]?.length === 1, { timeoutMs: 5000, what: 'each router to see the other' });
  t.equal((await lab.ping(c1.ns, c2.ip, 2)).loss, 0, 'c1 → c2 before');

  const put = (key: string, value: string): Promise<unknown> => lab.exec(h1.ns, 'etcdctl', ['--endpoints', etcd.endpoint, 'put', `${PREFIX}/${key}`, value]);
  const rejectedLog = r1.nextLog((m) => /ignoring the host record of zone: underlay\.0 has a zone id/.test(m), 5000);
  await put('hosts/zone', hostRecord('zone', ['fe80::1%eth0']));
  await put('macs/zone', JSON.stringify({ version: 1, hostId: 'zone', vtep: 'fe80::1%eth0', macs: [] }));
  await put('hosts/v6', hostRecord('v6', ['2001:db8::9']));
  await put('hosts/mirror', hostRecord('mirror', ['198.51.100.1'])); // h1's own address under another id
  await put('macs/ghost', macRecord('ghost', '198.51.100.66')); // no host registered ghost
  t.match(await rejectedLog, /E_RECORD|ignoring/, 'h1 reports the record with a zone id');

  // Give the watch time to deliver all five (a put answers after etcd committed it; the watch is a moment later).
  await new Promise((r) => setTimeout(r, 1500));
  t.equal(r1.child.exitCode, null, 'h1 is up');
  t.equal(r2.child.exitCode, null, 'h2 is up');
  t.same((await r1.peers())[VNI], ['198.51.100.2'], 'h1: no peer from any of them (its own address neither)');
  t.same((await r2.peers())[VNI], ['198.51.100.1'], 'h2: h1 once (the record naming h1 is no second peer)');
  const fdb = (h: Host): Promise<FdbRows> => ask(lab.controlSocket(h), 'fdb');
  t.notOk((await fdb(h1)).some((r) => r.mac === GHOST_MAC), 'h1: the MAC record naming an unregistered address is not installed');
  t.notOk((await fdb(h2)).some((r) => r.mac === GHOST_MAC), 'h2: neither');
  t.notOk(((await r1.neighbors())[VNI] ?? []).some((n) => n.ip === '198.18.0.66'), 'nor its address answered by ARP suppression');
  t.equal((await lab.ping(c1.ns, c2.ip, 2)).loss, 0, 'c1 → c2 after');
  t.equal((await lab.ping(c2.ns, c1.ip, 2)).loss, 0, 'c2 → c1 after');
  const logs = [...r1.logs(), ...r2.logs()].join('\n');
  t.match(logs, /ignoring the (host|MAC) record of/, 'the rejections are logged');
  const cp = statusSchema.parse(await ask(lab.controlSocket(h1), 'status')).controlPlane;
  t.ok(cp.rejectedRecords! >= 4, `and counted in status (${cp.rejectedRecords} records rejected)`);
  t.equal(cp.tablesRefused, 0, 'no table reached the data path that it had to refuse');

  // A host registered as ghost, but at another address than its MAC record names: still not installed.
  await put('hosts/ghost', hostRecord('ghost', ['198.51.100.77']));
  await waitFor(async () => (await r1.peers())[VNI]?.includes('198.51.100.77') === true, { timeoutMs: 5000, what: 'ghost to be a peer of h1' });
  t.notOk((await fdb(h1)).some((r) => r.mac === GHOST_MAC), 'a MAC record whose vtep is not its host\'s registered address is not installed');

  // A restart with all of them in etcd: h2 joins, publishes its first table, and forwards.
  await r2.stop();
  r2 = await start(h2);
  await waitFor(async () => (await r2.peers())[VNI]?.includes('198.51.100.1') === true, { timeoutMs: 5000, what: 'h2 to see h1 again' });
  t.equal((await lab.ping(c2.ns, c1.ip, 3)).loss, 0, 'c2 → c1 after h2 restarted among the bad records');
  t.equal(r1.child.exitCode, null, 'h1 is still up');
});
