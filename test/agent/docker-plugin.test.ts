/**
 * Docker's plugin protocol as dockerd speaks it (issue 16): request bodies in the shapes dockerd sends (moby's
 * libnetwork remote.md / ipam.md), the answers and, above all, the error shapes dockerd reads: `Err` from the network
 * driver, `Error` from the IPAM driver, an HTTP error status for a body that does not decode, 404 for a method we do
 * not serve. Then the IPAM driver's addresses: only this host's slice, never its `.0` or gateway, replays, refusals.
 */
import { request } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { OverlayIpam, type OverlaySlices } from '../../src/agent/docker-ipam.js';
import { answerPluginCall, MAX_PLUGIN_BODY, PLUGIN_MEDIA_TYPE, PluginCallError, pluginRoutes, pluginServer, type NetworkDriver } from '../../src/agent/docker-plugin.js';
import { Slices } from '../../src/control/index.js';

const NETWORK_ID = '629d427fa11f5a2d993de22d6886b7f7cb64857f2631408217af0af4b3b49b2e';
const ENDPOINT_ID = '446abc7c43af587acd5b85fcd16fcd35f64e3c7a9c954d3461942724890b1e1d';

/**
 * What dockerd 20.10 (Debian's docker.io) POSTed, in this order, for `docker network create -d vxlan-router
 * --ipam-driver vxlan-router --subnet 198.18.0.0/16 -o vni=42 blue` and `docker run --network blue -p 8080:80 …`,
 * recorded from a real dockerd (after Plugin.Activate and the capability calls, whose bodies are empty).
 */
const recorded = {
  requestPool: { AddressSpace: 'vxlan-router', Pool: '198.18.0.0/16', SubPool: '', Options: {}, V6: false },
  requestGateway: { PoolID: 'vxlan-router/198.18.0.0/16', Address: '', Options: { RequestAddressType: 'com.docker.network.gateway' } },
  createNetwork: {
    NetworkID: NETWORK_ID,
    Options: { 'com.docker.network.enable_ipv6': false, 'com.docker.network.generic': { vni: '42' } },
    IPv4Data: [{ AddressSpace: 'vxlan-router', Gateway: '198.18.0.1/16', Pool: '198.18.0.0/16' }],
    IPv6Data: [],
  },
  requestAddress: { PoolID: 'vxlan-router/198.18.0.0/16', Address: '', Options: null },
  createEndpoint: {
    NetworkID: NETWORK_ID,
    EndpointID: ENDPOINT_ID,
    Interface: { Address: '198.18.3.2/16', AddressIPv6: '', MacAddress: '' },
    Options: {
      'com.docker.network.endpoint.exposedports': [{ Proto: 6, Port: 80 }],
      'com.docker.network.portmap': [{ Proto: 6, IP: '', Port: 80, HostIP: '', HostPort: 8080, HostPortEnd: 8080 }],
    },
  },
  join: {
    NetworkID: NETWORK_ID,
    EndpointID: ENDPOINT_ID,
    SandboxKey: '/tmp/vxr-rec.VARQAt/exec/netns/6eac6e0b3e3c',
    Options: {
      'com.docker.network.endpoint.exposedports': [{ Proto: 6, Port: 80 }],
      'com.docker.network.portmap': [{ Proto: 6, IP: '', Port: 80, HostIP: '', HostPort: 8080, HostPortEnd: 8080 }],
    },
  },
  replayedAddress: { PoolID: 'vxlan-router/198.18.0.0/16', Address: '198.18.3.77', Options: null },
  releaseAddress: { PoolID: 'vxlan-router/198.18.0.0/16', Address: '198.18.3.77' },
};

