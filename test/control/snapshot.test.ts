/**
 * The on-disk snapshot: round trip through msgpackr, atomic replacement, every kind of bad file ignored with a reason
 * (never a throw), and the debounce driven by a fake clock.
 */
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Packr } from 'msgpackr';
import t from 'tap';
import {
  decodeSnapshot,
  encodeSnapshot,
  readSnapshot,
  SNAPSHOT_FORMAT,
  SnapshotWriter,
  snapshotPath,
  writeFileAtomic,
  type RegistrySnapshot,
} from '../../src/control/index.js';

const dir = mkdtempSync(join(tmpdir(), 'vxr-snapshot-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

const snap = (revision: number, peers: string[] = ['198.51.100.2']): RegistrySnapshot => ({
  savedAt: '2025-01-01T00:00:00.000Z',
  hostId: 'h1',
  revision,
  network: { version: 1, name: 'default', vni: 42, subnet: '198.18.0.0/15', port: 4789 },
  table: {
    vnis: [{ vni: 42, peers, macs: [{ mac: '02:00:00:00:00:02', vtep: '198.51.100.2', origin: 'etcd' }], neighbors: [{ ip: '198.18.0.2', mac: '02:00:00:00:00:02' }] }],
  },
  range: '198.18.1.0/24',
});

/** A clock whose timers fire only when the test advances it. */
class FakeClock {
  now = 0;
  private timers: { at: number; fn: () => void; id: number }[] = [];
  private next = 1;
  setTimeout = (fn: () => void, ms: number): unknown => {
    const id = this.next++;
    this.timers.push({ at: this.now + ms, fn, id });
    return id;
  };
  clearTimeout = (h: unknown): void => {
    this.timers = this.timers.filter((x) => x.id !== h);
  };
  advance(ms: number): void {
    this.now += ms;
    const due = this.timers.filter((x) => x.at <= this.now);
    this.timers = this.timers.filter((x) => x.at > this.now);
    for (const x of due) x.fn();
  }
}

t.test('round trip, path, atomic write', async (t) => {
  const path = snapshotPath(dir, 'default');
  t.equal(path, join(dir, 'default.snapshot'));
  writeFileAtomic(path, encodeSnapshot(snap(7)));
  const read = readSnapshot(path, { hostId: 'h1', network: 'default' });
  t.same(read, { ok: true, snapshot: snap(7) }, 'origins, neighbours and the range survive the round trip');
  // A file written before the table had one schema has no origins: its MACs came from etcd.
  const { table: _t, ...rest } = snap(7);
  const old = encodeSnapshot({ ...rest, table: { vnis: [{ vni: 42, peers: [], macs: [{ mac: '02:00:00:00:00:02', vtep: '198.51.100.2' }] }] } });
  t.match(decodeSnapshot(old), { ok: true, snapshot: { table: { vnis: [{ macs: [{ origin: 'etcd' }] }] } } }, 'an older file: MACs from etcd');
  writeFileAtomic(path, encodeSnapshot(snap(8)));
  t.match(readSnapshot(path), { ok: true, snapshot: { revision: 8 } }, 'replaced');
  t.same(readdirSync(dir), ['default.snapshot'], 'no temp file left behind');
  // The writer makes the state dir when it is created, once; a dir removed later is not made again by a late write.
  const nested = join(dir, 'a', 'b', 'x.snapshot');
  const errors: string[] = [];
  const w = new SnapshotWriter({ path: nested, debounceMs: 0, onError: (e) => errors.push(e.message) });
  t.ok(existsSync(join(dir, 'a', 'b')), 'the state dir is created with the writer');
  w.save(snap(1));
  w.flush();
  t.ok(existsSync(nested), 'and the snapshot written into it');
  rmSync(join(dir, 'a'), { recursive: true });
  w.save(snap(2));
  w.flush();
  w.close();
  t.notOk(existsSync(join(dir, 'a')), 'a write after the dir was removed does not make it again');
  t.match(errors, [/ENOENT/], 'it fails and is reported');
  t.throws(() => writeFileAtomic(join(path, 'under-a-file.snapshot'), new Uint8Array(1)), /ENOTDIR|ENOENT/, 'a write error surfaces (the writer reports it)');
});

t.test('bad snapshots are ignored with a reason, never a throw', async (t) => {
  const p = (name: string, bytes: Uint8Array | string): string => {
    const f = join(dir, name);
    writeFileSync(f, bytes);
    return f;
  };
  t.match(readSnapshot(join(dir, 'none.snapshot')), { ok: false, missing: true, reason: 'no snapshot yet' });
  t.match(readSnapshot(dir), { ok: false, missing: false, reason: /unreadable \(EISDIR/ });
  t.match(readSnapshot(p('empty', '')), { ok: false, reason: /^not a snapshot/ });
  t.match(readSnapshot(p('text', 'hello, world')), { ok: false, missing: false, reason: /not a (vxlan-router )?snapshot/ });
  const plain = new Packr({ useRecords: false });
  t.match(decodeSnapshot(plain.pack({ hello: 1 })), { ok: false, reason: 'not a vxlan-router snapshot' });
  t.match(decodeSnapshot(plain.pack({ magic: 'vxlan-router-snapshot', format: SNAPSHOT_FORMAT + 1 })), {
    ok: false,
    reason: `snapshot format ${SNAPSHOT_FORMAT + 1}, this version reads ${SNAPSHOT_FORMAT}`,
  });
  t.match(decodeSnapshot(plain.pack({ magic: 'vxlan-router-snapshot', format: 0 })), { ok: false, reason: /snapshot format 0/ }, 'an old format too');
  const broken = { magic: 'vxlan-router-snapshot', format: SNAPSHOT_FORMAT, ...snap(3), network: { name: 'default', vni: 99999999 } };
  t.match(decodeSnapshot(plain.pack(broken)), { ok: false, reason: /^corrupt snapshot: network\./ });
  const good = encodeSnapshot(snap(3));
  t.match(decodeSnapshot(good.subarray(0, good.length - 5)), { ok: false }, 'a truncated file');
  for (let i = 0; i < 200; i++) {
    const flipped = Buffer.from(good);
    const at = (i * 7919) % flipped.length;
    flipped[at] = flipped[at]! ^ 0xff;
    const r = decodeSnapshot(flipped);
    t.ok(r.ok === false || r.snapshot.revision >= 0, 'a flipped byte is a reason or a valid document, never a throw');
  }
  t.match(decodeSnapshot(good, { hostId: 'h2' }), { ok: false, reason: 'snapshot of host h1, not of h2' });
  t.match(decodeSnapshot(good, { network: 'other' }), { ok: false, reason: 'snapshot of network default, not of other' });
});

t.test('writes are debounced on a fake clock, flushed on close', async (t) => {
  const clock = new FakeClock();
  const written: RegistrySnapshot[] = [];
  const errors: Error[] = [];
  let fail = false;
  const w = new SnapshotWriter({
    path: join(dir, 'debounced.snapshot'),
    debounceMs: 500,
    clock,
    write: (path, bytes) => {
      if (fail) throw new Error('disk full');
      writeFileAtomic(path, bytes);
    },
    onWrite: (s) => written.push(s),
    onError: (e) => errors.push(e),
  });
  for (let r = 1; r <= 5; r++) w.save(snap(r));
  clock.advance(499);
  t.equal(written.length, 0, 'nothing before the debounce');
  clock.advance(1);
  t.same(written.map((s) => s.revision), [5], 'one write, of the newest state');
  t.match(readSnapshot(w.path), { ok: true, snapshot: { revision: 5 } });
  clock.advance(10_000);
  t.equal(written.length, 1, 'no write without a change');

  w.save(snap(6));
  clock.advance(200);
  w.save(snap(7));
  clock.advance(300);
  t.same(written.map((s) => s.revision), [5, 7], 'the debounce counts from the first change of a burst');

  fail = true;
  w.save(snap(8));
  clock.advance(500);
  t.equal(errors[0]?.message, 'disk full', 'a failed write is reported, not thrown');
  fail = false;
  w.save(snap(9));
  w.close();
  t.same(written.map((s) => s.revision), [5, 7, 9], 'close flushes what is pending');
  w.close();
  w.save(snap(10));
  clock.advance(1000);
  t.equal(w.writes, 3, 'nothing after close; close twice is fine');
});
