/**
 * NativeEngine keeps the table the addon took, never one it refused: the statics (fdbCounts) and the static entries
 * (fdb) stay those of the last good table. A fake addon stands in for the native one (the real one's refusals are
 * pinned in test/native/engine.test.ts). And loop() passes on how the io_uring loop receives (the real addon's in
 * test/lab/uring.test.ts).
 */
import t from 'tap';
import { NativeEngine } from '../../src/dataplane/native-engine.js';
import type { NativeAddon, NativeEngineHandle, NativeTable } from '../../src/dataplane/native.js';

t.test('a table the addon refuses is not kept', async (t) => {
  const taken: NativeTable[] = [];
  const handle: Partial<NativeEngineHandle> = {
    setTable: (table) => {
      if (table.vnis.some((v) => v.peers.includes('not-an-address'))) throw Object.assign(new Error('bad address'), { code: 'EINVAL' });
      taken.push(table);
    },
    start: () => undefined,
    stop: () => undefined,
    learned: () => [],
    learnedCount: () => 0,
  };
  const addon = { createEngine: () => handle } as unknown as NativeAddon;
  const e = new NativeEngine({ local: '198.51.100.1', port: 4789, underlayMtu: 1500, networks: [], learning: true, agingMs: 300_000 }, addon);
  await e.start();
  t.teardown(() => e.close());
  e.applyTable({ vnis: [{ vni: 42, peers: ['198.51.100.2'], macs: [{ mac: '02:00:00:00:00:01', vtep: '198.51.100.2' }] }] });
  t.throws(() => e.applyTable({ vnis: [{ vni: 42, peers: ['not-an-address'], macs: [] }] }), /bad address/);
  t.match(e.fdb(), [{ vni: 42, mac: '02:00:00:00:00:01', vtep: '198.51.100.2' }], 'the last good table stays');
  t.equal(e.fdbCounts().static, 1, 'and so do its counts');
  t.equal(taken.length, 2, 'the engine took the empty table at start and the good one');
});

t.test("loop(): the io_uring loop's receive as the addon reports it; none with threads or from an older build", async (t) => {
  const withLoop = async (loop: ReturnType<NativeEngineHandle['loop']>): Promise<ReturnType<NativeEngine['loop']>> => {
    const handle: Partial<NativeEngineHandle> = { setTable: () => undefined, start: () => undefined, stop: () => undefined, learned: () => [], learnedCount: () => 0, loop: () => loop };
    const e = new NativeEngine({ local: '198.51.100.1', port: 4789, underlayMtu: 1500, networks: [], learning: true, agingMs: 300_000 }, { createEngine: () => handle } as unknown as NativeAddon);
    await e.start();
    t.teardown(() => e.close());
    return e.loop();
  };
  t.same(await withLoop({ loop: 'uring', fallback: '', receive: 'multishot' }), { kind: 'uring', fallback: '', receive: 'multishot' });
  t.same(await withLoop({ loop: 'uring', fallback: '', receive: 'poll' }), { kind: 'uring', fallback: '', receive: 'poll' });
  t.same(await withLoop({ loop: 'threads', fallback: 'io_uring_setup: EPERM', receive: '' }), { kind: 'threads', fallback: 'io_uring_setup: EPERM' });
  t.same(await withLoop({ loop: 'uring', fallback: '' }), { kind: 'uring', fallback: '' }, 'an addon that does not say');
});