/** A network driver that records its calls and refuses what the test asks it to. */
function recordingDriver(): NetworkDriver & { calls: string[]; refuse: string | undefined } {
  const calls: string[] = [];
  const d = {
    calls,
    refuse: undefined as string | undefined,
    async step(name: string): Promise<void> {
      calls.push(name);
      if (d.refuse === name) throw new PluginCallError(`${name} refused for the test`, 'do something else');
    },
    createNetwork: async () => d.step('createNetwork'),
    deleteNetwork: async () => d.step('deleteNetwork'),
    createEndpoint: async () => (await d.step('createEndpoint'), {}),
    deleteEndpoint: async () => d.step('deleteEndpoint'),
    join: async () => (await d.step('join'), { InterfaceName: { SrcName: 'vxr-ep1a2b3c', DstPrefix: 'eth' } }),
    leave: async () => d.step('leave'),
  };
  return d;
}

/** Host h3's slice of 198.18.0.0/16: 198.18.3.0/24 (gateway 198.18.3.1), or a refusal when the test says so. */
function slices(range = '198.18.3.0/24'): OverlaySlices & { fail: string | undefined; asked: number } {
  const s = {
    fail: undefined as string | undefined,
    asked: 0,
    sliceOf: async (subnet: string) => {
      s.asked++;
      if (s.fail !== undefined) throw new PluginCallError(s.fail);
      const slice = new Slices(subnet, Number(range.split('/')[1])).find(range);
      if (slice === undefined) throw new Error(`test: ${range} is no slice of ${subnet}`);
      return { network: 'blue', slice };
    },
  };
  return s;
}

const call = (routes: ReturnType<typeof pluginRoutes>, path: string, body: unknown) => answerPluginCall(routes, path, JSON.stringify(body));

t.test('handshake and capabilities', async (t) => {
  const routes = pluginRoutes(recordingDriver(), new OverlayIpam(slices()));
  t.same(await answerPluginCall(routes, '/Plugin.Activate', ''), { status: 200, body: { Implements: ['NetworkDriver', 'IpamDriver'] } });
  t.same((await answerPluginCall(routes, '/NetworkDriver.GetCapabilities', '')).body, { Scope: 'local', ConnectivityScope: 'global' });
  t.same((await answerPluginCall(routes, '/IpamDriver.GetCapabilities', '')).body, { RequiresMACAddress: false, RequiresRequestReplay: true }, 'dockerd replays pools and addresses after a restart');
  t.same((await answerPluginCall(routes, '/IpamDriver.GetDefaultAddressSpaces', 'null')).body, { LocalDefaultAddressSpace: 'vxlan-router', GlobalDefaultAddressSpace: 'vxlan-router' });
  const unknown = await answerPluginCall(routes, '/NetworkDriver.AllocateNetwork', '{}');
  t.equal(unknown.status, 404, 'a method we do not serve is a 404, which dockerd reads as "not implemented"');
});

t.test('error shapes: Err from the network driver, Error from IPAM, HTTP status for undecodable bodies', async (t) => {
  const driver = recordingDriver();
  const routes = pluginRoutes(driver, new OverlayIpam(slices()));
  driver.refuse = 'createNetwork';
  t.same(await call(routes, '/NetworkDriver.CreateNetwork', recorded.createNetwork), { status: 200, body: { Err: 'createNetwork refused for the test: do something else' } });
  const ipamRefusal = await call(routes, '/IpamDriver.RequestPool', { ...recorded.requestPool, V6: true, Pool: '' });
  t.equal(ipamRefusal.status, 200);
  t.same(Object.keys(ipamRefusal.body), ['Error'], 'IPAM refusals use Error');
  t.match(ipamRefusal.body, { Error: /IPv4 addresses only/ });

  const notJson = await answerPluginCall(routes, '/NetworkDriver.Join', '{"NetworkID":');
  t.same(notJson, { status: 400, body: { Err: '/NetworkDriver.Join: the body is not JSON' } });
  const noId = await call(routes, '/NetworkDriver.DeleteEndpoint', { NetworkID: NETWORK_ID });
  t.equal(noId.status, 400);
  t.match(noId.body, { Err: /EndpointID/ }, 'the missing field is named');
  t.same(driver.calls, ['createNetwork'], 'a body that does not decode never reaches the driver');

  driver.refuse = undefined;
  const crash = pluginRoutes({ ...driver, leave: () => Promise.reject(new TypeError('boom')) }, new OverlayIpam(slices()));
  const errors: string[] = [];
  const a = await answerPluginCall(crash, '/NetworkDriver.Leave', JSON.stringify({ NetworkID: NETWORK_ID, EndpointID: ENDPOINT_ID }), (p) => errors.push(p));
  t.same(a, { status: 200, body: { Err: 'internal error in vxlan-router (boom)' } }, 'a bug is an answer, not a hung dockerd');
  t.same(errors, ['/NetworkDriver.Leave'], 'and it is reported');
});

