/**
 * A router restarted while etcd is down forwards from its on-disk snapshot:
 *
 *   [h1] router (restarted) ┐                                   ┌ router [h2]
 *                           ╞══ switch (etcd at 198.51.100.254) ╡
 *   c1 198.18.0.1 ── br0                                       br0 ── c2 198.18.0.2
 *
 * Both join through etcd; h1's snapshot is written; etcd stops; h1's router stops and starts again: it says it
 * forwards from the snapshot, c1 reaches c2, and when etcd comes back h1 joins again by itself. Restored from the
 * snapshot, nothing is lost: c2's MAC keeps its origin (etcd), c1's ARP for c2 is still answered by h1 itself
 * (arp_suppressed grows), and h1 keeps its address range. A corrupt snapshot is ignored with a message (the start
 * then fails with the usual clear error: nothing to forward with).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { fdbSchema, statusSchema, type FdbRows, type Status, type WhyResult } from '../../src/agent/index.js';
import { readSnapshot } from '../../src/control/index.js';
import { etcdLab, etcdSkipReason } from '../../src/lab/etcd.js';
import { CLI_PATH, labSkipReason, VNI } from '../../src/lab/lab.js';
import { waitFor } from '../../src/lab/wait.js';

const ETCD_IP = '198.51.100.254';
const skip = labSkipReason() ?? etcdSkipReason();

t.test('restart with etcd down: forwarding resumes from the snapshot', { skip: skip ?? false }, async (t) => {
  const { lab, etcd, defineNetwork, destroy } = await etcdLab(ETCD_IP);
  t.teardown(destroy);
  const [h1, h2] = [await lab.addHost('h1', '198.51.100.1'), await lab.addHost('h2', '198.51.100.2')];
  const [c1, c2] = [await lab.addContainer(h1, 'c1', '198.18.0.1'), await lab.addContainer(h2, 'c2', '198.18.0.2')];
  await defineNetwork(h1);
  const args = ['--etcd', etcd.endpoint, '--lease-ttl', '5'];
  let r1 = await lab.startRouter(h1, { peers: [], engine: 'native', vni: null, args });
  await lab.startRouter(h2, { peers: [], engine: 'native', vni: null, args });
  await waitFor(async () => (await r1.peers())[VNI]?.length === 1, { timeoutMs: 5000, what: 'h1 to see h2' });
  t.equal((await lab.ping(c1.ns, c2.ip, 2)).loss, 0, 'overlay up through etcd');
  t.match(await r1.nextLog((l) => l.includes('control plane connected'), 1000, true), /control plane connected since \S+ \(revision \d+, 1 hosts\)/, "h1 joined first, alone");

  const ask = async (what: 'status' | 'fdb'): Promise<unknown> =>
    JSON.parse((await lab.exec('', process.execPath, [CLI_PATH, what, '--json', '--socket', lab.controlSocket(h1)])).stdout);
  const status = async (): Promise<Status> => statusSchema.parse(await ask('status'));
  const fdb = async (): Promise<FdbRows> => fdbSchema.parse(await ask('fdb'));
  const range = (await status()).networks[0]!.range;
  t.match(range, /^198\.18\.\d+\.0\/24$/, `h1 leased a range (${range})`);

  const path = join(lab.stateDir(h1), 'default.snapshot');
  await waitFor(() => {
    const s = readSnapshot(path);
    const v = s.ok ? s.snapshot.table.vnis[0] : undefined;
    return v?.peers.join() === h2.underlayIp && v.macs.some((m) => m.mac === c2.mac) && (v.neighbors ?? []).some((n) => n.ip === c2.ip);
  }, { timeoutMs: 5000, what: `h1's snapshot at ${path}, with c2's MAC and address` });
  const good = readFileSync(path);

  // `why` names the etcd entry with the revision of c2's claim, and where h2 comes from.
  const why = async (...args: string[]): Promise<WhyResult> =>
    JSON.parse((await lab.exec('', process.execPath, [CLI_PATH, 'why', ...args, '--json', '--socket', lab.controlSocket(h1)])).stdout) as WhyResult;
  const toC2 = await why(c2.ip, '--from', c1.ip, '--flow', 'tcp:40000:80');
  t.match(toC2.frames, [{ mac: c2.mac, ip: c2.ip, verdict: 'remote', origin: 'etcd', revision: Number, vtep: h2.underlayIp, sourcePort: { port: Number, flow: `TCP 40000 → 80 from ${c1.ip}` } }], `why ${c2.ip}: the etcd entry, revision ${toC2.frames[0]?.revision}`);
  t.ok(toC2.frames[0]!.revision! > 0);
  t.match((await why(h2.underlayIp)).sender, { verdict: 'accepted', peerOf: [{ vni: VNI, origin: 'etcd', hostId: String }], detail: /^etcd host \S+, a peer of VNI/ });

  // Stop h1 only once it knows etcd is gone: a SIGTERM handled first would wait out its 2 s + 2 s bounds on the watch
  // cancel and the lease revoke, against RouterProcess.stop's SIGKILL at 5 s.
  const degraded = r1.nextLog((l) => l.includes('control plane degraded'), 10_000);
  await etcd.stop();
  await degraded;
  const stopped = Date.now();
  t.equal(await r1.stop(), 0, 'h1 stops cleanly with etcd away');
  t.ok(Date.now() - stopped < 5000, `in ${Date.now() - stopped} ms (the lease revoke is bounded)`);

  // A corrupt snapshot is no help: said so, then the usual clear error (nothing to forward with).
  writeFileSync(path, Buffer.from('this is not msgpack'));
  const failed = await lab.startRouter(h1, { peers: [], engine: 'native', vni: null, args }).then(
    () => 'started',
    (e: Error) => e.message,
  );
  t.match(failed, /"level":40.*ignoring the snapshot .*default\.snapshot: not a (vxlan-router )?snapshot/, 'the corrupt snapshot is reported (a warning)');
  t.match(failed, /error \[E_ETCD\]: etcd at http:\/\/198\.51\.100\.254:2379/, 'and the start fails with the clear etcd error, not a crash');

  writeFileSync(path, good);
  const restarted = Date.now();
  r1 = await lab.startRouter(h1, { peers: [], engine: 'native', vni: null, args });
  t.ok(Date.now() - restarted < 8000, `h1 forwards ${Date.now() - restarted} ms after its restart, etcd still down`);
  t.match(
    await r1.nextLog((l) => l.includes('forwarding from the snapshot'), 1000, true),
    /etcd is unreachable .*; forwarding from the snapshot .*default\.snapshot \(revision \d+, 1 peers, saved \S+\); joining etcd in the background/,
  );
  t.same((await r1.peers())[VNI], [h2.underlayIp], 'the table came from the snapshot');
  t.match(await fdb(), [{ vni: VNI, mac: c2.mac, vtep: h2.underlayIp, origin: 'etcd' }], "c2's MAC, with its origin: etcd");
  const restored = await status();
  t.equal(restored.networks[0]!.range, range, 'the address range is kept');
  t.match(restored.controlPlane, { mode: 'etcd', startedFrom: 'snapshot' });
  const before = await r1.counters();
  await lab.exec(c1.ns, 'ip', ['neigh', 'flush', 'dev', 'eth0']);
  t.equal((await lab.ping(c1.ns, c2.ip, 3)).loss, 0, 'c1 reaches c2 with etcd down');
  t.equal((await r1.counters()).arp_suppressed! - before.arp_suppressed!, 1, "h1 answered c1's ARP for c2 itself, from the snapshot's neighbours");

  await etcd.resume();
  const healthy = Date.now();
  // Any line since its start: the restarted router cannot have been connected before etcd came back, and it may
  // well connect while resume() still waits for etcd to report healthy.
  await r1.nextLog((l) => l.includes('control plane connected'), 15_000, true);
  t.pass(`h1 joined etcd ${Date.now() - healthy} ms after it was healthy`);
  t.same((await r1.peers())[VNI], [h2.underlayIp], 'and follows the registry again');
  t.equal((await lab.ping(c1.ns, c2.ip, 2)).loss, 0, 'still forwarding');
});
