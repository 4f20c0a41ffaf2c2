/**
 * etcd with authentication on (a real etcd: `user add root`, `auth enable`): the registry and `network create` get
 * in with the right user and password (flag or VXLAN_ROUTER_ETCD_PASSWORD), and a wrong or missing one is a clear,
 * non-recoverable E_ETCD error.
 */
import { execFile, spawnSync } from 'node:child_process';
import { promisify } from 'node:util';
import t from 'tap';
import type { HostRecord, NetworkDefinition } from '../../src/control/index.js';
import { EtcdServer, etcdSkipReason } from '../../src/lab/etcd.js';
import { registryOpener } from '../helpers/registries.js';
import { CLI_PATH } from '../../src/lab/lab.js';

const execFileP = promisify(execFile);
const record = (hostId: string, ip: string): HostRecord => ({
  version: 1, hostId, underlay: [ip], port: 4789, networks: ['default'], mtu: 1450, software: 'test', startedAt: new Date().toISOString(),
});

t.test('etcd with users and passwords', { skip: etcdSkipReason() ?? false }, async (t) => {
  const etcd = await EtcdServer.start();
  const opener = registryOpener(t, etcd.endpoint, { callTimeoutMs: 5000 }, () => etcd.destroy());
  const open = (auth?: { username: string; password: string }) => opener(auth ? { auth } : {});
  for (const args of [['user', 'add', 'root:s3cret-pw'], ['auth', 'enable']]) {
    const r = spawnSync('etcdctl', ['--endpoints', etcd.endpoint, ...args], { encoding: 'utf8' });
    t.equal(r.status, 0, `etcdctl ${args.join(' ')}${r.status === 0 ? '' : `: ${r.stderr}`}`);
  }

  const good = open({ username: 'root', password: 's3cret-pw' });
  t.equal(await good.createNetwork({ version: 1, name: 'default', vni: 42, subnet: '198.18.0.0/15' }), 'created', 'in with the right password');
  const network = (await good.getNetwork('default')) as NetworkDefinition;
  await good.join(network, record('a', '198.51.100.1'));
  t.match(good.controlPlane(), { state: 'connected', hosts: 1 }, 'registered and watching with auth');

  await t.rejects(open({ username: 'root', password: 'wrong' }).getNetwork('default'), {
    code: 'E_ETCD',
    recoverable: false,
    message: /refused us: .*(authentication failed|invalid user ID or password)/,
    hint: /check --etcd-user and --etcd-password/,
  }, 'a wrong password is a clear error, not retried');
  await t.rejects(open().getNetwork('default'), { code: 'E_ETCD', recoverable: false }, 'no user at all is refused');

  // The CLI: the password from the environment, or a clear error.
  const cli = (env: Record<string, string>, ...extra: string[]) =>
    execFileP(process.execPath, [CLI_PATH, 'network', 'create', 'default', '--vni', '42', '--subnet', '198.18.0.0/15', '--etcd', etcd.endpoint, ...extra], {
      env: { ...process.env, ...env },
      timeout: 20_000,
    });
  const ok = await cli({ VXLAN_ROUTER_ETCD_PASSWORD: 's3cret-pw' }, '--etcd-user', 'root');
  t.match(ok.stdout, /network default unchanged/, 'network create with VXLAN_ROUTER_ETCD_PASSWORD');
  const bad = await cli({ VXLAN_ROUTER_ETCD_PASSWORD: '' }, '--etcd-user', 'root', '--etcd-password', 'nope').then(
    () => ({ code: 0, stderr: '' }),
    (e: { code: number; stderr: string }) => e,
  );
  t.equal(bad.code, 1);
  t.match(bad.stderr, /^vxlan-router: error \[E_ETCD\]: etcd at .* refused us: /, 'a wrong --etcd-password');
  const missing = await cli({ VXLAN_ROUTER_ETCD_PASSWORD: '' }, '--etcd-user', 'root').then(
    () => ({ code: 0, stderr: '' }),
    (e: { code: number; stderr: string }) => e,
  );
  t.equal(missing.code, 2, 'a user without a password is a usage error');
  t.match(missing.stderr, /--etcd-user root needs a password: --etcd-password or VXLAN_ROUTER_ETCD_PASSWORD/);
});
