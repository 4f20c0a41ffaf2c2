/**
 * Prometheus metrics of a running router (prom-client), served over HTTP at /metrics. Values are read from the
 * router when scraped (collect callbacks), so the data path pays nothing per packet for them.
 */
import { createServer, type Server } from 'node:http';
import { Counter, Gauge, Registry } from 'prom-client';
import { DROP_REASONS, type CounterName, type Traffic } from '../dataplane/index.js';
import { ConfigError, VxlanRouterError } from '../errors.js';
import { SOFTWARE } from './control-protocol.js';
import type { DaemonView } from './daemon.js';
import type { PeerHealthRow } from '../dataplane/index.js';

export interface MetricsServer {
  readonly address: string;
  close(): Promise<void>;
}

/** A counter whose value is the router's counter of that name when scraped (labels: fixed per series). */
function mirror(registry: Registry, name: string, help: string, labelNames: string[], series: () => [Record<string, string>, number][]): void {
  new Counter({
    name,
    help,
    labelNames,
    registers: [registry],
    collect() {
      this.reset();
      for (const [labels, value] of series()) this.inc(labels, value);
    },
  });
}

export function routerMetrics(router: DaemonView, startedAt: Date): Registry {
  const registry = new Registry();
  const c = (): Record<CounterName, number> => router.counters();
  const { info } = router;
  const first = info.networks[0]!;
  new Gauge({
    name: 'vxlan_router_info',
    help: 'Constant 1, labelled with what this router is',
    labelNames: ['version', 'engine', 'vni', 'tap', 'local', 'network'],
    registers: [registry],
  }).set({ version: SOFTWARE, engine: info.engine, vni: String(first.vni), tap: first.tap, local: info.local, network: first.name ?? '' }, 1);
  new Gauge({ name: 'vxlan_router_start_time_seconds', help: 'When the router started (Unix time)', registers: [registry] }).set(startedAt.getTime() / 1000);
  mirror(registry, 'vxlan_router_frames_total', 'Inner frames: received from peers and written to the TAP (in), read from the TAP and sent (out)', ['direction'], () => [
    [{ direction: 'in' }, c().rx_datagrams],
    [{ direction: 'out' }, c().tx_frames],
  ]);
  mirror(registry, 'vxlan_router_bytes_total', 'Inner frame bytes, as for vxlan_router_frames_total', ['direction'], () => [
    [{ direction: 'in' }, c().rx_bytes],
    [{ direction: 'out' }, c().tx_bytes],
  ]);
  mirror(registry, 'vxlan_router_datagrams_sent_total', 'VXLAN datagrams sent (a frame flooded to N peers counts N)', [], () => [[{}, c().tx_datagrams]]);
  mirror(registry, 'vxlan_router_flooded_frames_total', 'Frames sent by head-end replication (broadcast, multicast, unknown unicast)', [], () => [[{}, c().tx_flooded]]);
  mirror(registry, 'vxlan_router_learned_total', '(VNI, MAC) entries learned or moved from inbound traffic', [], () => [[{}, c().learned]]);
  mirror(registry, 'vxlan_router_local_macs_refused_total', 'New source MACs on a bridge not recorded nor advertised: the network already has maxLocalMacs', [], () => [[{}, c().local_mac_refused]]);
  mirror(registry, 'vxlan_router_icmp_too_big_total', 'Frames too big for the path answered on the bridge with ICMP too-big (sent), or not answered over the rate limit (limited)', ['result'], () => [
    [{ result: 'sent' }, c().icmp_too_big_sent],
    [{ result: 'limited' }, c().icmp_too_big_limited],
  ]);
  mirror(registry, 'vxlan_router_probes_total', 'Peer probes: ours sent, replies to ours received, peers\' requests answered, or not answered over the rate limit', ['kind'], () => [
    [{ kind: 'sent' }, c().probes_sent],
    [{ kind: 'replies' }, c().probe_replies],
    [{ kind: 'answered' }, c().probes_answered],
    [{ kind: 'answers_limited' }, c().probe_answers_limited],
  ]);
  mirror(registry, 'vxlan_router_tcp_mss_total', 'TCP SYNs crossing the overlay whose MSS --clamp-mss lowered (clamped), or whose options did not parse and were left untouched (bad_options)', ['result'], () => [
    [{ result: 'clamped' }, c().tcp_mss_clamped],
    [{ result: 'bad_options' }, c().tcp_mss_bad_options],
  ]);
  mirror(registry, 'vxlan_router_drops_total', 'Frames or datagrams dropped, by reason', ['reason'], () => DROP_REASONS.map((r) => [{ reason: r }, c()[r]]));
  mirror(registry, 'vxlan_router_neighbor_suppressed_total', 'ARP requests and IPv6 Neighbor Solicitations from the bridge answered by the router', ['protocol'], () => [
    [{ protocol: 'arp' }, c().arp_suppressed],
    [{ protocol: 'nd' }, c().nd_suppressed],
  ]);
  mirror(registry, 'vxlan_router_offload_total', 'Offload work: TSO super-frames cut, GSO sends, segments merged for the TAP; GSO flow sockets closed after a minute unused, GSO sends sent raw because 1024 flow sockets were open', ['kind'], () => [
    [{ kind: 'tso_frames' }, c().tx_tso_frames],
    [{ kind: 'gso_sends' }, c().tx_gso_sends],
    [{ kind: 'merged_segments' }, c().rx_merged],
    [{ kind: 'gso_sockets_closed' }, c().gso_sockets_closed],
    [{ kind: 'gso_sockets_full' }, c().gso_sockets_full],
  ]);
  new Gauge({
    name: 'vxlan_router_gso_sockets',
    help: 'UDP sockets open for GSO sends (native engine: one per outer source port in use, at most 1024; closed after a minute unused)',
    registers: [registry],
    collect() {
      this.set(router.gsoSockets());
    },
  });
  // Per peer and per VNI: one read of the engine's traffic per scrape, shared by the four families.
  let traffic: { at: number; value: Traffic } | undefined;
  const t = (): Traffic => {
    if (traffic === undefined || Date.now() - traffic.at > 100) traffic = { at: Date.now(), value: router.traffic() };
    return traffic.value;
  };
  const both = <R extends { rxFrames: number; rxBytes: number; txFrames: number; txBytes: number }>(rows: readonly R[], label: (r: R) => Record<string, string>, what: 'Frames' | 'Bytes') =>
    rows.flatMap((r): [Record<string, string>, number][] => [
      [{ ...label(r), direction: 'in' }, r[`rx${what}`]],
      [{ ...label(r), direction: 'out' }, r[`tx${what}`]],
    ]);
  mirror(registry, 'vxlan_router_peer_datagrams_total', 'VXLAN datagrams per peer: received from it (in), sent to it (out)', ['peer', 'direction'], () =>
    both(t().peers, (p) => ({ peer: p.address }), 'Frames'),
  );
  mirror(registry, 'vxlan_router_peer_bytes_total', 'Inner bytes per peer, as for vxlan_router_peer_datagrams_total', ['peer', 'direction'], () =>
    both(t().peers, (p) => ({ peer: p.address }), 'Bytes'),
  );
  mirror(registry, 'vxlan_router_vni_frames_total', 'Inner frames per VNI: written to its TAP (in), read from it and forwarded (out)', ['vni', 'direction'], () =>
    both(t().vnis, (v) => ({ vni: String(v.vni) }), 'Frames'),
  );
  mirror(registry, 'vxlan_router_vni_bytes_total', 'Inner bytes per VNI, as for vxlan_router_vni_frames_total', ['vni', 'direction'], () =>
    both(t().vnis, (v) => ({ vni: String(v.vni) }), 'Bytes'),
  );
  new Gauge({
    name: 'vxlan_router_peer_last_seen_seconds',
    help: 'Seconds since a datagram from each peer was last accepted (absent: never)',
    labelNames: ['peer'],
    registers: [registry],
    collect() {
      this.reset();
      for (const p of t().peers) if (p.lastRxAgoMs >= 0) this.set({ peer: p.address }, p.lastRxAgoMs / 1000);
    },
  });
  // Peer health from probing (src/dataplane/peer-health.ts); no series with probing off.
  const health = (set: (g: Gauge, h: PeerHealthRow) => void) =>
    function (this: Gauge): void {
      this.reset();
      for (const h of router.peerHealth()) set(this, h);
    };
  new Gauge({
    name: 'vxlan_router_peer_up',
    help: 'Peer state from probing: 1 up (answers probes), 0 down, -1 unknown (does not answer probes, e.g. a kernel VTEP, or probed too briefly)',
    labelNames: ['peer'],
    registers: [registry],
    collect: health((g, h) => g.set({ peer: h.address }, h.state === 'up' ? 1 : h.state === 'down' ? 0 : -1)),
  });
  new Gauge({
    name: 'vxlan_router_peer_rtt_seconds',
    help: 'Smoothed round-trip time of probes to each peer (absent: never answered)',
    labelNames: ['peer'],
    registers: [registry],
    collect: health((g, h) => h.rttMs !== null && g.set({ peer: h.address }, h.rttMs / 1000)),
  });
  new Gauge({
    name: 'vxlan_router_peer_probe_loss_ratio',
    help: 'Liveness probes to each peer lost over the last minute, 0-1 (absent: none decided yet)',
    labelNames: ['peer'],
    registers: [registry],
    collect: health((g, h) => h.lossPercent !== null && g.set({ peer: h.address }, h.lossPercent / 100)),
  });
  new Gauge({
    name: 'vxlan_router_peer_path_mtu_bytes',
    help: 'Largest outer IP packet the path to each peer carries, measured with DF probes (absent: not measured)',
    labelNames: ['peer'],
    registers: [registry],
    collect: health((g, h) => h.pathMtu !== null && g.set({ peer: h.address }, h.pathMtu)),
  });
  new Gauge({
    name: 'vxlan_router_control_plane_state',
    help: 'The control plane state: 1 for the current one (static: no etcd)',
    labelNames: ['state'],
    registers: [registry],
    collect() {
      const cp = router.controlPlane();
      for (const state of ['static', 'starting', 'connected', 'degraded']) this.set({ state }, Number((cp?.state ?? 'static') === state));
    },
  });
  new Gauge({
    name: 'vxlan_router_control_plane_lag_seconds',
    help: 'How long the table may have been stale: seconds since the control plane left the connected state (0 when connected or static)',
    registers: [registry],
    collect() {
      const cp = router.controlPlane();
      this.set(cp === null || cp.state === 'connected' ? 0 : Math.max(0, (Date.now() - Date.parse(cp.since)) / 1000));
    },
  });
  new Gauge({
    name: 'vxlan_router_control_plane_revision',
    help: 'The etcd revision the table reflects (0 without etcd)',
    registers: [registry],
    collect() {
      this.set(router.controlPlane()?.revision ?? 0);
    },
  });
  mirror(registry, 'vxlan_router_registry_events_total', 'What the etcd registry recovered from or refused: relists after a watch ended, other hosts\' records rejected, leases granted again', ['event'], () => {
    const r = router.registryCounters();
    return [
      [{ event: 'relist' }, r?.relists ?? 0],
      [{ event: 'record_rejected' }, r?.rejectedRecords ?? 0],
      [{ event: 'lease_regrant' }, r?.leaseRegrants ?? 0],
      [{ event: 'address_claim_refused' }, r?.refusedClaims ?? 0],
      [{ event: 'ownership_change_limited' }, r?.limitedOwnershipChanges ?? 0],
      [{ event: 'mac_left_bridge' }, r === null ? 0 : router.macsLeftBridge()],
    ];
  });
  mirror(registry, 'vxlan_router_dns_queries_total', "The name server's queries (up --dns), by result: answered from container names, forwarded, forward failed, malformed, busy (forwards at their cap)", ['result'], () => {
    const d = router.dnsCounters?.() ?? null;
    if (d === null) return [];
    return [
      [{ result: 'answered' }, d.answered],
      [{ result: 'forwarded' }, d.forwarded],
      [{ result: 'forward_failed' }, d.forwardFailed],
      [{ result: 'malformed' }, d.malformed],
      [{ result: 'busy' }, d.busy],
    ];
  });
  mirror(registry, 'vxlan_router_dns_tcp_events_total', "The name server over TCP (up --dns): queries that came over TCP, connections refused (64 open at once), connections closed idle, and our UDP answers sent truncated (TC: the client asks again over TCP)", ['event'], () => {
    const d = router.dnsCounters?.() ?? null;
    if (d === null) return [];
    return [
      [{ event: 'query' }, d.tcpQueries],
      [{ event: 'connection_refused' }, d.tcpRefused],
      [{ event: 'idle_closed' }, d.tcpIdleClosed],
      [{ event: 'udp_truncated' }, d.truncated],
    ];
  });
  new Gauge({
    name: 'vxlan_router_unadvertised_macs',
    help: "This host's MACs left out of its etcd record now (over the per-record cap)",
    registers: [registry],
    collect() {
      this.set(router.registryCounters()?.unadvertisedMacs ?? 0);
    },
  });
  mirror(registry, 'vxlan_router_tables_refused_total', 'Tables the data path refused (the last good one stayed)', [], () => [[{}, router.refusedTables()]]);
  new Gauge({
    name: 'vxlan_router_mac_conflicts',
    help: 'MACs that several hosts advertise at once',
    registers: [registry],
    collect() {
      this.set(router.macConflicts().length);
    },
  });
  new Gauge({
    name: 'vxlan_router_address_conflicts',
    help: 'Addresses several MACs claim at once (forged or duplicate; the oldest live claim keeps them)',
    registers: [registry],
    collect() {
      this.set(router.addressConflicts().length);
    },
  });
  new Gauge({
    name: 'vxlan_router_fdb_entries',
    help: 'Forwarding table entries, by origin',
    labelNames: ['origin'],
    registers: [registry],
    collect() {
      // Counts from the engine: a scrape never copies the (up to learnMax) learned entries.
      this.reset();
      for (const [origin, n] of Object.entries(router.fdbCounts())) this.set({ origin }, n);
    },
  });
  new Gauge({
    name: 'vxlan_router_peers',
    help: 'Remote VTEPs in the table, per VNI',
    labelNames: ['vni'],
    registers: [registry],
    collect() {
      this.reset();
      for (const v of router.table().vnis) this.set({ vni: String(v.vni) }, v.peers.length);
    },
  });
  new Gauge({
    name: 'vxlan_router_bridge_missing_since_seconds',
    help: 'When each network\'s bridge was found gone (Unix time; 0: present, with the TAP on it)',
    labelNames: ['vni', 'bridge'],
    registers: [registry],
    collect() {
      this.reset();
      const links = router.links();
      router.info.networks.forEach((n, i) => this.set({ vni: String(n.vni), bridge: n.bridge }, (links[i]?.bridgeMissingSince?.getTime() ?? 0) / 1000));
    },
  });
  mirror(registry, 'vxlan_router_bridge_rejoins_total', 'Times a TAP joined its bridge again after the bridge was deleted and created', ['vni'], () =>
    router.links().map((l, i) => [{ vni: String(router.info.networks[i]!.vni) }, l.bridgeRejoins]),
  );
  mirror(registry, 'vxlan_router_taps_recreated_total', 'Times a TAP deleted under the router was recreated', ['vni'], () =>
    router.links().map((l, i) => [{ vni: String(router.info.networks[i]!.vni) }, l.tapsRecreated]),
  );
  new Gauge({
    name: 'vxlan_router_offload_enabled',
    help: 'Whether each offload is in use (1) or not (0)',
    labelNames: ['offload'],
    registers: [registry],
    collect() {
      const o = router.offloads();
      this.set({ offload: 'tap' }, Number(o.tapVnetHdr));
      this.set({ offload: 'gso' }, Number(o.udpGso));
      this.set({ offload: 'gro' }, Number(o.udpGro));
    },
  });
  return registry;
}

