/**
 * Bridges that come and go under a running router (issue 15), for both engines:
 *
 *   [c1] ── br0 ── TAP vxr42 (router h1) ══ switch ══ (router h2) TAP ── br0 ── [c2]
 *
 * 1. h1's br0 deleted: the router stays up, keeps its TAP, and status / doctor say "bridge br0 missing since …".
 *    br0 created again with c1's veth on it (what `docker network rm` + `create` does): c1 reaches c2 again within
 *    1 s of the bridge's return (measured from a 50/s ping's timestamps).
 * 2. The TAP deleted (`ip link del vxr42`): the router recreates it on br0 and traffic resumes; it does not exit.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import t from 'tap';
import { CLI_PATH, Lab, labSkipReason, twoHosts, type Container, type Host } from '../../src/lab/lab.js';
import { waitFor } from '../../src/lab/wait.js';

const run = promisify(execFile);
const skip = labSkipReason();

/** Pings every 20 ms for `seconds`; resolves with the Unix times (ms) of the replies. */
async function timedPings(lab: Lab, c: Container, ip: string, seconds: number): Promise<number[]> {
  const argv = ['netns', 'exec', c.ns, 'ping', '-D', '-n', '-i', '0.02', '-W', '1', '-w', String(seconds), ip];
  const r = await run('ip', argv, { timeout: (seconds + 10) * 1000 }).catch((err: { stdout?: string }) => ({ stdout: err.stdout ?? '' }));
  return [...r.stdout.matchAll(/^\[(\d+\.\d+)\] \d+ bytes from/gm)].map((m) => Math.round(Number(m[1]) * 1000));
}

/** Deletes h1's br0 and creates it again with c1's veth on it, as Docker or a host's scripts do. */
async function recreateBridge(lab: Lab, h1: Host, c1: Container): Promise<void> {
  await lab.addBridge(h1, 'br0');
  await lab.exec('', 'ip', ['-n', h1.ns, 'link', 'set', c1.name, 'master', 'br0', 'up']);
}

