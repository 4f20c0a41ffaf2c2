/**
 * A real etcd (Debian's etcd-server) for tests and labs: its own ports and data dir, on loopback, started in about a
 * second and removed with everything it wrote. Polls for health instead of sleeping; stops by PID.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI_PATH, Lab, VNI, type Host } from './lab.js';
import { waitFor } from './wait.js';

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const port = (s.address() as { port: number }).port;
  await new Promise((resolve) => s.close(resolve));
  return port;
}

/**
 * TLS for the client port (PEM files): etcd's certificate and key, and the CA its clients' certificates must chain to.
 * The certificate must allow client use too (serverAuth,clientAuth): the health check presents it.
 */
export interface EtcdTls {
  readonly certFile: string;
  readonly keyFile: string;
  readonly caFile: string;
}

export class EtcdServer {
  private child: ChildProcess | undefined;
  private constructor(
    readonly endpoint: string,
    private readonly args: string[],
    readonly dataDir: string,
    /** The namespace it runs in ('' = this one). */
    private readonly ns: string,
    private readonly tls: EtcdTls | undefined,
    /** Runs on after this process exits (demo --keep): its own session, no pipes back to us. */
    private readonly detached: boolean,
  ) {}

  /**
   * On loopback with free ports, or inside a lab namespace (`ns`) on one of its addresses (`host`), where the hosts
   * of the lab reach it over their underlay.
   */
  static async start(where: { ns: string; host: string } = { ns: '', host: '127.0.0.1' }, opts: { tls?: EtcdTls; detached?: boolean } = {}): Promise<EtcdServer> {
    const inNs = where.ns !== '';
    const [client, peer] = inNs ? [2379, 2380] : [await freePort(), await freePort()];
    const dataDir = mkdtempSync(join(tmpdir(), 'vxr-etcd-'));
    const tls = opts.tls;
    const endpoint = `${tls ? 'https' : 'http'}://${where.host}:${client}`;
    const args = [
      '--name', 'lab', '--data-dir', dataDir, '--logger=zap', '--log-level=error',
      '--listen-client-urls', endpoint, '--advertise-client-urls', endpoint,
      '--listen-peer-urls', `http://${where.host}:${peer}`, '--initial-advertise-peer-urls', `http://${where.host}:${peer}`,
      '--initial-cluster', `lab=http://${where.host}:${peer}`,
      ...(tls ? ['--cert-file', tls.certFile, '--key-file', tls.keyFile, '--trusted-ca-file', tls.caFile, '--client-cert-auth'] : []),
    ];
    const etcd = new EtcdServer(endpoint, args, dataDir, where.ns, opts.tls, opts.detached ?? false);
    await etcd.resume();
    return etcd;
  }

  /** Starts (again) on the same ports and data dir, and waits until it answers. */
  async resume(): Promise<void> {
    const argv = this.ns === '' ? ['etcd', ...this.args] : ['ip', 'netns', 'exec', this.ns, 'etcd', ...this.args];
    this.child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'ignore', this.detached ? 'ignore' : 'pipe'], detached: this.detached });
    if (this.detached) this.child.unref();
    let err = '';
    this.child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
    try {
      await waitFor(() => this.healthy(), { timeoutMs: 15_000, intervalMs: 100, what: `etcd at ${this.endpoint}` });
    } catch (e) {
      await this.stop(); // never leave a half-started etcd behind
      throw new Error(`${(e as Error).message} (${err.slice(-300)})`);
    }
  }

  async healthy(): Promise<boolean> {
    if (this.child?.exitCode !== null) return false;
    if (this.ns !== '' || this.tls !== undefined) {
      const tlsArgs = this.tls ? ['--cacert', this.tls.caFile, '--cert', this.tls.certFile, '--key', this.tls.keyFile] : [];
      const etcdctl = ['etcdctl', '--endpoints', this.endpoint, ...tlsArgs, '--command-timeout=1s', 'endpoint', 'health'];
      const argv = this.ns === '' ? etcdctl : ['ip', 'netns', 'exec', this.ns, ...etcdctl];
      const r = spawnSync(argv[0]!, argv.slice(1), { timeout: 3000 });
      return r.status === 0;
    }
    try {
      const r = await fetch(`${this.endpoint}/health`, { signal: AbortSignal.timeout(1000) });
      return r.ok && ((await r.json()) as { health?: string }).health === 'true';
    } catch {
      return false;
    }
  }

  /** Stops the server (SIGTERM, then SIGKILL); the data dir stays for resume(). */
  async stop(): Promise<void> {
    const c = this.child;
    if (c === undefined || c.exitCode !== null || c.signalCode !== null) return;
    c.kill('SIGTERM');
    const timer = setTimeout(() => c.kill('SIGKILL'), 5000);
    await once(c, 'exit');
    clearTimeout(timer);
  }

  /** Stops it and removes its data dir. */
  async destroy(): Promise<void> {
    await this.stop();
    rmSync(this.dataDir, { recursive: true, force: true });
  }
}

/** Why an etcd lab cannot run here, or undefined when it can. */
export function etcdSkipReason(): string | undefined {
  return spawnSync('etcd', ['--version']).status === 0 ? undefined : 'etcd-server is not installed (npm test installs it as root)';
}

/** etcd at `ip` on the lab's underlay switch, where every host reaches it; the caller destroys it after the lab. */
export async function startSwitchEtcd(lab: Lab, ip = '198.51.100.254', detached = false): Promise<EtcdServer> {
  return EtcdServer.start({ ns: await lab.addSwitchAddress(ip), host: ip }, { detached });
}

/**
 * A lab with etcd on its underlay switch, for tests of hosts that join through etcd. `defineNetwork` runs
 * `vxlan-router network create <name, default: default>` (VNI 42 unless given, the overlay range) from a host; `destroy` removes the lab first
 * (its routers leave etcd cleanly), then etcd and its data.
 */
export async function etcdLab(
  ip = '198.51.100.254',
): Promise<{ lab: Lab; etcd: EtcdServer; defineNetwork: (from: Host, name?: string, vni?: number) => Promise<string>; destroy: () => Promise<void> }> {
  const lab = new Lab();
  let etcd: EtcdServer;
  try {
    etcd = await startSwitchEtcd(lab, ip);
  } catch (err) {
    await lab.destroy();
    throw err;
  }
  return {
    lab,
    etcd,
    defineNetwork: async (from, name = 'default', vni = VNI) =>
      (await lab.exec(from.ns, process.execPath, [CLI_PATH, 'network', 'create', name, '--vni', String(vni), '--subnet', '198.18.0.0/15', '--etcd', etcd.endpoint])).stdout,
    destroy: async () => {
      await lab.destroy();
      await etcd.destroy();
    },
  };
}
