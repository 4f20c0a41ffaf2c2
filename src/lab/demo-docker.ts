/**
 * `npm run demo -- --docker`: the multi-host story with Docker's own commands (issue 16), for a person to watch.
 * Two hosts, each with a real dockerd of its own (Debian's docker.io: own data root, socket and private /run, see
 * dockerd.ts) and `vxlan-router up --etcd URL --docker --dns`; the network is defined once in etcd and appears on
 * both dockerds by itself; a container on each host; they ping each other by name across hosts; -p publishes.
 *
 *   [h1] dockerd ── web (httpd, -p 8080:80) ┐                   ┌ client ── dockerd [h2]
 *        router --docker --dns ═════════════╪═ etcd on the switch ═╪═ router --docker --dns
 *
 * Everything it made (containers, dockerds, routers, etcd, namespaces) is removed at the end, on failure and on
 * Ctrl-C; processes are stopped by their PID.
 */
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { out, step as printedStep } from './demo-steps.js';
import { BUSYBOX_IMAGE, dockerdSkipReason, LabDockerd } from './dockerd.js';
import { startSwitchEtcd, type EtcdServer } from './etcd.js';
import { CLI_PATH, Lab, type Host } from './lab.js';
import type { EngineName } from './router-process.js';
import { waitFor } from './wait.js';

const ETCD_IP = '198.51.100.254';
const DNS = '169.254.53.53';
const SUBNET = '198.18.0.0/15';

