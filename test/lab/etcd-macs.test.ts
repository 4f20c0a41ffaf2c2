/**
 * MAC advertisement through etcd: each router publishes the MACs seen on its bridge, the others install them as
 * unicast entries. Learning is off on every router, so etcd is the only way a remote MAC can be known:
 *
 *   [c1] h1 ┐                                  ┌ h3 [c3]   (c2 moves from h2 to h3 half-way)
 *           ╞═ switch (etcd at 198.51.100.254) ╡
 *   [c2] h2 ┘
 *
 * - every container's MAC reaches the other hosts' tables (origin etcd) without any traffic to it;
 * - ARP requests for those containers' addresses are answered by the local router (nothing leaves the host);
 * - traffic to those MACs is never flooded (the flood counter stays put, the third host receives none of it);
 * - an address re-bound to a new MAC on another host (c5 on h2 goes, c4 takes over its address): a gratuitous ARP
 *   from h1's router puts the new MAC into c1's neighbour cache within 2.5 s, without anyone flushing it (a live
 *   container's address is never taken over: etcd-claims.test.ts);
 * - a MAC that moves to another host is followed within 2.5 s;
 * - kill -9 of a router: its MACs leave the others' tables with its lease (2 × TTL + 1.5 s).
 */
import t from 'tap';
import type { FdbRows } from '../../src/agent/index.js';
import { ask } from '../../src/cli/control-client.js';
import { etcdLab, etcdSkipReason } from '../../src/lab/etcd.js';
import { CLI_PATH, labSkipReason, VNI, type Container, type Host } from '../../src/lab/lab.js';
import type { RouterProcess } from '../../src/lab/router-process.js';
import { waitFor } from '../../src/lab/wait.js';

const ETCD_IP = '198.51.100.254';
const skip = labSkipReason() ?? etcdSkipReason();

