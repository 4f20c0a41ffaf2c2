/**
 * The network driver's calls (issue 16): what dockerd's `network create` options decode to, one veth pair per
 * endpoint on the overlay's bridge, the MAC given back only when dockerd gave none, the peer end handed to Join with
 * no gateway (dockerd then adds docker_gwbridge for outbound and `-p`), bounds and refusals. Then the veths for real
 * (`IpCommandLinks`) in a namespace of the test's own.
 */
import { execFileSync } from 'node:child_process';
import t from 'tap';
import { dockerNetworkRequest, endpointLinkNames, IpCommandLinks, OverlayNetworkDriver, endpointMac, type DockerNetworkRequest, type EndpointLinks, type OverlayNetworks } from '../../src/agent/docker-driver.js';
import { PluginCallError } from '../../src/agent/docker-plugin.js';

const NET = 'a1'.repeat(32);
const EP = 'b2c3'.repeat(16);
const create = (generic: Record<string, unknown> = { vni: '42' }, pools = ['198.18.0.0/16']) => ({
  NetworkID: NET,
  Options: { 'com.docker.network.enable_ipv6': false, 'com.docker.network.generic': generic },
  IPv4Data: pools.map((Pool) => ({ AddressSpace: 'vxlan-router', Pool, Gateway: '198.18.0.1/16' })),
  IPv6Data: [],
});

function fakes(): { overlays: OverlayNetworks & { asked: DockerNetworkRequest[]; detached: string[] }; links: EndpointLinks & { log: string[] } } {
  const asked: DockerNetworkRequest[] = [];
  const detached: string[] = [];
  const log: string[] = [];
  return {
    overlays: { asked, detached, attach: async (r) => (asked.push(r), { name: 'blue', vni: r.vni ?? 7, bridge: 'vxr-blue', mtu: 1450 }), detach: async (id) => void detached.push(id) },
    links: {
      log,
      createVeth: async (h, p, b, m, mac) => void log.push(`add ${h} ${p} ${b} ${m} ${mac}`),
      deleteLink: async (n) => void log.push(`del ${n}`),
      allowBridged: async (b) => void log.push(`allow ${b}`),
      disallowBridged: async (b) => void log.push(`disallow ${b}`),
    },
  };
}

t.test('options of docker network create', async (t) => {
  t.same(dockerNetworkRequest(create()), { dockerId: NET, subnet: '198.18.0.0/16', vni: 42 });
  t.same(dockerNetworkRequest(create({ network: 'blue' })), { dockerId: NET, subnet: '198.18.0.0/16', network: 'blue' });
  t.throws(() => dockerNetworkRequest(create({ vni: '0x2a' })), { message: '-o vni=0x2a is not a VNI', hint: /1 to 16777215/ });
  t.throws(() => dockerNetworkRequest(create({ vni: '16777216' })), PluginCallError);
  t.throws(() => dockerNetworkRequest(create({ vnid: '42' })), { message: 'unknown option -o vnid' });
  t.throws(() => dockerNetworkRequest(create({}, [])), { message: /one IPv4 subnet, not 0/ });
  t.throws(() => dockerNetworkRequest({ ...create(), IPv6Data: [{ Pool: 'fd00::/64' }] }), { message: /IPv4 only/ });
});

