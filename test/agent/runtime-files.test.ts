/** cni-config's conflist and the <network>.env file (issue 16): what CNI needs, and the file kept as slices change. */
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { cniConflist, EnvFiles, envFile, sliceRange, type HostSlice } from '../../src/agent/runtime-files.js';

const blue: HostSlice = { network: 'blue', vni: 42, bridge: 'br0', subnet: '198.18.0.0/15', slice: { range: '198.18.3.0/24', gateway: '198.18.3.1', addresses: 256 }, mtu: 1450 };

t.test('the CNI conflist has what CNI and its bridge / host-local plugins need', async (t) => {
  const conf = JSON.parse(JSON.stringify(cniConflist(blue))) as {
    cniVersion: string;
    name: string;
    plugins: { type: string; bridge?: string; isGateway?: boolean; ipMasq?: boolean; mtu?: number; ipam?: { type: string; ranges: { subnet: string; rangeStart: string; rangeEnd: string; gateway: string }[][] }; capabilities?: object }[];
  };
  t.equal(conf.cniVersion, '1.0.0');
  t.equal(conf.name, 'blue', 'named after the network (nerdctl --network blue)');
  t.same(conf.plugins.map((p) => p.type), ['bridge', 'portmap']);
  const bridge = conf.plugins[0]!;
  t.match(bridge, { bridge: 'br0', isGateway: true, ipMasq: true, mtu: 1450 }, "the router's bridge, gateway with NAT, the overlay's MTU");
  t.equal(bridge.ipam?.type, 'host-local');
  t.same(bridge.ipam?.ranges, [[{ subnet: '198.18.0.0/15', rangeStart: '198.18.3.2', rangeEnd: '198.18.3.255', gateway: '198.18.3.1' }]], "the whole subnet on-link, addresses from this host's slice only (not .0, not the gateway)");
  t.same(conf.plugins[1]!.capabilities, { portMappings: true }, 'portmap: -p works');
});

t.test("the subnet's broadcast is never handed out (the last slice)", async (t) => {
  t.same(sliceRange('198.18.0.0/15', { range: '198.19.255.0/24', gateway: '198.19.255.1', addresses: 256 }), { start: '198.19.255.2', end: '198.19.255.254' });
  t.throws(() => sliceRange('198.18.0.0/15', { range: '10.0.0.0/24', gateway: '10.0.0.1', addresses: 256 }), /not an IPv4 range of 198\.18\.0\.0\/15/);
});

t.test('<network>.env: written atomically when a slice appears or changes, removed with its network', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'vxr-env-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  t.equal(
    envFile(blue),
    'VXLAN_ROUTER_NETWORK=blue\nVXLAN_ROUTER_VNI=42\nVXLAN_ROUTER_SUBNET=198.18.0.0/15\nVXLAN_ROUTER_RANGE=198.18.3.0/24\nVXLAN_ROUTER_RANGE_START=198.18.3.2\n' +
      'VXLAN_ROUTER_RANGE_END=198.18.3.255\nVXLAN_ROUTER_GATEWAY=198.18.3.1\nVXLAN_ROUTER_GATEWAY_CIDR=198.18.3.1/15\nVXLAN_ROUTER_MTU=1450\nVXLAN_ROUTER_BRIDGE=br0\n',
  );
  const files = new EnvFiles(join(dir, 'run'));
  files.update([blue]);
  t.equal(readFileSync(join(dir, 'run', 'blue.env'), 'utf8'), envFile(blue), 'written (its directory made)');
  files.update([{ ...blue, mtu: 1400 }]);
  t.match(readFileSync(join(dir, 'run', 'blue.env'), 'utf8'), /VXLAN_ROUTER_MTU=1400\n/, 'rewritten when it changes');
  t.same(readdirSync(join(dir, 'run')), ['blue.env'], 'no temporary file left');
  files.update([]);
  t.notOk(existsSync(join(dir, 'run', 'blue.env')), 'removed when the network is no longer served');
});
