/**
 * Bounds of the registry against a real etcd (issue 14, finding 6):
 * - a network of 1 000 hosts × 100 MACs (~6 MB of records, over gRPC's default 4 MiB per message) is listed in pages
 *   at one revision: a router joining it gets every host and MAC;
 * - a host with more MACs than MAX_MACS_PER_RECORD advertises that many (the ones it advertised already first),
 *   counts the rest and reports it once.
 */
import t, { type Test } from 'tap';
import { Etcd3 } from 'etcd3';
import { MAX_MACS_PER_RECORD, type RegistryWarning } from '../../src/control/index.js';
import type { HostRecord, NetworkDefinition } from '../../src/control/etcd-registry.js';
import { EtcdServer, etcdSkipReason } from '../../src/lab/etcd.js';
import { waitFor } from '../../src/lab/wait.js';
import { registryOpener } from '../helpers/registries.js';

const HOSTS = 1000;
const MACS = 100;
const PREFIX = '/vxlan-router/v1/networks/scale';
const ipOf = (i: number): string => `198.18.${(i >> 8) & 0xff}.${i & 0xff}`;
const overlayOf = (n: number): string => `198.${18 + (n >> 16)}.${(n >> 8) & 0xff}.${n & 0xff}`; // n < 131072
const hex = (n: number): string => n.toString(16).padStart(2, '0');
const macOf = (host: number, k: number): string => `02:5c:${hex(host >> 8)}:${hex(host & 0xff)}:${hex(k >> 8)}:${hex(k & 0xff)}`;
const record = (hostId: string, ip: string): HostRecord => ({
  version: 1, hostId, underlay: [ip], port: 4789, networks: ['scale'], mtu: 1450, software: 'test', startedAt: new Date().toISOString(),
});

/** A real etcd with the network `scale` defined; a plain etcd3 client on it (`raw`); registries closed at the end. */
async function scaleNetwork(t: Test): Promise<{ raw: Etcd3; open: ReturnType<typeof registryOpener>; network: NetworkDefinition }> {
  const etcd = await EtcdServer.start();
  const raw = new Etcd3({ hosts: [etcd.endpoint] });
  const open = registryOpener(t, etcd.endpoint, {}, async () => {
    raw.close();
    await etcd.destroy();
  });
  const admin = open();
  await admin.createNetwork({ version: 1, name: 'scale', vni: 42, subnet: '198.18.0.0/15' });
  return { raw, open, network: (await admin.getNetwork('scale')) as NetworkDefinition };
}

t.test('1 000 hosts × 100 MACs: listed in pages, every host and MAC in the table', { skip: etcdSkipReason() ?? false }, async (t) => {
  const { raw, open, network } = await scaleNetwork(t);

  // Written as another host's routers would, 50 hosts (100 keys, under etcd's 128 operations) per transaction.
  const written = Date.now();
  for (let first = 1; first <= HOSTS; first += 50) {
    const ops = [];
    for (let i = first; i < first + 50; i++) {
      const id = `sim-${i}`;
      ops.push(raw.put(`${PREFIX}/hosts/${id}`).value(JSON.stringify(record(id, ipOf(i)))));
      const macs = Array.from({ length: MACS }, (_, k) => ({ vni: 42, mac: macOf(i, k), ips: [overlayOf(i * MACS + k)] }));
      ops.push(raw.put(`${PREFIX}/macs/${id}`).value(JSON.stringify({ version: 1, hostId: id, vtep: ipOf(i), macs })));
    }
    await raw.if(`${PREFIX}/config`, 'Create', '>', 0).then(...ops).commit();
  }
  t.comment(`wrote ${HOSTS} hosts × ${MACS} MACs in ${Date.now() - written} ms`);
  await t.rejects(raw.getAll().prefix(`${PREFIX}/`).exec(), /RESOURCE_EXHAUSTED|larger than max|message larger/i, 'one range of it is more than a default gRPC client receives');

  const observer = open();
  const warnings: RegistryWarning[] = [];
  observer.on('warning', (w) => warnings.push(w));
  const joined = Date.now();
  await observer.join(network, record('observer', '198.18.255.254'));
  const table = observer.table().vnis[0]!;
  t.comment(`joined in ${Date.now() - joined} ms`);
  t.equal(table.peers.length, HOSTS, 'every host is a peer');
  t.equal(table.macs.length, HOSTS * MACS, 'every MAC is in the table');
  t.equal(table.neighbors?.length, HOSTS * MACS, 'every address');
  t.same(warnings.map((w) => w.message), [], 'no warning');
});

t.test('more MACs than a record may carry: the first ones stay, the rest are counted and reported once', { skip: etcdSkipReason() ?? false }, async (t) => {
  const { raw, open, network } = await scaleNetwork(t);
  const a = open();
  const warnings: RegistryWarning[] = [];
  a.on('warning', (w) => warnings.push(w));
  await a.join(network, record('a', '198.51.100.1'));
  const macs = (n: number, from = 0): { vni: number; mac: string }[] => Array.from({ length: n }, (_, k) => ({ vni: 42, mac: macOf(0, from + k) }));
  const stored = async (): Promise<string[]> => {
    const value = await raw.get(`${PREFIX}/macs/a`).string();
    return value === null ? [] : (JSON.parse(value) as { macs: { mac: string }[] }).macs.map((m) => m.mac);
  };

  await a.advertise(macs(10, 5000)); // ten MACs advertised first: a spray of new ones later must not push them out
  await a.advertise([...macs(10, 5000), ...macs(MAX_MACS_PER_RECORD + 90)]);
  const kept = await stored();
  t.equal(kept.length, MAX_MACS_PER_RECORD, `${MAX_MACS_PER_RECORD} MACs in the record`);
  t.ok(macs(10, 5000).every((m) => kept.includes(m.mac)), 'the MACs advertised before the spray are among them');
  t.equal(a.counters().unadvertisedMacs, 100, 'the rest counted');
  await a.advertise([...macs(10, 5000), ...macs(MAX_MACS_PER_RECORD + 95)]);
  t.equal(a.counters().unadvertisedMacs, 105);
  t.same(warnings.map((w) => [w.code, w.kind]), [['E_SYSTEM', 'mac-record-full']], 'reported once while it lasts');
  t.match(warnings[0]?.hint, /container/);
  await a.advertise(macs(10, 5000));
  t.equal(a.counters().unadvertisedMacs, 0, 'back under the cap');
  await waitFor(async () => (await stored()).length === 10, { timeoutMs: 2000, what: 'the record to shrink' });
});
