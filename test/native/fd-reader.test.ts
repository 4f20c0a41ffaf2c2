/**
 * The addon's readTap, writeTap, readUdp, bindUdp, bindUdpSender and sendUdp (native/src/fd-reader.cc), the reference engine's I/O,
 * and routeMtu (native/src/links-js.cc), against a real
 * TAP and UDP socket in a throwaway namespace:  [vxr<id>-trd]  br0 198.18.0.1/24 (bridge) ◀─ TAP vxrr0; eth0 198.51.100.1
 * Broadcast pings from br0 reach the TAP. The child (the addon works on its own namespace) prints what it saw.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { Lab, labSkipReason } from '../../src/lab/lab.js';

const NATIVE = fileURLToPath(new URL('../../src/dataplane/native.ts', import.meta.url));
const CHECKSUM = fileURLToPath(new URL('../../src/packet/checksum.ts', import.meta.url));
const TSX = import.meta.resolve('tsx');

const CHILD = `
const { loadNative } = await import(${JSON.stringify(NATIVE)});
const { internetChecksum } = await import(${JSON.stringify(CHECKSUM)});
const { readFileSync } = await import('node:fs');
const { execFileSync, spawnSync } = await import('node:child_process');
const n = loadNative();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const until = async (ok) => { for (let i = 0; i < 200 && !ok(); i++) await sleep(50); };
/** count broadcast pings (ICMP echo to ff:ff:ff:ff:ff:ff), at most a second; with -l all leave at once. */
const pings = (count) => spawnSync('ping', ['-b', '-q', '-c', String(count), '-l', String(count), '-w', '1', '198.18.0.255'], { stdio: 'ignore' });
/** The ICMP echo requests of a batch: [length, sequence] each, walking the lengths through the one buffer. */
const echoes = (data, lengths) => {
  const out = []; let at = 0;
  for (const len of lengths) {
    const f = data.subarray(at, at + len); at += len;
    if (f.length >= 42 && f.readUInt16BE(12) === 0x0800 && f[23] === 1 && f[34] === 8) out.push([len, f.readUInt16BE(40)]);
  }
  return { out, walked: at === data.length, frames: lengths.length };
};
const out = { errors: [] };
const tap = n.openTap('vxrr0', 1400, 'br0');
execFileSync('ip', ['addr', 'add', '198.18.0.1/24', 'dev', 'br0']);

// 1. 100 frames queued before the reader starts: drained in batches of at most 64, in order, lengths walking the buffer.
pings(100);
const batches = [];
const memory = new Set();
let r = n.readTap(tap.fd, 1419, (data, lengths) => { memory.add(data.buffer); batches.push(echoes(data, lengths)); }, (e) => out.errors.push(e.code));
await until(() => batches.flatMap((b) => b.out).length >= 100);
// Frames per batch, whatever they are: the kernel may queue one of its own (an IPv6 MLD report, say) among the pings.
out.batchSizes = batches.map((b) => b.frames);
out.walked = batches.every((b) => b.walked);
out.seqs = batches.flatMap((b) => b.out.map(([, s]) => s));
out.lengths = [...new Set(batches.flatMap((b) => b.out.map(([l]) => l)))];
out.buffers = memory.size;

// 2. close(): nothing more is delivered. A reader with slots smaller than the frames: each length is the slot (cut short).
r.close(); r.close();
const before = batches.length;
pings(3);
await sleep(300);
out.afterClose = batches.length - before;
const small = [];
r = n.readTap(tap.fd, 64, (data, lengths) => small.push(...lengths), (e) => out.errors.push(e.code));
await until(() => small.length >= 3);
out.small = small;

// 2b. writeTap: three echo requests to br0 at scattered offsets of one buffer, in one call; br0's replies come back
// through the TAP in order. Bad arguments are TypeErrors that write nothing.
r.close();
execFileSync('ip', ['neigh', 'replace', '198.18.0.2', 'lladdr', '02:00:00:00:00:02', 'dev', 'br0']);
const brMac = readFileSync('/sys/class/net/br0/address', 'utf8').trim().split(':').map((h) => parseInt(h, 16));
const replies = [];
r = n.readTap(tap.fd, 1419, (data, lengths) => {
  let at = 0;
  for (const len of lengths) {
    const f = data.subarray(at, at + len); at += len;
    if (len >= 42 && f.readUInt16BE(12) === 0x0800 && f[23] === 1 && f[34] === 0) replies.push(f.readUInt16BE(40));
  }
}, (e) => out.errors.push(e.code));
const batch = Buffer.alloc(600, 0xee);
const offsets = [10, 200, 401];
offsets.forEach((at, i) => {
  const f = batch.subarray(at, at + 42 + 16);
  f.set([...brMac, 2, 0, 0, 0, 0, 2, 0x08, 0x00]);
  f.set([0x45, 0, 0, 44, 0, i, 0x40, 0, 64, 1, 0, 0, 198, 18, 0, 2, 198, 18, 0, 1], 14);
  f.writeUInt16BE(internetChecksum(f, 14, 34), 24);
  f.fill(0, 34);
  f.set([8, 0, 0, 0, 0x12, 0x34, 0, i + 1], 34);
  f.writeUInt16BE(internetChecksum(f, 34, 58), 36);
});
const badWrites = [];
for (const args of [[tap.fd, batch, [590], [20]], [tap.fd, batch, [0, 1], [58]], [tap.fd, 'x', [], []]]) {
  try { n.writeTap(...args); } catch (e) { badWrites.push(e instanceof TypeError); }
}
out.badWrites = badWrites;
out.writeRefused = n.writeTap(tap.fd, batch, offsets, offsets.map(() => 58));
await until(() => replies.length >= 3);
out.replies = replies;
r.close();

