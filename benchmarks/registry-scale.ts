/**
 * Registry at scale, against a real etcd on loopback (not part of CI):
 *
 *   npx tsx benchmarks/registry-scale.ts [--hosts 1000] [--rate 250] [--burst 100] [--macs 10]
 *
 * 1. Join latency: N simulated hosts (one process, one etcd client, one lease each, as a router registers) put their
 *    host records; an observing EtcdRegistry (list + watch, as in a router) records when each host's address first
 *    appears in its table. Reported: p50/p99/max from the put being sent to the entry in the table, in two phases:
 *    paced (--rate registrations per second: the latency of the pipeline itself) and a burst (--burst in flight at
 *    once: latency under queuing).
 * 2. Each host then advertises --macs MACs (with an IPv4 address each), as a router does under its lease.
 * 3. Memory: a separate process holding an EtcdRegistry (+ its table) with all N hosts and their MACs, its RSS and
 *    heap before joining and after the table holds everything (after GC).
 * 4. The router's RSS: a real `vxlan-router up` (native engine, a TAP on a bridge) joined to an empty network, then
 *    one joined to this one, once its data path holds every host and MAC.
 * 5. The snapshot of that table: size and msgpackr encode/decode time.
 *
 * As root it runs inside a network namespace of its own (etcd on that namespace's loopback, the router's TAP and
 * bridge there too), so nothing touches this machine's interfaces. The records' addresses are from the lab's
 * 198.18.0.0/15: that namespace has no route to them, so the router's floods (IPv6 from the TAP, say) fail there.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Etcd3 } from 'etcd3';
import { decodeSnapshot, encodeSnapshot, type HostRecord, type NetworkDefinition } from '../src/control/index.js';
import { EtcdRegistry, REGISTRY_PREFIX } from '../src/control/etcd-registry.js';
import { EtcdServer, etcdSkipReason } from '../src/lab/etcd.js';

const { values: opt } = parseArgs({
  options: {
    hosts: { type: 'string', default: '1000' },
    rate: { type: 'string', default: '250' },
    burst: { type: 'string', default: '100' },
    macs: { type: 'string', default: '10' },
  },
});
const MACS = Number(opt.macs);
const INSIDE = 'VXR_REGISTRY_SCALE_NS';
const HOSTS = Number(opt.hosts);
const RATE = Number(opt.rate);
const BURST = Number(opt.burst);

const ipOf = (i: number): string => `198.18.${(i >> 8) & 0xff}.${i & 0xff}`; // i < 65536
const record = (i: number): HostRecord => ({
  version: 1, hostId: `sim-${i}`, underlay: [ipOf(i + 1)], port: 4789, networks: ['scale'], mtu: 1450, software: 'registry-scale', startedAt: new Date().toISOString(),
});
const percentile = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
};
const fmt = (xs: number[]): string =>
  `p50 ${percentile(xs, 50).toFixed(1)} ms, p99 ${percentile(xs, 99).toFixed(1)} ms, max ${Math.max(...xs).toFixed(1)} ms (n=${xs.length})`;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const mib = (b: number): string => (b / 1048576).toFixed(1);
const macOf = (host: number, k: number): string => `02:5c:${[host >> 8, host & 0xff, k >> 8, k & 0xff].map((b) => b.toString(16).padStart(2, '0')).join(':')}`;

/** The RSS of a process (kB in /proc → bytes). */
function rssOf(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m?.[1] ?? 0) * 1024;
}

/**
 * A real router joined to `network` (bridge and underlay address of its own in this namespace): resolves with its
 * RSS once `ready(status)` holds (or after 60 s), then stops it.
 */
