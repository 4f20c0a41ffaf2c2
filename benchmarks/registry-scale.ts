/**
 * Registry at scale, against a real etcd on loopback (not part of CI):
 *
 *   npx tsx benchmarks/registry-scale.ts [--hosts 1000] [--rate 250] [--burst 100]
 *
 * 1. Join latency: N simulated hosts (one process, one etcd client, one lease each, as a router registers) put their
 *    host records; an observing EtcdRegistry (list + watch, as in a router) records when each host's address first
 *    appears in its table. Reported: p50/p99/max from the put being sent to the entry in the table, in two phases:
 *    paced (--rate registrations per second: the latency of the pipeline itself) and a burst (--burst in flight at
 *    once: latency under queuing).
 * 2. Memory: a separate process holding an EtcdRegistry (+ its table) with all N hosts, its RSS and heap before
 *    joining and after the table holds everything (after GC). MAC records do not exist yet: hosts only.
 * 3. The snapshot of that table: size and msgpackr encode/decode time.
 *
 * Addresses in the records are from the lab's 198.18.0.0/15 (strings only: no packet is sent anywhere).
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Etcd3 } from 'etcd3';
import { decodeSnapshot, encodeSnapshot, EtcdRegistry, REGISTRY_PREFIX, type HostRecord, type NetworkConfig } from '../src/control/index.js';
import { EtcdServer, etcdSkipReason } from '../src/lab/etcd.js';

const { values: opt } = parseArgs({
  options: { hosts: { type: 'string', default: '1000' }, rate: { type: 'string', default: '250' }, burst: { type: 'string', default: '100' } },
});
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
    const network: NetworkConfig = { version: 1, name: 'scale', vni: 4242, subnet: '198.18.0.0/15', port: 4789 };
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

    // Memory of a registry holding all of them, in a process of its own.
    const mod = fileURLToPath(new URL('../dist/control/index.js', import.meta.url));
    const probe = spawn(process.execPath, ['--expose-gc', '--input-type=module', '-e', PROBE, mod, etcd.endpoint, JSON.stringify(network), String(HOSTS)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    probe.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    await new Promise((r) => probe.on('close', r));
    const m = JSON.parse(out) as { before: { rss: number; heapUsed: number }; after: { rss: number; heapUsed: number }; peers: number; listMs: number };
    const mib = (b: number): string => (b / 1048576).toFixed(1);
    console.log(
      `memory (registry + table, own process, after GC): ${m.peers} peers; RSS ${mib(m.before.rss)} MiB before joining → ${mib(m.after.rss)} MiB ` +
        `(+${mib(m.after.rss - m.before.rss)}); heap ${mib(m.before.heapUsed)} → ${mib(m.after.heapUsed)} MiB; ` +
        `join (register + list ${m.peers + 1} + watch) ${m.listMs.toFixed(0)} ms. Hosts only: MAC records do not exist yet.`,
    );

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

await main();
