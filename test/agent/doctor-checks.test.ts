/** doctor's checks of a running router's status (pure): etcd state and lease, MAC conflicts, refused and silent peers. */
import t from 'tap';
import { routerChecks, type Status } from '../../src/agent/index.js';
import { bridgeFirewallCheck } from '../../src/agent/doctor.js';

const NOW = Date.parse('2026-01-01T00:01:00Z');
const base: Status = {
  software: 'vxlan-router test', pid: 1, startedAt: '2026-01-01T00:00:00Z', uptimeSeconds: 60, engine: 'native', network: 'lab', vni: 42,
  tap: 'vxr42', bridge: 'br0', local: '198.51.100.1', port: 4789, underlay: { device: 'eth0', mtu: 1500 }, mtu: { tap: 1450, configured: null, underlayLimit: 1450 },
  networks: [{ name: 'lab', vni: 42, tap: 'vxr42', bridge: 'br0', mtu: 1450, configuredMtu: null, state: 'connected', revision: 7, hosts: 3, range: '198.18.7.0/24', gateway: '198.18.7.1', rangeNote: null, rangeReason: null }],
  offloads: { tapVnetHdr: true, udpGso: true, udpGro: true },
  controlPlane: { mode: 'etcd', endpoints: ['http://198.51.100.254:2379'], state: 'connected', since: '2026-01-01T00:00:00Z', revision: 7, hosts: 3, leaseTtlSeconds: 15 },
  peers: [{ vni: 42, address: '198.51.100.2', hostId: 'b', lastSeenAgoMs: 500, rxFrames: 5, rxBytes: 500, txFrames: 5, txBytes: 500 }],
  refusedSources: [], macConflicts: [], counters: {},
};
const at = (s: Status) => routerChecks(s, NOW);
const one = (s: Status, name: string) => at(s).find((c) => c.check === name);

t.test('etcd: connected, starting, away within the lease, away past it', async (t) => {
  t.match(one(base, 'etcd'), { status: 'ok', detail: /connected to etcd http:\/\/198\.51\.100\.254:2379 .*revision 7, 3 hosts/ });
  t.match(one({ ...base, controlPlane: { ...base.controlPlane, state: 'starting' } }, 'etcd'), { status: 'warn', fix: /endpoint health/ });
  const away = (since: string) => one({ ...base, controlPlane: { ...base.controlPlane, state: 'degraded', since } }, 'etcd');
  t.match(away('2026-01-01T00:00:55Z'), { status: 'fail', detail: /unreachable for 5 s: the lease \(TTL 15 s\) expires in 10 s/ });
  t.match(away('2026-01-01T00:00:30Z'), { status: 'fail', detail: /unreachable for 30 s, longer than the lease TTL \(15 s\): the other hosts have dropped this one/ });
  t.notOk(one({ ...base, controlPlane: { mode: 'static', endpoints: [] } }, 'etcd'), 'no etcd check with static peers');
});

t.test('MAC claimed by two hosts, refused source, silent peer', async (t) => {
  t.same(at(base).filter((c) => c.status !== 'ok'), [], 'a healthy router passes');
  t.match(one({ ...base, macConflicts: [{ vni: 42, mac: '02:00:00:00:00:0a', hostIds: ['c', 'a'] }] }, 'mac-conflict'), {
    status: 'fail', detail: /02:00:00:00:00:0a \(VNI 42\) is advertised by 2 hosts: c, a; traffic goes to c only/, fix: /--mac-address.*on a/,
  });
  t.match(one({ ...base, refusedSources: [{ address: '198.51.100.9', vni: 42, count: 3, agoMs: 2000 }] }, 'outer-source'), {
    status: 'fail', detail: /3 datagram\(s\) of VNI 42 from 198\.51\.100\.9 refused \(last 2 s ago\)/, fix: /--local 198\.51\.100\.9/,
  });
  const silent = { ...base.peers[0]!, lastSeenAgoMs: null };
  t.match(one({ ...base, peers: [silent] }, 'peers'), { status: 'warn', detail: /sending to 198\.51\.100\.2 but nothing heard/ });
  t.match(one({ ...base, peers: [{ ...silent, txFrames: 0 }] }, 'peers'), { status: 'ok' }, 'a peer we never sent to is not silent');
});

