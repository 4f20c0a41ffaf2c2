/**
 * Compaction during an outage, against a real etcd: a router's registry (A) reaches etcd through a TCP proxy that
 * the test cuts, while other hosts come and go, a malformed record is written and the history A would resume from is
 * compacted away. When the proxy lets A through again its watch cannot resume (the revision is gone): it lists again,
 * converges on the hosts that are there now, and registers again (its 2 s lease ran out meanwhile).
 *
 *   A ── proxy (cut) ──┐
 *   B, C, D, admin ────┴── etcd (loopback, own port and data dir)
 */
import { spawnSync } from 'node:child_process';
import t from 'tap';
import { REGISTRY_WARNING_KINDS, type ControlPlaneState, type HostRecord, type NetworkDefinition } from '../../src/control/index.js';
import type { TableSnapshot } from '../../src/fdb/index.js';
import { EtcdServer, etcdSkipReason } from '../../src/lab/etcd.js';
import { registryOpener } from '../helpers/registries.js';
import { TcpProxy } from '../../src/lab/tcp-proxy.js';
import { waitFor } from '../../src/lab/wait.js';

const record = (hostId: string, ip: string): HostRecord => ({
  version: 1, hostId, underlay: [ip], port: 4789, networks: ['default'], mtu: 1450, software: 'test', startedAt: new Date().toISOString(),
});
const peersOf = (x: TableSnapshot): string[] => [...(x.vnis[0]?.peers ?? [])].sort();

t.test('compaction while a watcher is cut off', { skip: etcdSkipReason() ?? false }, async (t) => {
  const etcd = await EtcdServer.start();
  const port = Number(new URL(etcd.endpoint).port);
  const proxy = await TcpProxy.start({ host: '127.0.0.1', port });
  const opener = registryOpener(t, etcd.endpoint, { retry: { initialMs: 100, maxMs: 500 } }, async () => {
    await proxy.close();
    await etcd.destroy();
  });
  const open = (endpoint: string, ttlSeconds = 15) => opener({ endpoints: [endpoint], ttlSeconds });
  const etcdctl = (...args: string[]): string => {
    const r = spawnSync('etcdctl', ['--endpoints', etcd.endpoint, ...args], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`etcdctl ${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };
  const hostKey = (id: string): string => `/vxlan-router/v1/networks/default/hosts/${id}`;

  const admin = open(etcd.endpoint);
  await admin.createNetwork({ version: 1, name: 'default', vni: 42, subnet: '198.18.0.0/15' });
  const network = (await admin.getNetwork('default')) as NetworkDefinition;

  const a = open(proxy.endpoint, 2);
  const states: ControlPlaneState[] = [];
  const warnings: string[] = [];
  const kinds = new Map<string, string>(); // kind → code
  a.on('state', (s) => states.push(s));
  a.on('warning', (e) => {
    warnings.push(e.message);
    kinds.set(e.kind, e.code);
  });
  t.equal(a.controlPlane().state, 'starting', 'starting before the first join');
  const b = open(etcd.endpoint);
  await b.join(network, record('b', '198.51.100.2'));
  await a.join(network, record('a', '198.51.100.1'));
  t.same(peersOf(a.table()), ['198.51.100.2']);
  t.match(a.controlPlane(), { state: 'connected', hosts: 2 });

  // A malformed record while A watches: ignored and counted, and the watch goes on.
  etcdctl('put', hostKey('junk'), 'not json {');
  etcdctl('put', hostKey('liar'), JSON.stringify(record('someone-else', '198.51.100.9')));
  await waitFor(() => a.counters().rejectedRecords === 2, { timeoutMs: 3000, what: 'two rejected records' });
  t.ok(warnings.some((w) => /ignoring the host record of junk: not JSON/.test(w)), 'a record that is not JSON is reported');
  t.ok(warnings.some((w) => /ignoring the host record of liar: its hostId is "someone-else"/.test(w)), 'a record under another host\'s key is reported');
  t.equal(kinds.get('record-rejected'), 'E_RECORD', 'bad records are warnings of kind record-rejected, code E_RECORD');

  // Cut A off; etcd runs on.
  proxy.cut();
  await waitFor(() => a.controlPlane().state === 'degraded', { timeoutMs: 5000, what: 'A to notice the cut' });
  const degradedAt = a.controlPlane().since;

  // Meanwhile: b leaves, c and d join, a burst of writes, then the history is compacted.
  const c = open(etcd.endpoint);
  await b.close();
  await c.join(network, record('c', '198.51.100.3'));
  await open(etcd.endpoint).join(network, record('d', '198.51.100.4'));
  etcdctl('del', hostKey('junk'));
  for (let i = 0; i < 20; i++) etcdctl('put', '/vxlan-router/v1/unrelated', String(i));
  const rev = (JSON.parse(etcdctl('get', '/vxlan-router/v1/unrelated', '-w', 'json')) as { header: { revision: number } }).header.revision;
  etcdctl('compact', String(rev));
  // A's lease (2 s) runs out while it is cut off: the others drop it.
  await waitFor(() => !peersOf(c.table()).includes('198.51.100.1'), { timeoutMs: 6000, what: "A's lease to expire" });
  t.same(peersOf(a.table()), ['198.51.100.2'], 'cut off, A forwards with its last table');
  t.equal(a.controlPlane().state, 'degraded');

  proxy.restore();
  const restored = Date.now();
  await waitFor(() => peersOf(a.table()).join() === '198.51.100.3,198.51.100.4', { timeoutMs: 10_000, what: 'A to converge' });
  t.pass(`A converged ${Date.now() - restored} ms after the cut ended`);
  await waitFor(() => a.controlPlane().state === 'connected', { timeoutMs: 10_000, what: 'A connected again' });
  await waitFor(() => peersOf(c.table()).includes('198.51.100.1'), { timeoutMs: 5000, what: 'A registered again' });
  t.pass(`A is back in the others' tables ${Date.now() - restored} ms after the cut ended`);

  // A's own new record reaches A through its watch, which may come after C's did.
  await waitFor(() => a.controlPlane().hosts === 3, { timeoutMs: 5000, what: 'A to see its own new record' });
  const counters = a.counters();
  t.ok(counters.relists >= 1, `A listed again after compaction (${counters.relists} relist(s))`);
  t.ok(counters.leaseRegrants >= 1, `A registered under a new lease (${counters.leaseRegrants})`);
  t.ok(counters.rejectedRecords >= 3, `the record still malformed in etcd is counted again by each listing (${counters.rejectedRecords} in all)`);
  t.notOk(a.hosts().some((h) => h.hostId === 'someone-else'), 'and never enters the table');
  t.ok(warnings.some((w) => /etcd watch ended .*listing again/.test(w)), 'the watch ending was reported');
  t.equal(kinds.get('watch-ended'), 'E_ETCD', 'as a warning of kind watch-ended');
  t.ok([...kinds.keys()].every((k) => (REGISTRY_WARNING_KINDS as readonly string[]).includes(k)), `every warning has a known kind (${[...kinds.keys()].join(', ')})`);
  const cp = a.controlPlane();
  t.match(cp, { state: 'connected', hosts: 3 }, 'a, c, d');
  t.ok(cp.revision > rev, `revision ${cp.revision} is past the compaction at ${rev}`);
  t.ok(cp.since > degradedAt, 'since moved on when it connected again');
  t.same([...new Set(states.map((s) => s.state))], ['connected', 'degraded'], 'state events: connected, degraded, connected ...');
  t.equal(states.at(-1)?.state, 'connected');
});
