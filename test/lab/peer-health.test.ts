/**
 * Peers you can see, path MTU measured (issue 18). One lab, probing every second (--probe-interval 1):
 *
 *   [c1] ── br0 ── router (native) [h1] ═╦═ [h2] router (js) ── br0 ── [c2]
 *                                         ╠═ [h3] kernel vx0 ── br0 ── [c3]
 *                                         ╚═ 198.51.100.9: registered, but nobody there
 *
 *  - h1 and h2 see each other up, with an RTT and the underlay's path MTU (1500); the kernel VTEP h3 stays
 *    interoperable (pings cross; it drops our probes: I flag clear) and shows as unknown; the address nobody answers
 *    on shows as down, and doctor names it.
 *  - The underlay's MTU lowered to 1400 on h1 and h2 during the run: both routers measure it (within a minute) and
 *    use it: a DF ping of 1400 bytes from each side is told "Frag needed … mtu = 1350", 1350 bytes still cross;
 *    with bare --clamp-mss (both routers) a SYN leaves each router with the MSS of that path (1350 − 40 = 1310,
 *    captured on the underlay), `status` shows the clamp lowered toward h2, `why` the measured path and the clamp.
 *    The kernel VTEP h3 (and the absent .9) cannot be probed: their path is the kernel's own path MTU toward them
 *    (h1's eth0: 1400), so a DF ping of 1400 toward c3 is told mtu = 1350 too, and `why` says where it comes from.
 *  - h2's UDP port firewalled from h1 (iptables in h2's namespace): each sees the other down, doctor on h1 names h2
 *    (one way open: its datagrams still arrive); the rule removed, both are up again.
 */
import { spawnSync } from 'node:child_process';
import t from 'tap';
import type { PeerRows, Status, WhyResult } from '../../src/agent/index.js';
import { ask } from '../../src/cli/control-client.js';
import { formatStatus } from '../../src/cli/format.js';
import { RUN_DIR_ENV } from '../../src/config/index.js';
import { CLI_PATH, Lab, labSkipReason, twoHosts, type Container, type Host } from '../../src/lab/lab.js';
import { waitFor } from '../../src/lab/wait.js';

const NOBODY = '198.51.100.9';

