/**
 * `vxlan-router why`: for a known remote MAC (learned from traffic: its VTEP, age, last heard, path MTU, and the outer
 * source port its frames leave with: checked against a captured datagram), a local container's address (on this
 * host's bridge), an unknown MAC (flooded), an accepted peer, an unknown underlay address and a refused one (not a
 * VTEP of the VNI: counted, and named as refused), in text and JSON; a target that is neither a MAC nor an address is
 * a clear error.
 *
 * In the same lab, --clamp-mss (on h1 only, bare: the path's 1450 − 40): a SYN from a 1500-MTU container (MSS 1460)
 * arrives at the far container with MSS 1410, both ways: clamped by h1's TX on the way out and by h1's RX on the way
 * in (h2 does not clamp); captured in the far container's namespace.
 */
import { spawnSync } from 'node:child_process';
import t from 'tap';
import type { WhyResult } from '../../src/agent/index.js';
import { CLI_PATH, Lab, labSkipReason, twoHosts, type Container, type Host } from '../../src/lab/lab.js';
import { waitFor } from '../../src/lab/wait.js';

const cli = (args: string[]): { code: number | null; out: string; err: string } => {
  const r = spawnSync(process.execPath, [CLI_PATH, ...args], { encoding: 'utf8', timeout: 15_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
};

async function setMtu(lab: Lab, host: Host, c: Container, mtu: number): Promise<void> {
  await lab.exec('', 'ip', ['-n', host.ns, 'link', 'set', c.name, 'mtu', String(mtu)]);
  await lab.exec('', 'ip', ['-n', c.ns, 'link', 'set', 'eth0', 'mtu', String(mtu)]);
}

/** A TCP connection attempt from `from` to `to` port 9 (nobody listens: one SYN, answered by a RST). */
async function syn(lab: Lab, from: Container, to: Container): Promise<void> {
  const js = `require('node:net').connect({ host: '${to.ip}', port: 9 }).on('error', () => process.exit(0)).on('connect', () => process.exit(0));`;
  await lab.exec(from.ns, process.execPath, ['-e', js], 10_000);
}

for (const engine of ['native', 'js'] as const) {
  t.test(`why, ${engine} engine`, { skip: labSkipReason() ?? false }, async (t) => {
    const lab = new Lab();
    t.teardown(() => lab.destroy());
    const { h1, h2, c1, c2 } = await twoHosts(lab);
    const r1 = await lab.startRouter(h1, { peers: [h2.underlayIp], engine, args: ['--clamp-mss'] });
    await lab.startRouter(h2, { peers: [h1.underlayIp], engine });
    await setMtu(lab, h1, c1, 1500);
    await setMtu(lab, h2, c2, 1500);
    t.equal((await lab.ping(c1.ns, c2.ip, 2)).loss, 0, 'c1 ↔ c2');

    // --clamp-mss, both ways through h1's router.
    const synFilter = ['tcp[tcpflags] & tcp-syn != 0 and tcp[tcpflags] & tcp-ack == 0'];
    for (const [from, to] of [[c1, c2], [c2, c1]] as const) {
      const dump = await lab.capture(to.ns, 'eth0', synFilter, { seconds: 20, count: 1 });
      await syn(lab, from, to);
      const seen = await dump.done();
      t.match(seen, new RegExp(`${from.ip.replace(/\./g, '\\.')}\\.\\d+ > ${to.ip.replace(/\./g, '\\.')}\\.9: Flags \\[S\\].*options \\[mss 1410,`), `${from.name} → ${to.name}: the SYN (MSS 1460 from a 1500-MTU container) arrives with MSS 1410`);
    }
    t.equal((await r1.counters()).tcp_mss_clamped, 2, 'h1 clamped both SYNs (one sent, one received)');
    t.equal((await r1.counters()).tcp_mss_bad_options, 0);
    const sock = lab.controlSocket(h1);
    const why = (target: string, ...extra: string[]): WhyResult => {
      const r = cli(['why', target, '--socket', sock, '--json', ...extra]);
      if (r.code !== 0) throw new Error(`why ${target}: ${r.err}`);
      return JSON.parse(r.out) as WhyResult;
    };

    // Known: c2's MAC, learned from its replies.
    await waitFor(() => why(c2.mac).frames[0]?.verdict === 'remote', { timeoutMs: 10_000, what: 'c2 learned' });
    const known = why(c2.mac);
    t.match(known.frames, [{ vni: 42, mac: c2.mac, verdict: 'remote', origin: 'learned', vtep: h2.underlayIp, ageMs: Number, lastHeardAgoMs: Number, pathMtu: 1450, revision: null }]);
    t.same(known.clampMss, { ipv4: 1410, ipv6: 1390 }, 'the clamp in force');
    t.match(known.counters, { tcp_mss_clamped: 2 });

    // The outer source port of c1's non-IP frames to c2 (as `why` computes it), against a real one: busybox arping
    // broadcasts its first request, then asks c2's MAC by unicast, which crosses the overlay as such a frame.
    const viaArp = why(c2.mac, '--from', c1.mac).frames[0]!.sourcePort!;
    t.match(viaArp, { port: Number, flow: `non-IP frames (ARP) from ${c1.mac}` });
    const outer = await lab.capture(h1.ns, 'eth0', ['-e', 'udp', 'dst', 'port', '4789'], { seconds: 20 });
    await lab.exec(c1.ns, 'busybox', ['arping', '-c', '2', '-w', '4', '-I', 'eth0', c2.ip], 10_000);
    const lines = (await outer.stop()).split('\n');
    const unicast = lines.findIndex((l) => l.includes(`${c1.mac} > ${c2.mac}`) && l.includes('ARP'));
    t.ok(unicast > 0, 'a unicast ARP request crossed the overlay');
    const datagram = lines.slice(0, unicast + 1).reverse().find((l) => l.includes('.4789: VXLAN')) ?? '';
    const port = /\d+\.\d+\.\d+\.\d+\.(\d+) > [\d.]+\.4789: VXLAN/.exec(datagram);
    t.equal(Number(port?.[1]), viaArp.port, `its outer source port is the one why named (${viaArp.port}): ${datagram.trim()}`);
    t.equal(known.sender, null, 'a MAC is no underlay sender');
    t.match(known.counters, { tx_too_big: 0, icmp_too_big_sent: 0, tx_no_destination: 0 });
    const text = cli(['why', c2.mac, '--socket', sock]);
    t.match(text.out, new RegExp(`^frames to ${c2.mac} on VNI 42: remote\\n  entry: learned, seen .* ago\\n  vtep: ${h2.underlayIp.replace(/\./g, '\\.')}, last heard .* ago\\n  outer source port: \\d+ \\(non-IP frames \\(ARP\\) from [0-9a-f:]+\\)\\n  path mtu: 1450 \\((measured|being measured)\\), peer (up|unknown)\\n  tcp mss clamped to: 1410 \\(IPv4\\) / 1390 \\(IPv6\\)\\n  learned entry: unicast to VTEP`), 'the same in text');

    // c1's own address: on this host's bridge.
    await waitFor(() => why(c1.ip).frames.length > 0, { timeoutMs: 10_000, what: 'c1 seen on the bridge' });
    t.match(why(c1.ip).frames, [{ mac: c1.mac, ip: c1.ip, verdict: 'local', vtep: null }]);

    // Unknown: flooded.
    t.match(why('02:aa:bb:cc:dd:ee').frames, [{ verdict: 'flood', detail: /flooded to 1 peer\(s\) of VNI 42/ }]);
    t.same(why('02:aa:bb:cc:dd:ee', '--vni', '7').frames, [], 'a VNI not served: nothing');

    // The peer: accepted.
    t.match(why(h2.underlayIp).sender, { verdict: 'accepted', vnis: [42], peerOf: [{ vni: 42, origin: 'static', hostId: null }], rule: /sender is a peer of that VNI \(rx_unknown_source\)/, detail: /a static peer \(--peer\), a peer of VNI 42/ });

    // An unknown address: never heard of, it would be refused.
    const unknown = why('198.51.100.77');
    t.same(unknown.frames, []);
    t.match(unknown.sender, { verdict: 'refused', vnis: [], peerOf: [], refusedCount: 0, lastRefusedAgoMs: null, detail: /^not a peer of any VNI served here \(42\): its datagrams are dropped \(rx_unknown_source\);/ });

    // A refused sender: a datagram for VNI 42 from an address that is no peer.
    await lab.exec(h2.ns, 'ip', ['addr', 'add', '198.51.100.9/24', 'dev', 'eth0']);
    const send = `const s = require('node:dgram').createSocket('udp4'); s.bind(0, '198.51.100.9', () => s.send(Buffer.from([8,0,0,0,0,0,42,0, ...new Array(60).fill(2)]), 4789, '${h1.underlayIp}', () => s.close()));`;
    await lab.exec(h2.ns, process.execPath, ['-e', send]);
    await lab.exec(h2.ns, process.execPath, ['-e', send]);
    await waitFor(async () => ((await r1.counters()).rx_unknown_source ?? 0) >= 2, { timeoutMs: 10_000, what: 'two refusals' });
    const refused = why('198.51.100.9');
    t.match(refused.sender, { address: '198.51.100.9', verdict: 'refused', vnis: [], refusedCount: 2, lastRefusedAgoMs: Number, detail: /not a peer of any VNI served here \(42\): its datagrams are dropped \(rx_unknown_source\), 2 so far/ });
    t.match(refused.counters, { rx_unknown_source: 2 });
    t.match(cli(['why', '198.51.100.9', '--socket', sock]).out, /datagrams from 198\.51\.100\.9: refused\n/);

    const bad = cli(['why', 'not-an-address', '--socket', sock]);
    t.equal(bad.code, 2);
    t.match(bad.err, /neither a MAC \(aa:bb:cc:dd:ee:ff\) nor an IP address/);
  });
}
