/**
 * The etcd registry against a real etcd on loopback: network definitions by compare-and-swap, hosts finding each
 * other through list + watch, a graceful leave, and a crashed host dropping out when its lease expires.
 */
import { spawn, spawnSync } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import type { HostRecord, NetworkDefinition } from '../../src/control/etcd-registry.js';
import type { RegistryWarning } from '../../src/control/index.js';
import type { TableSnapshot } from '../../src/fdb/index.js';
import { EtcdServer, etcdSkipReason } from '../../src/lab/etcd.js';
import { registryOpener, twoJoined } from '../helpers/registries.js';
import { waitFor } from '../../src/lab/wait.js';

const record = (hostId: string, ip: string): HostRecord => ({
  version: 1, hostId, underlay: [ip], port: 4789, networks: ['default'], mtu: 1450, software: 'test', startedAt: new Date().toISOString(),
});
const peersOf = (t: TableSnapshot): string[] => [...(t.vnis[0]?.peers ?? [])].sort();

t.test('etcd registry', { skip: etcdSkipReason() ?? false }, async (t) => {
  const etcd = await EtcdServer.start();
  const open = registryOpener(t, etcd.endpoint, {}, () => etcd.destroy());

  const admin = open();
  const def = { version: 1 as const, name: 'default', vni: 42, subnet: '198.18.0.0/15' };
  t.equal(await admin.createNetwork(def), 'created');
  t.equal(await admin.createNetwork(def), 'unchanged', 'the same definition again is fine');
  await t.rejects(admin.createNetwork({ ...def, vni: 43 }), { code: 'E_CONFIG', message: /already exists with another definition/, hint: /--force/ });
  t.equal(await admin.createNetwork({ ...def, vni: 43 }, true), 'replaced');
  t.equal((await admin.getNetwork('default'))?.vni, 43);
  await admin.createNetwork(def, true);
  t.equal(await admin.getNetwork('nope'), undefined);
  const network = (await admin.getNetwork('default')) as NetworkDefinition;
  const raw = spawnSync('etcdctl', ['--endpoints', etcd.endpoint, 'get', '/vxlan-router/v1/networks/default/config', '--print-value-only'], { encoding: 'utf8' });
  t.same(JSON.parse(raw.stdout), { ...def, port: 4789 }, 'values are JSON, readable with etcdctl');

  const a = open();
  const b = open();
  const tables = { a: [] as TableSnapshot[], b: [] as TableSnapshot[] };
  a.on('table', (x) => tables.a.push(x));
  b.on('table', (x) => tables.b.push(x));
  await a.join(network, record('a', '198.51.100.1'));
  await b.join(network, record('b', '198.51.100.2'));
  // c joins from a process of its own (lease TTL 2 s), so that it can really crash.
  const registryModule = fileURLToPath(new URL('../../dist/control/etcd-registry.js', import.meta.url));
  const script = `const { EtcdRegistry } = await import(${JSON.stringify(registryModule)});
    const r = new EtcdRegistry({ endpoints: [${JSON.stringify(etcd.endpoint)}], ttlSeconds: 2 });
    await r.join(JSON.parse(process.argv[1]), JSON.parse(process.argv[2])); console.log('joined'); setInterval(() => {}, 1000);`;
  const c = spawn(process.execPath, ['--input-type=module', '-e', script, JSON.stringify(network), JSON.stringify(record('c', '198.51.100.3'))], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.teardown(() => c.kill('SIGKILL'));
  let cOut = '';
  c.stdout!.on('data', (d: Buffer) => (cOut += d.toString()));
  await waitFor(() => cOut.includes('joined'), { timeoutMs: 10_000, what: 'c to join' });
  await waitFor(() => peersOf(a.table()).length === 2 && peersOf(b.table()).length === 2, { timeoutMs: 5000, what: 'all three hosts seen' });
  t.same(peersOf(a.table()), ['198.51.100.2', '198.51.100.3'], 'a sees b and c, not itself');
  t.same(peersOf(b.table()), ['198.51.100.1', '198.51.100.3']);
  t.equal(a.table().vnis[0]?.vni, 42, 'the VNI comes from the network definition');
  t.ok(tables.b.length >= 2, 'changes arrive as table events');

  // A crash: kill -9, so nothing revokes c's lease (TTL 2 s): it drops out of the others' tables within 2 × TTL + 1.5 s
  // (expiry 1.3-2 s after the last keepalive, etcd's 500 ms expiry sweep, then the watch, on a loaded 2-core box).
  const crashed = Date.now();
  c.kill('SIGKILL');
  await waitFor(() => !peersOf(a.table()).includes('198.51.100.3'), { timeoutMs: 8000, what: 'c to expire' });
  const goneMs = Date.now() - crashed;
  t.ok(goneMs <= 5500, `c gone from a's table ${goneMs} ms after kill -9 (TTL 2 s)`);

  // A graceful leave revokes the lease: b is gone from a at once.
  await b.close();
  await waitFor(() => peersOf(a.table()).length === 0, { timeoutMs: 2000, what: 'b to leave' });
  t.same(peersOf(a.table()), []);
  t.match(a.controlPlane(), { state: 'connected', hosts: 1 });
  t.ok(a.controlPlane().revision > 0, 'the revision of the last change');
});

t.test('a MAC that moved: the old host withdraws it, and claims it again when it comes back', { skip: etcdSkipReason() ?? false }, async (t) => {
  const { a, b, value } = await twoJoined(t);
  const X = '02:00:00:00:00:99';
  const vtepOf = (r: typeof a): string | undefined => r.table().vnis[0]?.macs.find((m) => m.mac === X)?.vtep;
  const macsOfA = (): string => value('macs/a');

  await a.advertise([{ vni: 42, mac: X, ageMs: 0 }]);
  await waitFor(() => vtepOf(b) === '198.51.100.1', { timeoutMs: 3000, what: 'b to see X at a' });
  // X moves to b: b sees it now; a last saw it before b's claim reached a.
  await b.advertise([{ vni: 42, mac: X, ageMs: 0 }]);
  await waitFor(() => vtepOf(a) === '198.51.100.2', { timeoutMs: 3000, what: 'a to see X at b' });
  // a recomposes its record on every etcd change: b's newer claim of X, made after a last saw X, withdraws it at once
  // (before, the two claimed X until a's next advertise).
  await waitFor(() => !macsOfA().includes(X), { timeoutMs: 3000, what: 'a to withdraw X on its own' });
  await waitFor(() => a.macConflicts().length === 0, { timeoutMs: 3000, what: "a's view to drop its own claim" });
  await a.advertise([{ vni: 42, mac: X, ageMs: 60_000 }, { vni: 42, mac: '02:00:00:00:00:0a', ageMs: 0 }]);
  t.notMatch(macsOfA(), X, "a withdrew X (another host claimed it after a last saw it), while writing its record again");
  await waitFor(() => b.macConflicts().length === 0, { timeoutMs: 3000, what: 'the conflict to end' });
  t.equal(vtepOf(a), '198.51.100.2', 'a still sends X to b');
  // X speaks at a again: a claims it anew, and b follows.
  await a.advertise([{ vni: 42, mac: X, ageMs: 0 }, { vni: 42, mac: '02:00:00:00:00:0a', ageMs: 0 }]);
  t.match(macsOfA(), X);
  await waitFor(() => vtepOf(b) === '198.51.100.1', { timeoutMs: 3000, what: 'b to see X back at a' });
  t.pass('X moved back to a');
});

/** A loopback port nothing listens on (it was free a moment ago). */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

t.test("a snapshot's address range is reported before etcd answers", async (t) => {
  const open = registryOpener(t, `http://127.0.0.1:${await closedPort()}`, { callTimeoutMs: 300, retry: { initialMs: 50, maxMs: 100 } }, () => undefined);
  const network: NetworkDefinition = { version: 1, name: 'default', vni: 42, subnet: '198.18.0.0/15', port: 4789 };
  const slice = { range: '198.18.7.0/24', gateway: '198.18.7.1', addresses: 256 };

  const r = open();
  t.match(r.range(), { none: /not leased yet/, reason: 'not-leased' }, 'no range before the snapshot');
  r.assumeSnapshot(network, 17, 3, slice.range);
  t.same(r.range(), slice, "the snapshot's range, with etcd unreachable");
  t.match(r.controlPlane(), { revision: 17, hosts: 3 }, "the snapshot's revision and host count");

  const warnings: RegistryWarning[] = [];
  r.on('warning', (w) => warnings.push(w));
  void r.joinInBackground(network, record('a', '198.51.100.1'));
  await waitFor(() => warnings.length >= 2, { timeoutMs: 5000, what: 'two failed attempts to join' });
  t.same(r.range(), slice, 'kept while the join keeps failing');
  t.match(r.controlPlane(), { state: 'degraded', revision: 17, hosts: 3 });
  t.match(warnings[0], { code: 'E_ETCD', kind: 'retry', recoverable: true, message: /^joining etcd failed \(etcd at http:\/\/127\.0\.0\.1:\d+.*\): retrying in 50 ms$/, hint: /check that it runs/ });

  const other = open();
  other.assumeSnapshot(network, 17, 3, '10.1.0.0/24');
  t.match(other.range(), { reason: 'not-leased' }, 'a range that is no slice of the subnet is ignored');
});

t.test('network rm: removes every record of an unused network; refused while a host advertises a container on it, also one that appears during the check', { skip: etcdSkipReason() ?? false }, async (t) => {
  const etcd = await EtcdServer.start();
  const open = registryOpener(t, etcd.endpoint, {}, () => etcd.destroy());
  const admin = open();
  const ctl = (...args: string[]): string => spawnSync('etcdctl', ['--endpoints', etcd.endpoint, ...args], { encoding: 'utf8' }).stdout;
  const keysOf = (name: string): string[] => ctl('get', '--prefix', '--keys-only', `/vxlan-router/v1/networks/${name}/`).split('\n').filter(Boolean);
  const macs = (ip: string): string => JSON.stringify({ version: 1, hostId: 'h', macs: [{ vni: 42, mac: '02:00:00:00:00:01', ips: [ip] }] });
  const def = { version: 1 as const, name: 'blue', vni: 42, subnet: '198.18.0.0/16' };

  await admin.createNetwork(def);
  ctl('put', '/vxlan-router/v1/networks/blue/macs/h', macs('198.19.0.5'));
  t.same(await admin.deleteNetworkUnlessUsed('blue', def.subnet), [], 'a MAC outside the subnet is no use of it');
  t.same(keysOf('blue'), [], 'the definition and every record under it are gone');

  await admin.createNetwork(def);
  ctl('put', '/vxlan-router/v1/networks/blue/macs/h', macs('198.18.3.4'));
  t.same(await admin.deleteNetworkUnlessUsed('blue', def.subnet), [{ hostId: 'h', macs: 1 }], 'refused: h advertises a container on it');
  t.equal(keysOf('blue').length, 2, 'nothing removed');

  // A container appears between the check and the removal: the removal's transaction sees it and checks again.
  ctl('del', '/vxlan-router/v1/networks/blue/macs/h');
  const kv = (admin as unknown as { client: { etcd: { kv: { txn: (...a: unknown[]) => Promise<unknown> } } } }).client.etcd.kv;
  const txn = kv.txn.bind(kv);
  let raced = 0;
  kv.txn = async (...a: unknown[]) => {
    if (raced++ === 0) ctl('put', '/vxlan-router/v1/networks/blue/macs/h', macs('198.18.3.4'));
    return txn(...a);
  };
  t.same(await admin.deleteNetworkUnlessUsed('blue', def.subnet), [{ hostId: 'h', macs: 1 }], 'refused on the second look');
  t.equal(raced, 1, 'the first removal did not happen');
  t.equal(keysOf('blue').length, 2, 'the network and the new container record stay');
});
