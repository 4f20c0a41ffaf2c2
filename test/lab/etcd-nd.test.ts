/**
 * IPv6 neighbour discovery over the addresses routers advertise through etcd (the IPv6 half of etcd-macs.test.ts),
 * with each engine. Learning is off: etcd is the only way a remote MAC or address can be known.
 *
 *   [c1] h1 ┐                                  ┌ h3 [c4]   (c4 takes over c2's IPv6 address half-way)
 *           ╞═ switch (etcd at 198.51.100.254) ╡
 *   [c2] h2 ┘              containers: fd00:198:18::<n>/64 (ULA, no DAD) besides 198.18.0.<n>/15
 *
 * - each router records its containers' IPv6 addresses (global and link-local) and the others get them from etcd;
 *   ping -6 crosses hosts, to ULA and link-local addresses;
 * - a Neighbor Solicitation for a known remote address is answered by the local router: nd_suppressed grows by one
 *   and no VXLAN datagram carrying a solicitation leaves the host;
 * - an IPv6 address re-bound to a new MAC on another host (c2 goes, c4 takes its address): the unsolicited Neighbor
 *   Advertisement from h1's router puts the new MAC into c1's neighbour cache within 2.5 s, without anyone flushing it.
 */
import t from 'tap';
import { etcdLab, etcdSkipReason } from '../../src/lab/etcd.js';
import { labSkipReason, VNI, type Container, type Host } from '../../src/lab/lab.js';
import type { EngineName, RouterProcess } from '../../src/lab/router-process.js';
import { waitFor } from '../../src/lab/wait.js';

const ETCD_IP = '198.51.100.254';
const skip = labSkipReason() ?? etcdSkipReason();
const v6 = (n: number): string => `fd00:198:18::${n}`;