t.test('a container on the network: veth on the bridge, MAC, Join without gateway', async (t) => {
  const { overlays, links } = fakes();
  const d = new OverlayNetworkDriver(overlays, links);
  await d.createNetwork(create());
  await d.createNetwork(create()); // dockerd's replay after its restart
  t.equal(overlays.asked.length, 1, 'a replayed network is not attached twice');
  const { host, peer } = endpointLinkNames(EP);
  t.same([host, peer], ['vxhb2c3b2c3b2', 'vxcb2c3b2c3b2']);
  t.ok(host.length <= 15 && peer.length <= 15, 'names fit IFNAMSIZ');

  const r = await d.createEndpoint({ NetworkID: NET, EndpointID: EP, Interface: { Address: '198.18.3.2/16', AddressIPv6: '', MacAddress: '' } });
  const mac = r.Interface?.MacAddress ?? '';
  t.equal(mac, '02:42:c6:12:03:02', "dockerd gave no MAC: 02:42 and the address (the same after dockerd's restart)");
  t.same(links.log, ['allow vxr-blue', `add ${host} ${peer} vxr-blue 1450 ${mac}`], "frames may cross the bridge; the host end on it, with the overlay's MTU");
  await t.rejects(d.createEndpoint({ NetworkID: NET, EndpointID: EP }), { message: /exists already/ });

  const given = await d.createEndpoint({ NetworkID: NET, EndpointID: 'c'.repeat(64), Interface: { Address: '198.18.3.3/16', MacAddress: '02:42:c6:12:03:03' } });
  t.same(given, {}, 'dockerd gave the MAC: nothing is given back (else dockerd rolls back)');

  t.same(await d.join({ NetworkID: NET, EndpointID: EP, SandboxKey: '/var/run/docker/netns/x' }), { InterfaceName: { SrcName: peer, DstPrefix: 'eth' } }, 'no Gateway: docker_gwbridge carries outbound and -p');
  await t.rejects(d.join({ NetworkID: NET, EndpointID: 'd'.repeat(64), SandboxKey: 'x' }), { message: /unknown to vxlan-router/ });
  await t.rejects(d.createEndpoint({ NetworkID: 'e'.repeat(64), EndpointID: 'f'.repeat(64) }), { message: /network eeeeeeeeeeee is not served by vxlan-router yet/, hint: /restart dockerd/ });
  await d.leave({ NetworkID: NET, EndpointID: EP });

  links.log.length = 0;
  await d.deleteNetwork({ NetworkID: NET });
  t.same(links.log, [`del ${host}`, `del vxhcccccccccc`, 'disallow vxr-blue'], 'its endpoints go with the network, then the firewall rule');
  t.same(overlays.detached, [NET]);
});

t.test('a network accepted for later (defined through Docker just now): its endpoints wait for it, bounded', async (t) => {
  const { overlays, links } = fakes();
  let ready!: (a: { name: string; vni: number; bridge: string; mtu: number }) => void;
  const soon = new Promise<{ name: string; vni: number; bridge: string; mtu: number }>((r) => (ready = r));
  const d = new OverlayNetworkDriver({ ...overlays, attach: async () => undefined, later: (id) => (id === NET ? soon : undefined) }, links);
  await d.createNetwork(create({ vni: '43' }));
  t.equal(d.attachment(NET), undefined, 'accepted, not attached yet');
  const made = d.createEndpoint({ NetworkID: NET, EndpointID: EP, Interface: { Address: '198.19.3.2/16', MacAddress: '' } });
  setTimeout(() => ready({ name: 'green', vni: 43, bridge: 'vxr-green', mtu: 1450 }), 20);
  t.same(await made, { Interface: { MacAddress: '02:42:c6:13:03:02' } }, 'CreateEndpoint waited for the network, then made the veth');
  t.same(links.log, ['allow vxr-green', `add ${endpointLinkNames(EP).host} ${endpointLinkNames(EP).peer} vxr-green 1450 02:42:c6:13:03:02`], "on the bridge the network will be served on");
  t.match(d.attachment(NET), { name: 'green', bridge: 'vxr-green' });
  t.same(await d.join({ NetworkID: NET, EndpointID: EP, SandboxKey: 'x' }), { InterfaceName: { SrcName: endpointLinkNames(EP).peer, DstPrefix: 'eth' } });
  const late = new OverlayNetworkDriver({ ...overlays, attach: async () => undefined, later: () => Promise.reject(new PluginCallError('not defined within 0.1 s')) }, links);
  await t.rejects(late.createEndpoint({ NetworkID: NET, EndpointID: EP }), { message: 'not defined within 0.1 s' }, 'never ready: the refusal it was given');
});

