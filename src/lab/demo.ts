/**
 * `npm run demo`: a three-host overlay joined through a real etcd, in network namespaces, built, exercised and
 * removed in one go.
 *
 *                         etcd 198.51.100.254 (on the underlay switch)
 *   [c1 c2] ─ br0 ─ router [h1 .1] ══╗
 *   [c3 c4] ─ br0 ─ router [h2 .2] ══╬══ switch        containers 198.18.0.1-6, VNI 42 (network "default" in etcd)
 *   [c5 c6] ─ br0 ─ router [h3 .3] ══╝
 *
 * Shows the registry (hosts), a ping matrix across all six containers, the MACs each router learned, one iperf3
 * run between hosts and the drop counters. Exits 0 only when every container reached every other, the TCP transfer
 * arrived intact and iperf3 moved data. Options:
 *   --engine native|js   the data path (default native)
 *   --quick              20 MB and 1 s of iperf3 instead of 100 MB and 5 s
 *   --keep               leave the lab up (routers and etcd log to files) and print how to enter it and tear it down
 *   --down [<id>]        tear down a kept lab (all kept labs without an id)
 *   --docker             the story with Docker's own commands instead: a dockerd per host, `up --docker --dns`,
 *                        containers pinging each other by name across hosts, -p (demo-docker.ts)
 */
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DROP_REASONS } from '../dataplane/engine.js';
import { etcdSkipReason, startSwitchEtcd, type EtcdServer } from './etcd.js';
import { CLI_PATH, Lab, labSkipReason, VNI, type Container, type Host } from './lab.js';
import type { EngineName, RouterOutput, RouterProcess } from './router-process.js';
import { removeLab, type LabRecord } from './teardown.js';
import { hashedTransfer, iperf3 } from './transfers.js';
import { waitFor } from './wait.js';
import { out, step } from './demo-steps.js';
import { runDockerDemo } from './demo-docker.js';

/** Where a kept lab is recorded (namespaces, router PIDs, etcd's data dir) and its routers log. */
const STATE_DIR = '/run/vxlan-router-demo';
const LAB_ID = /^\d+-\d+$/;
const ETCD_IP = '198.51.100.254';
/** Non-zero counters of one router, traffic apart from drops (by reason). */
function describeCounters(c: Record<string, number>): [traffic: string, drops: string] {
  const drops = new Set<string>(DROP_REASONS);
  const nonZero = Object.entries(c).filter(([, v]) => v > 0);
  const list = (e: [string, number][]): string => e.map(([k, v]) => `${k}=${v}`).join(' ');
  const dropped = nonZero.filter(([k]) => drops.has(k));
  return [list(nonZero.filter(([k]) => !drops.has(k))), dropped.length === 0 ? 'none' : list(dropped)];
}

/** Runs the CLI inside a host and parses its --json answer. */
async function cliJson<T>(lab: Lab, host: Host, args: string[]): Promise<T> {
  return JSON.parse((await lab.exec(host.ns, process.execPath, [CLI_PATH, ...args, '--json'])).stdout) as T;
}

/** Every container pings every other once (in parallel); returns the pairs that failed. */
async function pingMatrix(lab: Lab, cs: readonly Container[]): Promise<{ table: string[]; failed: string[] }> {
  const pairs = cs.flatMap((a) => cs.filter((b) => b !== a).map((b) => [a, b] as const));
  const results = await Promise.all(pairs.map(async ([a, b]) => [a, b, (await lab.ping(a.ns, b.ip, 2)).loss === 0] as const));
  const ok = new Map(results.map(([a, b, good]) => [`${a.name}>${b.name}`, good]));
  const table = [`      ${cs.map((c) => c.name.padEnd(4)).join('')}`];
  for (const a of cs) table.push(`    ${a.name.padEnd(4)}${cs.map((b) => (a === b ? '·' : ok.get(`${a.name}>${b.name}`) ? '✓' : '✗').padEnd(4)).join('')}`);
  return { table, failed: results.filter(([, , good]) => !good).map(([a, b]) => `${a.name} → ${b.name}`) };
}

