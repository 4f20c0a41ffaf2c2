/**
 * The transmit side against hostile frames from the bridge (issue 14, findings 4 and 6), in one throwaway namespace:
 *
 *   TAP B (written by the test: "a container") ── br0 ── TAP A ── native engine (local 198.51.100.1, peer = itself)
 *                                                   └── TAP C ── JS engine (port 4790, no peers: local MACs only)
 *
 * Finding 4: a TAP read of a frame longer than the buffer copies what fits and says so only by filling it (read()
 * returns min(length, buffer)). The largest frame the bridge hands on whole is 65 535 bytes (a 65 521-byte IPv4 TSO
 * packet; 65 545 with the virtio header), more than the 64 KiB slot: it must be a counted drop (tx_too_big), never
 * a super-frame whose headers promise bytes the slot does not hold. 10 KB and 65 524-byte ones go out whole.
 * Finding 6: a "container" spraying source MACs grows the local-MAC table (advertised to etcd) only to maxLocalMacs
 * per VNI (counted as local_mac_refused), and entries age out after agingMs even when nobody reads the table.
 * Along the way: the GSO flow socket the super-frames left from is closed once unused for gsoSocketIdleMs (1.5 s here,
 * a minute by default), counted as gso_sockets_closed, while nothing else is sent.
 * The addon acts on the namespace of the calling process, so the engines run in a child `node` inside it.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { Lab, labSkipReason } from '../../src/lab/lab.js';
import { DEFAULT_MAX_LOCAL_MACS } from '../../src/dataplane/engine.js';
import { configSchema } from '../../src/config/schema.js';

const NATIVE = fileURLToPath(new URL('../../src/dataplane/native.ts', import.meta.url));
const JS_ENGINE = fileURLToPath(new URL('../../src/dataplane/js-engine.ts', import.meta.url));
const CHECKSUM = fileURLToPath(new URL('../../src/packet/checksum.ts', import.meta.url));
const TSX = import.meta.resolve('tsx');

const CHILD = `
const { loadNative } = await import(${JSON.stringify(NATIVE)});
const { JsEngine } = await import(${JSON.stringify(JS_ENGINE)});
const { internetChecksum } = await import(${JSON.stringify(CHECKSUM)});
const { writeSync } = await import('node:fs');
const n = loadNative();
const out = {};
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const named = (e) => { const c = e.counters(); const o = {}; n.dropReasons.forEach((k, i) => (o[k] = c.drops[i])); n.trafficCounters.forEach((k, i) => (o[k] = c.traffic[i])); return o; };
const until = async (cond, ms = 3000) => { for (let i = 0; i < ms / 20 && !cond(); i++) await sleep(20); };

// A TCPv4 super-frame of ipLen IP bytes, behind a virtio header asking for TSO (mss 1400) and the TCP checksum.
const tso = (ipLen) => {
  const f = Buffer.alloc(10 + 14 + ipLen, 0x5a);
  f.set([1, 1, 54, 0, 0x78, 0x05, 34, 0, 16, 0], 0);            // NEEDS_CSUM, GSO_TCPV4, hdr_len 54, gso_size 1400, csum 34+16
  f.set([2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 8, 0], 10);          // to 02:..:02 (unknown: floods) from 02:..:01, IPv4
  const ip = 24;
  f.set([0x45, 0, ipLen >> 8, ipLen & 255, 0, 1, 0x40, 0, 64, 6, 0, 0, 198, 18, 0, 1, 198, 18, 0, 2], ip);
  f.writeUInt16BE(internetChecksum(f, ip, ip + 20), ip + 10);
  f.set([0x30, 0x39, 0x13, 0x89, 0, 0, 0, 1, 0, 0, 0, 1, 0x50, 0x10, 0xff, 0xff, 0, 0, 0, 0], ip + 20);
  return f;
};
// A plain frame (zero virtio header) from source MAC 02:aa:00:00:<i>, broadcast.
const fromMac = (i) => {
  const f = Buffer.alloc(10 + 60, 0);
  f.set([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0xaa, 0, (i >> 16) & 255, (i >> 8) & 255, i & 255, 0x88, 0xb5], 10);
  return f;
};

const a = n.openTap('vxa0', 1450, 'br0', true);
const b = n.openTap('vxb0', 1450, 'br0', true);
out.offloads = a.offloads;
const e = n.createEngine({ local: '198.51.100.1', port: 4789, underlayMtu: 1500, learning: true, agingMs: 1500, learnMaxPerPeer: 4096, learnMax: 65536, maxLocalMacs: 8, gsoSocketIdleMs: 1500, networks: [{ vni: 42, tapFd: a.fd, mtu: 1450, vnetHdr: a.vnetHdr }] });
e.setTable({ vnis: [{ vni: 42, peers: ['198.51.100.1'], macs: [] }] });
e.start();

// Finding 4. A 10 KB super-frame goes out as segments; then one 65 559 bytes long is dropped whole.
// A super-frame is counted when parsed, its segments as they are sent: wait for both (a loaded box sees between).
writeSync(b.fd, tso(10000));
await until(() => named(e).tx_tso_frames >= 1 && named(e).tx_datagrams >= 7);
out.small = named(e);
out.gsoOpen = e.gsoSockets(); // the super-frame's flow socket, used a moment ago
writeSync(b.fd, tso(65510)); // 65 534 bytes with the virtio header: the largest that fits the slot
await until(() => named(e).tx_tso_frames >= 2 && named(e).tx_bytes - out.small.tx_bytes >= 65524);
out.fits = named(e);
writeSync(b.fd, tso(65521)); // 65 545: the kernel copies 65 536 of it
await until(() => named(e).tx_too_big >= 1);
await sleep(300);
out.big = named(e);

// Finding 6. No peers from here on: only the local-MAC table matters.
e.setTable({ vnis: [{ vni: 42, peers: [], macs: [] }] });
const c = n.openTap('vxc0', 1450, 'br0', false);
const js = new JsEngine({ local: '198.51.100.1', port: 4790, underlayMtu: 1500, learning: true, agingMs: 1500, learnMaxPerPeer: 4096, learnMax: 65536, maxLocalMacs: 8, networks: [{ vni: 42, tapFd: c.fd, tapName: c.name, mtu: 1450 }] }, n);
await js.start();
js.applyTable({ vnis: [{ vni: 42, peers: [], macs: [] }] });
await sleep(1600); // what the first part left (02:..:01) ages out
for (let i = 0; i < 40; i++) writeSync(b.fd, fromMac(i));
await until(() => named(e).local_mac_refused >= 32 && js.counters().local_mac_refused >= 32);
out.spray = { native: named(e).local_mac_refused, js: js.counters().local_mac_refused };
await sleep(2700); // the sprayed MACs age out (1.5 s, swept at most once a second; margin for a loaded box); nobody reads the tables meanwhile (as with static peers)
for (let i = 100; i < 108; i++) writeSync(b.fd, fromMac(i));
await until(() => e.localMacs().length >= 8 && js.localMacs().length >= 8);
out.afterAging = { native: e.localMacs().map((m) => m.mac).sort(), js: js.localMacs().map((m) => m.mac).sort() };
out.refusedAfterAging = { native: named(e).local_mac_refused, js: js.counters().local_mac_refused };
// Over 4 s without a super-frame (none in the spray): the flow socket was closed on an aging tick.
out.gsoIdle = { open: e.gsoSockets(), closed: named(e).gso_sockets_closed, sends: named(e).tx_gso_sends, full: named(e).gso_sockets_full };
await js.close();
e.stop();
console.log(JSON.stringify(out));
`;

t.test('TX: a TAP read longer than the slot, and a source-MAC spray', { skip: labSkipReason() ?? false }, async (t) => {
  const lab = new Lab();
  t.teardown(() => lab.destroy());
  const host = await lab.addHost('txh', '198.51.100.1');
  const r = spawnSync('ip', ['netns', 'exec', host.ns, process.execPath, '--import', TSX, '--input-type=module', '-e', CHILD], { encoding: 'utf8', timeout: 60_000 });
  t.equal(r.status, 0, `the child ran to the end ${r.stderr}`);
  const out = JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}') as Record<string, Record<string, number> & Record<string, unknown>>;
  t.match(out.offloads, ['csum', 'tso4', 'tso6'], 'the TAPs take TSO');

  const small = out.small!, fits = out.fits!, big = out.big!;
  t.equal(small.tx_tso_frames, 1, 'the 10 KB super-frame was parsed');
  t.ok(small.tx_datagrams! >= 7, `and sent as ${small.tx_datagrams} segments`);
  t.equal(fits.tx_tso_frames, 2, 'a 65 524-byte super-frame (65 534 with its virtio header) is parsed');
  t.ok(fits.tx_bytes! - small.tx_bytes! >= 65_524, 'and sent whole');
  t.equal(big.tx_too_big, 1, 'a 65 535-byte one (65 545 with its virtio header: more than the slot) is counted once as tx_too_big');
  t.equal(big.tx_tso_frames, fits.tx_tso_frames, 'and never parsed as a super-frame');
  t.ok(big.tx_bytes! - fits.tx_bytes! < 60_000, `nothing of it was sent (tx_bytes +${big.tx_bytes! - fits.tx_bytes!}: only the bridge's own small frames)`);
  t.equal(big.tx_bad_offload, 0, 'no bad-offload drop');
  t.ok(small.tx_gso_sends! >= 1, `the segments left in ${small.tx_gso_sends} GSO send(s)`);
  t.equal(out.gsoOpen, 1, 'from one flow socket, open while in use');
  t.same(out.gsoIdle, { open: 0, closed: 1, sends: fits.tx_gso_sends, full: 0 }, 'unused for gsoSocketIdleMs: closed and counted (gso_sockets_closed), no GSO send since');

  const spray = out.spray as unknown as { native: number; js: number };
  t.ok(spray.native >= 32, `native: ${spray.native} new source MACs refused beyond maxLocalMacs 8`);
  t.ok(spray.js >= 32, `JS engine: ${spray.js} refused likewise`);
  const after = out.afterAging as unknown as { native: string[]; js: string[] };
  const fresh = Array.from({ length: 8 }, (_, i) => `02:aa:00:00:00:${(100 + i).toString(16)}`);
  t.same(after.native, fresh, 'native: the sprayed MACs aged out without a reader; 8 new ones took their place');
  t.same(after.js, fresh, 'JS engine: likewise');
  t.same(out.refusedAfterAging, spray, 'none of the 8 new ones refused');
  t.equal(configSchema.parse({ local: '198.51.100.1' }).maxLocalMacs, DEFAULT_MAX_LOCAL_MACS, 'config default = engine default (1024)');
});
