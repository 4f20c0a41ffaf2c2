/**
 * The Docker Engine API calls of `docker-network create`, against a stand-in API server on a Unix socket that keeps
 * the networks it is given (the real dockerd run is test/docker/docker-network.sh, by hand): the request carries the
 * overlay subnet, this host's range and gateway, the bridge name and MTU; a second run finds it unchanged; a
 * different network of that name is refused with the fix; no dockerd is a clear E_DOCKER.
 */
import { createServer, type IncomingMessage } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { ensureDockerNetwork, type DockerNetworkSpec } from '../../src/agent/docker-network.js';

const body = async (req: IncomingMessage): Promise<unknown> => {
  let s = '';
  for await (const d of req) s += String(d);
  return JSON.parse(s);
};

t.test('docker-network create through the Engine API', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'vxr-docker-api-'));
  const socketPath = join(dir, 'docker.sock');
  const networks = new Map<string, Record<string, unknown>>();
  const requests: { method: string; url: string; body?: unknown }[] = [];
  const server = createServer(async (req, res) => {
    const name = decodeURIComponent(req.url!.replace(/^\/networks\//, ''));
    if (req.method === 'GET') {
      requests.push({ method: 'GET', url: req.url! });
      const n = networks.get(name);
      res.writeHead(n ? 200 : 404, { 'content-type': 'application/json' }).end(JSON.stringify(n ?? { message: `network ${name} not found` }));
      return;
    }
    const b = (await body(req)) as { Name: string; IPAM: { Config: object[] }; Options: object };
    requests.push({ method: 'POST', url: req.url!, body: b });
    networks.set(b.Name, { Name: b.Name, IPAM: { Driver: 'default', Config: b.IPAM.Config }, Options: b.Options });
    res.writeHead(201, { 'content-type': 'application/json' }).end(JSON.stringify({ Id: 'abc', Warning: '' }));
  });
  await new Promise<void>((r) => server.listen(socketPath, r));
  t.teardown(() => {
    server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const spec: DockerNetworkSpec = { name: 'vxr-blue', bridge: 'vxr-blue', subnet: '198.18.0.0/16', ipRange: '198.18.28.0/24', gateway: '198.18.28.1', mtu: 1450, overlay: 'blue', vni: 42 };
  t.equal(await ensureDockerNetwork(socketPath, spec), 'created');
  t.match(requests.at(-1), {
    method: 'POST',
    url: '/networks/create',
    body: {
      Name: 'vxr-blue',
      Driver: 'bridge',
      IPAM: { Config: [{ Subnet: '198.18.0.0/16', IPRange: '198.18.28.0/24', Gateway: '198.18.28.1', AuxiliaryAddresses: { 'vxr-slice-base': '198.18.28.0' } }] },
      Options: { 'com.docker.network.bridge.name': 'vxr-blue', 'com.docker.network.driver.mtu': '1450' },
      Labels: { 'vxlan-router.network': 'blue', 'vxlan-router.vni': '42' },
    },
  });
  t.equal(await ensureDockerNetwork(socketPath, spec), 'unchanged', 'a second run changes nothing');
  t.equal(requests.filter((r) => r.method === 'POST').length, 1);
  await t.rejects(ensureDockerNetwork(socketPath, { ...spec, ipRange: '198.18.29.0/24', gateway: '198.18.29.1' }), {
    code: 'E_CONFIG',
    message: /exists with other settings/,
    hint: /docker network rm vxr-blue/,
  });
  await t.rejects(ensureDockerNetwork(join(dir, 'nothing.sock'), spec), { code: 'E_DOCKER', message: /cannot reach dockerd at .*nothing\.sock/, hint: /is Docker running/ });
});
