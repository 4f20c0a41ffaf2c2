/**
 * The control socket's framing and schemas, without a router: split and joined chunks, and what is refused; the
 * server with a stand-in source: answers, oversized requests, a stop with clients connected.
 */
import t from 'tap';
import { encodeFrame, FrameReader, MAX_FRAME, MAX_REQUEST, requestSchema, responseSchema, serveControl } from '../../src/agent/index.js';
import { ask, findSocket } from '../../src/cli/control-client.js';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

t.test('frames survive any chunking', async (t) => {
  const values = [{ v: 1, method: 'status' }, { ok: true, result: { a: [1, 2, 3], b: 'x'.repeat(70_000) } }, { ok: false, error: 'no' }];
  const stream = Buffer.concat(values.map((v) => encodeFrame(v)));
  for (const size of [1, 3, 7, 4096, stream.length]) {
    const reader = new FrameReader();
    const got: unknown[] = [];
    for (let i = 0; i < stream.length; i += size) got.push(...reader.push(stream.subarray(i, i + size)));
    t.same(got, values, `chunks of ${size} bytes`);
  }
});

t.test('what is refused', async (t) => {
  const huge = Buffer.alloc(8);
  huge.writeUInt32BE(MAX_FRAME + 1);
  t.throws(() => new FrameReader().push(huge), { message: /larger than .*not a vxlan-router control stream/ });
  const junk = Buffer.from([0, 0, 0, 2, 0xc1, 0xc1]); // 0xc1 is never used in msgpack
  t.throws(() => new FrameReader().push(junk), { message: /undecodable frame/ });
  t.notOk(requestSchema.safeParse({ v: 2, method: 'status' }).success, 'another protocol version');
  t.notOk(requestSchema.safeParse({ v: 1, method: 'reboot' }).success, 'an unknown method');
  t.notOk(responseSchema.safeParse({ ok: true }).success, 'an answer without a result');
});

t.test('findSocket: the only one, or a message saying what to do', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'vxr-sock-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  t.throws(() => findSocket(undefined, dir), { code: 'E_CONTROL', message: /^no running vxlan-router \(no socket in .*\)$/, hint: 'start one with `vxlan-router up`, or pass --socket <path>', kind: 'no-router' });
  writeFileSync(join(dir, 'vxr42.sock'), '');
  t.equal(findSocket(undefined, dir), join(dir, 'vxr42.sock'));
  writeFileSync(join(dir, 'vxr7.sock'), '');
  t.throws(() => findSocket(undefined, dir), { message: /^several routers run here \((vxr42\.sock, vxr7\.sock|vxr7\.sock, vxr42\.sock) in .*\)$/, hint: 'pick one with --socket <path>', kind: 'several-routers' });
  t.equal(findSocket('/x.sock', dir), '/x.sock', 'an explicit path wins');
});

t.test('the server: answers, refuses oversized requests, and closes with clients still connected', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'vxr-serve-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'r.sock');
  const table = { vnis: [{ vni: 42, peers: ['198.51.100.2'], macs: [] }] };
  const fail = (): never => {
    throw new Error('not asked in this test');
  };
  const server = await serveControl(path, { status: fail, fdb: () => [], peers: fail, counters: () => ({ rx_datagrams: 3 }), table: () => table, why: fail });
  t.same(await ask(path, 'table'), table, 'table');
  t.same(await ask(path, 'counters'), { rx_datagrams: 3 }, 'counters');

  // A client announcing a request far larger than any real one is answered with an error at once, not buffered.
  const answer = await new Promise<unknown>((resolve, reject) => {
    const reader = new FrameReader();
    const sock = connect(path, () => {
      const head = Buffer.alloc(4);
      head.writeUInt32BE(MAX_REQUEST + 1);
      sock.write(head);
    });
    sock.on('data', (d: Buffer) => {
      const frames = reader.push(d);
      if (frames.length > 0) resolve(frames[0]);
    });
    sock.on('error', reject);
  });
  t.match(answer, { ok: false, error: /larger than 4096/ }, 'an oversized request is refused');

  // A client that connects and says nothing must not hold up a stop.
  const idle = connect(path);
  await new Promise((r) => idle.once('connect', r));
  const closed = Date.now();
  await server.close();
  t.ok(Date.now() - closed < 1000, `closed in ${Date.now() - closed} ms with an idle client connected`);
  t.notOk(existsSync(path), 'the socket file is gone');
  await server.close();
});
