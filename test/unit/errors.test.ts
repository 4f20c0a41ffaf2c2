import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import t from 'tap';
import { serveControl, type ControlSource } from '../../src/agent/control-socket.js';
import { serveMetrics } from '../../src/agent/metrics.js';
import { checkBridge, checkPrivileges } from '../../src/agent/preflight.js';
import { ConfigError, describeError, PacketError, VxlanRouterError } from '../../src/errors.js';

t.test('PacketError carries layer, offset and a stable code', async (t) => {
  const e = new PacketError('ipv4', 3, 'header shorter than 20 bytes');
  t.ok(e instanceof VxlanRouterError);
  t.equal(e.code, 'E_PACKET');
  t.equal(e.layer, 'ipv4');
  t.equal(e.offset, 3);
  t.match(e.message, /^ipv4: header shorter than 20 bytes \(at byte 3\)$/);
  t.equal(e.name, 'PacketError');
});

t.test('describe(): the message, then the fix; describeError for anything thrown', async (t) => {
  const e = new VxlanRouterError('E_NO_TUN', '/dev/net/tun is missing', { hint: 'modprobe tun' });
  t.equal(e.message, '/dev/net/tun is missing', 'the message says what is wrong, no more');
  t.equal(e.hint, 'modprobe tun');
  t.equal(e.describe(), '/dev/net/tun is missing: modprobe tun');
  t.equal(new ConfigError('--vni is required').describe(), '--vni is required', 'no hint: the message alone');
  t.equal(describeError(e), e.describe());
  t.equal(describeError(new Error('plain')), 'plain');
  t.equal(describeError('a string'), 'a string');
});

t.test('a preflight error carries its fix as hint and its case as kind', async (t) => {
  const admin = 1n << 12n; // CAP_NET_ADMIN
  t.throws(() => checkPrivileges(false, 0n), { code: 'E_PRIVILEGE', kind: 'no-cap-net-admin', message: 'needs CAP_NET_ADMIN to create the TAP device', hint: 'run as root (sudo)' });
  t.throws(() => checkPrivileges(true, admin), { code: 'E_PRIVILEGE', kind: 'no-cap-net-raw', message: 'the native engine needs CAP_NET_RAW for its send socket', hint: 'run as root' });
  t.doesNotThrow(() => checkPrivileges(false, admin), 'the JS engine needs no CAP_NET_RAW');
  t.throws(() => checkBridge('vxr-no-such-br'), { code: 'E_NO_BRIDGE', message: 'bridge vxr-no-such-br does not exist', hint: /^create it \(ip link add vxr-no-such-br type bridge/ });
});

t.test('the cases callers tell apart: control socket and metrics', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'vxr-errors-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const source = {} as ControlSource; // never asked: no client connects
  const file = join(dir, 'plain');
  writeFileSync(file, '');
  await t.rejects(serveControl(file, source), { code: 'E_CONTROL', kind: 'not-a-socket', message: `${file} exists and is not a socket`, hint: 'remove it, or pass --socket <path>' });
  const first = await serveControl(join(dir, 'r.sock'), source);
  t.teardown(() => first.close());
  await t.rejects(serveControl(join(dir, 'r.sock'), source), {
    code: 'E_CONTROL',
    kind: 'socket-taken',
    message: `another vxlan-router answers on ${join(dir, 'r.sock')}`,
    hint: 'stop it, or give this one its own --socket <path>',
  });

  const holder = createServer();
  await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
  t.teardown(() => holder.close());
  const listen = `127.0.0.1:${(holder.address() as AddressInfo).port}`;
  await t.rejects(serveMetrics(listen, new Registry()), {
    code: 'E_CONFIG',
    kind: 'port-taken',
    message: `cannot serve metrics on ${listen}: the port is taken (another router?)`,
    hint: 'pass --metrics <host:port>, or --metrics off',
  });
});

t.test('metrics: a scraper that keeps its connection open does not hold up a stop', async (t) => {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const port = (probe.address() as AddressInfo).port;
  await new Promise((r) => probe.close(r));
  const server = await serveMetrics(`127.0.0.1:${port}`, new Registry());
  const sock = connect(port, '127.0.0.1');
  await new Promise((r) => sock.once('connect', r));
  sock.write('GET /metrics HTTP/1.1\r\nHost: x\r\n'); // a request that never ends
  sock.on('error', () => undefined);
  const closing = Date.now();
  await server.close();
  t.ok(Date.now() - closing < 1000, `closed in ${Date.now() - closing} ms`);
  sock.destroy();
});
