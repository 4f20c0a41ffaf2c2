/**
 * `npm run demo`: a two-host overlay in network namespaces, built, exercised and removed in one go.
 *
 *   [c1 198.18.0.1] ── br0 ── vxlan-router [h1 198.51.100.1] ══ underlay ══ [h2 198.51.100.2] vxlan-router ── br0 ── [c2 198.18.0.2]
 *
 * Exits 0 only when both pings had no loss, the TCP transfer arrived intact and iperf3 moved data. Options:
 *   --engine native|js   the data path (default native)
 *   --quick              20 MB and 1 s of iperf3 instead of 100 MB and 5 s
 *   --keep               leave the lab up (routers log to files) and print how to enter it and tear it down
 *   --down [<id>]        tear down a kept lab (all kept labs without an id)
 */
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DROP_REASONS } from '../dataplane/engine.js';
import { Lab, labSkipReason, removeLab, twoHosts, VNI, type EngineName, type LabRecord, type RouterOutput, type RouterProcess } from './netns.js';
import { hashedTransfer, iperf3 } from './traffic.js';

/** Where a kept lab is recorded (namespaces, router PIDs) and its routers log. */
const STATE_DIR = '/run/vxlan-router-demo';
const LAB_ID = /^\d+-\d+$/;

const out = (s: string): boolean => process.stdout.write(`${s}\n`);

async function step<T>(title: string, work: () => Promise<T>, detail?: (r: T) => string): Promise<T> {
  const started = Date.now();
  const tty = process.stdout.isTTY === true;
  if (tty) process.stdout.write(`  … ${title}`); // replaced in place by the result line
  const done = (mark: string, text: string): boolean => process.stdout.write(`${tty ? '\r\x1b[K' : ''}  ${mark} ${text}\n`);
  try {
    const r = await work();
    done('✓', `${title}${detail ? `: ${detail(r)}` : ''} (${Date.now() - started} ms)`);
    return r;
  } catch (err) {
    done('✗', title);
    throw err;
  }
}

/** Non-zero counters of one router, traffic apart from drops (by reason). */
function describeCounters(c: Record<string, number>): [traffic: string, drops: string] {
  const drops = new Set<string>(DROP_REASONS);
  const nonZero = Object.entries(c).filter(([, v]) => v > 0);
  const list = (e: [string, number][]): string => e.map(([k, v]) => `${k}=${v}`).join(' ');
  const dropped = nonZero.filter(([k]) => drops.has(k));
  return [list(nonZero.filter(([k]) => !drops.has(k))), dropped.length === 0 ? 'none' : list(dropped)];
}