t.test('the recorded network create and container start', async (t) => {
  const driver = recordingDriver();
  const s = slices();
  const routes = pluginRoutes(driver, new OverlayIpam(s));
  const pool = await call(routes, '/IpamDriver.RequestPool', recorded.requestPool);
  t.same(pool, { status: 200, body: { PoolID: 'vxlan-router/198.18.0.0/16', Pool: '198.18.0.0/16', Data: {} } });
  const gateway = await call(routes, '/IpamDriver.RequestAddress', recorded.requestGateway);
  t.same(gateway.body, { Address: '198.18.0.1/16', Data: {} }, "the network's gateway: the subnet's first address, before any slice is needed");
  t.equal(s.asked, 0, 'no slice asked for yet (the network may not be in etcd before CreateNetwork)');
  t.same(await call(routes, '/NetworkDriver.CreateNetwork', recorded.createNetwork), { status: 200, body: {} });
  const first = await call(routes, '/IpamDriver.RequestAddress', recorded.requestAddress);
  t.same(first.body, { Address: '198.18.3.2/16', Data: {} }, "the first container: this host's slice, past its .0 and its gateway .1");
  t.same((await call(routes, '/NetworkDriver.CreateEndpoint', recorded.createEndpoint)).body, {});
  t.same((await call(routes, '/NetworkDriver.Join', recorded.join)).body, { InterfaceName: { SrcName: 'vxr-ep1a2b3c', DstPrefix: 'eth' } });
  t.same(driver.calls, ['createNetwork', 'createEndpoint', 'join']);
  t.same((await call(routes, '/IpamDriver.RequestAddress', recorded.requestAddress)).body, { Address: '198.18.3.3/16', Data: {} });
  t.same((await call(routes, '/IpamDriver.RequestAddress', recorded.replayedAddress)).body, { Address: '198.18.3.77/16', Data: {} }, '`docker run --ip` (and a replay) gets the address asked for');
  t.same((await call(routes, '/IpamDriver.ReleaseAddress', recorded.releaseAddress)).body, {});
  t.same((await call(routes, '/IpamDriver.RequestAddress', recorded.replayedAddress)).body, { Address: '198.18.3.77/16', Data: {} }, 'released: free again');
  t.equal(s.asked, 1, 'the slice is asked for once');
});

