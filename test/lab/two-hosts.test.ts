/**
 * Two hosts, each running vxlan-router, for each engine (the native one with its offloads on and off):
 *
 *   [c1 198.18.0.1] ── br0 ── TAP (router) [h1 198.51.100.1] ══ switch ══ [h2 198.51.100.2] (router) TAP ── br0 ── [c2 198.18.0.2]
 *
 * Ping both ways, ARP resolved across the overlay, 100 MB over TCP with the SHA-256 matching on arrival.
 */
import t from 'tap';
import { Lab, labSkipReason, twoHosts } from '../../src/lab/lab.js';
import { hashedTransfer } from '../../src/lab/transfers.js';

const skip = labSkipReason();

const variants = [
  { engine: 'native', offloads: true, name: 'native engine' },
  { engine: 'native', offloads: false, name: 'native engine, --no-offloads' },
  { engine: 'js', offloads: false, name: 'js engine' },
] as const;

for (const { engine, offloads, name } of variants) {
  t.test(`two hosts, ${name}`, { skip: skip ?? false }, async (t) => {
    const lab = new Lab();
    t.teardown(() => lab.destroy());
    const { h1, h2, c1, c2 } = await twoHosts(lab);
    const args = engine === 'native' && !offloads ? ['--no-offloads'] : [];
    const r1 = await lab.startRouter(h1, { peers: [h2.underlayIp], engine, args });
    const r2 = await lab.startRouter(h2, { peers: [h1.underlayIp], engine, args });
    if (engine === 'native') {
      // `npm test` (VXLAN_ROUTER_LOOP=mixed) runs the two hosts on the two event loops: everything below crosses both.
      const loops = [(await r1.loop()).kind, (await r2.loop()).kind];
      if (process.env.VXLAN_ROUTER_LOOP === 'mixed') t.same([...loops].sort(), ['threads', 'uring'], `one host on each loop (h1 ${loops[0]}, h2 ${loops[1]})`);
      else t.comment(`loops: h1 ${loops[0]}, h2 ${loops[1]}`);
    }

    t.equal((await lab.ping(c1.ns, c2.ip)).loss, 0, 'c1 → c2 ping');
    t.equal((await lab.ping(c2.ns, c1.ip)).loss, 0, 'c2 → c1 ping');

    // ARP across the overlay: c1 forgets c2, a ping makes it ask again; the answer carries c2's real MAC.
    await lab.exec(c1.ns, 'ip', ['neigh', 'flush', 'dev', 'eth0']);
    t.equal((await lab.ping(c1.ns, c2.ip, 1)).loss, 0);
    const neigh = (await lab.exec(c1.ns, 'ip', ['neigh', 'show', c2.ip, 'dev', 'eth0'])).stdout;
    t.match(neigh, new RegExp(`lladdr ${c2.mac}`), 'c1 resolved c2 by ARP through the overlay');

    const x = await hashedTransfer(lab, c1, c2, 100);
    t.equal(x.receivedSha256, x.sentSha256, `100 MB arrived intact (${x.mbitPerS.toFixed(0)} Mbit/s)`);

    const [k1, k2] = [await r1.counters(), await r2.counters()];
    t.ok(k1.tx_datagrams! > 70_000, `h1 sent ${k1.tx_datagrams} datagrams`);
    t.ok(k2.rx_datagrams! > 70_000, `h2 received ${k2.rx_datagrams} datagrams`);
    t.ok(k2.learned! >= 1 && k1.learned! >= 1, 'both routers learned the remote MAC');
    if (offloads) {
      // The sender's container handed its TAP super-frames, h1 sent them as GSO batches, h2 merged them again.
      t.ok(k1.tx_tso_frames! > 100 && k1.tx_gso_sends! > 100, `h1: ${k1.tx_tso_frames} TSO frames, ${k1.tx_gso_sends} GSO sends`);
      t.ok(k2.rx_merged! > 10_000, `h2 merged ${k2.rx_merged} segments into super-frames`);
      t.same(await r1.offloads(), { tapVnetHdr: true, udpGso: true, udpGro: true }, 'every offload on');
    } else {
      t.equal(k1.tx_tso_frames! + k1.tx_gso_sends! + k2.rx_merged!, 0, 'no offload used');
      t.same(await r1.offloads(), { tapVnetHdr: false, udpGso: false, udpGro: false }, 'every offload off');
    }
    const drops = Object.entries(k2).filter(([n, v]) => (n.startsWith('rx_') || n.startsWith('tx_')) && !/datagrams|bytes|frames|flooded|gso|merged/.test(n) && v > 0);
    t.same(drops, [], 'no drops on the receiving router');

    const t0 = Date.now();
    const code = await r1.stop();
    t.equal(code, 0, `router exits 0 on SIGTERM (${Date.now() - t0} ms, stderr: ${r1.stderr})`);
    const links = (await lab.exec(h1.ns, 'ip', ['-o', 'link'])).stdout;
    t.notMatch(links, /vxr42/, 'and its TAP is gone');
    await r2.stop();
  });
}

/** The same overlay on an IPv6 underlay: the path carries underlay − 70. */
for (const engine of ['native', 'js'] as const) {
  t.test(`IPv6 underlay, ${engine} engine`, { skip: skip ?? false }, async (t) => {
    const lab = new Lab();
    t.teardown(() => lab.destroy());
    const { h1, h2, c1, c2 } = await twoHosts(lab, ['2001:db8::1', '2001:db8::2']);
    const r1 = await lab.startRouter(h1, { peers: [h2.underlayIp], engine });
    await lab.startRouter(h2, { peers: [h1.underlayIp], engine });
    t.match(await r1.nextLine((l) => l.startsWith('vxlan-router: ready'), 1000, true), /tap-mtu=65000 path-mtu=1430 .*local=2001:db8::1:4789/);
    t.equal((await lab.ping(c1.ns, c2.ip)).loss, 0, 'c1 → c2 ping');
    t.equal((await lab.ping(c2.ns, c1.ip)).loss, 0, 'c2 → c1 ping');
    const x = await hashedTransfer(lab, c1, c2, 20);
    t.equal(x.receivedSha256, x.sentSha256, `20 MB intact over IPv6 (${x.mbitPerS.toFixed(0)} Mbit/s)`);
    const k = await r1.counters();
    t.equal(k.tx_too_big, 0, 'full-size frames fit the IPv6 overhead');
  });
}
