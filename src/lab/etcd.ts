/**
 * A real etcd (Debian's etcd-server) for tests and labs: its own ports and data dir, on loopback, started in about a
 * second and removed with everything it wrote. Polls for health instead of sleeping; stops by PID.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitFor } from './netns.js';

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const port = (s.address() as { port: number }).port;
  await new Promise((resolve) => s.close(resolve));
  return port;
}

export class EtcdServer {
  private child: ChildProcess | undefined;
  private constructor(
    readonly endpoint: string,
    private readonly args: string[],
    readonly dataDir: string,
  ) {}

  static async start(): Promise<EtcdServer> {
    const [client, peer] = [await freePort(), await freePort()];
    const dataDir = mkdtempSync(join(tmpdir(), 'vxr-etcd-'));
    const endpoint = `http://127.0.0.1:${client}`;
    const args = [
      '--name', 'lab', '--data-dir', dataDir, '--logger=zap', '--log-level=error',
      '--listen-client-urls', endpoint, '--advertise-client-urls', endpoint,
      '--listen-peer-urls', `http://127.0.0.1:${peer}`, '--initial-advertise-peer-urls', `http://127.0.0.1:${peer}`,
      '--initial-cluster', `lab=http://127.0.0.1:${peer}`,
    ];
    const etcd = new EtcdServer(endpoint, args, dataDir);
    await etcd.resume();
    return etcd;
  }

  /** Starts (again) on the same ports and data dir, and waits until it answers. */
  async resume(): Promise<void> {
    this.child = spawn('etcd', this.args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    this.child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    await waitFor(() => this.healthy(), { timeoutMs: 15_000, intervalMs: 100, what: `etcd at ${this.endpoint} (${err.slice(-300)})` });
  }

  async healthy(): Promise<boolean> {
    if (this.child?.exitCode !== null) return false;
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
