/**
 * Stop within the unit's timeout whatever clients hold open (issue 15):
 *
 *   [h1] router (metrics on 127.0.0.1:9477) ◀── a scrape that never finishes its request, a control-socket client
 *        that never sends, one that sends half a frame  ──▶ SIGTERM
 *
 * The router exits 0 well within config/vxlan-router.service's TimeoutStopSec (15 s; asserted < 5 s here), its
 * lease is revoked (its host record is gone from etcd at once, though its TTL is 30 s), and its snapshot holds the
 * latest table (a MAC that arrived just before the SIGTERM).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { readSnapshot } from '../../src/control/index.js';
import { etcdLab, etcdSkipReason } from '../../src/lab/etcd.js';
import { labSkipReason, VNI } from '../../src/lab/lab.js';
import { waitFor } from '../../src/lab/wait.js';

const ETCD_IP = '198.51.100.254';
const skip = labSkipReason() ?? etcdSkipReason();
const UNIT_TIMEOUT_S = Number(/^TimeoutStopSec=(\d+)$/m.exec(readFileSync(new URL('../../config/vxlan-router.service', import.meta.url), 'utf8'))?.[1]);
const BOUND_MS = 5000;

/** Holds clients open on the router's metrics and control socket until killed; prints "held" once they are. */
const holder = (socket: string): string => `
  const net = require('node:net');
  const open = (o) => new Promise((resolve, reject) => { const s = net.connect(o, () => resolve(s)); s.on('error', reject); });
  (async () => {
    const scrape = await open({ host: '127.0.0.1', port: 9477 });
    scrape.write('GET /metrics HTTP/1.1\\r\\nHost: 127.0.0.1\\r\\n'); // never ends its headers
    const silent = await open({ path: ${JSON.stringify(socket)} }); // never sends
    const half = await open({ path: ${JSON.stringify(socket)} });
    half.write(Buffer.from([0, 0])); // half a length prefix
    for (const s of [scrape, silent, half]) s.on('error', () => undefined);
    console.log('held');
    setInterval(() => undefined, 1 << 30);
  })().catch((e) => { console.log('failed ' + e.message); process.exit(1); });`;

t.test('SIGTERM with clients holding on: bounded exit, lease revoked, snapshot flushed', { skip: skip ?? false }, async (t) => {
  t.ok(UNIT_TIMEOUT_S >= 10, `the unit gives ${UNIT_TIMEOUT_S} s (TimeoutStopSec); the bound here is ${BOUND_MS / 1000} s`);
  const { lab, etcd, defineNetwork, destroy } = await etcdLab(ETCD_IP);
  t.teardown(destroy);
  const [h1, h2] = [await lab.addHost('h1', '198.51.100.1'), await lab.addHost('h2', '198.51.100.2')];
  const [c1, c2] = [await lab.addContainer(h1, 'c1', '198.18.0.1'), await lab.addContainer(h2, 'c2', '198.18.0.2')];
  await defineNetwork(h1);
  const args = ['--etcd', etcd.endpoint, '--lease-ttl', '30'];
  const r1 = await lab.startRouter(h1, { peers: [], engine: 'native', vni: null, args: [...args, '--metrics', '127.0.0.1:9477'] });
  const r2 = await lab.startRouter(h2, { peers: [], engine: 'native', vni: null, args });
  await waitFor(async () => (await r2.peers())[VNI]?.length === 1, { timeoutMs: 5000, what: 'h2 to see h1' });
  t.equal((await lab.ping(c1.ns, c2.ip, 2)).loss, 0, 'overlay up through etcd');

  const hostKeys = async (): Promise<string> =>
    (await lab.exec(h2.ns, 'etcdctl', ['--endpoints', etcd.endpoint, 'get', '--prefix', '--keys-only', '/vxlan-router/v1/networks/default/hosts/'])).stdout;
  t.match(await hostKeys(), /198\.51\.100\.1/, "h1's host record is in etcd");

  // A MAC that reaches h1 just before the stop: the snapshot must hold it when the router has exited.
  const c3 = await lab.addContainer(h2, 'c3', '198.18.0.3');
  await lab.ping(c3.ns, c1.ip, 1);
  await waitFor(async () => (await r1.status()).counters.rx_datagrams! > 0 && JSON.stringify(await r1.neighbors()).includes(c3.mac), { timeoutMs: 5000, what: "c3's MAC in h1's table" });

  const held = lab.spawn(h1.ns, process.execPath, ['-e', holder(r1.socket)]);
  let out = '';
  held.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  await waitFor(() => out.includes('held') || out.includes('failed'), { timeoutMs: 5000, what: 'the clients to connect' });
  t.match(out, /held/, 'a stuck scrape and two silent control clients are connected');

  const t0 = Date.now();
  r1.child.kill('SIGTERM');
  const code = await Promise.race([r1.exited, new Promise<'hung'>((resolve) => setTimeout(() => resolve('hung'), BOUND_MS).unref())]);
  const ms = Date.now() - t0;
  const keys = await hostKeys();
  if (code === 'hung') await r1.stop();
  t.equal(code, 0, `exit 0 after SIGTERM in ${ms} ms (bound ${BOUND_MS} ms, the unit's ${UNIT_TIMEOUT_S} s)`);
  t.notMatch(keys, /198\.51\.100\.1/, `h1's host record gone from etcd at exit (${Date.now() - t0} ms after SIGTERM; lease TTL 30 s)`);
  await waitFor(async () => (await r2.peers())[VNI]?.length === 0, { timeoutMs: 3000, what: 'h2 to drop h1' });
  t.pass('h2 dropped h1 at once');

  const snap = readSnapshot(join(lab.stateDir(h1), 'default.snapshot'));
  t.ok(snap.ok, 'the snapshot reads back');
  const v = snap.ok ? snap.snapshot.table.vnis[0] : undefined;
  t.ok(v?.macs.some((m) => m.mac === c3.mac), "and holds c3's MAC, learned just before the stop");
  held.kill();
});
