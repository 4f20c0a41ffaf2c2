/**
 * Compose files with `driver: vxlan-router` (issue 16), without a dockerd: compose names its network
 * `<project>_<name>` and labels it; the router defines a new one in etcd under the compose file's name (the same on
 * every host whatever the project is called), matches one etcd already defines by subnet or VNI, refuses a subnet
 * that differs from etcd's, says how to define one it cannot, and its containers resolve by service name (their
 * alias on the compose network). The first `up` of a file that defines a new network: its containers' calls wait
 * (bounded) until the sync has defined it and leased this host's slice, instead of failing until the router serves it.
 */
import { createServer } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import type { DaemonView, ServedNetwork } from '../../src/agent/daemon.js';
import { DockerNames, type DockerGet } from '../../src/agent/docker-names.js';
import { PluginCallError } from '../../src/agent/docker-plugin.js';
import { dockerPlugin } from '../../src/agent/docker-serve.js';
import { COMPOSE_NETWORK_LABEL, definitionName, DockerSync } from '../../src/agent/docker-sync.js';
import { Slices } from '../../src/control/index.js';
import { silentLogger } from '../../src/log.js';

const blue: ServedNetwork = { name: 'blue', vni: 42, tap: 'vxr42', bridge: 'vxr-blue', mtu: 65000, configuredMtu: null, containerMtu: 1450, startedFrom: 'etcd', subnet: '198.18.0.0/15' };
const id = (c: string): string => c.repeat(64);
/** What dockerd sends for `docker-compose up` of a network with these driver_opts and this ipam subnet. */
const composeCreate = (nid: string, subnet: string, opts: Record<string, string> = {}) => ({ NetworkID: nid, Options: { 'com.docker.network.generic': opts }, IPv4Data: [{ Pool: subnet }] });

t.test('the name a compose network is defined under in etcd', async (t) => {
  const labels = (project: string, name: string) => ({ [COMPOSE_NETWORK_LABEL]: name, 'com.docker.compose.project': project, 'com.docker.compose.version': '1.29.2' });
  const req = { dockerId: id('a'), subnet: '198.19.0.0/16', vni: 43 };
  t.equal(definitionName({ Name: 'shop_green', Labels: labels('shop', 'green') }, req), 'green', "compose's <project>_green: the compose file's name");
  t.equal(definitionName({ Name: 'other_green', Labels: labels('other', 'green') }, req), 'green', 'another project name on another host: the same network');
  t.equal(definitionName({ Name: 'shop_green', Labels: labels('shop', 'green') }, { ...req, network: 'lime' }), 'lime', 'driver_opts network=NAME wins');
  t.equal(definitionName({ Name: 'green', Labels: null }, req), 'green', 'docker network create: the Docker name');
  t.equal(definitionName({ Name: 'shop_x', Labels: labels('shop', 'Not A Name!') }, req), 'shop_x', 'a label that is no network name: the Docker name');
});

