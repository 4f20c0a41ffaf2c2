/**
 * Hosts that find each other through etcd alone (no --peer):
 *
 *   [h1 .1] router ┐                 ┌ router [h3 .3]
 *                  ╞═ switch (etcd at 198.51.100.254) ═╡
 *   [h2 .2] router ┘                 (each with br0 and one container 198.18.0.N)
 *
 * The network is defined once with `network create`; three routers join it; every container pings every other.
 * kill -9 of one router: its VTEP leaves the others' tables within twice the lease TTL + 1.5 s.
 */
import t from 'tap';
import { peersSchema, statusSchema } from '../../src/agent/index.js';
import { etcdLab, etcdSkipReason } from '../../src/lab/etcd.js';
import { CLI_PATH, labSkipReason, VNI, type Container, type Host } from '../../src/lab/lab.js';
import type { RouterProcess } from '../../src/lab/router-process.js';
import { waitFor } from '../../src/lab/wait.js';

const ETCD_IP = '198.51.100.254';
const skip = labSkipReason() ?? etcdSkipReason();

t.test('three hosts join through etcd', { skip: skip ?? false }, async (t) => {
  const { lab, etcd, defineNetwork, destroy } = await etcdLab(ETCD_IP);
  t.teardown(destroy);
  const ips = ['198.51.100.1', '198.51.100.2', '198.51.100.3'];
  const hosts: Host[] = [];
  const cs: Container[] = [];
  for (const [i, ip] of ips.entries()) {
    hosts.push(await lab.addHost(`h${i + 1}`, ip));
    cs.push(await lab.addContainer(hosts[i]!, `c${i + 1}`, `198.18.0.${i + 1}`));
  }

  const created = await defineNetwork(hosts[0]!);
  t.match(created, /^network default created \(VNI 42, 198\.18\.0\.0\/15\)$/m);
  const again = await lab.exec(hosts[0]!.ns, process.execPath, [CLI_PATH, 'network', 'create', 'default', '--vni', '7', '--subnet', '198.18.0.0/15', '--etcd', etcd.endpoint]).catch((e: Error) => e.message);
  t.match(String(again), /already exists with another definition/, 'a different definition is refused without --force');

  const args = ['--etcd', etcd.endpoint, '--lease-ttl', '2'];
  const routers: RouterProcess[] = [];
  for (const h of hosts) routers.push(await lab.startRouter(h, { peers: [], engine: 'native', vni: null, args }));
  // Every router, not only h1: h2 learns of h3 through its own watch, and the pings below go all ways.
  await waitFor(async () => (await Promise.all(routers.map((r) => r.peers()))).every((p) => p[VNI]?.length === 2), { timeoutMs: 5000, what: 'every router to see the other two' });
  t.same((await routers[0]!.peers())[VNI], [ips[1], ips[2]], 'h1 learned its peers from etcd');

  for (const a of cs) {
    for (const b of cs) {
      if (a !== b) t.equal((await lab.ping(a.ns, b.ip, 2)).loss, 0, `${a.name} → ${b.name}`);
    }
  }

  // `peers` shows what the registry says of each peer, and what the data path heard from it.
  const peerRows = peersSchema.parse(JSON.parse((await lab.exec(hosts[0]!.ns, process.execPath, [CLI_PATH, 'peers', '--socket', lab.controlSocket(hosts[0]!), '--json'])).stdout));
  t.same(peerRows.map((p) => [p.address, p.origin, p.networks, p.mtu]), [[ips[1], 'etcd', ['default'], 1450], [ips[2], 'etcd', ['default'], 1450]]);
  t.ok(peerRows.every((p) => p.hostId?.endsWith(p.address) && p.lastUpdateAgoMs! >= 0 && p.lastSeenAgoMs! < 30_000 && p.rxFrames > 0), 'host ids, last update, last heard');

  // Each host leased its own /24 of 198.18.0.0/15 for Docker's IPAM, shown by status.
  const statuses = await Promise.all(hosts.slice(0, 3).map(async (h) => statusSchema.parse(JSON.parse((await lab.exec(h.ns, process.execPath, [CLI_PATH, 'status', '--socket', lab.controlSocket(h), '--json'])).stdout))));
  const ranges = statuses.map((s) => s.networks[0]!.range);
  t.ok(ranges.every((r) => r !== null && /^198\.1[89]\.\d+\.0\/24$/.test(r)), `ranges ${ranges.join(', ')}`);
  t.equal(new Set(ranges).size, 3, 'one range a host');
  t.equal(statuses[0]!.networks[0]!.gateway, ranges[0]!.replace(/0\/24$/, '1'), 'the gateway is its first address');
  const text = (await lab.exec(hosts[0]!.ns, process.execPath, [CLI_PATH, 'status', '--socket', lab.controlSocket(hosts[0]!)])).stdout;
  t.match(text, new RegExp(`address range: ${ranges[0]!.replace(/\./g, '\\.')} \\(gateway`), 'status shows it');

  const killed = Date.now();
  routers[2]!.child.kill('SIGKILL');
  // The lease expires 1.3-2 s after the last keepalive, etcd looks for expired leases every 500 ms, then the watch
  // and this polling (a control-socket round trip each) on a loaded 2-core box: 2 × TTL + 1.5 s.
  await waitFor(async () => !(await routers[0]!.peers())[VNI]?.includes(ips[2]!), { timeoutMs: 8000, intervalMs: 100, what: 'h3 to leave h1' });
  const goneMs = Date.now() - killed;
  t.ok(goneMs <= 5500, `h3 gone from h1's table ${goneMs} ms after kill -9 (TTL 2 s)`);
  // h2 learns it through its own watch, maybe a moment after h1.
  await waitFor(async () => JSON.stringify((await routers[1]!.peers())[VNI]) === JSON.stringify([ips[0]]), { timeoutMs: 5000, intervalMs: 100, what: 'h3 to leave h2' });
  t.same((await routers[1]!.peers())[VNI], [ips[0]], 'and from h2\'s');
  t.equal((await lab.ping(cs[0]!.ns, cs[1]!.ip, 2)).loss, 0, 'the others still reach each other');
});
