/**
 * The handover's fd passing (native/src/fd-passing.cc): listenHandover, sendFds, acceptFds, inspectTap. Within
 * one process: a file's fd sent with a header arrives as another fd of the same open file; the sender's stays open;
 * silence is a timeout; bad arguments are TypeErrors that name them; with root, a TAP sent over keeps its name and
 * its virtio-header flag, and the TAP lives on as long as either fd does.
 */
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { loadNative } from '../../src/dataplane/native.js';
import { Lab, labSkipReason } from '../../src/lab/lab.js';

const n = loadNative();

t.test('an fd and its header arrive; both ends stay usable', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'vxr-fdpass-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const sock = join(dir, 'h.sock');
  const listen = n.listenHandover(sock);
  const file = join(dir, 'data');
  const fd = openSync(file, 'w');
  n.sendFds(sock, [fd], JSON.stringify({ hello: 1 }));
  const got = n.acceptFds(listen, 1000);
  t.equal(got.header, '{"hello":1}', 'the header');
  t.equal(got.fds.length, 1, 'one fd');
  t.not(got.fds[0], fd, 'a new fd number');
  writeSync(got.fds[0]!, 'via the passed fd;');
  writeSync(fd, 'via the original');
  t.equal(readFileSync(file, 'utf8'), 'via the passed fd;via the original', 'one open file (shared offset): the kernel state travels with it');
  n.closeFd(got.fds[0]!);
  closeSync(fd);
  n.closeFd(listen);
});

t.test('notifySystemd: a datagram to $NOTIFY_SOCKET, nothing without it', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'vxr-notify-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const saved = process.env.NOTIFY_SOCKET;
  t.teardown(() => (saved === undefined ? delete process.env.NOTIFY_SOCKET : (process.env.NOTIFY_SOCKET = saved)));
  delete process.env.NOTIFY_SOCKET;
  t.equal(n.notifySystemd('READY=1'), false, 'unset: nothing sent');
  process.env.NOTIFY_SOCKET = join(dir, 'nowhere');
  t.throws(() => n.notifySystemd('READY=1'), { code: 'ENOENT' }, 'a socket that is not there: the error, not silence');
});

t.test('timeouts and errors', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'vxr-fdpass-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const listen = n.listenHandover(join(dir, 'h.sock'));
  t.throws(() => n.acceptFds(listen, 50), { code: 'ETIMEDOUT' }, 'nobody connects: ETIMEDOUT');
  n.closeFd(listen);
  t.throws(() => n.sendFds(join(dir, 'nobody.sock'), [0], 'x'), { code: 'ENOENT' }, 'nobody listens: ENOENT');
  t.throws(() => n.sendFds(join(dir, 'h.sock'), [], 'x'), TypeError, 'no fds');
  t.throws(() => n.sendFds(join(dir, 'h.sock'), [0], 'x'.repeat(4097)), /1-4096 bytes/, 'a header too long');
  t.throws(() => n.listenHandover('x'.repeat(200)), /1-107 bytes/, 'a path too long for sun_path');
  t.throws(() => n.acceptFds(-1, 10), /listenFd/, 'a bad fd');
  const fd = openSync(join(dir, 'plain'), 'w');
  t.throws(() => n.inspectTap(fd), { code: 'ENOTTY' }, 'inspectTap on a file that is no TAP');
  closeSync(fd);
});

// The addon acts on the namespace of the calling process: the TAP case runs in a child inside a lab namespace.
const NATIVE = fileURLToPath(new URL('../../src/dataplane/native.ts', import.meta.url));
const TSX = import.meta.resolve('tsx');

t.test('a TAP passed over keeps its name and flags and lives while any fd holds it', { skip: labSkipReason() ?? false }, async (t) => {
  const lab = new Lab();
  t.teardown(() => lab.destroy());
  const host = await lab.addHost('fdp', '198.51.100.1');
  const dir = mkdtempSync(join(tmpdir(), 'vxr-fdpass-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const code = `const { loadNative } = await import(${JSON.stringify(NATIVE)}); const n = loadNative();
    const { execFileSync } = await import('node:child_process');
    const up = () => execFileSync('ip', ['-o', 'link'], { encoding: 'utf8' }).includes('vxrp0');
    const tap = n.openTap('vxrp0', 1400, 'br0', true);
    const l = n.listenHandover(${JSON.stringify(join(dir, 'h.sock'))});
    n.sendFds(${JSON.stringify(join(dir, 'h.sock'))}, [tap.fd], 'tap');
    const got = n.acceptFds(l, 1000);
    const info = n.inspectTap(got.fds[0]);
    n.closeFd(tap.fd);
    const afterFirst = up();
    n.closeFd(got.fds[0]);
    console.log(JSON.stringify({ info, vnetHdr: tap.vnetHdr, afterFirst, afterBoth: up() }));`;
  const r = spawnSync('ip', ['netns', 'exec', host.ns, process.execPath, '--import', TSX, '--input-type=module', '-e', code], { encoding: 'utf8', timeout: 20_000 });
  t.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout.trim()) as { info: { name: string; vnetHdr: boolean }; vnetHdr: boolean; afterFirst: boolean; afterBoth: boolean };
  t.same(out.info, { name: 'vxrp0', vnetHdr: out.vnetHdr }, 'inspectTap: the name and the virtio-header flag of the TAP behind the passed fd');
  t.equal(out.afterFirst, true, 'the TAP outlives the sender closing its fd');
  t.equal(out.afterBoth, false, 'and goes with the last fd');
});
