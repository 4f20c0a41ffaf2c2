/**
 * config/vxlan-router.service, without systemd (none runs here): its ExecStart, with the repository in place of
 * /opt/vxlan-router and a config of the example's shape, starts a router that gets ready; its KillSignal stops it
 * within TimeoutStopSec, exit status 0, TAP removed; the directories it lets the router write (RuntimeDirectory,
 * StateDirectory, under ProtectSystem=strict) are the ones the router uses by default.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t, { type Test } from 'tap';
import { RUN_DIR, STATE_DIR } from '../../src/config/index.js';
import { staleBuild, staleBuildReason } from '../../src/lab/stale-build.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const unit = readFileSync(join(root, 'config/vxlan-router.service'), 'utf8');
const key = (k: string): string => {
  const m = new RegExp(`^${k}=(.*)$`, 'm').exec(unit);
  if (m === null) throw new Error(`${k}= missing from the unit`);
  return m[1]!.trim();
};

t.test('the unit names the directories the router writes', async (t) => {
  t.equal(`/run/${key('RuntimeDirectory')}`, RUN_DIR, 'RuntimeDirectory holds the control sockets (the machine\'s namespace: the unit runs there)');
  t.equal(`/var/lib/${key('StateDirectory')}`, STATE_DIR, 'StateDirectory holds the etcd snapshots');
  t.equal(key('ProtectSystem'), 'strict', 'everything else read-only');
  t.match(key('CapabilityBoundingSet'), /CAP_NET_ADMIN/);
  t.ok(key('ExecStart').split(' ').some((w) => basename(w) === 'cli.js'), 'runs dist/cli.js');
  t.equal(key('Type'), 'notify', 'the router says READY=1 (and MAINPID= after a takeover)');
  t.equal(key('NotifyAccess'), 'all', 'the router that takes over on reload is not the main process until it says so');
  t.equal(key('ExecReload'), key('ExecStart').replace(' up ', ' restart '), 'reload: `restart` with the options of ExecStart (a hitless takeover)');
});

t.test('a build older than its sources is named, with the command that fixes it', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'vxr-stale-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = (path: string, ageS: number): void => {
    mkdirSync(join(dir, path, '..'), { recursive: true });
    writeFileSync(join(dir, path), '');
    const at = Date.now() / 1000 - ageS;
    utimesSync(join(dir, path), at, at);
  };
  file('src/agent/a.ts', 20);
  file('dist/agent/a.js', 10);
  file('native/src/x.cc', 20);
  file('native/build/Release/vxlan_native.node', 10);
  t.equal(staleBuildReason(dir), undefined, 'every output newer than its source: fresh');
  file('src/b.ts', 5);
  t.match(staleBuildReason(dir), /src\/b\.ts has no dist\/ output\): run npm run build:ts/, 'a source without output');
  file('dist/b.js', 1);
  file('src/agent/a.ts', 0);
  t.match(staleBuildReason(dir), /src\/agent\/a\.ts changed after it was compiled\): run npm run build:ts/, 'a source changed after its build');
  file('dist/agent/a.js', 0);
  file('native/src/x.cc', 0);
  t.match(staleBuildReason(dir), /native addon is older than its sources \(native\/src\/x\.cc changed after it was built\): run npm run build:native/, 'the addon likewise');
});

/**
 * A namespace with an underlay address and br0, the example's keys in a config file of the test's own (socket and
 * state in its directory), and ExecStart run inside it until its ready line (or 15 s). Removed at the test's end, the
 * router killed if it still runs. ExecStart runs dist/cli.js: a build older than src/ fails at once (it would run old
 * code, and the test wait for lines that never come).
 */
