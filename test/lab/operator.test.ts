/**
 * The operator's commands against running routers: `status`, `fdb`, `peers`, `counters` and `table`, in text and as schema-checked JSON,
 * over each router's control socket; the socket is root-only, a stale one is replaced, a live one is not stolen.
 */
import { spawnSync } from 'node:child_process';
import { statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import parsePrometheus from 'parse-prometheus-text-format';
import { countersSchema, fdbSchema, peersSchema, statusSchema, tableSchema } from '../../src/agent/index.js';
import { DROP_REASONS, TRAFFIC_COUNTERS } from '../../src/dataplane/index.js';
import { Lab, labSkipReason, twoHosts } from '../../src/lab/lab.js';
import { waitFor } from '../../src/lab/wait.js';

const CLI = fileURLToPath(new URL('../../dist/cli.js', import.meta.url));
const cli = (args: string[]): { code: number | null; out: string; err: string } => {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 15_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
};

t.test('status, fdb and peers of two running routers', { skip: labSkipReason() ?? false }, async (t) => {
  const lab = new Lab();
  t.teardown(() => lab.destroy());
  const { h1, h2, c1, c2 } = await twoHosts(lab);
  // h1 serves metrics on its namespace's own loopback, at an address named here (the lab turns them off otherwise).
  const metrics = '127.0.0.1:9101';
  await lab.startRouter(h1, { peers: [h2.underlayIp], engine: 'native', args: ['--metrics', metrics] });
  await lab.startRouter(h2, { peers: [h1.underlayIp], engine: 'js' });
  t.equal((await lab.ping(c1.ns, c2.ip, 3)).loss, 0, 'c1 → c2 ping');
  const sock = lab.controlSocket(h1);
  t.equal(statSync(sock).mode & 0o777, 0o600, 'the socket is root-only (0600)');

  const json = cli(['status', '--socket', sock, '--json']);
  t.equal(json.code, 0, json.err);
  const status = statusSchema.parse(JSON.parse(json.out));
  t.match(status, { engine: 'native', vni: 42, tap: 'vxr42', bridge: 'br0', local: h1.underlayIp, port: 4789, network: null });
  t.same(status.mtu, { tap: 65000, configured: null, underlayLimit: 1450 });
  t.match(status.networks, [{ name: null, vni: 42, tap: "vxr42", bridge: "br0", mtu: 65000, configuredMtu: null, state: null }]);
  t.match(status.peers, [{ vni: 42, address: h2.underlayIp, hostId: null, lastSeenAgoMs: Number }]);
  const peerRow = status.peers[0]!;
  t.ok(peerRow.lastSeenAgoMs! < 10_000 && peerRow.rxFrames >= 3 && peerRow.txFrames >= 3 && peerRow.rxBytes >= 3 * 98, 'the peer was heard, with the pings counted both ways');
  t.same(status.refusedSources, []);
  t.same(status.macConflicts, []);
  t.same(status.controlPlane, { mode: 'static', endpoints: [], tablesRefused: 0 });
  t.same(status.offloads, { tapVnetHdr: true, udpGso: true, udpGro: true });
  t.ok(status.counters.rx_datagrams! >= 3 && status.counters.tx_frames! >= 3, 'counters moved with the pings');

  const text = cli(['status', '--socket', sock]);
  t.equal(text.code, 0, text.err);
  t.match(text.out, /native engine.*\n.*vni: 42 {2}tap: vxr42 on bridge br0\n.*local: 198\.51\.100\.1:4789 via eth0 \(mtu 1500\)\n.*mtu: 1450 on the path \(larger IP packets are answered with ICMP too-big\); TAP 65000\n.*tcp mss clamp: off\n.*offloads: tap, gso, gro\n.*loop: (threads|uring, receive: poll \+ recvmmsg)\n.*control plane: static peers\npeer 198\.51\.100\.2 vni 42: last heard [\d.]+ m?s ago, received [\d.]+ K?i?B in \d+, sent [\d.]+ K?i?B in \d+\n/);
  t.match(text.out, /\ndrops: none\n/, 'only nonzero drops are listed');

  const fdb = fdbSchema.parse(JSON.parse(cli(['fdb', '--socket', sock, '--json']).out));
  t.match(fdb, [{ vni: 42, mac: c2.mac, vtep: h2.underlayIp, origin: 'learned' }], "h1 learned c2's MAC behind h2");
  const fdbText = cli(['fdb', '--socket', sock, '--vni', '42']).out.split('\n');
  t.match(fdbText[0], /^VNI +MAC +VTEP +ORIGIN +AGE$/);
  t.match(fdbText[1], new RegExp(`^42 +${c2.mac} +${h2.underlayIp.replace(/\./g, '\\.')} +learned +\\d+s$`));
  t.equal(cli(['fdb', '--socket', sock, '--vni', '7']).out.trim(), '(no entries)', '--vni filters');
  t.same(JSON.parse(cli(['fdb', '--socket', sock, '--vni', '7', '--json']).out), [], '--vni filters --json too');
  t.match(cli(['fdb', '--socket', sock, '--vni', 'x']), { code: 2, err: /\[E_CONFIG\]: --vni: "x" is not a VNI: pass an integer/ }, 'a bad --vni is a usage error');

  // What SIGUSR1 once printed: every counter, and the table the data path forwards with.
  const counters = countersSchema.parse(JSON.parse(cli(['counters', '--socket', sock, '--json']).out));
  t.same(Object.keys(counters).sort(), [...TRAFFIC_COUNTERS, ...DROP_REASONS].sort(), 'counters: every name');
  t.ok(counters.rx_datagrams! >= 3, 'counters moved with the pings');
  t.match(cli(['counters', '--socket', sock]).out, /^COUNTER +VALUE\nrx_datagrams +\d+\n/);
  t.same(tableSchema.parse(JSON.parse(cli(['table', '--socket', sock, '--json']).out)), { vnis: [{ vni: 42, peers: [h2.underlayIp], macs: [], neighbors: [] }] });
  t.equal(cli(['table', '--socket', sock]).out, `vni 42: 1 peer(s): ${h2.underlayIp}\n`);
  t.same(JSON.parse(cli(['table', '--socket', sock, '--vni', '7', '--json']).out), { vnis: [] }, 'table --vni filters');

  const peers = peersSchema.parse(JSON.parse(cli(['peers', '--socket', sock, '--json']).out));
  t.match(peers, [{ address: h2.underlayIp, port: 4789, vnis: [42], origin: 'static', hostId: null, networks: [], mtu: null, lastUpdateAgoMs: null, lastSeenAgoMs: Number }]);
  t.ok(peers[0]!.rxFrames >= 3 && peers[0]!.txFrames >= 3, 'peer traffic in `peers`');
  t.match(
    cli(['peers', '--socket', sock]).out,
    /^peer: 198\.51\.100\.2\n  state: (up|unknown)\n  endpoint: 198\.51\.100\.2:4789, vni 42, static\n  latest answer: .*\n  path mtu: .*\n  last heard: [\d.]+ m?s ago\n  transfer: [\d.]+ K?i?B received, [\d.]+ K?i?B sent\n$/,
    'peers: one block per peer, like wg show',
  );

  // Metrics: scraped inside h1, parsed as Prometheus text.
  const scrape = async (): Promise<Map<string, number>> => {
    const text = (await lab.exec(h1.ns, process.execPath, ['-e', `fetch('http://${metrics}/metrics').then((r) => r.text()).then((s) => process.stdout.write(s))`])).stdout;
    const values = new Map<string, number>();
    for (const family of parsePrometheus(text)) {
      for (const m of family.metrics) values.set(`${family.name}${JSON.stringify(m.labels ?? {})}`, Number(m.value));
    }
    return values;
  };
  const before = await scrape();
  t.equal(before.get('vxlan_router_offload_enabled{"offload":"gso"}'), 1, 'offloads shown');
  t.equal(before.get('vxlan_router_gso_sockets{}'), 0, 'GSO flow sockets open: none (no TCP super-frame sent yet)');
  t.equal(before.get('vxlan_router_peers{"vni":"42"}'), 1, 'one peer');
  t.equal(before.get('vxlan_router_fdb_entries{"origin":"learned"}'), 1, 'one learned MAC');
  t.ok(DROP_REASONS.every((r) => before.get(`vxlan_router_drops_total{"reason":"${r}"}`) === 0), 'every drop reason, all zero');
  t.equal((await lab.ping(c1.ns, c2.ip, 5)).loss, 0);
  const after = await scrape();
  const moved = (k: string): number => after.get(k)! - before.get(k)!;
  t.ok(moved('vxlan_router_frames_total{"direction":"out"}') >= 5 && moved('vxlan_router_frames_total{"direction":"in"}') >= 5, 'frame counters moved with 5 pings');
  t.ok(moved('vxlan_router_bytes_total{"direction":"out"}') >= 5 * 98, 'and bytes');
  const peer = (k: string, dir: string) => `vxlan_router_peer_${k}_total{"peer":"${h2.underlayIp}","direction":"${dir}"}`;
  t.ok(moved(peer('datagrams', 'out')) >= 5 && moved(peer('datagrams', 'in')) >= 5, 'per-peer datagrams moved');
  t.ok(moved(peer('bytes', 'out')) >= 5 * 98 && moved(peer('bytes', 'in')) >= 5 * 98, 'per-peer bytes moved');
  t.ok(moved('vxlan_router_vni_frames_total{"vni":"42","direction":"out"}') >= 5 && moved('vxlan_router_vni_bytes_total{"vni":"42","direction":"in"}') >= 5 * 98, 'per-VNI counters moved');
  t.ok(after.get(`vxlan_router_peer_last_seen_seconds{"peer":"${h2.underlayIp}"}`)! < 10, 'peer last seen');
  t.equal(after.get('vxlan_router_control_plane_state{"state":"static"}'), 1, 'control plane: static');
  t.equal(after.get('vxlan_router_control_plane_lag_seconds{}'), 0);
  t.equal(after.get('vxlan_router_mac_conflicts{}'), 0);
  // Peer health from probing (the js engine on h2 answers the native one's probes).
  let health = after;
  await waitFor(async () => (health = await scrape()).get(`vxlan_router_peer_path_mtu_bytes{"peer":"${h2.underlayIp}"}`) === 1500, { timeoutMs: 15_000, what: 'the path MTU to h2' });
  t.equal(health.get(`vxlan_router_peer_up{"peer":"${h2.underlayIp}"}`), 1, 'peer up (probes answered)');
  t.ok(health.get(`vxlan_router_peer_rtt_seconds{"peer":"${h2.underlayIp}"}`)! < 1, 'peer RTT');
  t.ok(health.get('vxlan_router_probes_total{"kind":"sent"}')! >= 2 && health.get('vxlan_router_probes_total{"kind":"replies"}')! >= 2, 'probes sent and answered');

  const js = statusSchema.parse(JSON.parse(cli(['status', '--socket', lab.controlSocket(h2), '--json']).out));
  t.match(js, { engine: 'js', offloads: { tapVnetHdr: false, udpGso: false, udpGro: false } }, 'the js engine answers too');
});

t.test('socket errors name the fix', { skip: labSkipReason() ?? false }, async (t) => {
  const lab = new Lab();
  t.teardown(() => lab.destroy());
  const missing = cli(['status', '--socket', `/tmp/vxr${lab.id}-nothing.sock`]);
  t.equal(missing.code, 1);
  t.match(missing.err, /\[E_CONTROL\].*cannot reach .*no router answers there/);

  const { h1, h2 } = await twoHosts(lab);
  // A stale socket file (a router killed with -9) is replaced. Made by a process that exits while listening: closing
  // a server in this one would remove the file.
  const stale = lab.controlSocket(h1);
  spawnSync(process.execPath, ['-e', "require('node:net').createServer().listen(process.argv[1], () => process.exit(0))", stale]);
  t.ok(statSync(stale).isSocket(), 'a stale socket file is there');
  await lab.startRouter(h1, { peers: [h2.underlayIp], engine: 'native' });
  t.equal(cli(['status', '--socket', stale, '--json']).code, 0, 'a stale socket file is taken over');

  // A live one is not.
  const live = await lab.startRouter(h2, { peers: [h1.underlayIp], engine: 'native', args: ['--socket', stale] }).then(
    () => 'started',
    (err: Error) => err.message,
  );
  t.match(live, /E_CONTROL.*another vxlan-router answers on .*: stop it, or give this one its own --socket/);
});
