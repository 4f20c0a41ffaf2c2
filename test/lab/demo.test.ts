/**
 * `npm run demo`, the script users run first: its quick mode must pass, print what it did and leave nothing; with
 * --keep the lab outlives the demo (routers still forwarding) until `--down <id>` removes all of it. `--docker`
 * runs the story with a dockerd per host and `up --docker --dns` (names across hosts, -p) and leaves nothing either.
 *
 *   [c1 c2] ── br0 ── router [h1] ══╗
 *   [c3 c4] ── br0 ── router [h2] ══╬══ switch (etcd)        (built by dist/lab/demo.js itself)
 *   [c5 c6] ── br0 ── router [h3] ══╝
 */
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { etcdSkipReason } from '../../src/lab/etcd.js';
import { labSkipReason } from '../../src/lab/lab.js';
import { dockerdSkipReason } from '../../src/lab/dockerd.js';
import { removeLab, type LabRecord } from '../../src/lab/teardown.js';

const DEMO = fileURLToPath(new URL('../../dist/lab/demo.js', import.meta.url));
const STATE_DIR = '/run/vxlan-router-demo';

const demo = (...args: string[]): SpawnSyncReturns<string> =>
  spawnSync(process.execPath, [DEMO, ...args], { encoding: 'utf8', timeout: 120_000 });

/** The namespaces whose names start with `prefix` (other labs may run beside the demo's). */
const namespacesWith = (prefix: string): string[] =>
  spawnSync('ip', ['netns', 'list'], { encoding: 'utf8', timeout: 10_000 }).stdout.split('\n').filter((l) => l.startsWith(prefix));

const running = (pid: number): boolean => {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8')); // a zombie waits for init, it is gone
  } catch {
    return false;
  }
};