/** The demo's steps, titles as a user would type them; exits 0 only when every check passed. */
export async function runDockerDemo(engine: EngineName): Promise<number> {
  const skip = dockerdSkipReason();
  if (skip !== undefined) {
    out(`demo --docker: ${skip}`);
    return 1;
  }
  out(`vxlan-router demo --docker: two Docker hosts, one network defined once in etcd, names across hosts (${engine} engine)\n`);
  out(`    etcd ${ETCD_IP} on the underlay switch; h1 198.51.100.1 and h2 .2, each with its own dockerd\n`);
  const lab = new Lab();
  // What is being started, not only what has started: a Ctrl-C while dockerd or etcd starts must stop them too.
  let etcd: Promise<EtcdServer> | undefined;
  const dockerds: Promise<LabDockerd>[] = [];
  let cleaning: Promise<void> | undefined;
  const cleanUp = (): Promise<void> =>
    (cleaning ??= (async () => {
      await Promise.all(dockerds.map((d) => d.then((x) => x.stop()).catch(() => undefined)));
      await lab.destroy().catch(() => undefined);
      await etcd?.then((e) => e.destroy()).catch(() => undefined);
    })());
  let aborted = false;
  const interrupted = (): void => {
    aborted = true;
    if (cleaning === undefined) out('\n  interrupted: removing the containers, dockerds, routers, etcd and namespaces …');
    void cleanUp().then(() => process.exit(130));
  };
  process.on('SIGINT', interrupted).on('SIGTERM', interrupted);

  // After a Ctrl-C no further step starts, and the one running ends as interrupted (the clean-up runs meanwhile).
  const step = <T>(title: string, work: () => Promise<T>, detail?: (r: T) => string): Promise<T> => {
    const check = (): void => {
      if (aborted) throw new Error('interrupted');
    };
    check();
    return printedStep(title, async () => {
      const r = await work().finally(check);
      check();
      return r;
    }, detail);
  };
  const failures: string[] = [];
  try {
    const hosts: Host[] = await step('two hosts on an underlay switch', async () => [await lab.addHost('h1', '198.51.100.1'), await lab.addHost('h2', '198.51.100.2')]);
    const [h1, h2] = hosts as [Host, Host];
    // etcd, the routers and the dockerds run in process groups of their own: a Ctrl-C on the terminal reaches only
    // the demo, which removes the containers while the routers (their plugin) still answer dockerd, then the rest.
    const { endpoint } = await step(`etcd (Debian's etcd-server) at ${ETCD_IP}`, () => (etcd = startSwitchEtcd(lab, ETCD_IP, true)), (e) => e.endpoint);
    await step(`vxlan-router network create blue --vni 42 --subnet ${SUBNET} --etcd ${endpoint}   (once, anywhere)`, async () =>
      (await lab.exec(h1.ns, process.execPath, [CLI_PATH, 'network', 'create', 'blue', '--vni', '42', '--subnet', SUBNET, '--etcd', endpoint])).stdout.trim());
    const [d1, d2] = await step("a dockerd on each host (Debian's docker.io, a busybox image made locally)", () => {
      dockerds.push(LabDockerd.start(h1), LabDockerd.start(h2));
      return Promise.all(dockerds) as Promise<[LabDockerd, LabDockerd]>;
    });
    const sockets = hosts.map((h) => join(lab.stateDir(h), 'run', 'router.sock'));
    sockets.forEach((p) => mkdirSync(dirname(p), { recursive: true }));
    await step(`vxlan-router up --etcd ${endpoint} --docker --dns   (on h1 and h2)`, () =>
      Promise.all(
        hosts.map((h, i) =>
          lab.startRouter(h, {
            peers: [],
            engine,
            vni: null,
            // The lab's own paths (dockerd's socket, the plugin directory it searches, a run dir per host) and its bridge.
            args: ['--etcd', endpoint, '--docker', '--dns', '--network', 'blue:br0', '--docker-socket', [d1, d2][i]!.socket, '--docker-plugin', [d1, d2][i]!.pluginSocket, '--socket', sockets[i]!],
            readyTimeoutMs: 60_000,
            output: { stdout: join(lab.stateDir(h), 'router.out'), stderr: join(lab.stateDir(h), 'router.err') },
          }),
        ),
      ));

    const blueOn = async (d: LabDockerd): Promise<string> =>
      (await d.docker(['network', 'ls', '--filter', 'name=^blue$', '--format', '{{.Name}} {{.Driver}} {{.Scope}}'])).stdout.trim();
    const lines = await step('network blue appears on both dockerds (no docker network create anywhere)', async () => {
      await waitFor(async () => (await Promise.all([d1, d2].map(blueOn))).every((l) => l.startsWith('blue ')), { timeoutMs: 30_000, intervalMs: 300, what: 'network blue on both dockerds' });
      return Promise.all([d1, d2].map(blueOn));
    });
    for (const [i, l] of lines.entries()) out(`    h${i + 1}$ docker network ls   →   ${l}`);

    const ipOf = async (d: LabDockerd, c: string): Promise<string> => (await d.docker(['inspect', c, '--format', '{{(index .NetworkSettings.Networks "blue").IPAddress}}'])).stdout.trim();
    const web = await step(`h1$ docker run -d --name web --network blue --dns ${DNS} -p 8080:80 busybox httpd`, async () => {
      await d1.docker(['run', '-d', '--name', 'web', '--network', 'blue', '--dns', DNS, '-p', '8080:80', BUSYBOX_IMAGE, 'sh', '-c', 'echo hello from web on h1 >/index.html && exec httpd -f -p 80 -h /']);
      return ipOf(d1, 'web');
    }, (ip) => `${ip} (from h1's slice of ${SUBNET})`);
    const client = await step(`h2$ docker run -d --name client --network blue --dns ${DNS} busybox sleep`, async () => {
      await d2.docker(['run', '-d', '--name', 'client', '--network', 'blue', '--dns', DNS, BUSYBOX_IMAGE, 'sleep', '3600']);
      return ipOf(d2, 'client');
    }, (ip) => `${ip} (from h2's slice)`);

    const ping = async (d: LabDockerd, c: string, target: string): Promise<string> =>
      (await d.docker(['exec', c, 'ping', '-c', '1', '-W', '2', target]).catch((e: Error) => ({ stdout: e.message }))).stdout;
    const byName = async (d: LabDockerd, c: string, target: string, ip: string): Promise<string> => {
      let last = '';
      // Names are advertised through etcd within about a second of `docker run`.
      await waitFor(async () => / 0% packet loss/.test((last = await ping(d, c, target))), { timeoutMs: 15_000, intervalMs: 300, what: `${target} to answer` }).catch(() => undefined);
      const resolved = new RegExp(`PING ${target.replaceAll('.', '\\.')} \\(${ip.replaceAll('.', '\\.')}\\)`).test(last);
      const loss = / (\d+)% packet loss/.exec(last)?.[1];
      if (!resolved || loss !== '0') throw new Error(`${c} → ${target}: ${last.trim().split('\n').slice(-2).join(' ') || 'no answer'}`);
      return `${target} is ${ip}, ${/min\/avg\/max = [\d.]+\/([\d.]+)/.exec(last)?.[1] ?? '?'} ms`;
    };
    const checks: [string, () => Promise<string>][] = [
      ['h2$ docker exec client ping web        (h2 → h1, by name)', () => byName(d2, 'client', 'web', web)],
      ['h1$ docker exec web ping client.blue   (h1 → h2, name.network)', () => byName(d1, 'web', 'client.blue', client)],
      [
        'h2$ curl http://198.51.100.1:8080/     (-p 8080:80 on h1)',
        async () => {
          const page = (await lab.exec(h2.ns, 'curl', ['-s', '--max-time', '5', 'http://198.51.100.1:8080/index.html'])).stdout.trim();
          if (page !== 'hello from web on h1') throw new Error(`curl got '${page}'`);
          return `"${page}"`;
        },
      ],
      ['h2$ docker exec client ping 198.51.100.254   (outbound, through docker_gwbridge)', async () => {
        let r = '';
        await waitFor(async () => / 0% packet loss/.test((r = await ping(d2, 'client', '198.51.100.254'))), { timeoutMs: 10_000, intervalMs: 300, what: 'an answer' }).catch(() => undefined);
        if (!/ 0% packet loss/.test(r)) throw new Error(r.trim().split('\n').slice(-2).join(' '));
        return 'answered';
      }],
    ];
    for (const [title, check] of checks) await step(title, check, (r) => r).catch((err: Error) => void failures.push(err.message));
  } catch (err) {
    failures.push((err as Error).message);
  }
  await printedStep('tear down (containers, dockerds, routers, etcd and its data, namespaces)', cleanUp);
  process.off('SIGINT', interrupted).off('SIGTERM', interrupted);
  for (const f of failures) out(`\ndemo failed: ${f}`);
  out(failures.length === 0 ? '\ndemo --docker: every check passed' : '\ndemo --docker: FAILED');
  return failures.length === 0 ? 0 : 1;
}