t.test('compose networks on a router that serves blue', async (t) => {
  const view = { info: { networks: [blue] }, ranges: () => [] } as unknown as DaemonView;
  const plugin = dockerPlugin(view, () => undefined);
  await plugin.driver.createNetwork(composeCreate(id('a'), '198.18.0.0/15'));
  t.match(plugin.driver.attachment(id('a')), { name: 'blue', vni: 42, bridge: 'vxr-blue' }, 'shop_blue with the subnet of blue (no driver_opts): blue');
  await plugin.driver.createNetwork(composeCreate(id('b'), '198.18.0.0/15', { vni: '42' }));
  t.match(plugin.driver.attachment(id('b')), { name: 'blue' }, 'with driver_opts vni: 42: blue');
  await t.rejects(plugin.driver.createNetwork(composeCreate(id('c'), '198.18.0.0/16', { vni: '42' })), { message: /network blue's subnet is 198\.18\.0\.0\/15, not 198\.18\.0\.0\/16/ }, "a subnet other than etcd's: refused, saying etcd's");
  await t.rejects(plugin.driver.createNetwork(composeCreate(id('d'), '198.18.0.0/16', { network: 'blue' })), { message: /subnet is 198\.18\.0\.0\/15/ }, 'the same with driver_opts network: blue');
  const err = await plugin.driver.createNetwork(composeCreate(id('e'), '198.30.0.0/16')).catch((e: Error & { hint?: string }) => e);
  t.match(err, { message: /does not serve subnet 198\.30\.0\.0\/16 \(it serves blue/, hint: /vxlan-router network create NAME --vni N --subnet 198\.30\.0\.0\/16.*driver_opts: \{ vni: "N" \}/ }, 'a subnet etcd does not define, no VNI: refused, saying both ways to define it');
  t.same(plugin.pending?.take(), [], 'nothing waits to be defined');
  await plugin.driver.createNetwork(composeCreate(id('f'), '198.30.0.0/16', { vni: '44' }));
  t.same(plugin.pending?.take().map((p) => p.request), [{ dockerId: id('f'), subnet: '198.30.0.0/16', vni: 44 }], 'with driver_opts vni: 44: accepted, defined by the sync');
  const pool = await plugin.ipam.requestPool({ AddressSpace: 'global', Pool: '198.31.0.0/16' });
  await t.rejects(plugin.ipam.requestAddress({ PoolID: pool.PoolID }), { message: /serves no network with subnet 198\.31\.0\.0\/16 \(yet\)/, hint: /start the container again/ }, 'a subnet nothing serves nor waits for: refused at once, saying to try again');
});

t.test("compose's first up of a network it defines: its containers wait for the definition and this host's slice", async (t) => {
  const view = { info: { networks: [blue] }, ranges: () => [] } as unknown as DaemonView;
  const plugin = dockerPlugin(view, () => undefined, 300);
  const early = plugin.early!;
  await plugin.driver.createNetwork(composeCreate(id('f'), '198.30.0.0/16', { vni: '44' }));
  const pool = await plugin.ipam.requestPool({ AddressSpace: 'global', Pool: '198.30.0.0/16' });
  const began = Date.now();
  const address = plugin.ipam.requestAddress({ PoolID: pool.PoolID });
  // What the sync does in the background: defines lime in etcd, leases this host's slice, makes the bridge.
  const slice = new Slices('198.30.0.0/16', 24).find('198.30.7.0/24')!;
  setTimeout(() => early.ready(id('f'), { attachment: { name: 'lime', vni: 44, bridge: 'vxr-lime', mtu: 1450 }, subnet: '198.30.0.0/16', slice }), 50);
  t.same(await address, { Address: '198.30.7.2/16', Data: {} }, 'its first container waits, then gets the first free address of the slice leased for it (before the router serves lime)');
  t.ok(Date.now() - began >= 40, 'it waited for the slice');
  t.same(await plugin.ipam.requestAddress({ PoolID: pool.PoolID }), { Address: '198.30.7.3/16', Data: {} }, 'the next one at once');

  await plugin.driver.createNetwork(composeCreate(id('g'), '198.32.0.0/16', { vni: '45' }));
  const never = await plugin.ipam.requestPool({ AddressSpace: 'global', Pool: '198.32.0.0/16' });
  await t.rejects(plugin.ipam.requestAddress({ PoolID: never.PoolID }), { message: /with subnet 198\.32\.0\.0\/16 is not served by vxlan-router yet: it was not defined in etcd within 0\.3 s/, hint: /vxlan-router status/ }, 'never defined: refused after a bounded wait');
  await plugin.driver.createNetwork(composeCreate(id('h'), '198.33.0.0/16', { vni: '46' }));
  const conflict = await plugin.ipam.requestPool({ AddressSpace: 'global', Pool: '198.33.0.0/16' });
  const refused = plugin.ipam.requestAddress({ PoolID: conflict.PoolID });
  early.failed(id('h'), new PluginCallError('network lime is defined with VNI 44, not 46'));
  await t.rejects(refused, { message: 'network lime is defined with VNI 44, not 46' }, "a definition that fails: its containers are told why");
  early.failed(id('g'), new Error('nobody waits')); // no unhandled rejection
  await plugin.driver.deleteNetwork({ NetworkID: id('g') });
  t.equal(early.byId(id('g')), undefined, 'a removed Docker network waits no more');
});

t.test('the sync defines a network the plugin accepted, under its compose name, even when dockerd shows it late', async (t) => {
  // A stand-in dockerd: the network is not there at the first look (the plugin's answer comes before dockerd stores it).
  const dir = mkdtempSync(join(tmpdir(), 'vxr-compose-sync-'));
  const socket = join(dir, 'docker.sock');
  const nid = id('9');
  let inspected = 0;
  const server = createServer((req, res) => {
    const send = (status: number, body: unknown) => res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    if (req.url === '/networks') return send(200, []);
    if (req.url === `/networks/${nid}`) {
      inspected++;
      if (inspected === 1) return send(404, { message: 'not found' });
      return send(200, { Name: 'garden_green', Id: nid, Driver: 'vxlan-router', Options: { vni: '43' }, Labels: { [COMPOSE_NETWORK_LABEL]: 'green' }, IPAM: { Config: [{ Subnet: '198.19.0.0/16' }] } });
    }
    send(404, { message: 'no such thing' });
  });
  await new Promise<void>((r) => server.listen(socket, r));
  const view = { info: { networks: [blue] }, ranges: () => [] } as unknown as DaemonView;
  let sync: DockerSync | undefined;
  const plugin = dockerPlugin(view, () => sync?.kick(), 2000);
  const defined: string[] = [];
  let adopted = 0;
  sync = new DockerSync({
    socket, served: () => [], driver: plugin.driver, ipam: plugin.ipam, pending: () => plugin.pending!.take(),
    define: async (def, dockerId) => {
      defined.push(`${def.name} ${def.vni} ${def.subnet} ${dockerId.slice(0, 4)}`);
      plugin.early!.ready(dockerId, { attachment: { name: def.name, vni: def.vni, bridge: 'vxr-green', mtu: 1450 }, subnet: def.subnet, slice: new Slices(def.subnet, 24).find('198.19.4.0/24')! });
      return 'created';
    },
    serves: () => false, adopted: () => void adopted++, waiting: () => true, leftFile: join(dir, 'left.json'), log: silentLogger, warn: () => undefined,
  });
  t.teardown(async () => {
    await sync!.close();
    server.close();
    rmSync(dir, { recursive: true, force: true });
  });
  sync.start();
  await plugin.driver.createNetwork(composeCreate(nid, '198.19.0.0/16', { vni: '43' }));
  const pool = await plugin.ipam.requestPool({ AddressSpace: 'global', Pool: '198.19.0.0/16' });
  t.same(await plugin.ipam.requestAddress({ PoolID: pool.PoolID }), { Address: '198.19.4.2/16', Data: {} }, "the container's address, once defined and readied");
  t.same(defined, ['green 43 198.19.0.0/16 9999'], "defined once, under the compose file's name, for that Docker network");
  t.ok(inspected >= 2, 'dockerd did not show it at first: asked again');
  t.ok(adopted >= 1, 'the first pass said it adopted (calls for unknown networks wait no more)');
});

t.test("compose's containers resolve by service name: their alias on <project>_blue", async (t) => {
  const dockerd: Record<string, unknown> = {
    '/networks': [
      { Name: 'blue', Id: id('a'), Driver: 'vxlan-router', Options: { network: 'blue' }, IPAM: { Config: [{ Subnet: '198.18.0.0/15' }] } },
      { Name: 'shop_blue', Id: id('b'), Driver: 'vxlan-router', Options: {}, IPAM: { Config: [{ Subnet: '198.18.0.0/15' }] }, Labels: { [COMPOSE_NETWORK_LABEL]: 'blue' } },
    ],
    [`/networks/${id('a')}`]: { Containers: {} },
    [`/networks/${id('b')}`]: { Containers: { [id('1')]: { Name: 'shop_web_1', MacAddress: '02:42:c6:12:1c:02', IPv4Address: '198.18.28.2/15', IPv6Address: '' } } },
    // compose 1.29 gives a container the aliases [service, short id] on each of its networks.
    [`/containers/${id('1')}/json`]: { Name: '/shop_web_1', NetworkSettings: { Networks: { shop_blue: { Aliases: ['web', id('1').slice(0, 12)] } } } },
  };
  const get: DockerGet = async (path) => {
    if (!(path in dockerd)) throw new Error(`404 ${path}`);
    return dockerd[path];
  };
  t.same(await new DockerNames(get, [blue]).poll(), [{ entries: [{ mac: '02:42:c6:12:1c:02', ips: ['198.18.28.2'], names: ['shop_web_1', 'web'] }], dockerNetworks: ['blue', 'shop_blue'] }], 'web and shop_web_1 advertised on blue; web.blue and web.shop_blue resolve');
});
