/**
 * `vxlan-router up` refuses bad input with one clear line, a non-zero exit, and nothing left behind.
 *
 *   [vxr-cli-<pid> netns]  dummy0 (veth, carrier down) 198.51.100.1/24   br0 (bridge)
 *
 * The privileged cases run in a namespace of their own (root only; they skip with a reason otherwise).
 */
import { execFile, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';

const CLI = fileURLToPath(new URL('../../dist/cli.js', import.meta.url));
const isRoot = process.getuid?.() === 0;

// Every `up` here names its own control socket and state dir, and no metrics: the defaults (/run/vxlan-router,
// /var/lib/vxlan-router, 127.0.0.1:9477) are the machine's, and a snapshot there would let a router start from it
// where these cases expect a failed start.
const own = mkdtempSync(join(tmpdir(), 'vxr-cli-'));
t.teardown(() => rmSync(own, { recursive: true, force: true }));
const up = (...args: string[]): string[] => ['up', ...args, '--socket', join(own, 'vxr.sock'), '--state-dir', own, '--metrics', 'off'];

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** The CLI with `args` (after `prefix`, e.g. ip netns exec); not awaited at once, independent cases run side by side. */
function run(args: string[], prefix: string[] = [], timeoutMs = 60_000): Promise<Run> {
  const [cmd, ...rest] = [...prefix, process.execPath, CLI, ...args];
  return new Promise((resolve) => {
    execFile(cmd!, rest, { encoding: 'utf8', timeout: timeoutMs }, (err, stdout, stderr) => {
      const code = (err as { code?: unknown } | null)?.code;
      resolve({ status: err === null ? 0 : typeof code === 'number' ? code : null, stdout, stderr });
    });
  });
}

t.test('usage errors (no privileges needed)', async (t) => {
  const bad = await run(up('--local', '198.51.100.1', '--vni', '99999999', '--bridge', 'br0'));
  t.equal(bad.status, 2);
  t.match(bad.stderr, /^vxlan-router: error \[E_CONFIG\]: --vni: 99999999 .*\n$/);

  const ip = await run(up('--local', 'not-an-ip', '--vni', '42', '--bridge', 'br0'));
  t.equal(ip.status, 2);
  t.match(ip.stderr, /--local: "not-an-ip" is not an IPv4 or IPv6 address/);

  const cfg = await run(up('--config', fileURLToPath(new URL('./fixtures/unknown-key.yaml', import.meta.url))));
  t.equal(cfg.status, 2);
  t.match(cfg.stderr, /unknown-key\.yaml: unknown key 'peer'/);

  const engine = await run(up('--engine', 'kernel'));
  t.equal(engine.status, 2);
  t.match(engine.stderr, /--engine <kind>' argument 'kernel' is invalid/);

  const help = await run(['up', '--help']);
  t.equal(help.status, 0);
  t.match(help.stdout, /--peer <ip>/);

  // A reader that goes away (`vxlan-router fdb | head -1`): a quiet exit, no EPIPE stack trace.
  const piped = await new Promise<Run>((resolve) => {
    const child = spawn(process.execPath, [CLI, '--help'], { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.destroy(); // the read end is closed before the help is written
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (status) => resolve({ status, stdout: '', stderr }));
  });
  t.same({ status: piped.status, stderr: piped.stderr }, { status: 0, stderr: '' }, 'stdout closed by its reader: exit 0, nothing on stderr');

  const version = await run(['--version']);
  t.equal(version.status, 0);
  t.equal(version.stdout.trim(), (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version, '--version: the package version');
});

t.test('environment errors', { skip: isRoot ? false : 'needs root to build a network namespace' }, async (t) => {
  const ns = `vxr-cli-${process.pid}`;
  const ip = (...args: string[]): string => execFileSync('ip', ['-n', ns, ...args], { encoding: 'utf8' });
  execFileSync('ip', ['netns', 'add', ns]);
  t.teardown(() => execFileSync('ip', ['netns', 'del', ns]));
  ip('link', 'add', 'dummy0', 'type', 'veth', 'peer', 'name', 'dummy1'); // this kernel has no 'dummy' driver
  ip('addr', 'add', '198.51.100.1/24', 'dev', 'dummy0');
  ip('link', 'set', 'dummy0', 'up');
  ip('link', 'add', 'br0', 'type', 'bridge');
  ip('link', 'set', 'br0', 'up');
  const inNs = ['ip', 'netns', 'exec', ns];
  const args = up('--local', '198.51.100.1', '--vni', '42', '--peer', '198.51.100.2');
  const noTap = (): boolean => !ip('-o', 'link').includes('vxr42');

  const cases = (engine: string) => ({
    noBridge: run([...args, '--bridge', 'br9', '--engine', engine], inNs),
    notBridge: run([...args, '--bridge', 'dummy0', '--engine', engine], inNs),
    notLocal: run(up('--local', '198.51.100.7', '--vni', '42', '--bridge', 'br0', '--engine', engine), inNs),
    tapTaken: run([...args, '--bridge', 'br0', '--tap', 'dummy0', '--engine', engine], inNs),
    nobody: run([...args, '--bridge', 'br0', '--engine', engine], [...inNs, 'setpriv', '--reuid=65534', '--regid=65534', '--clear-groups']),
    // /dev/net/tun hidden by a private mount: the router names the missing device.
    noTun: run([...args, '--bridge', 'br0', '--engine', engine], ['unshare', '-m', 'sh', '-c', `mount -t tmpfs none /dev/net && exec ip netns exec ${ns} "$@"`, 'sh']),
  });
  // The cases that need no port blocker run side by side, none of them gets as far as binding the port, so TAP checks
  // come once all have ended. First the one that waits: etcd named but not there (an address of this namespace's own
  // subnet that nobody holds): a clear error in bounded time, and no TAP left.
  const noEtcdRun = run(up('--local', '198.51.100.1', '--bridge', 'br0', '--etcd', 'http://198.51.100.250:2379'), inNs, 40_000);

  const started = { native: cases('native'), js: cases('js') };
  for (const engine of ['native', 'js'] as const) {
    const c = started[engine];
    const noBridge = await c.noBridge;
    t.equal(noBridge.status, 1, `${engine}: missing bridge`);
    t.match(noBridge.stderr, /error \[E_NO_BRIDGE\]: bridge br9 does not exist/);
    t.match((await c.notBridge).stderr, /error \[E_NO_BRIDGE\]: dummy0 is not a bridge/);
    const notLocal = await c.notLocal;
    t.equal(notLocal.status, 1);
    t.match(notLocal.stderr, /error \[E_ADDRESS\]: local address 198\.51\.100\.7 is not configured/);
    t.match((await c.tapTaken).stderr, /an interface named dummy0 already exists/);
    const nobody = await c.nobody;
    t.equal(nobody.status, 1);
    t.match(nobody.stderr, /error \[E_PRIVILEGE\]: needs CAP_NET_ADMIN/);
    const noTun = await c.noTun;
    t.equal(noTun.status, 1);
    t.match(noTun.stderr, /error \[E_NO_TUN\]: \/dev\/net\/tun is missing/);
  }
  const noEtcd = await noEtcdRun;
  t.equal(noEtcd.status, 1);
  t.match(noEtcd.stderr, /error \[E_ETCD\]: etcd at http:\/\/198\.51\.100\.250:2379 did not answer in 10 s/);
  t.ok(noTap(), 'no TAP left after any of these failed starts (etcd unreachable among them)');

  // Port taken: a UDP listener on 198.51.100.1:4789 in the namespace. The TAP must not survive the failure.
  const code = "require('dgram').createSocket('udp4').bind(4789, '198.51.100.1', () => setTimeout(() => {}, 30000))";
  const blocker = spawn('ip', ['netns', 'exec', ns, process.execPath, '-e', code], { stdio: 'ignore' });
  try {
    await waitUntil(() => udpBound(ns));
    for (const engine of ['native', 'js']) {
      const busy = await run([...args, '--bridge', 'br0', '--engine', engine], inNs);
      t.equal(busy.status, 1, `${engine}: port in use`);
      t.match(busy.stderr, /error \[E_PORT_IN_USE\]/);
      t.ok(noTap(), `${engine}: no TAP left behind after a failed start`);
    }
  } finally {
    blocker.kill('SIGKILL'); // ip netns exec execs node: this PID is the listener's
  }
});

function udpBound(ns: string): boolean {
  return execFileSync('ip', ['netns', 'exec', ns, 'ss', '-Hlun'], { encoding: 'utf8' }).includes('198.51.100.1:4789');
}

async function waitUntil(cond: () => boolean, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 50));
  }
}
