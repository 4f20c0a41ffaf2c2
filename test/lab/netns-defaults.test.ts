/**
 * Two routers on one machine, each in its own network namespace, started with no --socket and no --state-dir:
 *
 *   [h1 netns] router (defaults) ── br0 ── c1         [h2 netns] router (defaults) ── br0 ── c2
 *                      198.51.100.1 ═══════ underlay switch ═══════ 198.51.100.2
 *
 * They do not collide (before, the second failed: "another vxlan-router answers on /run/vxlan-router/vxr42.sock"),
 * and `ip netns exec <ns> vxlan-router status` reaches the router of that namespace. The roots of the default paths
 * are temp dirs (VXLAN_ROUTER_RUN_DIR, VXLAN_ROUTER_STATE_DIR): the test never touches the machine's.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { statusSchema } from '../../src/agent/index.js';
import { RUN_DIR_ENV, STATE_DIR_ENV } from '../../src/config/index.js';
import { CLI_PATH, Lab, labSkipReason, twoHosts, VNI, type Host } from '../../src/lab/lab.js';
import { RouterProcess } from '../../src/lab/router-process.js';

t.test('routers in two namespaces on default paths: no collision, each CLI call reaches its own', { skip: labSkipReason() ?? false }, async (t) => {
  const roots = mkdtempSync(join(tmpdir(), 'vxr-netns-defaults-'));
  const lab = new Lab();
  t.teardown(async () => {
    await lab.destroy();
    rmSync(roots, { recursive: true, force: true });
  });
  const env = [`${RUN_DIR_ENV}=${join(roots, 'run')}`, `${STATE_DIR_ENV}=${join(roots, 'state')}`];
  const { h1, h2, c1, c2 } = await twoHosts(lab);
  const sockets = (h: Host): string => join(roots, 'run', 'netns', h.ns);
  const start = async (h: Host, peer: Host): Promise<RouterProcess> => {
    const args = [...env, process.execPath, CLI_PATH, 'up', '--local', h.underlayIp, '--vni', String(VNI), '--bridge', 'br0', '--peer', peer.underlayIp, '--metrics', 'off'];
    const router = new RouterProcess(lab.spawn(h.ns, 'env', args), join(sockets(h), `vxr${VNI}.sock`));
    await router.nextLine((l) => l.startsWith('vxlan-router: ready'), 15_000, true);
    return router;
  };
  await start(h1, h2);
  await start(h2, h1);
  t.ok(existsSync(join(sockets(h1), `vxr${VNI}.sock`)) && existsSync(join(sockets(h2), `vxr${VNI}.sock`)), "each router's socket is in its namespace's directory");

  const status = (h: Host) => statusSchema.parse(JSON.parse(execFileSync('ip', ['netns', 'exec', h.ns, 'env', ...env, process.execPath, CLI_PATH, 'status', '--json'], { encoding: 'utf8', timeout: 15_000 })));
  t.equal(status(h1).local, h1.underlayIp, 'status in h1 reaches the router of h1');
  t.equal(status(h2).local, h2.underlayIp, 'status in h2 reaches the router of h2');
  t.equal((await lab.ping(c1.ns, c2.ip, 2)).loss, 0, 'and they forward to each other');
});