for (const engine of ['native', 'js'] as const satisfies readonly EngineName[]) {
  t.test(`IPv6 ND suppression and unsolicited NA through etcd (${engine} engine)`, { skip: skip ?? false }, async (t) => {
    const { lab, etcd, defineNetwork, destroy } = await etcdLab(ETCD_IP);
    t.teardown(destroy);
    const hosts: Host[] = [];
    for (let i = 1; i <= 3; i++) hosts.push(await lab.addHost(`h${i}`, `198.51.100.${i}`));
    const [h1, h2, h3] = hosts as [Host, Host, Host];
    const c1 = await lab.addContainer(h1, 'c1', '198.18.0.1');
    const c2 = await lab.addContainer(h2, 'c2', '198.18.0.2');
    const c4 = await lab.addContainer(h3, 'c4', '198.18.0.4');
    for (const [c, n] of [[c1, 1], [c2, 2], [c4, 4]] as const) await lab.addIpv6(c, v6(n));
    const linkLocal = async (c: Container): Promise<string | undefined> => {
      const links = JSON.parse((await lab.exec('', 'ip', ['-n', c.ns, '-6', '-j', 'addr', 'show', 'dev', 'eth0'])).stdout) as { addr_info?: { local?: string }[] }[];
      return links.flatMap((l) => l.addr_info ?? []).find((a) => a.local?.startsWith('fe80:') === true)?.local;
    };
    let c2ll: string | undefined;
    await waitFor(async () => (c2ll = await linkLocal(c2)) !== undefined, { timeoutMs: 3000, what: "c2's link-local address" });
    await defineNetwork(h1);
    const args = ['--etcd', etcd.endpoint, '--lease-ttl', '2', '--no-learning'];
    const routers: RouterProcess[] = [];
    for (const h of hosts) routers.push(await lab.startRouter(h, { peers: [], engine, vni: null, args }));
    const r1 = routers[0]!;
    await waitFor(async () => (await r1.peers())[VNI]?.length === 2, { timeoutMs: 5000, what: 'h1 to see both other hosts' });

    // Each container speaks IPv6 once: an NS (from its ULA) for an address nobody has; c2 also pings all nodes from
    // its link-local address, and answers their solicitations for it (Neighbor Advertisements with that target).
    const speak = (c: Container, from: string): Promise<unknown> => lab.exec(c.ns, 'ping', ['-c', '1', '-W', '1', '-I', from, v6(250)]).catch(() => undefined);
    await Promise.all([speak(c1, v6(1)), speak(c2, v6(2)), speak(c4, v6(4))]);
    await lab.exec(c2.ns, 'ping', ['-c', '1', '-W', '1', '-I', 'eth0', 'ff02::1']).catch(() => undefined);
    const knows = async (ip: string, mac: string): Promise<boolean> => ((await r1.neighbors())[VNI] ?? []).some((n) => n.ip === ip && n.mac === mac);
    await waitFor(async () => (await knows(v6(2), c2.mac)) && (await knows(v6(4), c4.mac)), { timeoutMs: 3000, what: "h1 to know c2's and c4's IPv6 addresses from etcd" });
    t.pass("h1 knows c2's and c4's ULA addresses from etcd");
    await waitFor(() => knows(c2ll!, c2.mac), { timeoutMs: 3000, what: `h1 to know c2's link-local address ${c2ll}` });
    t.pass(`... and c2's link-local one (${c2ll})`);
    t.notOk(await knows(v6(1), c1.mac), 'a host does not install its own addresses');
    t.equal((await lab.ping(c1.ns, v6(2), 3)).loss, 0, 'ping -6 c1 → c2 across hosts');
    t.equal((await lab.ping(c1.ns, `${c2ll}%eth0`, 2)).loss, 0, "ping -6 c1 → c2's link-local address");

    // ND suppression: c1 forgets c2 and solicits again; h1 answers. The capture sees every VXLAN datagram leaving h1
    // that carries an ICMPv6 solicitation or echo request (inner EtherType at UDP offset 28, next header at 36, ICMPv6 type at 70).
    await lab.exec(c1.ns, 'ip', ['-6', 'neigh', 'flush', 'dev', 'eth0']);
    const dump = await lab.capture(h1.ns, 'eth0', [`src host ${h1.underlayIp} and udp dst port 4789 and udp[28:2] = 0x86dd and udp[36] = 58 and (udp[70] = 135 or udp[70] = 128)`], { seconds: 30 });
    const a0 = await r1.counters();
    t.equal((await lab.ping(c1.ns, v6(2), 1)).loss, 0, 'c1 → c2 after flushing its neighbour cache');
    const a1 = await r1.counters();
    // tcpdump hands packets over in blocks: wait for the echo request to show, then give a solicitation (which would
    // have left before it) no chance to hide. It decodes VXLAN: the outer header, then the inner packet on its own line.
    await waitFor(() => dump.text().includes('echo request'), { timeoutMs: 5000, what: 'the capture to show the echo request' });
    const seen = await dump.stop();
    t.equal(a1.nd_suppressed! - a0.nd_suppressed!, 1, "h1 answered c1's Neighbor Solicitation itself");
    t.equal(a1.arp_suppressed, a0.arp_suppressed, 'as ND, not ARP');
    t.equal(seen.match(/VXLAN, flags/g)?.length, 1, `one VXLAN datagram with ICMPv6 left h1: ${seen}`);
    t.match(seen, /ICMP6, echo request/, 'the echo request');
    t.notMatch(seen, /neighbor solicitation/, 'no solicitation');
    t.match((await lab.exec(c1.ns, 'ip', ['-6', 'neigh', 'show', v6(2)])).stdout, new RegExp(`lladdr ${c2.mac}`), "with c2's real MAC");

    // fd00:198:18::2 is re-bound: c2 goes (its veth deleted: h2 withdraws it), c4 (on h3) takes its address and uses
    // it (unicasts to c1 through a static entry: no solicitation from c4 that could teach c1 itself). h1's router
    // hears of the new owner from etcd and tells its bridge with an unsolicited Neighbor Advertisement.
    const heard = await lab.capture(c1.ns, 'eth0', ['icmp6 and ip6[40] = 136 and ip6 dst ff02::1'], { seconds: 30 });
    await lab.exec(h2.ns, 'ip', ['link', 'del', 'c2']);
    await lab.exec(c4.ns, 'ip', ['-6', 'addr', 'add', `${v6(2)}/64`, 'dev', 'eth0', 'nodad']);
    await lab.exec(c4.ns, 'ip', ['-6', 'neigh', 'replace', v6(1), 'lladdr', c1.mac, 'dev', 'eth0', 'nud', 'permanent']);
    const rebound = Date.now();
    const used = lab.exec(c4.ns, 'ping', ['-c', '25', '-i', '0.1', '-W', '1', '-I', v6(2), v6(1)]).catch(() => undefined); // c1 answers to the old MAC at first: lost
    await waitFor(async () => (await lab.exec(c1.ns, 'ip', ['-6', 'neigh', 'show', v6(2)])).stdout.includes(c4.mac), { timeoutMs: 5000, intervalMs: 50, what: `c1's cache to learn ${v6(2)}'s new MAC` });
    const naMs = Date.now() - rebound;
    // 250 ms advertisement tick, etcd put and watch, the router's reaction, and this polling (an `ip netns exec` each).
    t.ok(naMs <= 2500, `c1's neighbour cache has the new MAC ${naMs} ms after c4 used the address`);
    const told = new RegExp(`neighbor advertisement, tgt is ${v6(2)}`);
    await waitFor(() => told.test(heard.text()), { timeoutMs: 5000, what: 'the capture in c1 to show the Neighbor Advertisement' });
    t.match(await heard.stop(), told, 'told by an unsolicited Neighbor Advertisement to all nodes');
    await used;
    t.equal((await lab.ping(c1.ns, v6(2), 2)).loss, 0, `c1 reaches ${v6(2)} at c4 without flushing anything`);
  });
}