async function run(engine: EngineName, quick: boolean, keep: boolean): Promise<number> {
  out(`vxlan-router demo: three hosts joined through etcd, VNI ${VNI}, ${engine} engine\n`);
  out(`    etcd ${ETCD_IP} on the underlay switch; h1 198.51.100.1, h2 .2, h3 .3; two containers behind each bridge\n`);
  const lab = new Lab();
  const logDir = join(STATE_DIR, lab.id);
  if (keep) mkdirSync(logDir, { recursive: true });
  const output = (host: string): RouterOutput | undefined =>
    keep ? { stdout: join(logDir, `${host}.out`), stderr: join(logDir, `${host}.err`) } : undefined;
  let etcd: EtcdServer | undefined;
  const interrupted = (): void => void lab.destroy().then(() => etcd?.destroy()).then(() => process.exit(130));
  process.once('SIGINT', interrupted).once('SIGTERM', interrupted);

  const failures: string[] = [];
  const routers: RouterProcess[] = [];
  try {
    const hosts: Host[] = [];
    const cs: Container[] = [];
    await step('three hosts on an underlay switch, two containers (MTU 1450) behind each bridge', async () => {
      for (let i = 1; i <= 3; i++) {
        const h = await lab.addHost(`h${i}`, `198.51.100.${i}`);
        hosts.push(h);
        for (const k of [2 * i - 1, 2 * i]) cs.push(await lab.addContainer(h, `c${k}`, `198.18.0.${k}`));
      }
    });
    etcd = await step(`etcd (Debian's etcd-server) at ${ETCD_IP}`, () => startSwitchEtcd(lab, ETCD_IP, keep), (e) => e.endpoint);
    const endpoint = etcd.endpoint;
    await step('network "default" defined once in etcd', async () =>
      (await lab.exec(hosts[0]!.ns, process.execPath, [CLI_PATH, 'network', 'create', 'default', '--vni', String(VNI), '--subnet', '198.18.0.0/15', '--etcd', endpoint])).stdout.trim());
    await step('vxlan-router up on h1, h2, h3 (--etcd only: no peer lists)', async () => {
      for (const h of hosts) routers.push(await lab.startRouter(h, { peers: [], engine, vni: null, args: ['--etcd', endpoint], output: output(h.name) }));
      await waitFor(async () => (await Promise.all(routers.map((r) => r.peers()))).every((p) => p[VNI]?.length === 2), { timeoutMs: 10_000, what: 'every router to see the other two' });
    });

    out('\n  registry (etcd, /vxlan-router/v1/networks/default/hosts/):');
    const records = (await lab.exec(hosts[0]!.ns, 'etcdctl', ['--endpoints', endpoint, 'get', '--prefix', '--print-value-only', '/vxlan-router/v1/networks/default/hosts/'])).stdout;
    for (const line of records.split('\n').filter((l) => l.startsWith('{'))) {
      const r = JSON.parse(line) as { hostId: string; underlay: string[]; mtu: number; software: string };
      out(`    ${r.hostId.padEnd(28)} underlay ${r.underlay.join(',').padEnd(14)} mtu ${r.mtu}  ${r.software}`);
    }
    out('');

    const matrix = await step(`ping matrix: each of ${cs.length} containers to every other`, () => pingMatrix(lab, cs), (m) =>
      m.failed.length === 0 ? `${cs.length * (cs.length - 1)} of ${cs.length * (cs.length - 1)} reached` : `${m.failed.length} failed`);
    for (const l of matrix.table) out(l);
    for (const f of matrix.failed) failures.push(`ping ${f} failed`);

    out('\n  MACs each router knows (vxlan-router fdb):');
    for (const h of hosts) {
      const rows = await cliJson<{ mac: string; vtep: string; origin: string }[]>(lab, h, ['fdb', '--socket', lab.controlSocket(h)]);
      const owner = (mac: string): string => cs.find((c) => c.mac === mac)?.name ?? '?';
      // One line per MAC: advertised through etcd, or (before the advertisement arrived) learned from traffic.
      const byMac = new Map<string, { vtep: string; origin: string }>();
      for (const r of rows) if (!byMac.has(r.mac) || r.origin === 'etcd') byMac.set(r.mac, r);
      const list = [...byMac].sort(([a], [b]) => owner(a).localeCompare(owner(b)));
      out(`    ${h.name}: ${list.map(([mac, r]) => `${owner(mac)} ${mac} → ${r.vtep} (${r.origin})`).join(', ') || '(none)'}`);
    }
    out('');

    const [src, dst] = [cs[0]!, cs[4]!];
    const mb = quick ? 20 : 100;
    const x = await step(`TCP transfer of ${mb} MB ${src.name} (h1) → ${dst.name} (h3), SHA-256 checked`, () => hashedTransfer(lab, src, dst, mb), (r) =>
      `${r.receivedSha256 === r.sentSha256 ? 'intact' : 'CORRUPTED'}, ${r.mbitPerS.toFixed(0)} Mbit/s`);
    if (x.receivedSha256 !== x.sentSha256) failures.push('the transfer arrived corrupted or incomplete');
    const seconds = quick ? 1 : 5;
    const perf = await step(`iperf3 TCP ${src.name} (h1) → ${dst.name} (h3), ${seconds} s`, () => iperf3(lab, src, dst, { seconds }), (r) => `${r.gbitPerS.toFixed(2)} Gbit/s`);
    if (!(perf.gbitPerS > 0)) failures.push('iperf3 moved no data');
    out('\n  router counters (non-zero):');
    for (const [i, r] of routers.entries()) {
      const [traffic, drops] = describeCounters(await r.counters());
      out(`    h${i + 1}: ${traffic}\n        drops: ${drops}`);
    }
  } catch (err) {
    failures.push((err as Error).message);
  }
  if (keep) keepUp(lab, routers, etcd);
  else
    await step('tear down (routers, etcd and its data, namespaces)', async () => {
      await lab.destroy();
      await etcd?.destroy();
    });
  for (const f of failures) out(`\ndemo failed: ${f}`);
  out(failures.length === 0 ? '\ndemo: every check passed' : '\ndemo: FAILED');
  return failures.length === 0 ? 0 : 1;
}

