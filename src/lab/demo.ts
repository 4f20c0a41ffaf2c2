/**
 * `npm run demo`: a two-host overlay in network namespaces, built, exercised and removed in one go.
 *
 *   [c1 198.18.0.1] ── br0 ── vxlan-router [h1 198.51.100.1] ══ underlay ══ [h2 198.51.100.2] vxlan-router ── br0 ── [c2 198.18.0.2]
 *
 * Exits 0 only when both pings had no loss and the TCP transfer arrived intact. Options: --engine native|js,
 * --quick (shorter transfer).
 */
import { Lab, labSkipReason, twoHosts, VNI } from './netns.js';
import { hashedTransfer, iperf3 } from './traffic.js';

const args = process.argv.slice(2);
const engine = args.includes('--engine') && args[args.indexOf('--engine') + 1] === 'js' ? 'js' : 'native';
const quick = args.includes('--quick');

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

async function main(): Promise<number> {
  const skip = labSkipReason();
  if (skip !== undefined) {
    out(`demo: ${skip}`);
    return 1;
  }
  out(`vxlan-router demo: two hosts, VNI ${VNI}, ${engine} engine, static peers\n`);
  out('   [c1 198.18.0.1] ─ br0 ─ router [h1 198.51.100.1] ══ underlay ══ [h2 198.51.100.2] router ─ br0 ─ [c2 198.18.0.2]\n');
  const lab = new Lab();
  const cleanup = (): void => void lab.destroy().then(() => process.exit(130));
  process.once('SIGINT', cleanup).once('SIGTERM', cleanup);
  let ok = true;
  try {
    const { h1, h2, c1, c2 } = await step('two hosts on an underlay switch, a container (MTU 1450) behind each bridge', () => twoHosts(lab));
    const routers = await step(`vxlan-router up on h1 and h2`, async () => [
      await lab.startRouter(h1, { peers: [h2.underlayIp], engine }),
      await lab.startRouter(h2, { peers: [h1.underlayIp], engine }),
    ]);
    for (const [a, b] of [[c1, c2], [c2, c1]] as const) {
      const p = await step(`ping ${a.name} → ${b.name} (${b.ip})`, () => lab.ping(a.ns, b.ip, 5), (r) => `${r.loss}% loss, avg ${r.avgMs} ms`);
      ok &&= p.loss === 0;
    }
    const mb = quick ? 20 : 100;
    const x = await step(`TCP transfer of ${mb} MB c1 → c2, SHA-256 checked`, () => hashedTransfer(lab, c1, c2, mb), (r) =>
      `${r.receivedSha256 === r.sentSha256 ? 'intact' : 'CORRUPTED'}, ${r.mbitPerS.toFixed(0)} Mbit/s`);
    ok &&= x.receivedSha256 === x.sentSha256;
    await step(`iperf3 c1 → c2, ${quick ? 1 : 5} s`, () => iperf3(lab, c1, c2, { seconds: quick ? 1 : 5 }), (r) => `${r.gbitPerS.toFixed(2)} Gbit/s`);
    out('\n  router counters (non-zero):');
    for (const [i, r] of routers.entries()) {
      const c = await r.counters();
      out(`    h${i + 1}: ${Object.entries(c).filter(([, v]) => v > 0).map(([k, v]) => `${k}=${v}`).join(' ')}`);
    }
  } catch (err) {
    out(`\ndemo failed: ${(err as Error).message}`);
    ok = false;
  } finally {
    await step('tear down (namespaces, routers)', () => lab.destroy());
  }
  out(ok ? '\ndemo: every check passed' : '\ndemo: FAILED');
  return ok ? 0 : 1;
}

process.exitCode = await main();