t.test("address range: this host's slice, or none because the subnet is full", async (t) => {
  t.match(one(base, 'address-range'), { status: 'ok', detail: /network lab: this host's range 198\.18\.7\.0\/24 \(gateway 198\.18\.7\.1\)/ });
  const full = { ...base.networks[0]!, range: null, gateway: null, rangeNote: 'all 16 /28 slices of 198.18.0.0/24 are leased', rangeReason: 'exhausted' as const };
  t.match(one({ ...base, networks: [full] }, 'address-range'), { status: 'warn', detail: /no address range for this host \(all 16/, fix: /etcdctl get --prefix \/vxlan-router\/v1\/networks\/lab\/ranges\// });
  const six = { ...full, rangeNote: 'per-host ranges need an IPv4 subnet; fd00::/64 is not one', rangeReason: 'unsliceable' as const };
  t.notOk(one({ ...base, networks: [six] }, 'address-range'), 'an IPv6 network has no ranges: nothing to check');
  t.notOk(one({ ...base, controlPlane: { ...base.controlPlane, state: 'degraded' } }, 'address-range'), 'not while etcd is away');
});

t.test('bridge: missing since a time, with the fix; nothing while it is there', async (t) => {
  t.notOk(one(base, 'bridge'), 'no bridge check while it is there');
  const gone = { ...base.networks[0]!, bridgeMissingSince: '2026-01-01T00:00:50Z' };
  t.match(one({ ...base, networks: [gone] }, 'bridge'), {
    status: 'fail',
    detail: /bridge br0 missing since 2026-01-01T00:00:50Z: VNI 42 reaches no container here; TAP vxr42 is kept/,
    fix: /ip link add br0 type bridge.*no restart/,
  });
});

t.test('bridge firewall: br_netfilter with a FORWARD policy of DROP (a Docker host) and a plain bridge', async (t) => {
  const docker = ['-P FORWARD DROP', '-A FORWARD -j DOCKER-USER', '-A FORWARD -o docker0 -j DOCKER', '-A FORWARD -i docker0 -o docker0 -j ACCEPT', ''].join('\n');
  t.equal(bridgeFirewallCheck('br0', undefined, docker), undefined, 'no br_netfilter: no check');
  t.equal(bridgeFirewallCheck('br0', '0\n', docker), undefined, 'bridge-nf-call-iptables off: no check');
  t.equal(bridgeFirewallCheck('br0', '1\n', undefined), undefined, 'no iptables: no check');
  t.match(bridgeFirewallCheck('br0', '1\n', docker), { status: 'fail', detail: /br0 .*policy DROP/, fix: /iptables -I FORWARD -i br0 -o br0 -j ACCEPT/ });
  t.match(bridgeFirewallCheck('docker0', '1\n', docker), { status: 'ok', detail: /accepts docker0/ }, "Docker's own bridge has its rule");
  t.match(bridgeFirewallCheck('br0', '1\n', docker + '-A FORWARD -i br0 -o br0 -j ACCEPT\n'), { status: 'ok' }, 'the fix makes it pass');
  t.match(bridgeFirewallCheck('br0', '1\n', '-P FORWARD ACCEPT\n'), { status: 'ok', detail: /policy ACCEPT/ });
  t.match(bridgeFirewallCheck('br0', '1\n', '-P FORWARD ACCEPT\n-A FORWARD -j DROP\n'), { status: 'fail' }, 'a catch-all DROP rule is a DROP policy');
  t.match(bridgeFirewallCheck('br.1', '1\n', '-P FORWARD DROP\n-A FORWARD -i br01 -o br01 -j ACCEPT\n'), { status: 'fail' }, 'names are matched exactly');
});