t.test('demo --quick', { skip: labSkipReason() ?? etcdSkipReason() ?? false }, async (t) => {
  const r = demo('--quick');
  t.equal(r.status, 0, 'demo exits 0');
  if (r.status !== 0) t.comment(r.stdout + r.stderr);
  t.match(r.stdout, /✓ etcd \(Debian's etcd-server\) at 198\.51\.100\.254: http:\/\/198\.51\.100\.254:2379/);
  t.match(r.stdout, /✓ vxlan-router up on h1, h2, h3 \(--etcd only: no peer lists\)/);
  const registry = /registry \(etcd.*\n((?: {4}.*\n)+)/.exec(r.stdout)?.[1] ?? '';
  t.equal(registry.match(/underlay 198\.51\.100\.[123] /g)?.length, 3, 'three hosts in the registry');
  t.match(r.stdout, /✓ ping matrix: each of 6 containers to every other: 30 of 30 reached/);
  t.notMatch(r.stdout.split('MACs each router')[0]!.split('ping matrix')[1], /✗/, 'no ✗ in the matrix');
  t.match(r.stdout, /h1: (?:c\d [0-9a-f:]{17} → 198\.51\.100\.[23] \((?:etcd|learned)\)(?:, )?){4}\n/, 'h1 knows the four remote containers');
  t.match(r.stdout, /✓ TCP transfer of 20 MB c1 \(h1\) → c5 \(h3\), SHA-256 checked: intact/);
  t.match(r.stdout, /✓ iperf3 TCP c1 \(h1\) → c5 \(h3\), 1 s: [\d.]+ Gbit\/s/);
  t.match(r.stdout, /h1: .*tx_frames=\d+.*\n +drops: none/);
  t.match(r.stdout, /demo: every check passed/);
  t.same(namespacesWith(`vxr${r.pid}-`), [], 'no namespace left behind'); // the demo's labs are vxr<its pid>-<n>
  t.same(readdirSync(tmpdir()).filter((n) => n.startsWith(`vxr-lab-${r.pid}-`)), [], "nor the routers' sockets and state");
});

t.test('demo --keep, then --down', { skip: labSkipReason() ?? etcdSkipReason() ?? false }, async (t) => {
  const r = demo('--quick', '--keep');
  const id = /lab (\d+-\d+) kept up/.exec(r.stdout)?.[1] ?? '';
  t.teardown(async () => {
    if (id !== '') await removeLab(id); // in case something below failed before --down
  });
  t.equal(r.status, 0, 'demo exits 0');
  t.match(r.stdout, new RegExp(`ip netns exec vxr${id}-c1 bash`), 'says how to enter a container');
  t.match(r.stdout, new RegExp(`node dist/lab/demo\\.js --down ${id}`), 'and how to tear it down');
  const record = JSON.parse(readFileSync(`${STATE_DIR}/${id}.json`, 'utf8')) as LabRecord & { etcdDataDir?: string };
  t.equal(record.processes.length, 3, 'the three routers recorded');
  t.match(record, { etcdDataDir: /^\/tmp\/vxr-etcd-/ }, "and etcd's data dir");
  t.ok(record.dir !== undefined && existsSync(record.dir), "and the lab's directory (the routers' sockets and state)");
  t.ok(record.processes.every((p) => running(p.pid) && p.cmdline.includes('dist/cli.js up')), 'and still running after the demo exited');
  const ping = spawnSync('ip', ['netns', 'exec', `vxr${id}-c1`, 'ping', '-c', '2', '-i', '0.2', '-W', '2', '198.18.0.6'], { encoding: 'utf8', timeout: 10_000 });
  t.match(ping.stdout, / 0% packet loss/, 'the kept overlay still forwards');

  const d = demo('--down', id);
  t.equal(d.status, 0, '--down exits 0');
  t.match(d.stdout, new RegExp(`✓ tear down lab ${id}: 10 namespaces removed`));
  t.same(namespacesWith(`vxr${id}-`), [], 'its namespaces are gone');
  t.ok(record.processes.every((p) => !running(p.pid)), 'its routers are gone');
  t.notOk(existsSync(`${STATE_DIR}/${id}.json`) || existsSync(`${STATE_DIR}/${id}`), 'and so are its state file and logs');
  t.notOk(existsSync(record.etcdDataDir!), "and etcd's data dir");
  t.notOk(existsSync(record.dir!), "and the lab's directory");
});

t.test('demo --docker', { skip: labSkipReason() ?? etcdSkipReason() ?? dockerdSkipReason() ?? false }, async (t) => {
  const r = demo('--docker');
  t.equal(r.status, 0, 'demo --docker exits 0');
  if (r.status !== 0) t.comment(r.stdout + r.stderr);
  t.match(r.stdout, /✓ network blue appears on both dockerds \(no docker network create anywhere\)/);
  t.match(r.stdout, /h2\$ docker network ls {3}→ {3}blue vxlan-router local/, "blue is a network of h2's dockerd");
  t.match(r.stdout, /✓ h2\$ docker exec client ping web .*: web is 198\.18\.\d+\.\d+, [\d.]+ ms/, 'client (h2) pings web (h1) by name');
  t.match(r.stdout, /✓ h1\$ docker exec web ping client\.blue .*: client\.blue is 198\.18\./, 'and back by name.network');
  t.match(r.stdout, /✓ h2\$ curl http:\/\/198\.51\.100\.1:8080\/ .*"hello from web on h1"/, '-p 8080:80');
  t.match(r.stdout, /demo --docker: every check passed/);
  t.same(namespacesWith(`vxr${r.pid}-`), [], 'no namespace left behind');
  t.same(readdirSync(tmpdir()).filter((n) => n.startsWith(`vxr-dockerd-vxr${r.pid}-`) || n.startsWith(`vxr-lab-${r.pid}-`)), [], "nor the dockerds' and routers' directories");
  t.notMatch(readFileSync('/proc/mounts', 'utf8'), new RegExp(`vxr-dockerd-vxr${r.pid}-`), "nor the dockerds' mounts");
  t.same(existsSync('/sys/fs/cgroup') ? readdirSync('/sys/fs/cgroup').filter((n) => n.startsWith(`vxr-dockerd-vxr${r.pid}-`)) : [], [], "nor their cgroups");
});
