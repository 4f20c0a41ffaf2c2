/**
 * `vxlan-router doctor` in a lab host: a missing bridge, a bridge member whose MTU is above the overlay's, a TAP MTU
 * the underlay cannot carry, a healthy host (with and without a running router), a refused outer source, a port
 * held by a kernel VXLAN device, and etcd (unreachable, network missing, defined) when no router runs.
 */
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { RUN_DIR_ENV } from '../../src/config/index.js';
import { EtcdServer, etcdSkipReason } from '../../src/lab/etcd.js';
import { Lab, labSkipReason, twoHosts } from '../../src/lab/lab.js';

const CLI = fileURLToPath(new URL('../../dist/cli.js', import.meta.url));

interface Check {
  check: string;
  status: 'ok' | 'warn' | 'fail';
  detail: string;
  fix?: string;
}
const byName = (checks: Check[], name: string): Check | undefined => checks.find((c) => c.check === name);

/** An empty run dir: no router of the machine's is found by a doctor run without --socket. */
const noRouters = mkdtempSync(join(tmpdir(), 'vxr-doctor-run-'));
t.teardown(() => rmSync(noRouters, { recursive: true, force: true }));

/**
 * `vxlan-router doctor` in namespace `ns` ('' for this one), as on a machine where no other router runs: without
 * --socket it reads the settings of a router it finds in its namespace's run dir, so that is an empty one here
 * (VXLAN_ROUTER_RUN_DIR), never the machine's.
 */
function doctor(ns: string, args: string[]): SpawnSyncReturns<string> {
  const argv = [...(ns === '' ? [] : ['ip', 'netns', 'exec', ns]), process.execPath, CLI, 'doctor', ...args];
  return spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', timeout: 30_000, env: { ...process.env, [RUN_DIR_ENV]: noRouters } });
}