t.test('a new router process: calls for a network not adopted yet wait for the adoption', async (t) => {
  const { overlays, links } = fakes();
  let adopted!: () => void;
  const adoption = new Promise<void>((r) => (adopted = r));
  const d = new OverlayNetworkDriver(overlays, links, () => adoption);
  const joined = d.join({ NetworkID: NET, EndpointID: EP, SandboxKey: 'x' });
  await d.adopt({ dockerId: NET, subnet: '198.18.0.0/16', vni: 42 }, [EP]);
  adopted();
  t.same(await joined, { InterfaceName: { SrcName: endpointLinkNames(EP).peer, DstPrefix: 'eth' } }, 'Join during the adoption: answered once adopted, not refused');
  await t.rejects(d.join({ NetworkID: 'e'.repeat(64), EndpointID: EP, SandboxKey: 'x' }), { message: /not served by vxlan-router yet/ }, 'adopted: an unknown network is refused at once');
});

t.test('a failing link is a refusal with the kernel\'s words', async (t) => {
  const { overlays } = fakes();
  const d = new OverlayNetworkDriver(overlays, { ...fakes().links, createVeth: () => Promise.reject(new PluginCallError('ip link add: RTNETLINK answers: File exists')) });
  await d.createNetwork(create());
  await t.rejects(d.createEndpoint({ NetworkID: NET, EndpointID: EP }), { message: /File exists/ });
  await t.rejects(d.join({ NetworkID: NET, EndpointID: EP, SandboxKey: 'x' }), { message: /unknown/ }, 'nothing half-made is kept');
  t.not(endpointMac(undefined), endpointMac(undefined), 'no IPv4 address: a random MAC');
  t.equal(parseInt(endpointMac(undefined).slice(0, 2), 16) & 0x03, 0x02, 'locally administered, unicast');
});

t.test('veth pairs for real, in a namespace of the test', { skip: process.getuid?.() === 0 ? false : 'needs root (network namespaces): run as root, as CI does' }, async (t) => {
  const ns = `vxr-dd-${process.pid}`;
  const ip = (...a: string[]) => execFileSync('ip', ['-n', ns, ...a], { encoding: 'utf8' });
  execFileSync('ip', ['netns', 'add', ns]);
  t.teardown(() => execFileSync('ip', ['netns', 'del', ns]));
  ip('link', 'add', 'vxr-blue', 'type', 'bridge');
  const links = new IpCommandLinks(ns);
  const { host, peer } = endpointLinkNames(EP);
  await links.createVeth(host, peer, 'vxr-blue', 1450, '02:11:22:33:44:55');
  const [h] = JSON.parse(ip('-j', 'link', 'show', host)) as { mtu: number; master?: string; flags: string[] }[];
  const [p] = JSON.parse(ip('-j', 'link', 'show', peer)) as { mtu: number; address: string }[];
  t.match(h, { mtu: 1450, master: 'vxr-blue' });
  t.ok(h!.flags.includes('UP'), 'host end up');
  t.match(p, { mtu: 1450, address: '02:11:22:33:44:55' });
  await t.rejects(links.createVeth(host, peer, 'vxr-blue', 1450, '02:11:22:33:44:56'), { message: /File exists/ });
  await t.rejects(links.createVeth('vxhother', 'vxcother', 'no-such-br', 1450, '02:11:22:33:44:57'), { message: /ip link set vxhother master no-such-br/ });
  t.throws(() => ip('link', 'show', 'vxhother'), 'a veth whose bridge is missing is not left behind');
  await links.deleteLink(host);
  await links.deleteLink(host); // gone already: fine
  t.throws(() => ip('link', 'show', peer), 'the peer goes with it');

  // The firewall rule that lets frames cross the bridge when dockerd's FORWARD policy is DROP.
  const rules = () => execFileSync('ip', ['netns', 'exec', ns, 'iptables', '-S', 'FORWARD'], { encoding: 'utf8' }).split('\n').filter((l) => l.includes('vxr-blue'));
  await links.allowBridged('vxr-blue');
  await links.allowBridged('vxr-blue');
  t.same(rules(), ['-A FORWARD -i vxr-blue -o vxr-blue -j ACCEPT'], 'one rule, however often asked');
  await links.disallowBridged('vxr-blue');
  t.same(rules(), [], 'and gone again');
});