t.test('IPAM: replays, refusals, release, bounds', async (t) => {
  const s = slices('198.18.3.0/30'); // four addresses: .0 (never), .1 (the slice's gateway), .2 and .3 for containers
  const ipam = new OverlayIpam(s);
  const { PoolID } = await ipam.requestPool({ AddressSpace: 'vxlan-router', Pool: '198.18.0.0/16' });
  t.equal((await ipam.requestPool({ AddressSpace: 'vxlan-router', Pool: '198.18.9.9/16' })).PoolID, PoolID, 'the same pool, however written, has one id');
  await t.rejects(ipam.requestPool({ AddressSpace: 'vxlan-router', Pool: '198.18.0.0/16', SubPool: '198.18.3.0/24' }), { message: /--ip-range/ });
  await t.rejects(ipam.requestPool({ AddressSpace: 'vxlan-router', Pool: '2001:db8::/64' }), { message: /not an IPv4 subnet/ });
  await t.rejects(ipam.requestPool({ AddressSpace: 'vxlan-router', Pool: '198.18.0.0/30' }), { message: /between \/8 and \/29/ });

  s.fail = 'network blue has no address range on this host: not leased yet';
  await t.rejects(ipam.requestAddress({ PoolID }), { message: /not leased yet/ });
  s.fail = undefined;
  t.same(await ipam.requestAddress({ PoolID, Address: '198.18.3.3' }), { Address: '198.18.3.3/16', Data: {} }, 'a replayed address is given back; a failed slice lookup is asked again');
  await t.rejects(ipam.requestAddress({ PoolID, Address: '198.18.3.3' }), { message: '198.18.3.3 is already in use on this host' });
  await t.rejects(ipam.requestAddress({ PoolID, Address: '198.18.7.7' }), { message: /198.18.7.7 is not an address this host's slice 198.18.3.0\/30 of network blue hands out/ });
  await t.rejects(ipam.requestAddress({ PoolID, Address: '198.18.3.1' }), { message: /not an address/ }, "the slice's gateway is never a container's");
  await t.rejects(ipam.requestAddress({ PoolID, Address: '10.0.0.1' }), { message: /not in subnet 198.18.0.0\/16/ });
  t.same(await ipam.requestAddress({ PoolID }), { Address: '198.18.3.2/16', Data: {} });
  await t.rejects(ipam.requestAddress({ PoolID }), { message: /no free address \(2 in use\)/ }, 'a full slice is a refusal, not growth');
  await ipam.releaseAddress({ PoolID, Address: '198.18.3.2' });
  t.same(await ipam.requestAddress({ PoolID }), { Address: '198.18.3.2/16', Data: {} }, 'a released address is handed out again');
  await t.rejects(ipam.requestAddress({ PoolID: 'vxlan-router/10.0.0.0/8' }), { message: /unknown pool/ });

  await ipam.releaseAddress({ PoolID, Address: '198.18.3.3/16' });
  await ipam.releasePool({ PoolID });
  t.same(await ipam.requestAddress({ PoolID }), { Address: '198.18.3.3/16', Data: {} }, 'still held once (requested twice); an address released in CIDR form is free again');
  await ipam.releasePool({ PoolID });
  await t.rejects(ipam.requestAddress({ PoolID }), { message: /unknown pool/ }, 'released as often as requested: gone');
});

t.test('over HTTP on a Unix socket', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'vxr-plugin-'));
  const socketPath = join(dir, 'vxlan-router.sock');
  const server = pluginServer(pluginRoutes(recordingDriver(), new OverlayIpam(slices())));
  await new Promise<void>((r) => server.listen(socketPath, r));
  t.teardown(() => {
    server.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const post = (path: string, body: string, method = 'POST') =>
    new Promise<{ status: number; type: string; body: unknown }>((resolve, reject) => {
      const req = request({ socketPath, method, path, headers: { 'content-type': PLUGIN_MEDIA_TYPE } }, (res) => {
        let text = '';
        res.on('data', (d: Buffer) => (text += String(d)));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), body: JSON.parse(text) }));
      });
      req.on('error', reject);
      req.end(body);
    });
  t.same(await post('/Plugin.Activate', ''), { status: 200, type: PLUGIN_MEDIA_TYPE, body: { Implements: ['NetworkDriver', 'IpamDriver'] } });
  t.same((await post('/IpamDriver.RequestPool', JSON.stringify(recorded.requestPool))).body, { PoolID: 'vxlan-router/198.18.0.0/16', Pool: '198.18.0.0/16', Data: {} });
  t.equal((await post('/Plugin.Activate', '', 'GET')).status, 405);
  t.equal((await post('/NetworkDriver.CreateNetwork', 'x'.repeat(MAX_PLUGIN_BODY + 1))).status, 413, 'an oversized body is refused, not buffered');
});
