/**
 * No MTU black holes. Containers with MTU 1500 on an overlay whose path fits 1450 (1500-byte underlay, − 50; − 70 on
 * an IPv6 underlay: 1430). The TAP's MTU (default 65000) lets the bridge hand every frame to the router; the router
 * never fragments VXLAN. What does not fit:
 *  - without DF: dropped (tx_too_big), unanswered, as before;
 *  - with DF (ping -M do, TCP): dropped and answered on the bridge with ICMP "fragmentation needed" carrying the MTU
 *    that fits, so the sender's path MTU discovery adapts: a 20 MB TCP transfer between the two 1500-MTU containers
 *    (TSO super-frames with the native engine: judged by their segment size) arrives intact.
 * No IP fragment ever appears on the underlay. Also: a kernel VTEP peer (still interoperates), and IPv6 inside the
 * overlay (ICMPv6 Packet Too Big).
 *
 *   [c1 mtu 1500] ── br0 ── TAP (router) [h1] ══ underlay mtu 1500 ══ [h2] router ── br0 ── [c2 mtu 1500]
 */
import t from 'tap';
import { Lab, labSkipReason, twoHosts, type Container, type Host } from '../../src/lab/lab.js';
import { hashedTransfer } from '../../src/lab/transfers.js';

async function setMtu(lab: Lab, host: Host, c: Container, mtu: number): Promise<void> {
  await lab.exec('', 'ip', ['-n', host.ns, 'link', 'set', c.name, 'mtu', String(mtu)]);
  await lab.exec('', 'ip', ['-n', c.ns, 'link', 'set', 'eth0', 'mtu', String(mtu)]);
}

/** 1472 bytes of ping (a 1500-byte packet), DF as `pmtu` says; stdout whatever ping's exit status. */
async function ping(lab: Lab, from: Container, to: string, pmtu: 'do' | 'dont'): Promise<string> {
  return (await lab.exec(from.ns, 'sh', ['-c', `ping -c 2 -i 0.2 -W 2 -M ${pmtu} -s 1472 ${to} 2>&1; true`], 15_000)).stdout;
}

for (const family of ['IPv4', 'IPv6'] as const) {
  for (const engine of ['native', 'js'] as const) {
    t.test(`containers at MTU 1500 over a ${family} underlay, ${engine} engine`, { skip: labSkipReason() ?? false }, async (t) => {
      const lab = new Lab();
      t.teardown(() => lab.destroy());
      const underlay = family === 'IPv4' ? (['198.51.100.1', '198.51.100.2'] as const) : (['2001:db8::1', '2001:db8::2'] as const);
      const path = family === 'IPv4' ? 1450 : 1430;
      const { h1, h2, c1, c2 } = await twoHosts(lab, underlay);
      const r1 = await lab.startRouter(h1, { peers: [h2.underlayIp], engine });
      const r2 = await lab.startRouter(h2, { peers: [h1.underlayIp], engine });
      await setMtu(lab, h1, c1, 1500);
      await setMtu(lab, h2, c2, 1500);
      const fragments = family === 'IPv4' ? 'ip[6:2] & 0x3fff != 0' : 'ip6[6] == 44';
      const dump = await lab.capture(h1.ns, 'eth0', [fragments], { seconds: 120 });

      t.equal((await lab.ping(c1.ns, c2.ip, 2)).loss, 0, 'small frames cross');

      // Without DF: dropped whole and counted, never answered (nor fragmented).
      const k0 = await r1.counters();
      const noDf = await ping(lab, c1, c2.ip, 'dont');
      t.match(noDf, /100% packet loss/, 'a 1500-byte packet without DF does not arrive');
      const k1 = await r1.counters();
      t.equal(k1.tx_too_big! - k0.tx_too_big!, 2, 'each one a tx_too_big drop');
      t.equal(k1.icmp_too_big_sent, k0.icmp_too_big_sent, 'and no answer');

      // TCP from c1, which has learned nothing yet: path MTU discovery through the router's answers.
      const x = await hashedTransfer(lab, c1, c2, 20);
      t.equal(x.receivedSha256, x.sentSha256, `20 MB from a 1500-MTU container arrives intact (${x.mbitPerS.toFixed(0)} Mbit/s)`);
      const k2 = await r1.counters();
      t.ok(k2.icmp_too_big_sent! > k1.icmp_too_big_sent!, 'the sender was told (icmp_too_big_sent grew on its router)');
      t.comment(`h1: icmp_too_big_sent +${k2.icmp_too_big_sent! - k1.icmp_too_big_sent!}, icmp_too_big_limited +${k2.icmp_too_big_limited! - k1.icmp_too_big_limited!}, tx_too_big +${k2.tx_too_big! - k1.tx_too_big!}, tx_tso_frames +${k2.tx_tso_frames! - k1.tx_tso_frames!}`);
      const route = (await lab.exec(c1.ns, 'ip', ['route', 'get', c2.ip])).stdout;
      t.match(route, new RegExp(`mtu ${path}`), `c1's route cache holds the path MTU: ${route.trim().split('\n').map((l) => l.trim()).join(' ')}`);

      // With DF, from c2 (which has learned nothing either): the sender hears why.
      const k3 = await r2.counters();
      const df = await ping(lab, c2, c1.ip, 'do');
      t.match(df, new RegExp(`From ${c1.ip.replace(/\./g, '\\.')} icmp_seq=1 Frag needed and DF set \\(mtu = ${path}\\)`), `ping -M do -s 1472 is told mtu = ${path}, from the address it pinged (the overlay has no router address)`);
      t.comment(df.split('\n').slice(0, 3).join('\n'));
      const k4 = await r2.counters();
      t.equal(k4.icmp_too_big_sent! - k3.icmp_too_big_sent!, 1, 'answered once: the second ping is refused by c2 itself');
      t.equal((await lab.ping(c2.ns, c1.ip, 2, path - 28)).loss, 0, `${path - 28} bytes of ping (a ${path}-byte packet) cross`);
      t.equal((await dump.stop()).trim(), '', 'no IP fragment on the underlay');
    });
  }
}