// 3. The TAP deleted under the reader: onError once, and the reader stops (the event loop is free: this child exits).
r = n.readTap(tap.fd, 1419, () => {}, (e) => out.errors.push(e.code));
n.deleteLink('vxrr0');
await until(() => out.errors.length >= 1);
await sleep(200);
out.refusedGone = n.writeTap(tap.fd, batch, offsets, offsets.map(() => 58));
out.bad = [];
for (const args of [[-1, 100], [tap.fd, 5], [tap.fd, 100, 'x']]) {
  try { n.readTap(args[0], args[1], args[2] ?? (() => {}), () => {}); } catch (e) { out.bad.push(e instanceof TypeError); }
}
n.closeFd(tap.fd);

// 4. bindUdp + readUdp: datagrams sent while nobody reads come in one batch, in order, with their sender; one longer
// than the slot comes back as the slot's length; a second bind of the port is EADDRINUSE.
const { createSocket } = await import('node:dgram');
const fd = n.bindUdp('198.51.100.1', 4799);
try { n.bindUdp('198.51.100.1', 4799); } catch (e) { out.inUse = e.code; }
const sender = createSocket('udp4');
await new Promise((r) => sender.bind(0, '198.51.100.1', r));
for (let i = 0; i < 20; i++) await new Promise((r) => sender.send(Buffer.alloc(10 + i, i), 4799, '198.51.100.1', r));
await new Promise((r) => sender.send(Buffer.alloc(300, 0xee), 4799, '198.51.100.1', r));
const udp = [];
const u = n.readUdp(fd, 200, (data, lengths, senders) => {
  let at = 0;
  udp.push(lengths.map((len, i) => { const d = data.subarray(at, at + len); at += len; return [len, d[0], senders[i]]; }));
}, (e) => out.errors.push(e.code));
await until(() => udp.flat().length >= 21);
out.udpBatches = udp.map((b) => b.length);
out.udp = udp.flat();
out.udpPort = sender.address().port;
u.close();
sender.close();
n.closeFd(fd);
out.badUdp = [];
for (const args of [['nonsense', 1], ['198.51.100.1', 70000]]) {
  try { n.bindUdp(args[0], args[1]); } catch (e) { out.badUdp.push(e instanceof TypeError); }
}

// 5. bindUdpSender + sendUdp: 100 datagrams in one call arrive whole, in order, from the sender's port; one too big
// for its path (DF, eth0's MTU 1500) is skipped and counted with EMSGSIZE while its neighbours go; the sender takes
// nothing in (a datagram sent to its port is never queued).
const snd = n.bindUdpSender('198.51.100.1', 4800);
const rcv = createSocket('udp4');
const got = [];
rcv.on('message', (m, rinfo) => got.push([m.length, m[0], rinfo.port]));
await new Promise((r) => rcv.bind(4801, '198.51.100.1', r));
const lens = Array.from({ length: 100 }, (_, i) => 20 + i);
const data = Buffer.concat(lens.map((len, i) => Buffer.alloc(len, i)));
out.sent = n.sendUdp(snd, data, lens, lens.map(() => '198.51.100.1'), 4801);
await until(() => got.length >= 100);
out.got = got.slice();
got.length = 0;
out.tooBig = n.sendUdp(snd, Buffer.alloc(30 + 2000 + 40), [30, 2000, 40], ['198.51.100.1', '198.51.100.2', '198.51.100.1'], 4801);
await until(() => got.length >= 2);
await sleep(100);
out.around = got.map(([len]) => len);
const poke = createSocket('udp4');
await new Promise((r) => poke.send(Buffer.alloc(8), 4800, '198.51.100.1', r));
const heard = [];
const sr = n.readUdp(snd, 100, (d, l) => heard.push(...l), () => {});
await sleep(300);
sr.close();
out.senderHeard = heard.length;
out.badSend = [];
for (const args of [[snd, Buffer.alloc(4), [8], ['198.51.100.1'], 1], [snd, Buffer.alloc(4), [4], [], 1], [snd, Buffer.alloc(4), [4], ['x'], 1]]) {
  try { n.sendUdp(...args); } catch (e) { out.badSend.push(e instanceof TypeError); }
}
rcv.close(); poke.close();
n.closeFd(snd);

