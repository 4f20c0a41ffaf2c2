/**
 * `up --docker` (issue 16) without a dockerd: a new router process adopts what dockerd already holds (its networks,
 * endpoints, pools and addresses: the plugin's state lives in memory), a replay of an adopted address is accepted,
 * a network created for a VNI nobody serves waits to be defined instead of being refused, adoption never defines,
 * and a takeover may add and drop networks (but never move a VNI to another TAP).
 */
import t from 'tap';
import { endpointLinkNames, OverlayNetworkDriver, type EndpointLinks } from '../../src/agent/docker-driver.js';
import { OverlayIpam } from '../../src/agent/docker-ipam.js';
import { dockerPlugin } from '../../src/agent/docker-serve.js';
import type { DaemonView, ServedNetwork } from '../../src/agent/daemon.js';
import { refusal } from '../../src/agent/handover.js';
import { Slices } from '../../src/control/index.js';

const NET = 'a1'.repeat(32);
const EP = 'b2c3'.repeat(16);
const links = (log: string[]): EndpointLinks => ({
  createVeth: async (h) => void log.push(`add ${h}`),
  deleteLink: async (n) => void log.push(`del ${n}`),
  allowBridged: async (b) => void log.push(`allow ${b}`),
  disallowBridged: async (b) => void log.push(`disallow ${b}`),
});

t.test('the driver adopts a network and its endpoints; Join then works without a replay', async (t) => {
  const log: string[] = [];
  const d = new OverlayNetworkDriver({ attach: async () => ({ name: 'blue', vni: 42, bridge: 'br0', mtu: 1450 }), detach: async () => undefined }, links(log));
  await d.adopt({ dockerId: NET, subnet: '198.18.0.0/16', vni: 42 }, [EP]);
  t.same(log, ['allow br0'], 'the firewall rule is made again, no veth (the container has it)');
  t.same(await d.join({ NetworkID: NET, EndpointID: EP, SandboxKey: '/x' }), { InterfaceName: { SrcName: endpointLinkNames(EP).peer, DstPrefix: 'eth' } });
  await d.deleteEndpoint({ NetworkID: NET, EndpointID: EP });
  t.same(log.at(-1), `del ${endpointLinkNames(EP).host}`);
});

t.test('the IPAM adopts pools and addresses: not handed out again, a replay of one is accepted', async (t) => {
  const ipam = new OverlayIpam({ sliceOf: async (subnet) => ({ network: 'blue', slice: new Slices(subnet, 24).find('198.18.3.0/24')! }) });
  ipam.adopt('198.18.0.0/16', '198.18.0.1', ['198.18.3.2']);
  const id = 'vxlan-router/198.18.0.0/16';
  t.same(await ipam.requestAddress({ PoolID: id }), { Address: '198.18.3.3/16', Data: {} }, 'the adopted .2 is taken');
  t.same(await ipam.requestAddress({ PoolID: id, Address: '198.18.3.2' }), { Address: '198.18.3.2/16', Data: {} }, "dockerd's replay of it is accepted (once)");
  await t.rejects(ipam.requestAddress({ PoolID: id, Address: '198.18.3.2' }), /already in use/);
  await ipam.releaseAddress({ PoolID: id, Address: '198.18.3.2/16' });
  t.same(await ipam.requestAddress({ PoolID: id }), { Address: '198.18.3.2/16', Data: {} }, 'released: handed out again');
});

t.test('a new router process: an address asked for before its pool is adopted waits for the adoption', async (t) => {
  let adopted!: () => void;
  const adoption = new Promise<void>((r) => (adopted = r));
  const slices = { sliceOf: async (subnet: string) => ({ network: 'blue', slice: new Slices(subnet, 24).find('198.18.3.0/24')! }) };
  const ipam = new OverlayIpam(slices, () => adoption);
  const id = 'vxlan-router/198.18.0.0/16';
  const asked = ipam.requestAddress({ PoolID: id });
  ipam.adopt('198.18.0.0/16', '198.18.0.1', ['198.18.3.2']);
  adopted();
  t.same(await asked, { Address: '198.18.3.3/16', Data: {} }, 'answered from the adopted pool (its .2 taken), not refused');
  await t.rejects(new OverlayIpam(slices, async () => undefined).requestAddress({ PoolID: id }), /unknown pool/, 'adopted, and still unknown: refused');
});

t.test('--docker: a network for a VNI nobody serves waits to be defined; adoption never defines it', async (t) => {
  const blue: ServedNetwork = { name: 'blue', vni: 42, tap: 'vxr42', bridge: 'br0', mtu: 65000, configuredMtu: null, containerMtu: 1450, startedFrom: 'etcd', subnet: '198.18.0.0/15' };
  const view = { info: { networks: [blue] }, ranges: () => [] } as unknown as DaemonView;
  let kicked = 0;
  const plugin = dockerPlugin(view, () => kicked++);
  const generic = (o: Record<string, string>) => ({ NetworkID: NET, Options: { 'com.docker.network.generic': o }, IPv4Data: [{ Pool: '198.19.0.0/16' }] });
  await plugin.driver.createNetwork(generic({ vni: '43' }));
  t.equal(kicked, 1, 'the sync is asked to define it');
  t.same(plugin.pending?.take(), [{ dockerId: NET, request: { dockerId: NET, subnet: '198.19.0.0/16', vni: 43 } }]);
  await t.rejects(plugin.driver.createNetwork({ ...generic({ network: 'green' }), NetworkID: 'c'.repeat(64) }), /does not serve network green/, 'no VNI: nothing to define it with, refused');
  await t.rejects(plugin.driver.createNetwork({ ...generic({ vni: '42' }), NetworkID: 'd'.repeat(64) }), /subnet is 198\.18\.0\.0\/15/, "a served VNI with another subnet: refused, not redefined");
  await t.rejects(plugin.driver.adopt({ dockerId: 'e'.repeat(64), subnet: '198.19.0.0/16', vni: 43 }, []), /does not serve VNI 43/, 'adoption of a network no longer defined: refused, never defined again');
  t.equal(kicked, 1);
  const plain = dockerPlugin(view);
  await t.rejects(plain.driver.createNetwork(generic({ vni: '43' })), /does not serve VNI 43/, 'without --docker: refused as before');
});

t.test('a takeover may add and drop networks, never move a VNI to another TAP', async (t) => {
  const self = { engine: 'native', local: '198.51.100.1', port: 4789, networks: [{ vni: 42, tap: 'vxr42' }], canHandOver: true };
  const req = (networks: { vni: number; tap: string }[]) => ({ v: 1 as const, method: 'takeover' as const, handover: 1, software: 'x', pid: 1, path: '/x', engine: 'native' as const, local: '198.51.100.1', port: 4789, networks });
  t.equal(refusal(req([{ vni: 42, tap: 'vxr42' }, { vni: 43, tap: 'vxr43' }]), self), undefined, 'one more network');
  t.equal(refusal(req([{ vni: 43, tap: 'vxr43' }]), self), undefined, 'another one instead');
  t.match(refusal(req([{ vni: 42, tap: 'vxr43' }]), self), /42\/vxr43 differs/);
  t.match(refusal(req([{ vni: 43, tap: 'vxr42' }]), self), /43\/vxr42 differs/);
});