async function startUnitRouter(t: Test, name: string): Promise<{ ns: string; dir: string; config: string; argv: string[]; ip: (...args: string[]) => string; child: ChildProcess; out: () => string; exited: Promise<number | null> }> {
  const stale = staleBuild();
  if (stale !== undefined) throw new Error(stale);
  const ns = `${name}-${process.pid}`;
  const dir = mkdtempSync(join(tmpdir(), 'vxr-unit-'));
  const ip = (...args: string[]): string => execFileSync('ip', ['-n', ns, ...args], { encoding: 'utf8' });
  execFileSync('ip', ['netns', 'add', ns]);
  t.teardown(() => {
    execFileSync('ip', ['netns', 'del', ns]);
    rmSync(dir, { recursive: true, force: true });
  });
  ip('link', 'add', 'u0', 'type', 'veth', 'peer', 'name', 'u1');
  ip('addr', 'add', '198.51.100.1/24', 'dev', 'u0');
  ip('link', 'set', 'u0', 'up');
  ip('link', 'add', 'br0', 'type', 'bridge');
  ip('link', 'set', 'br0', 'up');
  const config = join(dir, 'vxlan-router.yaml');
  writeFileSync(config, `local: 198.51.100.1\nvni: 42\nbridge: br0\npeers: [198.51.100.2]\nsocket: ${dir}/vxr42.sock\nstateDir: ${dir}\nmetrics: off\n`);
  const argv = key('ExecStart').replaceAll('/opt/vxlan-router/', root).replace('/etc/vxlan-router.yaml', config).split(' ');
  const child = spawn('ip', ['netns', 'exec', ns, process.execPath, ...argv.slice(1)], { stdio: ['ignore', 'pipe', 'pipe'] });
  // A router left running (a check failed before it was stopped) would hold this test process open: killed (its pid
  // is ours: `ip netns exec` execs node), in or out of the namespace.
  t.teardown(() => void (child.exitCode === null && child.signalCode === null && child.kill('SIGKILL')));
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const deadline = Date.now() + 15_000;
  while (!out.includes('vxlan-router: ready') && Date.now() < deadline && child.exitCode === null) await new Promise((r) => setTimeout(r, 100));
  return { ns, dir, config, argv, ip, child, out: () => out, exited };
}

t.test("ExecStart starts a router; KillSignal stops it within TimeoutStopSec", { skip: process.getuid?.() === 0 ? false : 'needs root for a network namespace' }, async (t) => {
  const { ns, config, argv, ip, out, exited } = await startUnitRouter(t, 'vxr-unit');
  t.equal(argv[0], '/usr/bin/node', 'Debian\'s node, as the unit says');
  t.match(out(), /vxlan-router: ready engine=native tap=vxr42/, 'ready');
  t.match(ip('-o', 'link'), /vxr42/, 'its TAP is up');

  // ExecReload: a new router takes over (the old one exits 0, the TAP stays); stop that one as systemd would.
  const reload = key('ExecReload').replaceAll('/opt/vxlan-router/', root).replace('/etc/vxlan-router.yaml', config).split(' ');
  // Not execFileSync: this process must go on reaping the old router while the reload runs. Done when `restart`
  // exits, not when its pipes close: the new router keeps the stderr it inherits (under systemd, the journal).
  const reloaded = await new Promise<string>((resolve, reject) => {
    const r = spawn('ip', ['netns', 'exec', ns, process.execPath, ...reload.slice(1)], { stdio: ['ignore', 'pipe', 'ignore'] });
    let text = '';
    r.stdout!.on('data', (d: Buffer) => (text += d.toString()));
    const timer = setTimeout(() => (r.kill(), reject(new Error(`ExecReload did not end in 60 s: ${text}`))), 60_000);
    // Its stdout is its own (the new router's goes to `restart`, which closes it): wait for that and the exit.
    void Promise.all([new Promise((e) => r.once('exit', e)), new Promise((e) => r.stdout!.once('end', e))]).then(() => (clearTimeout(timer), resolve(text)));
  });
  t.match(reloaded, /vxlan-router: restarted, pid \d+: ready engine=native tap=vxr42/, 'ExecReload: a new router took over');
  t.equal(await Promise.race([exited, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 10_000))]), 0, 'the old router exited 0');
  t.match(ip('-o', 'link'), /vxr42/, 'the TAP stayed');
  const newPid = Number(/pid (\d+)/.exec(reloaded)![1]);
  process.kill(newPid, key('KillSignal') as NodeJS.Signals);
  const gone = Date.now() + Number(key('TimeoutStopSec')) * 1000;
  while (Date.now() < gone && (() => { try { process.kill(newPid, 0); return true; } catch { return false; } })()) await new Promise((r) => setTimeout(r, 100));
  t.notMatch(ip('-o', 'link'), /vxr42/, 'the new router stopped by KillSignal: its TAP is gone');
});

t.test('the unit still stops a router that was never reloaded', { skip: process.getuid?.() === 0 ? false : 'needs root for a network namespace' }, async (t) => {
  const { ip, child, out, exited } = await startUnitRouter(t, 'vxr-unit2');
  t.match(out(), /vxlan-router: ready engine=native tap=vxr42/, 'ready');

  const signal = key('KillSignal') as NodeJS.Signals;
  const stopS = Number(key('TimeoutStopSec'));
  const t0 = Date.now();
  child.kill(signal);
  const code = await Promise.race([exited, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), stopS * 1000))]);
  t.equal(code, 0, `${signal}: exit 0 in ${Date.now() - t0} ms (TimeoutStopSec=${stopS})`);
  t.notMatch(ip('-o', 'link'), /vxr42/, 'its TAP is gone');
  if (code === 'timeout') child.kill('SIGKILL');
});
