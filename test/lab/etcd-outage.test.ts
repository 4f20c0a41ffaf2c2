/**
 * etcd goes away and comes back; the overlay does not notice:
 *
 *   [h1] router ┐                                   ┌ router [h2]
 *               ╞══ switch (etcd at 198.51.100.254) ╡
 *                         [h3] joins after etcd is back
 *
 * A ping flood between c1 and c2 runs while etcd is stopped for 30 s: nothing is lost (the data path forwards with
 * the last table). When etcd is healthy again, a third host joins and c1 reaches it within 5 s.
 */
import t from 'tap';
import { statusSchema, type Status } from '../../src/agent/index.js';
import { etcdLab, etcdSkipReason } from '../../src/lab/etcd.js';
import { CLI_PATH, labSkipReason, VNI } from '../../src/lab/lab.js';
import { waitFor } from '../../src/lab/wait.js';

const ETCD_IP = '198.51.100.254';
const OUTAGE_S = 30;
const skip = labSkipReason() ?? etcdSkipReason();

t.test('etcd outage', { skip: skip ?? false }, async (t) => {
  const { lab, etcd, defineNetwork, destroy } = await etcdLab(ETCD_IP);
  t.teardown(destroy);
  const [h1, h2, h3] = [await lab.addHost('h1', '198.51.100.1'), await lab.addHost('h2', '198.51.100.2'), await lab.addHost('h3', '198.51.100.3')];
  const [c1, c2, c3] = [await lab.addContainer(h1, 'c1', '198.18.0.1'), await lab.addContainer(h2, 'c2', '198.18.0.2'), await lab.addContainer(h3, 'c3', '198.18.0.3')];
  await defineNetwork(h1);
  const args = ['--etcd', etcd.endpoint];
  const r1 = await lab.startRouter(h1, { peers: [], engine: 'native', vni: null, args });
  const controlPlane = async (): Promise<Status['controlPlane']> => {
    const out = await lab.exec('', process.execPath, [CLI_PATH, 'status', '--json', '--socket', lab.controlSocket(h1)]);
    return statusSchema.parse(JSON.parse(out.stdout)).controlPlane;
  };
  await lab.startRouter(h2, { peers: [], engine: 'native', vni: null, args });
  await waitFor(async () => (await r1.peers())[VNI]?.length === 1, { timeoutMs: 5000, what: 'h1 to see h2' });
  t.equal((await lab.ping(c1.ns, c2.ip, 2)).loss, 0, 'overlay up');

  // 50 pings a second for the whole outage and a little more, bounded by count and deadline.
  const count = (OUTAGE_S + 6) * 50;
  const flood = lab.exec(c1.ns, 'ping', ['-i', '0.02', '-c', String(count), '-w', String(OUTAGE_S + 20), '-q', c2.ip], (OUTAGE_S + 30) * 1000);
  await new Promise((r) => setTimeout(r, 2000));
  await etcd.stop();
  await new Promise((r) => setTimeout(r, OUTAGE_S * 1000));
  const away = await controlPlane();
  t.match(away, { mode: 'etcd', state: 'degraded', since: String }, `status during the outage: etcd away (${JSON.stringify(away)})`);
  await etcd.resume();
  const healthy = Date.now();
  await lab.startRouter(h3, { peers: [], engine: 'native', vni: null, args });
  const startedMs = Date.now() - healthy;
  // Ping only once h1 has h3 (its etcd client reconnects meanwhile): a ping sent earlier is lost and costs ping -W 2.
  await waitFor(async () => (await r1.peers())[VNI]?.includes(h3.underlayIp) === true, { timeoutMs: 10_000, intervalMs: 100, what: 'h1 to see h3' });
  await waitFor(async () => (await lab.ping(c1.ns, c3.ip, 1)).loss === 0, { timeoutMs: 10_000, intervalMs: 100, what: 'c1 to reach c3' });
  const joinedMs = Date.now() - healthy;
  // h3's router start, h1's reconnect (gRPC and retry backoffs up to 1 s and 2 s) and a ping, on a loaded 2-core box.
  t.ok(joinedMs <= 5000, `a host joining after the outage is reachable ${joinedMs} ms after etcd is healthy (router start included: ${startedMs} ms)`);

  const { stdout } = await flood;
  t.match(stdout, new RegExp(`${count} packets transmitted, ${count} received, 0% packet loss`), `no ping lost during the ${OUTAGE_S} s outage`);
  t.same((await r1.peers())[VNI], ['198.51.100.2', '198.51.100.3'], 'h1 follows the registry again');
  await waitFor(async () => (await controlPlane()).state === 'connected', { timeoutMs: 10_000, what: 'status to say etcd is back' });
  t.match(await controlPlane(), { mode: 'etcd', state: 'connected', revision: Number, hosts: 3 }, 'status: connected again');
});
