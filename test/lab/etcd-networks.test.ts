/**
 * One router process serving two networks defined in etcd, each on its own bridge:
 *
 *   [h1] br0: b1 198.18.1.1 ┐                  ┌ br0: b2 198.18.1.2 [h2]   network blue, VNI 100
 *        br1: r1 198.18.2.1 ┴ router ═ etcd ═ router ┴ br1: r2 198.18.2.2       network red,  VNI 200
 *
 * Containers of one network reach each other; the two networks stay apart (separate L2 segments); status and peers
 * show both networks.
 */
import t from 'tap';
import { peersSchema, statusSchema } from '../../src/agent/index.js';
import { etcdLab, etcdSkipReason } from '../../src/lab/etcd.js';
import { CLI_PATH, labSkipReason } from '../../src/lab/lab.js';
import { waitFor } from '../../src/lab/wait.js';

const skip = labSkipReason() ?? etcdSkipReason();

t.test('one router, two networks on two bridges', { skip: skip ?? false }, async (t) => {
  const { lab, etcd, defineNetwork, destroy } = await etcdLab();
  t.teardown(destroy);
  const h1 = await lab.addHost('h1', '198.51.100.1');
  const h2 = await lab.addHost('h2', '198.51.100.2');
  for (const h of [h1, h2]) await lab.addBridge(h, 'br1');
  const b1 = await lab.addContainer(h1, 'b1', '198.18.1.1');
  const b2 = await lab.addContainer(h2, 'b2', '198.18.1.2');
  const r1 = await lab.addContainer(h1, 'r1', '198.18.2.1', undefined, 'br1');
  const r2 = await lab.addContainer(h2, 'r2', '198.18.2.2', undefined, 'br1');
  t.match(await defineNetwork(h1, 'blue', 100), /network blue created \(VNI 100/);
  t.match(await defineNetwork(h1, 'red', 200), /network red created \(VNI 200/);

  const args = ['--etcd', etcd.endpoint, '--lease-ttl', '2', '--network', 'blue:br0', '--network', 'red:br1'];
  const routers = [await lab.startRouter(h1, { peers: [], engine: 'native', vni: null, args }), await lab.startRouter(h2, { peers: [], engine: 'js', vni: null, args })];
  await waitFor(async () => (await routers[0]!.peers())[200]?.length === 1 && (await routers[0]!.peers())[100]?.length === 1, { timeoutMs: 5000, what: 'h1 to see h2 in both networks' });

  t.equal((await lab.ping(b1.ns, b2.ip, 3)).loss, 0, 'blue: b1 → b2');
  t.equal((await lab.ping(r2.ns, r1.ip, 3)).loss, 0, 'red: r2 → r1');
  t.equal((await lab.ping(b1.ns, r2.ip, 2)).loss, 100, 'blue cannot reach red: separate segments');
  t.equal((await lab.ping(r1.ns, b2.ip, 2)).loss, 100, 'nor red blue');

  const status = statusSchema.parse(JSON.parse((await lab.exec(h1.ns, process.execPath, [CLI_PATH, 'status', '--socket', lab.controlSocket(h1), '--json'])).stdout));
  t.match(status.networks, [
    { name: 'blue', vni: 100, tap: 'vxr100', bridge: 'br0', state: 'connected', hosts: 2 },
    { name: 'red', vni: 200, tap: 'vxr200', bridge: 'br1', state: 'connected', hosts: 2 },
  ]);
  t.match(status, { network: 'blue', vni: 100, controlPlane: { mode: 'etcd', state: 'connected' } }, 'the first network at the top, the combined etcd state');
  const text = (await lab.exec(h1.ns, process.execPath, [CLI_PATH, 'status', '--socket', lab.controlSocket(h1)])).stdout;
  t.match(text, /network blue: vni 100 {2}tap: vxr100 on bridge br0 .*\n {2}network red: vni 200 {2}tap: vxr200 on bridge br1/);
  const peers = peersSchema.parse(JSON.parse((await lab.exec(h2.ns, process.execPath, [CLI_PATH, 'peers', '--socket', lab.controlSocket(h2), '--json'])).stdout));
  t.match(peers, [{ address: h1.underlayIp, vnis: [100, 200], origin: 'etcd', networks: ['blue', 'red'] }], 'h2 sees h1 in both networks');
});
