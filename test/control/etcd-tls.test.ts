/**
 * TLS to a real etcd: certificates made here with openssl (a CA, etcd's certificate for 127.0.0.1, a client
 * certificate), etcd requiring client certificates. The registry gets in with --etcd-ca/--etcd-cert/--etcd-key; without
 * a client certificate, or trusting another CA, it does not (a clear E_ETCD error).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import type { NetworkDefinition } from '../../src/control/index.js';
import { EtcdServer, etcdSkipReason } from '../../src/lab/etcd.js';
import { registryOpener } from '../helpers/registries.js';

const opensslMissing = spawnSync('openssl', ['version']).status === 0 ? undefined : 'openssl is not installed';

/** A CA and two certificates it signs: etcd's (SAN IP 127.0.0.1) and a client's. */
function makePki(dir: string, name: string): { ca: string; caKey: string; sign: (cn: string, ext: string) => { cert: string; key: string } } {
  const ca = join(dir, `${name}-ca.pem`);
  const caKey = join(dir, `${name}-ca-key.pem`);
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', caKey, '-out', ca, '-days', '1', '-subj', `/CN=${name} test CA`], { stdio: 'ignore' });
  const sign = (cn: string, ext: string): { cert: string; key: string } => {
    const [key, csr, cert, extFile] = ['key.pem', 'csr.pem', 'cert.pem', 'ext.cnf'].map((f) => join(dir, `${name}-${cn}-${f}`)) as [string, string, string, string];
    writeFileSync(extFile, ext);
    execFileSync('openssl', ['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', csr, '-subj', `/CN=${cn}`], { stdio: 'ignore' });
    execFileSync('openssl', ['x509', '-req', '-in', csr, '-CA', ca, '-CAkey', caKey, '-CAcreateserial', '-out', cert, '-days', '1', '-extfile', extFile], { stdio: 'ignore' });
    return { cert, key };
  };
  return { ca, caKey, sign };
}

t.test('etcd over TLS with client certificates', { skip: etcdSkipReason() ?? opensslMissing ?? false }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'vxr-tls-'));
  const pki = makePki(dir, 'lab');
  const server = pki.sign('etcd', 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n');
  const client = pki.sign('router', 'extendedKeyUsage=clientAuth\n');
  const other = makePki(dir, 'other');
  const etcd = await EtcdServer.start(undefined, { tls: { certFile: server.cert, keyFile: server.key, caFile: pki.ca } });
  const opener = registryOpener(t, etcd.endpoint, { callTimeoutMs: 4000 }, async () => {
    await etcd.destroy();
    rmSync(dir, { recursive: true, force: true });
  });
  const open = (tls: { caFile?: string; certFile?: string; keyFile?: string }) => opener({ tls });
  t.match(etcd.endpoint, /^https:\/\/127\.0\.0\.1:\d+$/);

  const good = open({ caFile: pki.ca, certFile: client.cert, keyFile: client.key });
  t.equal(await good.createNetwork({ version: 1, name: 'default', vni: 42, subnet: '198.18.0.0/15' }), 'created', 'in over TLS with a client certificate');
  const network = (await good.getNetwork('default')) as NetworkDefinition;
  await good.join(network, { version: 1, hostId: 'a', underlay: ['198.51.100.1'], port: 4789, networks: ['default'], mtu: 1450, software: 'test', startedAt: new Date().toISOString() });
  t.match(good.controlPlane(), { state: 'connected', hosts: 1 }, 'registered and watching over TLS');

  await t.rejects(open({ caFile: pki.ca }).getNetwork('default'), { code: 'E_ETCD' }, 'no client certificate: refused');
  await t.rejects(open({ caFile: other.ca, certFile: client.cert, keyFile: client.key }).getNetwork('default'), { code: 'E_ETCD' }, 'etcd\'s certificate from an untrusted CA: refused');
  t.throws(() => open({ caFile: join(dir, 'missing.pem') }), { code: 'E_CONFIG', message: /cannot read the etcd CA certificate .*missing\.pem/, hint: /--etcd-ca/ }, 'a missing file is a ConfigError');
  t.throws(() => open({ caFile: pki.ca, certFile: client.cert }), { code: 'E_CONFIG', message: /--etcd-cert needs --etcd-key too/, hint: /go together: pass both or neither/ });
});