async function run(engine: EngineName, quick: boolean, keep: boolean): Promise<number> {
  out(`vxlan-router demo: two hosts, VNI ${VNI}, ${engine} engine, static peers\n`);
  out('   [c1 198.18.0.1] ─ br0 ─ router [h1 198.51.100.1] ══ underlay ══ [h2 198.51.100.2] router ─ br0 ─ [c2 198.18.0.2]\n');
  const lab = new Lab();
  const logDir = join(STATE_DIR, lab.id);
  if (keep) mkdirSync(logDir, { recursive: true });
  const output = (host: string): RouterOutput | undefined =>
    keep ? { stdout: join(logDir, `${host}.out`), stderr: join(logDir, `${host}.err`) } : undefined;
  const interrupted = (): void => void lab.destroy().then(() => process.exit(130));
  process.once('SIGINT', interrupted).once('SIGTERM', interrupted);

  const failures: string[] = [];
  const routers: RouterProcess[] = [];
  try {
    const { h1, h2, c1, c2 } = await step('two hosts on an underlay switch, a container (MTU 1450) behind each bridge', () => twoHosts(lab));
    await step('vxlan-router up on h1 and h2', async () => {
      routers.push(await lab.startRouter(h1, { peers: [h2.underlayIp], engine, output: output('h1') }));
      routers.push(await lab.startRouter(h2, { peers: [h1.underlayIp], engine, output: output('h2') }));
    });
    for (const [a, b] of [[c1, c2], [c2, c1]] as const) {
      const p = await step(`ping ${a.name} → ${b.name} (${b.ip})`, () => lab.ping(a.ns, b.ip, 5), (r) => `${r.loss}% loss, avg ${r.avgMs} ms`);
      if (p.loss !== 0) failures.push(`ping ${a.name} → ${b.name} lost ${p.loss}%`);
    }
    const mb = quick ? 20 : 100;
    const x = await step(`TCP transfer of ${mb} MB c1 → c2, SHA-256 checked`, () => hashedTransfer(lab, c1, c2, mb), (r) =>
      `${r.receivedSha256 === r.sentSha256 ? 'intact' : 'CORRUPTED'}, ${r.mbitPerS.toFixed(0)} Mbit/s`);
    if (x.receivedSha256 !== x.sentSha256) failures.push('the transfer arrived corrupted or incomplete');
    const seconds = quick ? 1 : 5;
    const perf = await step(`iperf3 TCP c1 → c2, ${seconds} s`, () => iperf3(lab, c1, c2, { seconds }), (r) => `${r.gbitPerS.toFixed(2)} Gbit/s`);
    if (!(perf.gbitPerS > 0)) failures.push('iperf3 moved no data');
    out('\n  router counters (non-zero):');
    for (const [i, r] of routers.entries()) {
      const [traffic, drops] = describeCounters(await r.counters());
      out(`    h${i + 1}: ${traffic}\n        drops: ${drops}`);
    }
  } catch (err) {
    failures.push((err as Error).message);
  }
  if (keep) keepUp(lab, routers);
  else await step('tear down (namespaces, routers)', () => lab.destroy());
  for (const f of failures) out(`\ndemo failed: ${f}`);
  out(failures.length === 0 ? '\ndemo: every check passed' : '\ndemo: FAILED');
  return failures.length === 0 ? 0 : 1;
}

/** Records the lab for `--down`, lets the routers run on without this process and says how to use it. */
function keepUp(lab: Lab, routers: readonly RouterProcess[]): void {
  writeFileSync(join(STATE_DIR, `${lab.id}.json`), JSON.stringify(lab.record(), null, 2));
  for (const r of routers) r.release();
  const ns = (name: string): string => lab.nsName(name);
  out(`\n  lab ${lab.id} kept up:`);
  out(`    ip netns exec ${ns('c1')} bash            # a shell in c1 (198.18.0.1); try: ping 198.18.0.2`);
  out(`    ip netns exec ${ns('c2')} bash            # a shell in c2 (198.18.0.2)`);
  for (const [i, r] of routers.entries()) out(`    kill -USR1 ${r.pid}; cat ${r.output?.stdout ?? ''}   # h${i + 1}'s router counters`);
  out(`    node dist/lab/demo.js --down ${lab.id}      # tear it down`);
}

/** Tears down one kept lab (or all of them): its routers by recorded PID, whatever runs in its namespaces, the namespaces. */
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
    let record: LabRecord | undefined;
    try {
      record = JSON.parse(readFileSync(state, 'utf8')) as LabRecord;
    } catch {
      record = undefined; // no record: still remove its namespaces and what runs in them
    }
    const removed = await step(`tear down lab ${labId}`, () => removeLab(labId, record), (ns) => `${ns.length} namespaces removed`);
    rmSync(state, { force: true });
    rmSync(join(STATE_DIR, labId), { recursive: true, force: true });
    if (removed.length === 0 && record === undefined) out(`    (nothing was left of lab ${labId})`);
  }
  return 0;
}

async function main(argv: readonly string[]): Promise<number> {
  const skip = labSkipReason();
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
  return run(engine, argv.includes('--quick'), argv.includes('--keep'));
}

process.exitCode = await main(process.argv.slice(2));