/**
 * Against a kernel VTEP: our side's 1500-MTU container sends 20 MB to a container behind the kernel's vxlan device
 * (left at its 1450 and at 1500 on that side too); our router's answers let TCP fit the path, the kernel peer
 * receives ordinary datagrams.
 */
for (const engine of ['native', 'js'] as const) {
  t.test(`a 1500-MTU container to a kernel VTEP peer, ${engine} engine`, { skip: labSkipReason() ?? false }, async (t) => {
    const lab = new Lab();
    t.teardown(() => lab.destroy());
    const { h1, h2, c1, c2 } = await twoHosts(lab);
    const r1 = await lab.startRouter(h1, { peers: [h2.underlayIp], engine });
    await lab.addKernelVtep(h2, [h1.underlayIp]);
    await setMtu(lab, h1, c1, 1500);
    await setMtu(lab, h2, c2, 1500); // behind vx0 (MTU 1450): its own big frames are the kernel's business
    t.equal((await lab.ping(c1.ns, c2.ip, 2)).loss, 0, 'small frames cross');
    const df = await ping(lab, c1, c2.ip, 'do');
    t.match(df, /Frag needed and DF set \(mtu = 1450\)/, 'told mtu = 1450');
    const x = await hashedTransfer(lab, c1, c2, 20);
    t.equal(x.receivedSha256, x.sentSha256, `20 MB to the kernel side intact (${x.mbitPerS.toFixed(0)} Mbit/s)`);
    const k = await r1.counters();
    t.equal(k.tx_send_error, 0, 'no send errors');
    t.ok(k.icmp_too_big_sent! >= 1, `icmp_too_big_sent ${k.icmp_too_big_sent}`);
  });
}

/** IPv6 inside the overlay: ICMPv6 Packet Too Big, which the sender's stack takes as its path MTU. */
for (const engine of ['native', 'js'] as const) {
  t.test(`IPv6 containers at MTU 1500, ${engine} engine`, { skip: labSkipReason() ?? false }, async (t) => {
    const lab = new Lab();
    t.teardown(() => lab.destroy());
    const { h1, h2, c1, c2 } = await twoHosts(lab);
    const r1 = await lab.startRouter(h1, { peers: [h2.underlayIp], engine });
    await lab.startRouter(h2, { peers: [h1.underlayIp], engine });
    await setMtu(lab, h1, c1, 1500);
    await setMtu(lab, h2, c2, 1500);
    await lab.addIpv6(c1, 'fd00:198:18::1');
    await lab.addIpv6(c2, 'fd00:198:18::2');
    const ping6 = async (size: number): Promise<string> =>
      (await lab.exec(c1.ns, 'sh', ['-c', `ping -6 -c 2 -i 0.2 -W 2 -M do -s ${size} fd00:198:18::2 2>&1; true`], 15_000)).stdout;
    t.match(await ping6(56), / 0% packet loss/, 'small IPv6 packets cross');
    const big = await ping6(1452);
    t.match(big, /From fd00:198:18::2 icmp_seq=1 Packet too big: mtu=1450/, 'a 1500-byte IPv6 packet: Packet too big, mtu=1450, from the address pinged');
    t.comment(big.split('\n').slice(0, 3).join('\n'));
    t.ok((await r1.counters()).icmp_too_big_sent! >= 1, 'counted');
    const route = (await lab.exec(c1.ns, 'ip', ['-6', 'route', 'get', 'fd00:198:18::2'])).stdout;
    t.match(route, /mtu 1450/, `c1's route cache holds it: ${route.trim()}`);
    t.match(await ping6(1402), / 0% packet loss/, 'a 1450-byte IPv6 packet crosses');
  });
}
