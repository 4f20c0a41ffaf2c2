/**
 * Three hosts, full mesh of static peers, for each engine. A broadcast from c1 reaches c2 and c3 exactly once each:
 * head-end replication sends one copy per peer, and a router never re-sends what it got from a VTEP.
 *
 *              ┌── [h2 198.51.100.2] router ── br0 ── [c2 198.18.0.2]
 *   [c1] ── h1 ┤  switch
 *              └── [h3 198.51.100.3] router ── br0 ── [c3 198.18.0.3]
 */
import t from 'tap';
import { Lab, labSkipReason, type Container } from '../../src/lab/lab.js';

const BROADCAST = '198.19.255.255'; // of 198.18.0.0/15
const PORT = 9999;

for (const engine of ['native', 'js'] as const) {
t.test(`three hosts, ${engine} engine`, { skip: labSkipReason() ?? false }, async (t) => {
  const lab = new Lab();
  t.teardown(() => lab.destroy());
  const ips = ['198.51.100.1', '198.51.100.2', '198.51.100.3'];
  const hosts = await Promise.all(ips.map((ip, i) => lab.addHost(`h${i + 1}`, ip)));
  const cs: Container[] = [];
  for (const [i, h] of hosts.entries()) cs.push(await lab.addContainer(h, `c${i + 1}`, `198.18.0.${i + 1}`));
  const routers = [];
  for (const h of hosts) routers.push(await lab.startRouter(h, { peers: ips.filter((ip) => ip !== h.underlayIp), engine }));

  // Listen on c2 and c3 (bounded by count and time), then send one broadcast datagram from c1.
  const captures = await Promise.all([cs[1]!, cs[2]!].map((c) => lab.capture(c.ns, 'eth0', ['udp', 'port', String(PORT)], { seconds: 4 })));
  await lab.exec(cs[0]!.ns, 'sh', ['-c', `echo vxr-broadcast | socat - UDP-DATAGRAM:${BROADCAST}:${PORT},broadcast`], 5000);

  for (const [i, c] of captures.entries()) {
    const lines = (await c.done()).split('\n').filter((l) => l.includes(`> ${BROADCAST}.${PORT}`));
    t.equal(lines.length, 1, `c${i + 2} saw the broadcast exactly once`);
  }
  const k1 = await routers[0]!.counters();
  t.ok(k1.tx_flooded! >= 1, 'h1 flooded it');
  for (const [i, r] of routers.slice(1).entries()) {
    const k = await r.counters();
    t.equal(k.rx_unknown_source, 0, `h${i + 2}: nothing from unknown sources`);
  }

  // Known unicast goes to one VTEP: once h1 has learned c2's MAC (from c2's ARP reply), pings c1 → c2 are sent to h2
  // only and never reach h3.
  t.equal((await lab.ping(cs[0]!.ns, cs[1]!.ip, 1)).loss, 0, 'warm-up ping (ARP) c1 → c2');
  const [f1, r3] = [(await routers[0]!.counters()).tx_flooded!, (await routers[2]!.counters()).rx_datagrams!];
  t.equal((await lab.ping(cs[0]!.ns, cs[1]!.ip, 10)).loss, 0);
  t.equal((await routers[0]!.counters()).tx_flooded! - f1, 0, 'learned: no pings flooded by h1');
  t.equal((await routers[2]!.counters()).rx_datagrams! - r3, 0, 'h3 received none of them');

  // With learning off, h1 floods unknown unicast: every ping also reaches h3 (head-end replication).
  await routers[0]!.stop();
  routers[0] = await lab.startRouter(hosts[0]!, { peers: [ips[1]!, ips[2]!], engine, args: ['--no-learning'] });
  const r3b = (await routers[2]!.counters()).rx_datagrams!;
  t.equal((await lab.ping(cs[0]!.ns, cs[1]!.ip, 10)).loss, 0, 'pings still answered with learning off');
  const k1b = await routers[0]!.counters();
  t.ok(k1b.tx_flooded! >= 10 && k1b.learned === 0, `--no-learning: h1 flooded ${k1b.tx_flooded} frames, learned none`);
  t.ok((await routers[2]!.counters()).rx_datagrams! - r3b >= 10, 'and h3 received the flooded pings');
});
}