/** What `--down` finds of a kept lab: the lab's record, and the data dir of its etcd (which runs in the switch). */
interface KeptLab extends LabRecord {
  readonly etcdDataDir?: string;
}

/** Records the lab for `--down`, lets the routers run on without this process and says how to use it. */
function keepUp(lab: Lab, routers: readonly RouterProcess[], etcd: EtcdServer | undefined): void {
  const state: KeptLab = { ...lab.record(), ...(etcd ? { etcdDataDir: etcd.dataDir } : {}) };
  writeFileSync(join(STATE_DIR, `${lab.id}.json`), JSON.stringify(state, null, 2));
  for (const r of routers) r.release();
  const ns = (name: string): string => lab.nsName(name);
  out(`\n  lab ${lab.id} kept up:`);
  out(`    ip netns exec ${ns('c1')} bash            # a shell in c1 (198.18.0.1); try: ping 198.18.0.6`);
  out(`    ip netns exec ${ns('c6')} bash            # a shell in c6 (198.18.0.6), behind h3`);
  for (const [i, r] of routers.entries()) out(`    node dist/cli.js status --socket ${lab.controlSocket({ name: `h${i + 1}` })}   # h${i + 1}'s router (pid ${r.pid})`);
  out(`    node dist/lab/demo.js --down ${lab.id}      # tear it down`);
}

/**
 * Tears down one kept lab (or all of them): its routers by recorded PID, whatever runs in its namespaces, the
 * namespaces and the lab's directory (removeLab), then etcd's data, the record and the routers' logs.
 */
async function down(id: string | undefined): Promise<number> {
  if (id !== undefined && !LAB_ID.test(id)) {
    out(`demo --down: '${id}' is not a lab id (like 12345-0; see ${STATE_DIR})`);
    return 2;
  }
  const kept = readdirSync(STATE_DIR, { withFileTypes: true }).filter((e) => e.isFile() && e.name.endsWith('.json'));
  const ids = id !== undefined ? [id] : kept.map((e) => e.name.slice(0, -'.json'.length)).filter((i) => LAB_ID.test(i));
  if (ids.length === 0) out('demo --down: no kept lab');
  for (const labId of ids) {
    const state = join(STATE_DIR, `${labId}.json`);
    let record: KeptLab | undefined;
    try {
      record = JSON.parse(readFileSync(state, 'utf8')) as KeptLab;
    } catch {
      record = undefined; // no record: still remove its namespaces and what runs in them
    }
    const removed = await step(`tear down lab ${labId}`, () => removeLab(labId, record), (ns) => `${ns.length} namespaces removed`);
    rmSync(state, { force: true });
    rmSync(join(STATE_DIR, labId), { recursive: true, force: true });
    if (record?.etcdDataDir?.startsWith('/tmp/vxr-etcd-') === true) rmSync(record.etcdDataDir, { recursive: true, force: true });
    if (removed.length === 0 && record === undefined) out(`    (nothing was left of lab ${labId})`);
  }
  return 0;
}

async function main(argv: readonly string[]): Promise<number> {
  const skip = labSkipReason() ?? etcdSkipReason();
  if (skip !== undefined) {
    out(`demo: ${skip}`);
    return 1;
  }
  mkdirSync(STATE_DIR, { recursive: true });
  const value = (flag: string): string | undefined => {
    const v = argv.includes(flag) ? argv[argv.indexOf(flag) + 1] : undefined;
    return v?.startsWith('--') === true ? undefined : v;
  };
  if (argv.includes('--down')) return down(value('--down'));
  const engine = value('--engine') ?? 'native';
  if (engine !== 'native' && engine !== 'js') {
    out(`demo: --engine is native or js, not '${engine}'`);
    return 2;
  }
  if (argv.includes('--docker')) {
    if (argv.includes('--keep')) {
      out('demo --docker has no --keep: its dockerds run under the demo and leave with it');
      return 2;
    }
    return runDockerDemo(engine);
  }
  return run(engine, argv.includes('--quick'), argv.includes('--keep'));
}

process.exitCode = await main(process.argv.slice(2));