/** `host:port` (IPv6 in brackets) → its parts; anything else is a ConfigError naming the flag. */
export function parseListen(text: string): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\s]+)):(\d{1,5})$/.exec(text);
  const port = Number(m?.[3]);
  if (m === null || !(port >= 1 && port <= 65535)) throw new ConfigError(`--metrics: "${text}" is not host:port (e.g. 127.0.0.1:9477), or off`);
  return { host: m[1] ?? m[2]!, port };
}

/**
 * Serves `registry` at http://<listen>/metrics until closed. `onError` hears what goes wrong after it listens.
 * `close` drops open connections at once: a slow or stuck scraper cannot hold up a stop.
 */
export async function serveMetrics(listen: string, registry: Registry, onError: (err: Error) => void = () => undefined): Promise<MetricsServer> {
  const { host, port } = parseListen(listen);
  const server: Server = createServer((req, res) => {
    if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: try /metrics\n');
      return;
    }
    registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
      (err: Error) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`${err.message}\n`),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => {
      const taken = err.code === 'EADDRINUSE';
      const why = taken ? 'the port is taken (another router?)' : err.message;
      reject(new VxlanRouterError('E_CONFIG', `cannot serve metrics on ${listen}: ${why}`, { cause: err, hint: 'pass --metrics <host:port>, or --metrics off', ...(taken ? { kind: 'port-taken' } : {}) }));
    });
    server.listen(port, host, resolve);
  });
  server.on('error', onError);
  let closed = false;
  return {
    address: listen,
    close: async () => {
      if (closed) return;
      closed = true;
      const done = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await done;
    },
  };
}
