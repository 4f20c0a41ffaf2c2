/**
 * Compose files with `driver: vxlan-router` (issue 16), without a dockerd: compose names its network
 * `<project>_<name>` and labels it; the router defines a new one in etcd under the compose file's name (the same on
 * every host whatever the project is called), matches one etcd already defines by subnet or VNI, refuses a subnet
 * that differs from etcd's, says how to define one it cannot, and its containers resolve by service name (their
 * alias on the compose network).
 */
import t from 'tap';
import type { DaemonView, ServedNetwork } from '../../src/agent/daemon.js';
import { DockerNames, type DockerGet } from '../../src/agent/docker-names.js';
import { dockerPlugin } from '../../src/agent/docker-serve.js';
import { COMPOSE_NETWORK_LABEL, definitionName } from '../../src/agent/docker-sync.js';

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
  const pool = await plugin.ipam.requestPool({ AddressSpace: 'global', Pool: '198.30.0.0/16' });
  await t.rejects(plugin.ipam.requestAddress({ PoolID: pool.PoolID }), { message: /serves no network with subnet 198\.30\.0\.0\/16 \(yet\)/, hint: /start the container again \(docker-compose up -d again\)/ }, 'its first container, before the router serves it: refused, saying to try again');
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
