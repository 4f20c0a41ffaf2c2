/** Per-peer / per-VNI traffic of the JS engine (the native twin is pinned by test/native/engine.test.ts). */
import t from 'tap';
import { MAX_REJECTED, TrafficStats } from '../../src/dataplane/traffic.js';

t.test('counts per peer and per VNI, last heard on a fake clock', async (t) => {
  let now = 1000;
  const s = new TrafficStats(() => now);
  s.forwarded(42, 100);
  s.sent('198.51.100.2', 100);
  s.sent('198.51.100.3', 100);
  now = 1500;
  s.received('198.51.100.2', 42, 60);
  s.received('198.51.100.2', 7, 40);
  now = 1750;
  const snap = s.snapshot();
  t.same(snap.peers, [
    { address: '198.51.100.2', rxFrames: 2, rxBytes: 100, txFrames: 1, txBytes: 100, lastRxAgoMs: 250 },
    { address: '198.51.100.3', rxFrames: 0, rxBytes: 0, txFrames: 1, txBytes: 100, lastRxAgoMs: -1 },
  ]);
  t.same(snap.vnis, [
    { vni: 42, rxFrames: 1, rxBytes: 60, txFrames: 1, txBytes: 100 },
    { vni: 7, rxFrames: 1, rxBytes: 40, txFrames: 0, txBytes: 0 },
  ]);
  s.retain(new Set(['198.51.100.3']));
  t.same(s.snapshot().peers.map((p) => p.address), ['198.51.100.3'], 'peers that left the table are forgotten');
});

t.test('refused sources: counted per (address, VNI), the least recently seen gives way', async (t) => {
  let now = 0;
  const s = new TrafficStats(() => now);
  s.refusedSource('198.51.100.9', 42);
  now = 10;
  s.refusedSource('198.51.100.9', 42);
  t.same(s.snapshot().rejected, [{ address: '198.51.100.9', vni: 42, count: 2, agoMs: 0 }]);
  for (let i = 0; i < MAX_REJECTED; i++) {
    now = 20 + i;
    s.refusedSource(`198.51.100.${100 + i}`, 42);
  }
  const rows = s.snapshot().rejected;
  t.equal(rows.length, MAX_REJECTED, 'bounded');
  t.notOk(rows.some((r) => r.address === '198.51.100.9'), 'the oldest went');
  t.equal(s.snapshot().peers.length, 0, 'a refused source is not a peer');
});