for (const engine of ['native', 'js'] as const) {
  t.test(`bridge deleted and created again, then the TAP deleted, ${engine} engine`, { skip: skip ?? false }, async (t) => {
    const lab = new Lab();
    t.teardown(() => lab.destroy());
    const { h1, h2, c1, c2 } = await twoHosts(lab);
    const metrics = '127.0.0.1:9103'; // on h1's own loopback
    const r1 = await lab.startRouter(h1, { peers: [h2.underlayIp], engine, args: ['--metrics', metrics] });
    const scrape = async (): Promise<string> =>
      (await lab.exec(h1.ns, process.execPath, ['-e', `fetch('http://${metrics}/metrics').then((r) => r.text()).then((s) => process.stdout.write(s))`])).stdout;
    const metric = (text: string, name: string): number => Number(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(text)?.[1]);
    await lab.startRouter(h2, { peers: [h1.underlayIp], engine });
    t.equal((await lab.ping(c1.ns, c2.ip)).loss, 0, 'c1 → c2 before');

    // 1. The bridge goes.
    const gone = Date.now();
    await lab.exec('', 'ip', ['-n', h1.ns, 'link', 'del', 'br0']);
    await waitFor(async () => (await r1.status()).networks[0]!.bridgeMissingSince != null, { timeoutMs: 5000, what: 'status to say the bridge is missing' });
    const st = await r1.status();
    const since = Date.parse(st.networks[0]!.bridgeMissingSince!);
    t.ok(since >= gone - 1000 && since <= Date.now(), `status: bridge missing since ${st.networks[0]!.bridgeMissingSince}`);
    const cli = await run(process.execPath, [CLI_PATH, 'status', '--socket', lab.controlSocket(h1)]);
    t.match(cli.stdout, /bridge br0 missing since \d{4}-/, '`vxlan-router status` says so');
    const doctor = await run('ip', ['netns', 'exec', h1.ns, process.execPath, CLI_PATH, 'doctor', '--socket', lab.controlSocket(h1)]).catch((err: { stdout: string }) => err);
    t.match(doctor.stdout, /bridge: bridge br0 missing since/, 'doctor says so');
    t.equal(r1.child.exitCode, null, 'the router stays up');
    t.match((await lab.exec(h1.ns, 'ip', ['-o', 'link', 'show', 'vxr42'])).stdout, /vxr42/, 'and keeps its TAP');
    t.equal(metric(await scrape(), 'vxlan_router_bridge_missing_since_seconds'), since / 1000, 'metrics: bridge missing since that time');

    // ... and comes back: c1 reaches c2 again within 1 s.
    const pings = timedPings(lab, c1, c2.ip, 4);
    await new Promise((r) => setTimeout(r, 500)); // the ping runs (and fails) before the bridge returns
    const created = Date.now();
    await recreateBridge(lab, h1, c1);
    const back = Date.now();
    const replies = (await pings).filter((ms) => ms >= created);
    t.ok(replies.length > 0, 'c1 reaches c2 again');
    const gapMs = replies[0]! - back;
    t.ok(gapMs < 1000, `first reply ${gapMs} ms after the bridge was back (${replies[0]! - created} ms after it was created; bound 1000 ms)`);
    const after = await r1.status();
    t.equal(after.networks[0]!.bridgeMissingSince, null, 'status: no longer missing');
    t.equal(after.networks[0]!.bridgeRejoins, 1, 'one rejoin counted');
    const tap = JSON.parse((await lab.exec(h1.ns, 'ip', ['-j', 'link', 'show', 'vxr42'])).stdout) as { master?: string; mtu: number; flags: string[] }[];
    t.match(tap[0], { master: 'br0', mtu: 1450 }, 'TAP on the new br0 with its MTU');
    t.ok(tap[0]!.flags.includes('UP'), 'and up');

    // 2. The TAP goes: recreated, traffic resumes, the router does not exit.
    const tapPings = timedPings(lab, c1, c2.ip, 4);
    await new Promise((r) => setTimeout(r, 500));
    const deleted = Date.now();
    await lab.exec(h1.ns, 'ip', ['link', 'del', 'vxr42']);
    await waitFor(async () => (await r1.status()).networks[0]!.tapsRecreated === 1, { timeoutMs: 5000, what: 'the TAP to be recreated' });
    const all = await tapPings;
    t.ok(all.some((ms) => ms > deleted + 200), 'c1 reaches c2 through the recreated TAP');
    // The outage: the longest silence between two replies (pings go every 20 ms) from just before the delete on.
    let outage = 0;
    for (let i = 1; i < all.length; i++) if (all[i]! >= deleted - 100) outage = Math.max(outage, all[i]! - all[i - 1]!);
    t.ok(outage < 1000, `longest gap between replies around the TAP's deletion: ${outage} ms (pings every 20 ms)`);
    const tap2 = JSON.parse((await lab.exec(h1.ns, 'ip', ['-j', 'link', 'show', 'vxr42'])).stdout) as { master?: string; mtu: number }[];
    t.match(tap2[0], { master: 'br0', mtu: 1450 }, 'the new TAP is on br0 with its MTU');
    t.equal(r1.child.exitCode, null, 'the router is still up');
    t.ok(r1.logs().some((m) => /TAP vxr42 was deleted under the router: recreated on bridge br0/.test(m)), 'a log line says what happened');
    t.equal((await lab.ping(c1.ns, c2.ip)).loss, 0, 'c1 → c2 after');
    t.equal((await lab.ping(c2.ns, c1.ip)).loss, 0, 'c2 → c1 after');
    const text = await scrape();
    t.equal(metric(text, 'vxlan_router_bridge_missing_since_seconds'), 0, 'metrics: bridge present');
    t.equal(metric(text, 'vxlan_router_bridge_rejoins_total'), 1, 'metrics: one rejoin');
    t.equal(metric(text, 'vxlan_router_taps_recreated_total'), 1, 'metrics: one TAP recreated');
    t.equal(await r1.stop(), 0, 'and it stops cleanly (exit 0)');
  });
}
