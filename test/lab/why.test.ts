/**
 * `vxlan-router why`: for a known remote MAC (learned from traffic: its VTEP, age, last heard, path MTU), a local
 * container's address (on this host's bridge), an unknown MAC (flooded), an accepted peer and a refused underlay
 * sender (not a VTEP of the VNI: counted, and named as refused), in text and JSON; a target that is neither a MAC nor
 * an address is a clear error.
 */
import { spawnSync } from 'node:child_process';
import t from 'tap';
import type { WhyResult } from '../../src/agent/index.js';
import { CLI_PATH, Lab, labSkipReason, twoHosts } from '../../src/lab/lab.js';
import { waitFor } from '../../src/lab/wait.js';

const cli = (args: string[]): { code: number | null; out: string; err: string } => {
  const r = spawnSync(process.execPath, [CLI_PATH, ...args], { encoding: 'utf8', timeout: 15_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
};

for (const engine of ['native', 'js'] as const) {
  t.test(`why, ${engine} engine`, { skip: labSkipReason() ?? false }, async (t) => {
    const lab = new Lab();
    t.teardown(() => lab.destroy());
    const { h1, h2, c1, c2 } = await twoHosts(lab);
    const r1 = await lab.startRouter(h1, { peers: [h2.underlayIp], engine });
    await lab.startRouter(h2, { peers: [h1.underlayIp], engine });
    t.equal((await lab.ping(c1.ns, c2.ip, 2)).loss, 0, 'c1 ↔ c2');
    const sock = lab.controlSocket(h1);
    const why = (target: string, ...extra: string[]): WhyResult => {
      const r = cli(['why', target, '--socket', sock, '--json', ...extra]);
      if (r.code !== 0) throw new Error(`why ${target}: ${r.err}`);
      return JSON.parse(r.out) as WhyResult;
    };

    // Known: c2's MAC, learned from its replies.
    await waitFor(() => why(c2.mac).frames[0]?.verdict === 'remote', { timeoutMs: 10_000, what: 'c2 learned' });
    const known = why(c2.mac);
    t.match(known.frames, [{ vni: 42, mac: c2.mac, verdict: 'remote', origin: 'learned', vtep: h2.underlayIp, ageMs: Number, lastHeardAgoMs: Number, pathMtu: 1450 }]);
    t.equal(known.sender, null, 'a MAC is no underlay sender');
    t.match(known.counters, { tx_too_big: 0, icmp_too_big_sent: 0, tx_no_destination: 0 });
    const text = cli(['why', c2.mac, '--socket', sock]);
    t.match(text.out, new RegExp(`^frames to ${c2.mac} on VNI 42: remote\\n  entry: learned, seen .* ago\\n  vtep: ${h2.underlayIp.replace(/\./g, '\\.')}, last heard .* ago\\n  path mtu: 1450\\n  learned entry: unicast to VTEP`), 'the same in text');

    // c1's own address: on this host's bridge.
    await waitFor(() => why(c1.ip).frames.length > 0, { timeoutMs: 10_000, what: 'c1 seen on the bridge' });
    t.match(why(c1.ip).frames, [{ mac: c1.mac, ip: c1.ip, verdict: 'local', vtep: null }]);

    // Unknown: flooded.
    t.match(why('02:aa:bb:cc:dd:ee').frames, [{ verdict: 'flood', detail: /flooded to 1 peer\(s\) of VNI 42/ }]);
    t.same(why('02:aa:bb:cc:dd:ee', '--vni', '7').frames, [], 'a VNI not served: nothing');

    // The peer: accepted.
    t.match(why(h2.underlayIp).sender, { verdict: 'accepted', vnis: [42], detail: /a peer of VNI 42/ });

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
