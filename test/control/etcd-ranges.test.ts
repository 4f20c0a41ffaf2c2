/**
 * Per-host address ranges leased in a real etcd: distinct slices for hosts joining at once, the same slice after a
 * restart (and after `docker-network create` reserved it), a full subnet reported (not fatal), records readable with
 * etcdctl.
 */
import { spawnSync } from 'node:child_process';
import t from 'tap';
import { CLI_PATH } from '../../src/lab/lab.js';
import type { HostRecord, NetworkDefinition } from '../../src/control/etcd-registry.js';
import { EtcdServer, etcdSkipReason } from '../../src/lab/etcd.js';
import { registryOpener } from '../helpers/registries.js';

const record = (hostId: string, ip: string): HostRecord => ({
  version: 1, hostId, underlay: [ip], port: 4789, networks: ['r'], mtu: 1450, software: 'test', startedAt: new Date().toISOString(),
});

t.test('address ranges in etcd', { skip: etcdSkipReason() ?? false }, async (t) => {
  const etcd = await EtcdServer.start();
  const open = registryOpener(t, etcd.endpoint, { ttlSeconds: 5 }, () => etcd.destroy());
  const admin = open();
  const def = { version: 1 as const, name: 'r', vni: 7, subnet: '198.18.0.0/24', hostPrefix: 27 }; // eight slices
  await admin.createNetwork(def);
  const network = (await admin.getNetwork('r')) as NetworkDefinition;
  t.equal(network.hostPrefix, 27);
  const cli = (...args: string[]) => spawnSync(process.execPath, [CLI_PATH, 'network', 'create', ...args, '--vni', '9', '--etcd', etcd.endpoint], { encoding: 'utf8' });
  const tooBig = cli('x', '--subnet', '198.18.0.0/24', '--host-prefix', '24');
  t.equal(tooBig.status, 2, 'a slice as big as the subnet is a usage error');
  t.match(tooBig.stderr, /host prefix \/24 does not cut 198\.18\.0\.0\/24 into slices: use one between \/25 and \/30/);
  t.match(cli('y', '--subnet', 'fd00::/64', '--host-prefix', '28').stderr, /--host-prefix: per-host ranges need an IPv4 subnet/);
  t.equal(await admin.getNetwork('x'), undefined, 'nothing written');

  // Seven hosts join at once: each gets a slice of its own.
  const hosts = Array.from({ length: 7 }, (_, i) => ({ id: `h${i}`, r: open() }));
  await Promise.all(hosts.map((h, i) => h.r.join(network, record(h.id, `198.51.100.${i + 1}`))));
  const ranges = hosts.map((h) => h.r.range());
  t.ok(ranges.every((r) => 'range' in r), 'every host has a range');
  const got = ranges.map((r) => ('range' in r ? r.range : ''));
  t.equal(new Set(got).size, 7, `seven distinct slices: ${got.join(' ')}`);
  t.ok(got.every((r) => /^198\.18\.0\.(0|32|64|96|128|160|192|224)\/27$/.test(r)), 'slices of the subnet');

  const listed = spawnSync('etcdctl', ['--endpoints', etcd.endpoint, 'get', '--prefix', '/vxlan-router/v1/networks/r/ranges/'], { encoding: 'utf8' }).stdout.split('\n');
  const key = `/vxlan-router/v1/networks/r/ranges/${got[0]}`;
  const at = listed.indexOf(key);
  t.ok(at >= 0, `${key} is there`);
  t.match(JSON.parse(listed[at + 1]!), { version: 1, hostId: 'h0', range: got[0] }, 'values are JSON');

  // A restart (same host id) keeps the slice: Docker's addresses on that host stay valid.
  await hosts[3]!.r.close();
  const again = open();
  await again.join(network, record('h3', '198.51.100.4'));
  t.same(again.range(), ranges[3], 'h3 has its slice again after a restart');

  // docker-network create reserves a slice before the router runs; the router (same id) takes that one.
  const reserving = open();
  const reserved = await reserving.reserveRange(network, 'h7');
  await reserving.close();
  t.ok('range' in reserved && !got.includes(reserved.range), 'the eighth slice reserved for h7');
  const h7 = open();
  await h7.join(network, record('h7', '198.51.100.8'));
  t.same(h7.range(), reserved, 'the router of h7 uses the reserved slice');

  // The ninth host finds none: it still joins and forwards, and says why it has no range.
  const h8 = open();
  const warnings: string[] = [];
  h8.on('warning', (e) => warnings.push(`${e.kind}: ${e.message}`));
  await h8.join(network, record('h8', '198.51.100.9'));
  t.match(h8.range(), { none: /all 8 \/27 slices of 198\.18\.0\.0\/24 are leased/, reason: 'exhausted' });
  t.match(warnings.join('\n'), /no address range for this host/);
  t.match(warnings.join('\n'), /^ranges-exhausted: no address range/m, 'a warning of kind ranges-exhausted');
  t.equal(h8.controlPlane().state, 'connected', 'joined all the same');

  // An IPv6 network has no slices, and says so.
  await admin.createNetwork({ version: 1, name: 'six', vni: 8, subnet: 'fd00:198:18::/64' });
  const six = open();
  await six.join((await admin.getNetwork('six'))!, { ...record('s', '198.51.100.10'), networks: ['six'] });
  t.match(six.range(), { none: /IPv4 subnet/, reason: 'unsliceable' });
});