async function routerRss(endpoint: string, network: string, dir: string, ready: (fdbEtcd: number, hosts: number) => boolean): Promise<{ rss: number; fdbEtcd: number; hosts: number; ms: number }> {
  const cli = fileURLToPath(new URL('../dist/cli.js', import.meta.url));
  const sock = join(dir, `${network}.sock`);
  const t0 = performance.now();
  const child = spawn(process.execPath, [cli, 'up', '--local', '198.51.100.1', '--bridge', 'br-scale', '--etcd', endpoint, '--network', network, '--socket', sock, '--state-dir', dir, '--metrics', 'off', '--log-level', 'warn'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  try {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    const end = Date.now() + 60_000;
    let fdbEtcd = 0;
    let hosts = 0;
    while (Date.now() < end) {
      await sleep(500);
      if (!out.includes('vxlan-router: ready')) continue;
      const st = JSON.parse(execFileSync(process.execPath, [cli, 'status', '--socket', sock, '--json'], { encoding: 'utf8' })) as { controlPlane: { hosts: number | null } };
      const fdb = JSON.parse(execFileSync(process.execPath, [cli, 'fdb', '--socket', sock, '--json'], { encoding: 'utf8', maxBuffer: 64 << 20 })) as { origin: string }[];
      fdbEtcd = fdb.filter((e) => e.origin === 'etcd').length;
      hosts = st.controlPlane.hosts ?? 0;
      if (ready(fdbEtcd, hosts)) break;
    }
    const ms = performance.now() - t0;
    await sleep(1000); // let the snapshot write and the first advertisement settle
    return { rss: rssOf(child.pid!), fdbEtcd, hosts, ms };
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => child.on('close', r));
  }
}

/** As root: run this benchmark again inside a network namespace of its own, then remove it. */
function inNamespace(): boolean {
  if (process.getuid?.() !== 0 || process.env[INSIDE] !== undefined) return false;
  const ns = `vxr-scale-${process.pid}`;
  execFileSync('ip', ['netns', 'add', ns]);
  try {
    execFileSync('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    const r = spawnSync('ip', ['netns', 'exec', ns, process.execPath, ...process.execArgv, process.argv[1]!, ...process.argv.slice(2)], { stdio: 'inherit', env: { ...process.env, [INSIDE]: ns } });
    process.exitCode = r.status ?? 1;
  } finally {
    execFileSync('ip', ['netns', 'del', ns]);
  }
  return true;
}

/** The memory probe: a process of its own that joins with a registry and reports its memory once it holds `hosts`. */
const PROBE = `
  const { EtcdRegistry } = await import(process.argv[1]);
  const [endpoint, network, want] = [process.argv[2], JSON.parse(process.argv[3]), Number(process.argv[4])];
  const mem = () => { globalThis.gc(); const m = process.memoryUsage(); return { rss: m.rss, heapUsed: m.heapUsed }; };
  const r = new EtcdRegistry({ endpoints: [endpoint] });
  const before = mem();
  const t0 = performance.now();
  await r.join(network, { version: 1, hostId: 'probe', underlay: ['198.51.100.1'], port: 4789, networks: [network.name], mtu: 1450, software: 'probe', startedAt: new Date().toISOString() });
  const listMs = performance.now() - t0;
  const peers = r.table().vnis[0].peers.length;
  await new Promise((res) => setTimeout(res, 500));
  console.log(JSON.stringify({ before, after: mem(), peers, want, listMs }));
  await r.close();
`;

async function main(): Promise<void> {
  const skip = etcdSkipReason();
  if (skip !== undefined) throw new Error(skip);
  const etcd = await EtcdServer.start();
  const client = new Etcd3({ hosts: etcd.endpoint });
  const observer = new EtcdRegistry({ endpoints: [etcd.endpoint] });
  try {
    const network: NetworkDefinition = { version: 1, name: 'scale', vni: 4242, subnet: '198.18.0.0/15', port: 4789 };
    await observer.createNetwork(network);
    const sentAt = new Map<string, number>();
    const ackedAt = new Map<string, number>();
    const fromSend: number[] = [];
    let beforeAck = 0;
    const seen = new Set<string>();
    let tableEvents = 0;
    observer.on('table', (t) => {
      tableEvents++;
      const now = performance.now();
      for (const ip of t.vnis[0]?.peers ?? []) {
        if (seen.has(ip)) continue;
        seen.add(ip);
        const s = sentAt.get(ip);
        if (s !== undefined) fromSend.push(now - s);
        if (!ackedAt.has(ip)) beforeAck++;
      }
    });
    await observer.join(network, { ...record(65000), hostId: 'observer', underlay: ['198.51.100.1'] });

    const register = async (i: number): Promise<void> => {
      const r = record(i);
      const lease = client.lease(120, { autoKeepAlive: false });
      const ip = r.underlay[0]!;
      sentAt.set(ip, performance.now());
      await lease.put(`${REGISTRY_PREFIX}/networks/${network.name}/hosts/${r.hostId}`).value(JSON.stringify(r)).exec();
      ackedAt.set(ip, performance.now());
    };
    const waitSeen = async (n: number): Promise<void> => {
      const end = Date.now() + 60_000;
      while (seen.size < n) {
        if (Date.now() > end) throw new Error(`only ${seen.size} of ${n} hosts seen`);
        await sleep(10);
      }
    };

    // Phase 1: paced.
    const paced = Math.floor(HOSTS / 2);
    const t1 = performance.now();
    const inflight: Promise<void>[] = [];
    for (let i = 0; i < paced; i++) {
      const due = t1 + (i * 1000) / RATE;
      const wait = due - performance.now();
      if (wait > 0) await sleep(wait);
      inflight.push(register(i));
    }
    await Promise.all(inflight);
    await waitSeen(paced);
    const pacedSend = fromSend.splice(0);
    const pacedBeforeAck = beforeAck;
    beforeAck = 0;

    // Phase 2: the rest as a burst, BURST in flight at a time.
    const t2 = performance.now();
    let next = paced;
    await Promise.all(
      Array.from({ length: BURST }, async () => {
        while (next < HOSTS) await register(next++);
      }),
    );
    const burstPutMs = performance.now() - t2;
    await waitSeen(HOSTS);
    const burstTotalMs = performance.now() - t2;

    console.log(`registry-scale: ${HOSTS} simulated hosts, etcd ${etcd.endpoint} (etcd-server on loopback, this machine)`);
    console.log(`join latency, paced at ${RATE}/s (${paced} hosts): put sent → in the observer's table: ${fmt(pacedSend)}; ${pacedBeforeAck} were in the table before their put was acknowledged`);
    console.log(`join latency, burst of ${HOSTS - paced} (${BURST} in flight): put sent → in the table: ${fmt(fromSend)}; ${beforeAck} before their ack`);
    console.log(`burst: all puts acknowledged in ${burstPutMs.toFixed(0)} ms, all in the table after ${burstTotalMs.toFixed(0)} ms; ${tableEvents} table events`);
    const cp = observer.controlPlane();
    console.log(`observer control plane: ${cp.state}, revision ${cp.revision}, ${cp.hosts} hosts`);

    // Each host advertises its MACs (one record a host, as a router writes it under its lease).
    const t3 = performance.now();
    let nextMac = 0;
    await Promise.all(
      Array.from({ length: BURST }, async () => {
        while (nextMac < HOSTS) {
          const i = nextMac++;
          const macs = Array.from({ length: MACS }, (_, k) => ({ vni: network.vni, mac: macOf(i, k), ips: [`198.18.${200 + (k >> 8)}.${k & 0xff}`] }));
          const value = JSON.stringify({ version: 1, hostId: `sim-${i}`, vtep: ipOf(i + 1), macs });
          await client.put(`${REGISTRY_PREFIX}/networks/${network.name}/macs/sim-${i}`).value(value).exec();
        }
      }),
    );
    const macCount = (): number => observer.table().vnis[0]?.macs.length ?? 0;
    while (macCount() < HOSTS * MACS && performance.now() - t3 < 60_000) await sleep(20);
    console.log(`MACs: ${HOSTS} × ${MACS} advertised in ${(performance.now() - t3).toFixed(0)} ms; the observer's table holds ${macCount()} remote MACs`);

    // Memory of a registry holding all of them, in a process of its own.
    const mod = fileURLToPath(new URL('../dist/control/index.js', import.meta.url));
    const probe = spawn(process.execPath, ['--expose-gc', '--input-type=module', '-e', PROBE, mod, etcd.endpoint, JSON.stringify(network), String(HOSTS)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    probe.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    await new Promise((r) => probe.on('close', r));
    const m = JSON.parse(out) as { before: { rss: number; heapUsed: number }; after: { rss: number; heapUsed: number }; peers: number; listMs: number };
    console.log(
      `memory (registry + table, own process, after GC): ${m.peers} peers; RSS ${mib(m.before.rss)} MiB before joining → ${mib(m.after.rss)} MiB ` +
        `(+${mib(m.after.rss - m.before.rss)}); heap ${mib(m.before.heapUsed)} → ${mib(m.after.heapUsed)} MiB; ` +
        `join (register + list ${m.peers + 1} hosts and ${HOSTS} MAC records + watch) ${m.listMs.toFixed(0)} ms.`,
    );

    // A real router's RSS, empty and then with every host and MAC in its data path (root only: TAP and bridge).
    if (process.env[INSIDE] !== undefined) {
      execFileSync('ip', ['link', 'add', 'br-scale', 'type', 'bridge']);
      execFileSync('ip', ['link', 'set', 'br-scale', 'up']);
      execFileSync('ip', ['link', 'add', 'u-scale', 'type', 'veth', 'peer', 'name', 'u-scale-peer']);
      execFileSync('ip', ['addr', 'add', '198.51.100.1/24', 'dev', 'u-scale']);
      execFileSync('ip', ['link', 'set', 'u-scale', 'up']);
      execFileSync('ip', ['link', 'set', 'u-scale-peer', 'up']);
      await observer.createNetwork({ ...network, name: 'empty', vni: 4243 });
      const dir = mkdtempSync(join(tmpdir(), 'vxr-scale-'));
      try {
        const empty = await routerRss(etcd.endpoint, 'empty', dir, (_, hosts) => hosts >= 1);
        const full = await routerRss(etcd.endpoint, network.name, dir, (fdbEtcd, hosts) => hosts >= HOSTS + 1 && fdbEtcd >= HOSTS * MACS);
        console.log(
          `router RSS (vxlan-router up, native engine): ${mib(empty.rss)} MiB joined to an empty network; ${mib(full.rss)} MiB ` +
            `with ${full.hosts} registry hosts and ${full.fdbEtcd} remote MACs in its table (+${mib(full.rss - empty.rss)} MiB; start to full table ${full.ms.toFixed(0)} ms)`,
        );
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    } else {
      console.log('router RSS: skipped (needs root, for the TAP and bridge in a namespace of its own)');
    }

    // The snapshot of that table.
    const snap = { savedAt: new Date().toISOString(), hostId: 'observer', revision: cp.revision, network, table: observer.table() };
    let t = performance.now();
    let bytes = encodeSnapshot(snap);
    for (let i = 0; i < 99; i++) bytes = encodeSnapshot(snap);
    const encUs = ((performance.now() - t) / 100) * 1000;
    t = performance.now();
    for (let i = 0; i < 100; i++) decodeSnapshot(bytes);
    const decUs = ((performance.now() - t) / 100) * 1000;
    console.log(`snapshot of ${HOSTS} peers: ${bytes.length} bytes, encode ${encUs.toFixed(0)} µs, decode + validate ${decUs.toFixed(0)} µs`);
  } finally {
    await observer.close();
    client.close();
    await etcd.destroy();
  }
}

if (!inNamespace()) await main();
