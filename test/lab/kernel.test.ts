/**
 * The lab itself, proven with the kernel's VXLAN device on every host (no vxlan-router involved), so that a failing
 * router test points at the router and not at the topology:
 *
 *   [c1 198.18.0.1] ── br0 ── vx0 [h1 198.51.100.1] ═╗           ╔═ [h2 198.51.100.2] vx0 ── br0 ── [c2 198.18.0.2]
 *                                                    ╚═ switch ══╣
 *                                                                ╚═ [h3 198.51.100.3] vx0 ── br0 ── [c3 198.18.0.3]
 *
 * Two hosts: ping both ways, ARP across the overlay, a hash-checked TCP transfer both ways. Three hosts: a broadcast
 * from c1 reaches c2 and c3 exactly once each (the same capture logic the router's three-host test relies on).
 */
import t from 'tap';
import { Lab, labSkipReason, twoHosts, type Container } from '../../src/lab/lab.js';
import { hashedTransfer } from '../../src/lab/transfers.js';

const skip = labSkipReason();

t.test('two kernel VTEPs', { skip: skip ?? false }, async (t) => {
  const lab = new Lab();
  t.teardown(() => lab.destroy());
  const { h1, h2, c1, c2 } = await twoHosts(lab);
  await lab.addKernelVtep(h1, [h2.underlayIp]);
  await lab.addKernelVtep(h2, [h1.underlayIp]);

  t.equal((await lab.ping(c1.ns, c2.ip)).loss, 0, 'c1 → c2 ping');
  t.equal((await lab.ping(c2.ns, c1.ip)).loss, 0, 'c2 → c1 ping');
  await lab.exec(c1.ns, 'ip', ['neigh', 'flush', 'dev', 'eth0']);
  t.equal((await lab.ping(c1.ns, c2.ip, 1)).loss, 0, 'a ping after the flush');
  t.match((await lab.exec(c1.ns, 'ip', ['neigh', 'show', c2.ip, 'dev', 'eth0'])).stdout, new RegExp(`lladdr ${c2.mac}`), 'c1 resolved c2 by ARP');

  const there = await hashedTransfer(lab, c1, c2, 50);
  t.equal(there.receivedSha256, there.sentSha256, `50 MB c1 → c2 intact (${there.mbitPerS.toFixed(0)} Mbit/s)`);
  const back = await hashedTransfer(lab, c2, c1, 20, 5002);
  t.equal(back.receivedSha256, back.sentSha256, `20 MB c2 → c1 intact (${back.mbitPerS.toFixed(0)} Mbit/s)`);
});

t.test('three kernel VTEPs: a broadcast arrives once at each', { skip: skip ?? false }, async (t) => {
  const lab = new Lab();
  t.teardown(() => lab.destroy());
  const ips = ['198.51.100.1', '198.51.100.2', '198.51.100.3'];
  const cs: Container[] = [];
  for (const [i, ip] of ips.entries()) {
    const h = await lab.addHost(`h${i + 1}`, ip);
    await lab.addKernelVtep(h, ips.filter((p) => p !== ip));
    cs.push(await lab.addContainer(h, `c${i + 1}`, `198.18.0.${i + 1}`));
  }
  const [c1, c2, c3] = cs as [Container, Container, Container];

  const captures = await Promise.all([c2, c3].map((c) => lab.capture(c.ns, 'eth0', ['udp', 'port', '9999'], { seconds: 3 })));
  await lab.exec(c1.ns, 'sh', ['-c', 'echo vxr-broadcast | socat -u - UDP-DATAGRAM:198.19.255.255:9999,broadcast'], 5000);
  for (const [i, cap] of captures.entries()) {
    const lines = (await cap.done()).split('\n').filter((l) => l.includes('> 198.19.255.255.9999'));
    t.equal(lines.length, 1, `c${i + 2} saw the broadcast exactly once`);
  }
});
