/**
 * Hitless restart and upgrade (`vxlan-router up ... --takeover`), native engine, static peers:
 *
 *   [h1] router ⇄ router --takeover ┐                ┌ router [h2]
 *                                   ╞═══ switch ═════╡
 *   c1 198.18.0.1 ── br0                             br0 ── c2 198.18.0.2
 *
 * c1 pings c2 100 times a second while a second router on h1 takes over the first one's UDP socket and TAP: not one
 * ping is lost, the old router exits 0, the new one forwards with the old one's learned MACs. The same with the new
 * router run from another copy of the build (an upgrade); a copy of another handover version is refused and the old
 * router keeps forwarding; kill -9 and a plain start: the gap is measured. Each gap is the largest interval between
 * consecutive echo requests leaving h1 (captured on h2's underlay: h1's transmit path) and echo replies written to
 * h1's TAP (h1's receive path), printed in microseconds. With etcd, h2 never sees h1's records vanish. The JS engine
 * cannot hand its sockets over: a takeover is refused and the router goes on.
 */
import { cpSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t, { type Test } from 'tap';
import { ask } from '../../src/cli/control-client.js';
import { etcdLab, etcdSkipReason } from '../../src/lab/etcd.js';
import { waitFor } from '../../src/lab/wait.js';
import { Lab, labSkipReason, twoHosts, VNI, type Container, type Host, type TwoHosts } from '../../src/lab/lab.js';
import type { RouterProcess } from '../../src/lab/router-process.js';
import { buildDnsQuery } from '../../src/packet/index.js';

const skip = labSkipReason();
const root = fileURLToPath(new URL('../../', import.meta.url));
const TAP = `vxr${VNI}`;
const DNS = '169.254.53.53';

/** A copy of the build (dist/, the addon, package.json) in a temp dir: another build, as an upgrade brings. */
function copyBuild(patch?: (handoverJs: string) => string): { cli: string; dir: string } {
  const dir = mkdtempSync(join(tmpdir(), 'vxr-build-'));
  cpSync(join(root, 'dist'), join(dir, 'dist'), { recursive: true });
  cpSync(join(root, 'native/build/Release/vxlan_native.node'), join(dir, 'native/build/Release/vxlan_native.node'));
  cpSync(join(root, 'package.json'), join(dir, 'package.json'));
  symlinkSync(join(root, 'node_modules'), join(dir, 'node_modules'));
  if (patch !== undefined) {
    const f = join(dir, 'dist/agent/handover.js');
    writeFileSync(f, patch(readFileSync(f, 'utf8')));
  }
  return { cli: join(dir, 'dist/cli.js'), dir };
}

/** Capture lines → timestamps in µs. */
function stamps(text: string): number[] {
  return text
    .split('\n')
    .map((l) => /^(\d+\.\d+) /.exec(l))
    .flatMap((m) => (m ? [Math.round(Number(m[1]) * 1e6)] : []));
}

/** The largest interval between consecutive packets that ends inside [from, to] (µs), or over all with no window. */
function largestGapUs(ts: readonly number[], window?: readonly [number, number]): number {
  let gap = 0;
  for (let i = 1; i < ts.length; i++) {
    if (window !== undefined && (ts[i]! < window[0] || ts[i - 1]! > window[1])) continue;
    gap = Math.max(gap, ts[i]! - ts[i - 1]!);
  }
  return gap;
}

/** The time (µs since the epoch) of the first log line of `log` whose msg contains `msg`. */
function logTimeUs(log: string, msg: string): number {
  const line = log.split('\n').find((l) => l.includes(msg));
  const time = line === undefined ? undefined : (JSON.parse(line) as { time?: string }).time;
  return time === undefined ? NaN : Date.parse(time) * 1000;
}

interface Flood {
  /** Resolves with pings sent and answered. */
  done: Promise<{ sent: number; received: number; output: string }>;
}

/** c1 pings c2 every 10 ms, `count` times. */
function flood(lab: Lab, c1: Container, c2: Container, count: number): Flood {
  const done = lab.exec(c1.ns, 'ping', ['-i', '0.01', '-c', String(count), '-W', '1', '-q', c2.ip], count * 50 + 30_000).then(
    (r) => r.stdout,
    (err: Error) => err.message,
  ).then((output) => {
    const m = /(\d+) packets transmitted, (\d+) received/.exec(output);
    return { sent: m ? Number(m[1]) : 0, received: m ? Number(m[2]) : 0, output };
  });
  return { done };
}

/**
 * Runs `during` in the middle of a 100/s flood, captures both directions, returns losses and gaps: the largest
 * over the whole flood, and the largest around the moment `during` names (µs since the epoch; the kernel's clock
 * is the capture's), which on a loaded box is the figure that belongs to the operation.
 */
async function acrossFlood(t: Test, lab: Lab, net: TwoHosts, what: string, during: () => Promise<readonly [number, number] | undefined>, count = 500) {
  const { h1, h2, c1, c2 } = net;
  const seconds = Math.ceil(count / 100) + 25;
  const requests = await lab.capture(h2.ns, 'eth0', ['-tt', 'udp', 'dst', 'port', '4789', 'and', 'not', 'src', 'port', '4789', 'and', 'src', 'host', h1.underlayIp, 'and', 'greater', '90'], { seconds });
  const replies = await lab.capture(h1.ns, TAP, ['-tt', 'icmp[icmptype] = icmp-echoreply'], { seconds });
  const sent = process.env.TAKEOVER_DEBUG ? await lab.capture(h1.ns, TAP, ['-tt', 'icmp[icmptype] = icmp-echo'], { seconds }) : undefined;
  const f = flood(lab, c1, c2, count);
  await new Promise((r) => setTimeout(r, 1500));
  const t0 = Date.now();
  const window = await during();
  const tookMs = Date.now() - t0;
  const result = await f.done;
  await new Promise((r) => setTimeout(r, 300));
  const tx = stamps(await requests.stop());
  const rx = stamps(await replies.stop());
  if (window !== undefined && process.env.TAKEOVER_DEBUG) {
    const rel = (ts: number[]): string => ts.filter((x) => x > window[0] - 500_000 && x < window[1] + 500_000).map((x) => Math.round((x - window[0] - 60_000) / 1000)).join(' ');
    t.comment(`requests (ms after the pause): ${rel(tx)}`);
    t.comment(`requests onto h1's TAP (ms after the pause): ${rel(stamps((await sent?.stop()) ?? ''))}`);
    t.comment(`replies (ms after the pause): ${rel(rx)}; new started ${Math.round((window[1] - 50_000 - window[0] - 60_000) / 1000)} ms after`);
  }
  const gaps = { txGapUs: largestGapUs(tx), rxGapUs: largestGapUs(rx), txAtUs: window ? largestGapUs(tx, window) : NaN, rxAtUs: window ? largestGapUs(rx, window) : NaN };
  t.comment(
    `${what}: ${result.received}/${result.sent} answered (${result.sent - result.received} lost); the operation took ${tookMs} ms; ` +
      (window ? `gap at the handover: h1 transmit ${gaps.txAtUs} µs, h1 receive ${gaps.rxAtUs} µs; ` : '') +
      `largest gap of the whole flood (${tx.length} requests, ${rx.length} replies; 10 000 µs is none): transmit ${gaps.txGapUs} µs, receive ${gaps.rxGapUs} µs`,
  );
  return { ...result, ...gaps };
}

async function setUp(t: Test): Promise<{ lab: Lab; net: TwoHosts; r1: RouterProcess }> {
  const lab = new Lab();
  t.teardown(() => lab.destroy());
  const net = await twoHosts(lab);
  const r1 = await lab.startRouter(net.h1, { peers: [net.h2.underlayIp], engine: 'native' });
  await lab.startRouter(net.h2, { peers: [net.h1.underlayIp], engine: 'native' });
  t.equal((await lab.ping(net.c1.ns, net.c2.ip, 2)).loss, 0, 'overlay up');
  return { lab, net, r1 };
}

/** A takeover on h1; the window around the pause (from the old router's pause to the new one's start, ± 50 ms). */
async function takeover(
  lab: Lab,
  h1: Host,
  h2: Host,
  old: RouterProcess,
  cli?: string,
  etcdArgs?: string[],
): Promise<{ next: RouterProcess; window: [number, number] }> {
  const how = etcdArgs === undefined ? { peers: [h2.underlayIp] } : { peers: [], vni: null, args: etcdArgs };
  const next = await lab.startRouter(h1, { ...how, engine: 'native', args: [...(how.args ?? []), '--takeover', '--log-level', 'info'], ...(cli !== undefined ? { cli } : {}) });
  await old.exited;
  const paused = logTimeUs(old.stderr, 'handed the data path over');
  const started = logTimeUs(next.stderr, 'took over the data path');
  return { next, window: [paused - 60_000, started + 50_000] };
}

t.test('takeover across a 100/s flood: nothing lost, the old router exits 0', { skip: skip ?? false }, async (t) => {
  const { lab, net, r1 } = await setUp(t);
  const learnedBefore = (await ask(r1.socket, 'fdb')).filter((e) => e.origin === 'learned').map((e) => e.mac);
  const loopBefore = (await r1.loop()).kind;
  let r2: RouterProcess | undefined;
  const res = await acrossFlood(t, lab, net, 'takeover', async () => {
    const done = await takeover(lab, net.h1, net.h2, r1);
    r2 = done.next;
    return done.window;
  });
  t.equal(res.sent - res.received, 0, `0 of ${res.sent} pings lost across the takeover`);
  t.equal(await r1.exited, 0, 'the old router exited 0');
  t.match(r1.stderr, /handed the data path over/, 'the old router says it handed over');
  t.match(r2!.stderr, /took over the data path/, 'the new router says it took over');
  const timing = (log: string, msg: string): string => log.split('\n').find((l) => l.includes(msg)) ?? '';
  t.comment(`old: ${timing(r1.stderr, 'handed the data path over')}`);
  t.comment(`new: ${timing(r2!.stderr, 'handover received')} ${timing(r2!.stderr, 'took over the data path')}`);
  const learnedAfter = (await ask(r2!.socket, 'fdb')).filter((e) => e.origin === 'learned').map((e) => e.mac);
  t.ok(learnedBefore.every((m) => learnedAfter.includes(m)), `learned MACs handed over (${learnedBefore.join(', ')})`);
  // `npm test` (VXLAN_ROUTER_LOOP=mixed) alternates the event loop on each start in a host: across loops.
  const loopAfter = (await r2!.loop()).kind;
  if (process.env.VXLAN_ROUTER_LOOP === 'mixed') t.not(loopAfter, loopBefore, `handed over from the ${loopBefore} loop to ${loopAfter}`);
  else t.comment(`handed over from the ${loopBefore} loop to ${loopAfter}`);
  const link = (await lab.exec(net.h1.ns, 'ip', ['-j', 'link', 'show', TAP])).stdout;
  t.match(link, /"master":"br0"/, 'the TAP is still on the bridge');

  // And once more, from the new router: a takeover is repeatable.
  const again = await acrossFlood(t, lab, net, 'second takeover', async () => (await takeover(lab, net.h1, net.h2, r2!)).window);
  t.equal(again.sent - again.received, 0, `0 of ${again.sent} pings lost across a second takeover`);
});

t.test('upgrade: a different copy of the build takes over without loss; another handover version is refused', { skip: skip ?? false }, async (t) => {
  const { lab, net, r1 } = await setUp(t);
  const build = copyBuild();
  t.teardown(() => rmSync(build.dir, { recursive: true, force: true }));
  let r2: RouterProcess | undefined;
  const res = await acrossFlood(t, lab, net, 'upgrade (another copy of the build)', async () => {
    const done = await takeover(lab, net.h1, net.h2, r1, build.cli);
    r2 = done.next;
    return done.window;
  });
  t.equal(res.sent - res.received, 0, `0 of ${res.sent} pings lost across the upgrade`);
  t.equal(await r1.exited, 0, 'the old router exited 0');

  // A build that speaks another handover version: refused with a message that says so; the running router goes on.
  const other = copyBuild((js) => js.replace(/export const HANDOVER_VERSION = 1;/, 'export const HANDOVER_VERSION = 2;'));
  t.teardown(() => rmSync(other.dir, { recursive: true, force: true }));
  const refused = await acrossFlood(t, lab, net, 'refused takeover (handover version 2)', async () => {
    const err = await lab.startRouter(net.h1, { peers: [net.h2.underlayIp], engine: 'native', args: ['--takeover'], cli: other.cli }).then(
      () => undefined,
      (e: Error) => e,
    );
    t.match(err?.message ?? '', /handover version 2 .*is not this router's 1/, 'the new build is refused with both versions named');
    return undefined;
  }, 300);
  t.equal(refused.sent - refused.received, 0, 'the old router forwarded on: nothing lost');
  t.equal(r2!.child.exitCode, null, 'the old router still runs');
  t.same((await r2!.peers())[VNI], [net.h2.underlayIp], 'and still answers on its control socket');
});

t.test('a plain restart (SIGTERM + start) and kill -9 + start: the gaps a takeover avoids', { skip: skip ?? false }, async (t) => {
  const { lab, net, r1 } = await setUp(t);
  let r = r1;
  for (const [what, signal] of [['SIGTERM + start (plain restart)', 'SIGTERM'], ['kill -9 + start', 'SIGKILL']] as const) {
    let readyMs = 0;
    const res = await acrossFlood(t, lab, net, what, async () => {
      const t0 = Date.now();
      r.child.kill(signal);
      await r.exited;
      r = await lab.startRouter(net.h1, { peers: [net.h2.underlayIp], engine: 'native' });
      readyMs = Date.now() - t0;
      return undefined;
    });
    const gap = Math.max(res.txGapUs, res.rxGapUs);
    t.comment(`${what}: ready ${readyMs} ms after the signal; ${res.sent - res.received} of ${res.sent} pings lost; largest gap ${gap} µs`);
    // The gap is the time a router takes to start (the target is 2 s); on a loaded shared box Node alone may take
    // longer, so what is held here is that forwarding resumes within a second of the new router being ready.
    t.ok(gap < readyMs * 1000 + 1_000_000, `${what}: forwarding again within 1 s of the router's ready line (${gap} µs after the signal; ready after ${readyMs} ms; target 2 s)`);
  }
});

t.test('takeover with etcd: the lease is kept, h2 never sees h1 or its MACs vanish', { skip: skip ?? etcdSkipReason() ?? false }, async (t) => {
  const { lab, etcd, defineNetwork, destroy } = await etcdLab('198.51.100.254');
  t.teardown(destroy);
  const [h1, h2] = [await lab.addHost('h1', '198.51.100.1'), await lab.addHost('h2', '198.51.100.2')];
  const [c1, c2] = [await lab.addContainer(h1, 'c1', '198.18.0.1'), await lab.addContainer(h2, 'c2', '198.18.0.2')];
  await defineNetwork(h1);
  // A short lease: records left behind under the old router's lease would vanish within the test. --dns: the name
  // server's address must stay on h1's lo across the handover (no dockerd here: its names are none, which is fine).
  const args = ['--etcd', etcd.endpoint, '--lease-ttl', '3', '--dns', '--docker-socket', join(lab.stateDir(h1), 'no-dockerd.sock')];
  const r1 = await lab.startRouter(h1, { peers: [], engine: 'native', vni: null, args });
  const r2 = await lab.startRouter(h2, { peers: [], engine: 'native', vni: null, args });
  await waitFor(async () => (await r2.peers())[VNI]?.length === 1, { timeoutMs: 5000, what: 'h2 to see h1' });
  t.equal((await lab.ping(c1.ns, c2.ip, 2)).loss, 0, 'overlay up through etcd');
  const h1Known = async (): Promise<{ peer: boolean; mac: boolean }> => {
    const [peers, fdb] = await Promise.all([r2.peers(), ask(r2.socket, 'fdb')]);
    return { peer: (peers[VNI] ?? []).includes(h1.underlayIp), mac: fdb.some((e) => e.mac === c1.mac && e.origin === 'etcd') };
  };
  await waitFor(async () => (await h1Known()).mac, { timeoutMs: 5000, what: "h2 to know c1's MAC from etcd" });

  // h2's view, every 50 ms, from before the takeover until well past the old lease's TTL.
  const missing: string[] = [];
  let watching = true;
  const watcher = (async () => {
    while (watching) {
      const k = await h1Known().catch(() => ({ peer: true, mac: true }));
      if (!k.peer || !k.mac) missing.push(`${new Date().toISOString()} peer=${k.peer} mac=${k.mac}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  })();
  // h1's lo, every 20 ms from before the takeover until after: the name server's address never leaves it.
  const onLo = async (): Promise<boolean> => (await lab.exec(h1.ns, 'ip', ['-o', 'addr', 'show', 'dev', 'lo'])).stdout.includes(`${DNS}/32`);
  t.ok(await onLo(), `the name server's address ${DNS} is on h1's lo`);
  const loSamples: boolean[] = [];
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      loSamples.push(await onLo().catch(() => true));
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  const net = { h1, h2, c1, c2 };
  let next: RouterProcess | undefined;
  const res = await acrossFlood(t, lab, net, 'takeover with etcd', async () => {
    const done = await takeover(lab, h1, h2, r1, undefined, args);
    next = done.next;
    return done.window;
  });
  await new Promise((r) => setTimeout(r, 5000)); // past the old lease's 3 s
  watching = false;
  sampling = false;
  await Promise.all([watcher, sampler]);
  t.ok(loSamples.length > 20 && loSamples.every(Boolean), `the name server's address stayed on h1's lo throughout the takeover (${loSamples.length} looks)`);
  // The new router's name server answers: a query of an opcode it does not serve (STATUS) gets NOTIMP with its id
  // (nothing forwarded: no upstream is ever asked).
  const query = Buffer.from(buildDnsQuery(0x4242, 'c1'));
  query[2]! |= 2 << 3;
  const formerr = await lab.exec(h1.ns, process.execPath, ['-e', `const s=require('dgram').createSocket('udp4');s.on('message',(m)=>{console.log(m.readUInt16BE(0),m[3]&15);process.exit(0)});s.send(Buffer.from('${query.toString('hex')}','hex'),53,'${DNS}');setTimeout(()=>process.exit(1),3000)`]);
  t.equal(formerr.stdout.trim(), `${0x4242} 4`, "the new router's name server answers (NOTIMP to a STATUS query)");
  t.equal(res.sent - res.received, 0, `0 of ${res.sent} pings lost across the takeover`);
  t.equal(await r1.exited, 0, 'the old router exited 0');
  t.same(missing, [], "h2 never saw h1 or c1's MAC vanish (the records were replaced under the new lease, never deleted)");
  t.same((await next!.peers())[VNI], [h2.underlayIp], 'the new router follows the registry');
  const status = await ask(next!.socket, 'status');
  t.equal(status.networks[0]!.state, 'connected', 'and is connected to etcd');
  await next!.stop();
  t.notOk(await onLo(), "the new router removed the address its predecessor put on lo when it stopped");
});

t.test('the js engine cannot hand over: a takeover is refused, the router goes on', { skip: skip ?? false }, async (t) => {
  const lab = new Lab();
  t.teardown(() => lab.destroy());
  const net = await twoHosts(lab);
  const r1 = await lab.startRouter(net.h1, { peers: [net.h2.underlayIp], engine: 'js' });
  await lab.startRouter(net.h2, { peers: [net.h1.underlayIp], engine: 'native' });
  for (const engine of ['native', 'js'] as const) {
    const err = await lab.startRouter(net.h1, { peers: [net.h2.underlayIp], engine, args: ['--takeover'] }).then(
      () => undefined,
      (e: Error) => e,
    );
    t.match(err?.message ?? '', /refused the takeover: the js engine cannot take over sockets: restart the router instead/, `a ${engine} router is refused, with the reason`);
  }
  t.equal(r1.child.exitCode, null, 'the js router still runs');
  t.equal((await lab.ping(net.c1.ns, net.c2.ip, 3)).loss, 0, 'and forwards');
});