t.test('doctor finds what is wrong and names the fix', { skip: labSkipReason() ?? false }, async (t) => {
  const lab = new Lab();
  t.teardown(() => lab.destroy());
  const { h1, h2 } = await twoHosts(lab);

  // Several routers here: doctor cannot know whose settings to check, and says so instead of checking none.
  const several = mkdtempSync(join(tmpdir(), 'vxr-doctor-several-'));
  t.teardown(() => rmSync(several, { recursive: true, force: true }));
  for (const n of ['vxr1.sock', 'vxr2.sock']) writeFileSync(join(several, n), '');
  const two = spawnSync(process.execPath, [CLI, 'doctor'], { encoding: 'utf8', timeout: 30_000, env: { ...process.env, [RUN_DIR_ENV]: several } });
  t.equal(two.status, 1);
  t.match(two.stderr, /\[E_CONTROL\]: several routers run here \(vxr1\.sock, vxr2\.sock in .*\): pick one with --socket/, 'several routers: pick one');

  // No router runs at that socket: doctor says so, since it was asked for that one.
  const noRouter = doctor(h1.ns, ['--socket', `/tmp/vxr${lab.id}-none.sock`]);
  t.match(noRouter.stderr, /\[E_CONTROL\].*no router answers there/, 'an explicit socket that does not answer is an error');

  const healthy = doctor(h1.ns, ['--local', h1.underlayIp, '--bridge', 'br0', '--json']);
  t.equal(healthy.status, 0, `a healthy host passes: ${healthy.stdout}${healthy.stderr}`);
  const ok = JSON.parse(healthy.stdout) as Check[];
  t.same(ok.filter((c) => c.status === 'fail'), []);
  // bridge-firewall only where br_netfilter is loaded (a Docker host; CI after the Docker tests): checked below.
  t.match(ok.map((c) => c.check).filter((c) => c !== 'bridge-firewall'), ['privileges', 'tun', 'bridge', 'underlay', 'mtu', 'bridge-mtu', 'port']);

  // br_netfilter + FORWARD policy DROP (what dockerd sets): a plain bridge's frames are dropped; doctor says so.
  const nf = await lab.exec(h1.ns, 'sh', ['-c', 'cat /proc/sys/net/bridge/bridge-nf-call-iptables 2>/dev/null || true']);
  if (nf.stdout.trim() === '1') {
    await lab.exec(h1.ns, 'iptables', ['-P', 'FORWARD', 'DROP']);
    const dropped = doctor(h1.ns, ['--local', h1.underlayIp, '--bridge', 'br0', '--json']);
    t.equal(dropped.status, 1, 'a bridge whose frames iptables drops fails');
    t.match(byName(JSON.parse(dropped.stdout) as Check[], 'bridge-firewall'), { status: 'fail', detail: /policy DROP/, fix: /iptables -I FORWARD -i br0 -o br0 -j ACCEPT/ });
    await lab.exec(h1.ns, 'iptables', ['-I', 'FORWARD', '-i', 'br0', '-o', 'br0', '-j', 'ACCEPT']);
    const fixed = doctor(h1.ns, ['--local', h1.underlayIp, '--bridge', 'br0', '--json']);
    t.match(byName(JSON.parse(fixed.stdout) as Check[], 'bridge-firewall'), { status: 'ok', detail: /accepts br0/ }, 'the fix it names makes it pass');
    await lab.exec(h1.ns, 'iptables', ['-P', 'FORWARD', 'ACCEPT']);
  } else {
    t.comment('bridge-firewall: br_netfilter is not loaded on this machine, its lab check is left to the unit test');
  }

  const missing = doctor(h1.ns, ['--local', h1.underlayIp, '--bridge', 'br9']);
  t.equal(missing.status, 1, 'a missing bridge fails');
  t.match(missing.stdout, /FAIL {2}bridge: bridge br9 does not exist\n {6}fix: create it \(ip link add br9 type bridge/);

  // A container plugged into br0 with MTU 1500, above the path's 1450: the TAP (MTU 65000 by default) takes its
  // frames and the router answers what does not fit (ICMP too-big), so a warning, not a failure.
  await lab.addContainer(h1, 'big', '198.18.0.9', 1500);
  const big = doctor(h1.ns, ['--local', h1.underlayIp, '--bridge', 'br0', '--json']);
  t.equal(big.status, 0, 'a bridge member above the path MTU is a warning');
  const bm = (JSON.parse(big.stdout) as Check[]).find((c) => c.check === 'bridge-mtu');
  t.match(bm, { status: 'warn', detail: /big \(MTU 1500\) on br0 above the path's 1450: TCP and DF traffic adapts \(ICMP too-big\)/, fix: /com\.docker\.network\.driver\.mtu=1450/ });
  // With the TAP MTU forced down to the path's, the bridge itself drops that member's big frames: unanswered, a failure.
  const forced = doctor(h1.ns, ['--local', h1.underlayIp, '--bridge', 'br0', '--mtu', '1450', '--json']);
  t.equal(forced.status, 1, 'a bridge member above the TAP MTU fails');
  t.match(byName(JSON.parse(forced.stdout) as Check[], 'bridge-mtu'), { status: 'fail', detail: /big \(MTU 1500\) on br0 send frames larger than the TAP's MTU 1450: the bridge drops them, unanswered/, fix: /mtu 1450.*or leave the TAP MTU at its default/ });

  const above = doctor(h1.ns, ['--local', h1.underlayIp, '--mtu', '1480', '--json']);
  t.equal(above.status, 0, 'a TAP MTU above the path is fine: the router answers');
  t.match(byName(JSON.parse(above.stdout) as Check[], 'mtu'), { status: 'ok', detail: /eth0 \(MTU 1500\) carries IP packets up to 1450 in VXLAN; larger ones from the bridge \(TAP MTU 1480\) are answered with ICMP too-big \(mtu 1450\)/ });

  // With a router running, doctor reads its settings from the control socket.
  await lab.startRouter(h2, { peers: [h1.underlayIp], engine: 'native' });
  const withRouter = doctor(h2.ns, ['--socket', lab.controlSocket(h2), '--json']);
  t.equal(withRouter.status, 0, withRouter.stdout + withRouter.stderr);
  const rc = JSON.parse(withRouter.stdout) as Check[];
  t.match(byName(rc, 'router'), { status: 'ok', detail: /native engine on vxr42 is running .*offloads: tap, gso, gro/ });
  t.match(byName(rc, 'mtu'), { status: 'ok', detail: /carries IP packets up to 1450 in VXLAN; larger ones from the bridge \(TAP MTU 65000\)/ });
  t.notOk(byName(rc, 'port'), 'no port check against its own socket');

  // A sender that is not a VTEP of the VNI (a peer sending from a second address): refused, and doctor names it.
  await lab.exec(h1.ns, 'ip', ['addr', 'add', '198.51.100.9/24', 'dev', 'eth0']);
  const send = `const s = require('node:dgram').createSocket('udp4'); s.bind(0, '198.51.100.9', () => s.send(Buffer.from([8,0,0,0,0,0,42,0, ...new Array(60).fill(2)]), 4789, '${h2.underlayIp}', () => s.close()));`;
  await lab.exec(h1.ns, process.execPath, ['-e', send]);
  await lab.exec(h1.ns, process.execPath, ['-e', send]);
  const refused = doctor(h2.ns, ['--socket', lab.controlSocket(h2), '--json']);
  t.equal(refused.status, 1, 'a refused outer source fails');
  t.match(byName(JSON.parse(refused.stdout) as Check[], 'outer-source'), {
    status: 'fail',
    detail: /2 datagram\(s\) of VNI 42 from 198\.51\.100\.9 refused .*not a VTEP of that VNI/,
    fix: /--local 198\.51\.100\.9/,
  });

  // A kernel VXLAN device holds the port (without a process that ss could name).
  await lab.exec(h1.ns, 'ip', ['link', 'add', 'vxk', 'type', 'vxlan', 'id', '9', 'dstport', '4789', 'local', h1.underlayIp, 'nolearning']);
  await lab.exec(h1.ns, 'ip', ['link', 'set', 'vxk', 'up']);
  const taken = doctor(h1.ns, ['--local', h1.underlayIp, '--json']);
  t.equal(taken.status, 1);
  t.match(byName(JSON.parse(taken.stdout) as Check[], 'port'), { status: 'fail', detail: /taken by the kernel VXLAN device vxk/, fix: /ip link del vxk/ });
});

t.test('doctor --etcd without a router: etcd unreachable, network missing, network defined', { skip: etcdSkipReason() ?? false }, async (t) => {
  const etcd = await EtcdServer.start();
  t.teardown(() => etcd.destroy());
  const doctorEtcd = (...args: string[]) => {
    const r = doctor('', ['--etcd', etcd.endpoint, '--json', ...args]);
    return { code: r.status, check: byName(JSON.parse(r.stdout || '[]') as Check[], 'etcd'), err: r.stderr };
  };
  const missing = doctorEtcd('--network', 'lab');
  t.equal(missing.code, 1, missing.err);
  t.match(missing.check, { status: 'fail', detail: /answers, but network lab is not defined/, fix: /vxlan-router network create lab/ });
  const created = spawnSync(process.execPath, [CLI, 'network', 'create', 'lab', '--vni', '42', '--subnet', '198.18.0.0/15', '--etcd', etcd.endpoint], { encoding: 'utf8' });
  t.equal(created.status, 0, created.stderr);
  t.match(doctorEtcd('--network', 'lab').check, { status: 'ok', detail: /network lab is VNI 42, subnet 198\.18\.0\.0\/15/ });
  await etcd.stop();
  const away = doctorEtcd('--network', 'lab');
  t.equal(away.code, 1);
  t.match(away.check, { status: 'fail', detail: /etcd http:\/\/127\.0\.0\.1:\d+: /, fix: /endpoint health/ });
});