// 6. routeMtu: the kernel's path MTU toward an address (nothing sent), following eth0's MTU; bad input is a TypeError.
out.route = [n.routeMtu('198.51.100.1', '198.51.100.2')];
execFileSync('ip', ['link', 'set', 'eth0', 'mtu', '1400']);
out.route.push(n.routeMtu('198.51.100.1', '198.51.100.2'));
out.badRoute = [];
for (const args of [['198.51.100.1', 'fd00::1'], ['x', '198.51.100.2']]) {
  try { n.routeMtu(...args); } catch (e) { out.badRoute.push(e instanceof TypeError); }
}
console.log(JSON.stringify(out));
`;

t.test('readTap: batches of at most 64 frames in order, close, cut-short frames, a deleted TAP; readUdp and bindUdp', { skip: labSkipReason() ?? false }, async (t) => {
  const lab = new Lab();
  t.teardown(() => lab.destroy());
  const host = await lab.addHost('trd', '198.51.100.1');
  const r = spawnSync('ip', ['netns', 'exec', host.ns, process.execPath, '--import', TSX, '--input-type=module', '-e', CHILD], { encoding: 'utf8', timeout: 40_000 });
  t.equal(r.status, 0, `the child ran to the end and exited on its own ${r.stderr}`);
  const out = JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}') as {
    batchSizes: number[];
    walked: boolean;
    badWrites: boolean[];
    writeRefused: number[];
    replies: number[];
    refusedGone: number[];
    buffers: number;
    seqs: number[];
    lengths: number[];
    afterClose: number;
    small: number[];
    errors: string[];
    bad: boolean[];
    inUse: string;
    udpBatches: number[];
    udp: [number, number, string][];
    badUdp: boolean[];
    sent: { failed: number; errno: number };
    got: [number, number, number][];
    tooBig: { failed: number; errno: number };
    around: number[];
    senderHeard: number;
    badSend: boolean[];
    route: number[];
    badRoute: boolean[];
  };
  t.equal(out.seqs.length, 100, 'all 100 queued frames were read');
  t.same(out.seqs, Array.from({ length: 100 }, (_, i) => i + 1), 'in the order the bridge sent them');
  t.equal(out.batchSizes[0], 64, `drained 64 per wake at most (batches ${out.batchSizes.join(', ')})`);
  t.ok(out.batchSizes.length <= 3, 'in a few batches, not one per frame');
  t.ok(out.walked, 'the lengths add up to each batch buffer');
  t.equal(out.buffers, 1, `every batch a view of the reader's one buffer (no allocation nor copy per batch; ${out.batchSizes.length} batches)`);
  t.same(out.lengths, [98], 'each frame whole (14 + 20 + 8 + 56 bytes)');
  t.equal(out.afterClose, 0, 'nothing after close()');
  t.same(out.writeRefused, [], 'writeTap: none of the three frames refused');
  t.same(out.replies, [1, 2, 3], 'each frame written whole from its offset, in order: br0 answered the three echo requests');
  t.same(out.badWrites, [true, true, true], 'writeTap: a frame past the data, offsets and lengths of different lengths, data not bytes: TypeError');
  t.same(out.refusedGone, [0, 1, 2], 'writeTap to a deleted TAP: every frame refused, by index, no exception');
  t.ok(out.small.length >= 3 && out.small.every((l) => l === 64), `frames longer than the slot come back as the slot's length (${out.small.join(', ')})`);
  t.equal(out.errors.length, 1, 'the deleted TAP: onError once');
  t.match(out.errors[0], /^E(BADFD|BADF|IO|NODEV)$/, `with an errno name (${out.errors[0]})`);
  t.same(out.bad, [true, true, true], 'bad fd, slot size or callback: TypeError');

  t.equal(out.inUse, 'EADDRINUSE', 'bindUdp: a taken port is EADDRINUSE (E_PORT_IN_USE for the router)');
  t.same(out.udpBatches, [21], 'readUdp: 21 queued datagrams in one batch (one recvmmsg)');
  t.same(
    out.udp.slice(0, 20),
    Array.from({ length: 20 }, (_, i) => [10 + i, i, '198.51.100.1']),
    'each datagram whole, in order, walking the lengths through the one buffer, with its sender as text',
  );
  t.same(out.udp[20], [200, 0xee, '198.51.100.1'], 'a datagram longer than the slot comes back as the slot (cut short)');
  t.same(out.badUdp, [true, true], 'bindUdp: a bad address or port is a TypeError');

  t.same(out.sent, { failed: 0, errno: 0 }, 'sendUdp: 100 datagrams in one call, none refused');
  t.same(out.got, Array.from({ length: 100 }, (_, i) => [20 + i, i, 4800]), 'each arrives whole, in order, from the bound source port');
  t.same(out.tooBig, { failed: 1, errno: 90 }, 'a datagram too big for its path (DF) is skipped and counted, EMSGSIZE');
  t.same(out.around, [30, 40], 'the datagrams around it still go');
  t.equal(out.senderHeard, 0, 'bindUdpSender: a datagram sent to its port is never queued');
  t.same(out.badSend, [true, true, true], 'sendUdp: lengths past the data, arrays of different lengths, a bad address: TypeError');
  t.same(out.route, [1500, 1400], "routeMtu: the kernel's path MTU toward a peer follows the device's MTU");
  t.same(out.badRoute, [true, true], 'routeMtu: addresses of two families, or not an address: TypeError');
});