t.test('MACs advertised through etcd', { skip: skip ?? false }, async (t) => {
  const { lab, etcd, defineNetwork, destroy } = await etcdLab(ETCD_IP);
  t.teardown(destroy);
  const hosts: Host[] = [];
  const cs: Container[] = [];
  for (let i = 1; i <= 3; i++) {
    hosts.push(await lab.addHost(`h${i}`, `198.51.100.${i}`));
    cs.push(await lab.addContainer(hosts[i - 1]!, `c${i}`, `198.18.0.${i}`));
  }
  const [h1, h2, h3] = hosts as [Host, Host, Host];
  const [c1, c2, c3] = cs as [Container, Container, Container];
  const c4 = await lab.addContainer(h3, 'c4', '198.18.0.4');
  const c5 = await lab.addContainer(h2, 'c5', '198.18.0.5');
  await defineNetwork(h1);
  const args = ['--etcd', etcd.endpoint, '--lease-ttl', '2', '--no-learning'];
  const routers: RouterProcess[] = [];
  for (const h of hosts) routers.push(await lab.startRouter(h, { peers: [], engine: 'native', vni: null, args }));
  const [r1, r2, r3] = routers as [RouterProcess, RouterProcess, RouterProcess];
  await waitFor(async () => (await r1.peers())[VNI]?.length === 2, { timeoutMs: 5000, what: 'h1 to see both other hosts' });

  // Straight to the control socket (a CLI process takes ~0.4 s to start: too coarse for sub-second timings).
  const fdb = (h: Host): Promise<FdbRows> => ask(lab.controlSocket(h), 'fdb');
  const vtepOf = async (h: Host, mac: string): Promise<string | undefined> => (await fdb(h)).find((r) => r.mac === mac && r.origin === 'etcd')?.vtep;
  // One frame from a container makes its MAC known to its own router: an ARP request for an address nobody has.
  const speak = (c: Container): Promise<unknown> => lab.exec(c.ns, 'ping', ['-c', '1', '-W', '1', '198.18.0.250']).catch(() => undefined);

  await Promise.all(cs.map(speak));
  // Each router learns through its own watch: wait for what is asserted below too (h3 knows c1), and for h2 to know
  // c1's address (c2's ARP for c1 in the ARP check is then answered by h2, not flooded to h1: one more datagram).
  const r2KnowsC1 = async (): Promise<boolean> => ((await r2.neighbors())[VNI] ?? []).some((n) => n.ip === c1.ip && n.mac === c1.mac);
  await waitFor(
    async () => (await vtepOf(h1, c2.mac)) === h2.underlayIp && (await vtepOf(h1, c3.mac)) === h3.underlayIp && (await vtepOf(h3, c1.mac)) === h1.underlayIp && (await r2KnowsC1()),
    { timeoutMs: 5000, what: 'h1 to know c2 and c3, h3 and h2 to know c1 from etcd' },
  );
  t.pass("h1 knows c2's and c3's MACs from etcd (learning is off)");
  t.equal(await vtepOf(h3, c1.mac), h1.underlayIp, "h3 knows c1's");
  t.notOk((await fdb(h1)).some((r) => r.mac === c1.mac), 'a host does not install its own MACs');

  // ARP suppression: c1 forgets c2 and asks again; h1 answers (c2's address came with its MAC record).
  await lab.exec(c1.ns, 'ip', ['neigh', 'flush', 'dev', 'eth0']);
  const a0 = await r1.counters();
  t.equal((await lab.ping(c1.ns, c2.ip, 1)).loss, 0, 'c1 → c2 after flushing its ARP cache');
  const a1 = await r1.counters();
  t.equal(a1.arp_suppressed! - a0.arp_suppressed!, 1, "h1 answered c1's ARP request itself");
  t.equal(a1.tx_flooded, a0.tx_flooded, 'nothing flooded');
  t.equal(a1.tx_datagrams! - a0.tx_datagrams!, 1, 'the only datagram that left h1 is the ping');
  t.match((await lab.exec(c1.ns, 'ip', ['neigh', 'show', c2.ip])).stdout, new RegExp(`lladdr ${c2.mac}`), "with c2's real MAC");

  // 198.18.0.5 is re-bound: c5 (on h2, known to c1) goes, c4 (on h3) takes its address and uses it (unicasts to c1:
  // no ARP broadcast from c4 that could teach c1 itself). h2 withdraws c5 as its port goes; h1's router hears of the
  // new owner from etcd and tells its bridge.
  await speak(c5);
  t.equal((await lab.ping(c1.ns, c5.ip, 1)).loss, 0, 'c1 → c5');
  t.match((await lab.exec(c1.ns, 'ip', ['neigh', 'show', c5.ip])).stdout, new RegExp(`lladdr ${c5.mac}`));
  await lab.exec(h2.ns, 'ip', ['link', 'del', 'c5']);
  await lab.exec(c4.ns, 'ip', ['addr', 'add', `${c5.ip}/15`, 'dev', 'eth0']);
  await lab.exec(c4.ns, 'ip', ['neigh', 'replace', c1.ip, 'lladdr', c1.mac, 'dev', 'eth0', 'nud', 'permanent']);
  const rebound = Date.now();
  const used = lab.exec(c4.ns, 'ping', ['-c', '25', '-i', '0.1', '-W', '1', '-I', c5.ip, c1.ip]).catch(() => undefined); // c1 answers to the old MAC at first: lost
  await waitFor(async () => (await lab.exec(c1.ns, 'ip', ['neigh', 'show', c5.ip])).stdout.includes(c4.mac), { timeoutMs: 5000, intervalMs: 50, what: "c1's cache to learn 198.18.0.5's new MAC" });
  const garpMs = Date.now() - rebound;
  // 250 ms advertisement tick, etcd put and watch, the router's reaction, and this polling (an `ip netns exec` each).
  t.ok(garpMs <= 2500, `c1's neighbour cache has the new MAC ${garpMs} ms after c4 used the address`);
  await used;
  t.equal((await lab.ping(c1.ns, c5.ip, 2)).loss, 0, 'c1 reaches 198.18.0.5 at c4 without flushing anything');
  const c2Now = c2;

  // Known MACs are never flooded: static neighbour entries (no ARP broadcast, and no unicast probe of c1's entry for
  // 198.18.0.2 at c4 some 5 s after its last use, into h3's counters), then pings c1 → c2.
  const c4Now = { ...c4, ip: c5.ip };
  for (const [a, b] of [[c1, c2Now], [c2Now, c1], [c1, c3], [c3, c1], [c1, c4Now]] as const) {
    await lab.exec(a.ns, 'ip', ['neigh', 'replace', b.ip, 'lladdr', b.mac, 'dev', 'eth0', 'nud', 'permanent']);
  }
  const [before1, before3] = [await r1.counters(), await r3.counters()];
  t.equal((await lab.ping(c1.ns, c2Now.ip, 5)).loss, 0, 'c1 → c2 over the advertised MAC');
  const [after1, after3] = [await r1.counters(), await r3.counters()];
  t.equal(after1.tx_flooded, before1.tx_flooded, 'h1 flooded none of them');
  t.equal(after1.tx_datagrams! - before1.tx_datagrams!, 5, 'one datagram per ping, to h2 only');
  t.equal(after3.rx_datagrams, before3.rx_datagrams, 'h3 received none of them');

  // c2 moves from h2 to h3 (its cable: the veth end on h2's bridge goes to h3's bridge).
  await lab.exec(h2.ns, 'ip', ['link', 'set', 'c2', 'netns', h3.ns]);
  await lab.exec(h3.ns, 'ip', ['link', 'set', 'c2', 'master', 'br0', 'up']);
  const moved = Date.now();
  const spoke = speak(c2); // its ARP request is the first frame h3 sees from c2
  await waitFor(async () => (await vtepOf(h1, c2.mac)) === h3.underlayIp, { timeoutMs: 5000, intervalMs: 50, what: "h1 to follow c2's move" });
  const followMs = Date.now() - moved;
  // The same chain as the gratuitous ARP's (the `speak` spawn included).
  t.ok(followMs <= 2500, `h1 forwards to c2's new host ${followMs} ms after c2 spoke there`);
  await spoke;
  t.equal((await lab.ping(c1.ns, c2Now.ip, 3)).loss, 0, 'c1 reaches c2 at its new place');

  // kill -9 of h3's router: c3's (and now c2's) MACs go with its lease.
  const killed = Date.now();
  r3.child.kill('SIGKILL');
  // Expiry 1.3-2 s after the last keepalive, etcd's 500 ms expiry sweep, the watch and this polling: 2 × TTL + 1.5 s.
  await waitFor(async () => (await vtepOf(h1, c3.mac)) === undefined, { timeoutMs: 8000, intervalMs: 100, what: "c3's MAC to leave h1's table" });
  const goneMs = Date.now() - killed;
  t.ok(goneMs <= 5500, `c3's MAC gone from h1's table ${goneMs} ms after kill -9 (TTL 2 s)`);
  // c2 left h2's bridge (its port went with the move): h2 does not advertise it again once h3's claim is gone.
  await new Promise((r) => setTimeout(r, 1000));
  t.equal(await vtepOf(h1, c2.mac), undefined, 'c2 left h2: h2 does not claim it again');
});
