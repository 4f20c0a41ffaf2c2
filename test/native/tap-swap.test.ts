/**
 * Engine::LostTaps / ReplaceTap (native/src/tap-swap.cc) against the real kernel, in a throwaway namespace:
 *
 *   [c1] ─veth─ br0 ── TAP ── engine (local 198.51.100.1:4789, peer = itself)
 *
 * A TAP that still forwards is not replaced (EBUSY; the new fd is closed, so its TAP goes); a deleted one is
 * reported lost, replaced under the same fd number, and its transmit thread runs again: c1's ARP request goes out
 * through the new TAP and comes back (the engine is its own peer). Bad arguments close the fd too.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { Lab, labSkipReason } from '../../src/lab/lab.js';

const NATIVE = fileURLToPath(new URL('../../src/dataplane/native.ts', import.meta.url));
const TSX = import.meta.resolve('tsx');

const CHILD = `
const { loadNative } = await import(${JSON.stringify(NATIVE)});
const { execFileSync } = await import('node:child_process');
const { existsSync, readdirSync, readFileSync } = await import('node:fs');
const n = loadNative();
const out = {};
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const until = async (cond) => { for (let i = 0; i < 100 && !cond(); i++) await sleep(20); };
const threads = () => readdirSync('/proc/self/task').map((t) => readFileSync('/proc/self/task/' + t + '/comm', 'utf8').trim()).filter((c) => c.startsWith('vxr-tx')).sort();
const rx = (e) => e.counters().traffic[n.trafficCounters.indexOf('rx_datagrams')];
const ping = () => { try { execFileSync('ip', ['netns', 'exec', process.env.C1, 'ping', '-c', '1', '-W', '1', '198.18.0.9']); } catch {} };
const tap = n.openTap('vxrs0', 1450, 'br0');
const e = n.createEngine({ local: '198.51.100.1', port: 4789, underlayMtu: 1500, learning: true, agingMs: 300000, learnMaxPerPeer: 4096, learnMax: 65536, sourceCheck: false, networks: [{ vni: 42, tapFd: tap.fd, mtu: 1450 }] });
e.setTable({ vnis: [{ vni: 42, peers: ['198.51.100.1'], macs: [] }] });
e.start();
out.lostAtStart = e.lostTaps();
const spare = n.openTap('vxrs1', 1450, 'br0');
try { e.replaceTap(42, spare.fd, false); } catch (err) { out.busy = err.code + ' | ' + err.message; }
out.spareGone = !existsSync('/sys/class/net/vxrs1');
const bad = n.openTap('vxrs2', 1450, 'br0');
try { e.replaceTap(42, bad.fd, 'no'); } catch (err) { out.badArg = err.name + ': ' + err.message; }
out.badGone = !existsSync('/sys/class/net/vxrs2');

n.deleteLink('vxrs0');
await until(() => e.lostTaps().length > 0);
out.lost = e.lostTaps();
out.threadsWhileLost = threads();
const wrong = n.openTap('vxrs3', 1450, 'br0', true);
try { e.replaceTap(42, wrong.fd, true); } catch (err) { out.vnetMismatch = err.code; }
try { e.replaceTap(7, n.openTap('vxrs4', 1450, 'br0').fd, false); } catch (err) { out.unknownVni = err.code; }
const fresh = n.openTap('vxrs0', 1450, 'br0');
e.replaceTap(42, fresh.fd, false);
out.lostAfter = e.lostTaps();
out.threadsAfter = threads();
const before = rx(e);
ping();
await until(() => rx(e) > before);
out.forwardsAgain = rx(e) > before;
out.fault = e.fault();
e.stop();
out.tapGoneAfterStop = !existsSync('/sys/class/net/vxrs0');
console.log(JSON.stringify(out));
process.exit(0);`;

t.test('lostTaps / replaceTap', { skip: labSkipReason() ?? false }, async (t) => {
  const lab = new Lab();
  t.teardown(() => lab.destroy());
  const host = await lab.addHost('swap', '198.51.100.1');
  const c1 = await lab.addContainer(host, 'c1', '198.18.0.1');
  const r = spawnSync('ip', ['netns', 'exec', host.ns, process.execPath, '--import', TSX, '--input-type=module', '-e', CHILD], { encoding: 'utf8', timeout: 30_000, env: { ...process.env, C1: c1.ns } });
  t.equal(r.status, 0, r.stderr);
  const o = JSON.parse(r.stdout) as Record<string, unknown>;
  t.same(o.lostAtStart, [], 'nothing lost at start');
  t.match(o.busy, /^EBUSY \| replace the TAP of VNI 42: the current one still forwards/, 'a TAP that forwards is not replaced');
  t.equal(o.spareGone, true, 'and the fd handed in is closed (its TAP gone)');
  t.match(o.badArg, /TypeError: replaceTap: vnetHdr must be a boolean/);
  t.equal(o.badGone, true, 'a bad argument closes the fd too');
  t.same(o.lost, [42], 'a deleted TAP is reported lost');
  t.same(o.threadsWhileLost, [], 'its transmit thread has ended');
  t.equal(o.vnetMismatch, 'EINVAL', 'a replacement with another virtio header setting is refused');
  t.equal(o.unknownVni, 'ENOENT', 'a VNI not served is refused');
  t.same(o.lostAfter, [], 'replaced');
  t.same(o.threadsAfter, ['vxr-tx-42'], 'its transmit thread runs again');
  t.equal(o.forwardsAgain, true, "c1's ARP request goes out through the new TAP and comes back");
  t.equal(o.fault, null, 'no fault');
  t.equal(o.tapGoneAfterStop, true, 'stop() closes the new TAP');
});
