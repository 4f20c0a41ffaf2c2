import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { buildConfig, etcdClientConfig } from '../../src/config/index.js';
import { ConfigError } from '../../src/errors.js';

const dir = mkdtempSync(join(tmpdir(), 'vxr-config-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const file = (name: string, text: string): string => {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
};

const base = { local: '198.51.100.1', vni: 42, bridge: 'br0' };

t.test('flags alone give a frozen config with defaults', async (t) => {
  const c = buildConfig({ flags: { ...base, peers: ['198.51.100.2'] } });
  t.same(c, { ...base, peers: ['198.51.100.2'], port: 4789, engine: 'native', learning: true, arpSuppression: true, clampMss: false, offloads: ['tap', 'gso', 'gro'], loop: 'auto', agingSeconds: 300, learnMaxPerPeer: 4096, learnMax: 65536, sourceCheck: true, maxLocalMacs: 1024, probeInterval: 5, network: 'default', leaseTtl: 15, metrics: '127.0.0.1:9477', dockerPlugin: 'off', docker: false, dockerSocket: '/var/run/docker.sock', logLevel: 'info', stateDir: '/var/lib/vxlan-router' });
  t.ok(Object.isFrozen(c));
});

t.test('clampMss: off, derived from the path (bare --clamp-mss), or an MSS', async (t) => {
  t.equal(buildConfig({ flags: { ...base, clampMss: true } }).clampMss, true);
  t.equal(buildConfig({ flags: { ...base, clampMss: 1360 } }).clampMss, 1360);
  t.throws(() => buildConfig({ flags: { ...base, clampMss: 40 } }), { message: /--clamp-mss.*40 is out of range 88-65495/ });
  t.throws(() => buildConfig({ flags: { ...base, clampMss: 'big' } }), { message: /--clamp-mss/ });
});

t.test('a file is read and flags override it', async (t) => {
  const p = file('ok.yaml', 'local: 198.51.100.1\nvni: 7\nbridge: br1\npeers: [198.51.100.2, 198.51.100.3]\nmtu: 1400\n');
  const c = buildConfig({ file: p, flags: { vni: 42, engine: 'js' } });
  t.equal(c.vni, 42);
  t.equal(c.bridge, 'br1');
  t.equal(c.engine, 'js');
  t.equal(c.mtu, 1400);
  t.same(c.peers, ['198.51.100.2', '198.51.100.3']);
});

t.test('IPv6 addresses are canonicalised and duplicate peers merged', async (t) => {
  const c = buildConfig({ flags: { local: '2001:DB8:0:0::1', vni: 1, bridge: 'br0', peers: ['2001:db8::2', '2001:0db8::2'] } });
  t.equal(c.local, '2001:db8::1');
  t.same(c.peers, ['2001:db8::2']);
});

t.test('errors name the key and where it came from', async (t) => {
  const unknown = file('unknown.yaml', 'local: 198.51.100.1\nvnii: 42\n');
  t.throws(() => buildConfig({ file: unknown, flags: {} }), { name: 'ConfigError', message: /unknown\.yaml: unknown key 'vnii'/ });
  t.throws(() => buildConfig({ flags: { ...base, vni: 16777216 } }), { message: /^--vni: 16777216/ });
  t.throws(() => buildConfig({ flags: { ...base, vni: 0 } }), { message: /^--vni/ });
  t.throws(() => buildConfig({ flags: { ...base, vni: 'abc' } }), { message: /^--vni/ });
  t.throws(() => buildConfig({ flags: { ...base, learnMax: 0 } }), { message: /^--learn-max/ });
  t.throws(() => buildConfig({ flags: { ...base, learnMaxPerPeer: 2 ** 20 + 1 } }), { message: /^--learn-max-per-peer/ });
  t.throws(() => buildConfig({ flags: { ...base, local: '198.51.100.300' } }), { message: /^--local: "198\.51\.100\.300" is not an IPv4 or IPv6 address/ });
  t.throws(() => buildConfig({ flags: { ...base, peers: ['198.51.100.2', 'nope'] } }), { message: /^--peer \(item 1\)/ });
  t.throws(() => buildConfig({ flags: { ...base, mtu: 40 } }), { message: /^--mtu/ });
  t.throws(() => buildConfig({ flags: { ...base, offloads: ['tap', 'tso'] } }), { message: /^--offloads \(item 1\)/ });
  t.throws(() => buildConfig({ flags: { ...base, loop: 'epoll' } }), { message: /^--loop/ });
  t.equal(buildConfig({ flags: { ...base, loop: 'uring' } }).loop, 'uring', '--loop uring');
  t.throws(() => buildConfig({ flags: { ...base, metrics: '9477' } }), { message: /^--metrics: "9477" is not host:port/ });
  t.throws(() => buildConfig({ flags: { ...base, bridge: 'a-name-far-too-long' } }), { message: /^--bridge.*interface name/ });
  t.throws(() => buildConfig({ flags: { vni: 42, bridge: 'br0' } }), { message: /^--local is required/ });
  t.throws(() => buildConfig({ flags: { local: '198.51.100.1', bridge: 'br0' } }), { message: /^--vni is required \(or --etcd/ });
  t.equal(buildConfig({ flags: { local: '198.51.100.1', bridge: 'br0', etcd: ['http://198.51.100.254:2379'] } }).vni, undefined, 'with --etcd the VNI may come from the network');
  t.throws(() => buildConfig({ flags: { ...base, etcd: ['198.51.100.254:2379'] } }), { message: /^--etcd \(item 0\).*not an etcd endpoint/ });
  t.throws(() => buildConfig({ flags: { ...base, peers: ['2001:db8::2'] } }), { message: /not the same address family/ });
  t.throws(() => buildConfig({ flags: { ...base, peers: ['198.51.100.1'] } }), { message: /is the local address itself/ });
  const badInFile = file('bad.yaml', 'local: 198.51.100.1\nvni: 42\nbridge: br0\nport: 70000\n');
  t.throws(() => buildConfig({ file: badInFile, flags: {} }), { message: /bad\.yaml: key 'port'/ });
  t.throws(() => buildConfig({ file: join(dir, 'missing.yaml'), flags: {} }), { message: /cannot read config file/ });
  t.throws(() => buildConfig({ file: file('list.yaml', '- a\n- b\n'), flags: {} }), { message: /expected a mapping/ });
  t.throws(() => buildConfig({ file: file('broken.yaml', 'a: [\n'), flags: {} }), { message: /not valid YAML/ });
  t.ok(new ConfigError('x') instanceof Error);
});

t.test('the example config in config/ is valid', async (t) => {
  const c = buildConfig({ file: new URL('../../config/vxlan-router.example.yaml', import.meta.url).pathname, flags: {} });
  t.equal(c.vni, 42);
  t.same(c.peers, ['198.51.100.2', '198.51.100.3']);
});

t.test('etcd connection options: TLS files, user and password (flag, env, file)', async (t) => {
  const etcd = ['https://198.51.100.254:2379'];
  const ca = file('ca.pem', '-----BEGIN CERTIFICATE-----\n');
  const cert = file('client.pem', '-----BEGIN CERTIFICATE-----\n');
  const key = file('client-key.pem', '-----BEGIN PRIVATE KEY-----\n');
  const ok = buildConfig({ flags: { ...base, etcd, etcdCa: ca, etcdCert: cert, etcdKey: key } });
  t.same(etcdClientConfig(ok), { endpoints: etcd, tls: { caFile: ca, certFile: cert, keyFile: key } }, 'the registry gets the files');

  const missing = join(dir, 'nope.pem');
  t.throws(() => buildConfig({ flags: { ...base, etcd, etcdCa: missing } }), { code: 'E_CONFIG', message: `--etcd-ca ${missing}: cannot read it (ENOENT)` });
  t.throws(() => buildConfig({ flags: { ...base, etcd, etcdCa: dir } }), { message: /^--etcd-ca .*: cannot read it \(not a file\)/ }, 'a directory is not a certificate');
  t.throws(() => buildConfig({ flags: { ...base, etcd, etcdCert: missing, etcdKey: key } }), { message: /^--etcd-cert .*nope\.pem: cannot read it/ });
  t.throws(() => buildConfig({ flags: { ...base, etcd, etcdCert: cert } }), { message: /^--etcd-cert needs --etcd-key too/ });
  t.throws(() => buildConfig({ flags: { ...base, etcd, etcdKey: key } }), { message: /^--etcd-key needs --etcd-cert too/ });
  t.throws(() => buildConfig({ flags: { ...base, etcd: ['http://198.51.100.254:2379'], etcdCa: ca } }), { message: /TLS options need https:\/\/ endpoints/ });
  t.throws(() => buildConfig({ flags: { ...base, etcd: ['http://198.51.100.254:2379', 'https://198.51.100.253:2379'] } }), { message: /not a mix/ });
  t.throws(() => buildConfig({ flags: { ...base, etcdCa: ca } }), { message: /need --etcd/ });
  t.throws(() => buildConfig({ file: file('tls.yaml', `local: 198.51.100.1\nbridge: br0\netcd: [${etcd[0]}]\netcdCa: ${missing}\n`), flags: {} }), { message: /^--etcd-ca .*cannot read it/, code: 'E_CONFIG' }, 'the same check for config keys');

  const http = ['http://198.51.100.254:2379'];
  t.throws(() => buildConfig({ flags: { ...base, etcd: http, etcdUser: 'root' } }), { message: '--etcd-user root needs a password', hint: '--etcd-password or VXLAN_ROUTER_ETCD_PASSWORD' });
  t.throws(() => buildConfig({ flags: { ...base, etcd: http, etcdPassword: 'pw' } }), { message: /needs --etcd-user/ });
  const fromEnv = buildConfig({ flags: { ...base, etcd: http, etcdUser: 'root' }, env: { VXLAN_ROUTER_ETCD_PASSWORD: 'from-env' } });
  t.same(etcdClientConfig(fromEnv)?.auth, { username: 'root', password: 'from-env' }, 'the password from the environment');
  const flagWins = buildConfig({ flags: { ...base, etcd: http, etcdUser: 'root', etcdPassword: 'from-flag' }, env: { VXLAN_ROUTER_ETCD_PASSWORD: 'from-env' } });
  t.equal(flagWins.etcdPassword, 'from-flag', 'a flag wins over the environment');
  // A password is never echoed: YAML reads an unquoted number as a number, and the error goes to the journal.
  const numeric = file('numeric.yaml', `local: 198.51.100.1\nbridge: br0\netcd: [${http[0]}]\netcdUser: root\netcdPassword: 8675309\n`);
  const refused = t.throws(() => buildConfig({ file: numeric, flags: {} }), { code: 'E_CONFIG', message: /numeric\.yaml: key 'etcdPassword': .*expected string/, hint: `quote the value in ${numeric}` }) as ConfigError;
  t.notMatch(refused.describe(), /8675309/, 'the rejected password is not in the error');
  t.throws(() => buildConfig({ flags: { ...base, etcd: http, etcdUser: 'root', etcdPassword: '' } }), { message: '--etcd-password: the value is empty' });
  const envOverFile = buildConfig({ file: file('auth.yaml', `local: 198.51.100.1\nbridge: br0\netcd: [${http[0]}]\netcdUser: root\netcdPassword: from-file\n`), flags: {}, env: { VXLAN_ROUTER_ETCD_PASSWORD: 'from-env' } });
  t.equal(envOverFile.etcdPassword, 'from-env', 'the environment wins over the file');
  t.equal(buildConfig({ flags: { ...base, stateDir: '/tmp/x' } }).stateDir, '/tmp/x');
});

t.test('several networks: clear configuration errors', async (t) => {
  const etcd = ['http://198.51.100.254:2379'];
  const local = '198.51.100.1';
  t.throws(() => buildConfig({ flags: { local, vni: 42, networks: [{ name: 'a', bridge: 'br0' }, { name: 'b', bridge: 'br1' }] } }), { message: /several networks need --etcd/, hint: 'without etcd, run one router per VNI' });
  t.throws(() => buildConfig({ flags: { local, etcd, tap: 'vx0', networks: [{ name: 'a', bridge: 'br0' }] } }), { message: '--tap names one TAP', hint: "with several networks, give each its 'tap' in the config file" });
  t.throws(() => buildConfig({ flags: { local, etcd, networks: [{ name: 'a', bridge: 'a-name-far-too-long' }] } }), { message: /^--network <name>:<bridge> \(item 0, bridge\): "a-name-far-too-long" is not a valid interface name/ }, 'the field of the network, and its value alone');
  t.throws(() => buildConfig({ flags: { local, etcd, networks: [{ name: 'a', bridge: 'br0' }, { name: 'b', bridge: 'br0' }] } }), { message: /bridge br0 is used by two networks \(one bridge would merge/ });
  t.throws(() => buildConfig({ flags: { local, etcd, networks: [{ name: 'a', bridge: 'br0' }, { name: 'a', bridge: 'br1' }] } }), { message: /name a is used by two networks/ });
  t.throws(() => buildConfig({ flags: { local, etcd, networks: [{ name: 'a' }, { name: 'b', bridge: 'br1' }] } }), { message: /--bridge is required \(or --network a:<bridge>/ });
  t.same(
    buildConfig({ flags: { local, etcd, bridge: 'br0', networks: [{ name: 'a' }, { name: 'b', bridge: 'br1' }] } }).networks,
    [{ name: 'a' }, { name: 'b', bridge: 'br1' }],
    'a network without a bridge takes --bridge',
  );
});

t.test('dns and dockerSocket (names across hosts): an address or off, an absolute path', async (t) => {
  t.equal(buildConfig({ flags: { ...base, dns: '169.254.53.53', dockerSocket: '/run/docker.sock' } }).dns, '169.254.53.53');
  t.equal(buildConfig({ flags: { ...base } }).dns, undefined, 'off unless given');
  t.throws(() => buildConfig({ flags: { ...base, dns: 'resolver' } }), { message: /--dns/ });
  t.throws(() => buildConfig({ flags: { ...base, dockerSocket: 'docker.sock' } }), { message: /--docker-socket.*absolute path/ });
});