t.test('peer health: state, RTT, path MTU measured and used, unreachable peers named', { skip: labSkipReason() ?? false }, async (t) => {
  const started = Date.now();
  const lab = new Lab();
  t.teardown(() => lab.destroy());
  const { h1, h2, c1, c2 } = await twoHosts(lab);
  const h3 = await lab.addHost('h3', '198.51.100.3');
  const c3 = await lab.addContainer(h3, 'c3', '198.18.0.3');
  await lab.addKernelVtep(h3, [h1.underlayIp]);
  const probing = ['--probe-interval', '1', '--clamp-mss'];
  const r1 = await lab.startRouter(h1, { peers: [h2.underlayIp, h3.underlayIp, NOBODY], engine: 'native', args: probing });
  await lab.startRouter(h2, { peers: [h1.underlayIp], engine: 'js', args: probing });

  // Asked the way `peers --json` asks (the CLI's own client and schema), without a process per poll.
  const peers = (h: Host): Promise<PeerRows> => ask(lab.controlSocket(h), 'peers');
  const row = (rows: PeerRows, address: string) => rows.find((r) => r.address === address)!;

  t.equal((await lab.ping(c1.ns, c2.ip, 2)).loss, 0, 'router ↔ router: ping crosses');
  t.equal((await lab.ping(c1.ns, c3.ip, 2)).loss, 0, 'router ↔ kernel VTEP: ping crosses (probes do not disturb it)');

  let p1: PeerRows = [];
  let p2: PeerRows = [];
  await waitFor(
    async () => {
      [p1, p2] = [await peers(h1), await peers(h2)];
      return row(p1, h2.underlayIp).pathMtu === 1500 && row(p2, h1.underlayIp).pathMtu === 1500 && row(p1, NOBODY).state === 'down';
    },
    { timeoutMs: 20_000, intervalMs: 250, what: 'both routers up with a path MTU, and the absent peer down' },
  );
  t.match(row(p1, h2.underlayIp), { state: 'up', pathMtu: 1500, lossPercent: Number, rttMs: Number }, 'h1 sees h2 up (native engine)');
  t.match(row(p2, h1.underlayIp), { state: 'up', pathMtu: 1500, rttMs: Number }, 'h2 sees h1 up (js engine)');
  t.ok(row(p1, h2.underlayIp).rttMs! < 100, `RTT ${row(p1, h2.underlayIp).rttMs} ms`);
  t.match(row(p1, h3.underlayIp), { state: 'unknown', pathMtu: null }, 'the kernel VTEP: traffic arrives, probes unanswered: unknown');
  t.match(row(p1, NOBODY), { state: 'down', lastAnswerAgoMs: null }, 'nobody at the registered address: down');
  const k1 = await r1.counters();
  t.ok(k1.probes_answered! > 0 && k1.probe_replies! > 0 && k1.rx_bad_probe === 0, `probes answered ${k1.probes_answered}, replies ${k1.probe_replies}`);

  const text = (await lab.exec(h1.ns, process.execPath, [CLI_PATH, 'peers', '--socket', lab.controlSocket(h1)])).stdout;
  t.match(text, /peer: 198\.51\.100\.2\n  state: up\n.*\n  latest answer: .* ago, rtt [\d.]+ ms, loss [\d.]+% \(last minute\)\n  path mtu: 1500 \(overlay packets up to 1450\)\n/, 'peers reads like wg show');
  t.comment(text);

  const doctorOn = (h: Host) => {
    const doctor = spawnSync('ip', ['netns', 'exec', h.ns, process.execPath, CLI_PATH, 'doctor', '--socket', lab.controlSocket(h), '--json'], {
      encoding: 'utf8',
      timeout: 30_000,
      env: { ...process.env, [RUN_DIR_ENV]: '/nonexistent' },
    });
    const checks = JSON.parse(doctor.stdout) as { check: string; status: string; detail: string; fix?: string }[];
    return { code: doctor.status, unreachable: checks.filter((c) => c.check === 'peer-reachable' && c.status === 'fail') };
  };
  const { code, unreachable } = doctorOn(h1);
  t.equal(code, 1, 'doctor fails');
  t.equal(unreachable.length, 1, 'one peer named');
  t.match(unreachable[0], { detail: /peer 198\.51\.100\.9 \(VNI 42\) is registered but unreachable: it never answered a probe/, fix: /UDP 4789 open both ways/ });

  // The underlay's MTU drops (say a tunnel appeared): both routers notice, and answer with the smaller MTU.
  const lowered = Date.now();
  for (const h of [h1, h2]) await lab.exec(h.ns, 'ip', ['link', 'set', 'eth0', 'mtu', '1400']);
  await waitFor(
    async () => {
      [p1, p2] = [await peers(h1), await peers(h2)];
      return row(p1, h2.underlayIp).pathMtu === 1400 && row(p2, h1.underlayIp).pathMtu === 1400;
    },
    { timeoutMs: 60_000, intervalMs: 250, what: 'the lowered path MTU measured on both sides' },
  );
  t.pass(`path MTU 1400 measured on both sides ${((Date.now() - lowered) / 1000).toFixed(1)} s after the underlay changed`);
  t.equal(row(p1, h2.underlayIp).state, 'up', 'h2 stayed up');

  const dfPing = async (from: Container, to: string, size: number): Promise<string> =>
    (await lab.exec(from.ns, 'sh', ['-c', `ping -c 1 -W 2 -M do -s ${size} ${to} 2>&1; true`], 10_000)).stdout;
  for (const [from, to, engine] of [[c1, c2, 'native'], [c2, c1, 'js']] as const) {
    const told = await dfPing(from, to.ip, 1400 - 28);
    t.match(told, new RegExp(`Frag needed and DF set \\(mtu = 1350\\)`), `${engine} engine: a 1400-byte DF ping is told mtu = 1350`);
    t.equal((await lab.ping(from.ns, to.ip, 1, 1350 - 28)).loss, 0, `${engine} engine: 1350 bytes cross`);
  }

  // --clamp-mss (bare) follows the measured path: a SYN (MSS 1410 from a 1450-MTU container) leaves h1 (native, TX)
  // and h2 (js, TX) with 1310, seen on h1's underlay in both directions, before the other side could clamp it.
  const clampStarted = Date.now();
  const underlay = await lab.capture(h1.ns, 'eth0', ['udp', 'port', '4789'], { seconds: 20 });
  for (const [from, to] of [[c1, c2], [c2, c1]] as const) await lab.exec(from.ns, 'bash', ['-c', `exec 3<>/dev/tcp/${to.ip}/9; true`], 10_000).catch(() => undefined);
  await waitFor(() => (underlay.text().match(/Flags \[S\].*mss 1310/g) ?? []).length >= 2, { timeoutMs: 10_000, intervalMs: 100, what: 'both SYNs on the underlay' });
  const syns = (await underlay.stop()).split('\n').filter((l) => /Flags \[S\]/.test(l));
  for (const [from, to, engine] of [[c1, c2, 'native'], [c2, c1, 'js']] as const) {
    t.match(syns.find((l) => l.includes(`${from.ip}.`) && l.includes(`> ${to.ip}.9:`)) ?? '', /mss 1310,/, `${engine} engine: ${from.name}'s SYN to ${to.name} leaves with MSS 1310 (its measured path 1400 − 50 − 40)`);
  }
  const status = (await ask(lab.controlSocket(h1), 'status')) as Status;
  const clamp = status.networks[0]!.clampMss;
  t.match(clamp, { mode: 'per-path', ipv4: 1410, ipv6: 1390 }, 'status: the clamp per path');
  // h2 measured by probes; the kernel VTEP h3 and the absent .9 by the kernel's own path MTU toward them (h1's eth0).
  t.same(
    [...(clamp?.lowered ?? [])].sort((a, b) => a.peer.localeCompare(b.peer)),
    [h2.underlayIp, h3.underlayIp, NOBODY].sort().map((peer) => ({ peer, ipv4: 1310, ipv6: 1290 })),
    'status: lowered toward h2 (measured), h3 and .9 (the route)',
  );
  t.match(formatStatus(status), new RegExp(`  tcp mss clamp: per path, at most 1410 \\(IPv4\\) / 1390 \\(IPv6\\) \\(the underlay's path\\); lower toward a smaller measured path: .*${h2.underlayIp.replaceAll('.', '\\.')} 1310 \\(IPv4\\) / 1290 \\(IPv6\\)`), 'status text: the clamp');
  const why = (target: string) => ask(lab.controlSocket(h1), 'why', 5000, { target }) as Promise<WhyResult>;
  t.match((await why(c2.mac)).frames, [{ vtep: h2.underlayIp, pathMtu: 1350, pathMtuSource: 'measured', peerState: 'up', clampMss: { ipv4: 1310 } }], 'why: the measured path to h2 and its clamp');
  // The kernel VTEP does not answer probes: its path is what the kernel knows of it (h1's eth0 is 1400 now).
  t.match((await why(c3.mac)).frames, [{ vtep: h3.underlayIp, pathMtu: 1350, pathMtuSource: 'route', peerState: 'unknown' }], "why: the kernel VTEP's path is the kernel's path MTU toward it");
  t.match(await dfPing(c1, c3.ip, 1400 - 28), /Frag needed and DF set \(mtu = 1350\)/, 'and a 1400-byte DF ping toward it is told mtu = 1350 (not lost to EMSGSIZE)');
  t.equal((await lab.ping(c1.ns, c3.ip, 1, 1350 - 28)).loss, 0, '1350 bytes cross to the kernel VTEP');

  // A firewalled UDP port: h2 drops what h1 sends to 4789. Both sides see the other down, doctor names it; then back.
  t.comment(`clamp, status and why checks took ${((Date.now() - clampStarted) / 1000).toFixed(1)} s`);
  const rule = ['INPUT', '-p', 'udp', '-s', h1.underlayIp, '--dport', '4789', '-j', 'DROP'];
  const blocked = Date.now();
  await lab.exec(h2.ns, 'iptables', ['-I', ...rule]);
  // Meanwhile c2 pings c1: its datagrams reach h1 (open that way), the answers do not reach h2.
  const oneWay = lab.exec(c2.ns, 'ping', ['-c', '2', '-W', '1', c1.ip], 10_000).catch(() => undefined);
  await waitFor(
    async () => {
      [p1, p2] = [await peers(h1), await peers(h2)];
      return row(p1, h2.underlayIp).state === 'down' && row(p2, h1.underlayIp).state === 'down';
    },
    { timeoutMs: 20_000, intervalMs: 250, what: 'the firewalled peer down on both sides' },
  );
  t.pass(`firewalled: down on both sides ${((Date.now() - blocked) / 1000).toFixed(1)} s after the rule`);
  await oneWay;
  const fw = doctorOn(h1);
  t.match(
    fw.unreachable.find((c) => c.detail.includes(`peer ${h2.underlayIp} `)),
    { detail: /is registered but unreachable: its last answer to a probe was \d+ s ago; yet its VXLAN datagrams still arrive here .*: UDP 4789 is open from it to us but not from us to it/, fix: /UDP 4789 open both ways .*iptables/ },
    'doctor names the firewalled peer, open one way only',
  );
  await lab.exec(h2.ns, 'iptables', ['-D', ...rule]);
  await waitFor(
    async () => {
      [p1, p2] = [await peers(h1), await peers(h2)];
      return row(p1, h2.underlayIp).state === 'up' && row(p2, h1.underlayIp).state === 'up';
    },
    { timeoutMs: 20_000, intervalMs: 250, what: 'the peer up again once the rule is gone' },
  );
  t.pass(`rule removed: up again on both sides (the firewall checks took ${((Date.now() - blocked) / 1000).toFixed(1)} s)`);
  t.comment(`lab took ${((Date.now() - started) / 1000).toFixed(1)} s`);
});
