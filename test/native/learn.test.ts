/**
 * The learned-MAC table's twins: native LearnTable (native/src/learn.h, through the learnScript twin) and
 * ForwardingTable (src/fdb/fdb.ts) take the same scripts (bounds per peer and in total, moves, aging, departed peers,
 * expiry sweeps, on an injected clock) and must give the same answers.
 */
import t from 'tap';
import { ForwardingTable, MAX_LEARNED } from '../../src/fdb/index.js';
import { loadNative, type LearnStep } from '../../src/dataplane/native.js';
import { formatMac } from '../../src/packet/index.js';
import { mulberry32 } from '../helpers/prng.js';

const native = loadNative();
const P1 = '198.51.100.2';
const P2 = '198.51.100.3';
const P6 = '2001:db8::2';

/** The same script through the TypeScript table. */
function runTs(o: { agingMs: number; maxPerPeer: number; maxTotal: number }, steps: readonly LearnStep[]): (string | number | null)[] {
  const clock = { now: 0 };
  const fdb = new ForwardingTable({ agingMs: o.agingMs, maxPerPeer: o.maxPerPeer, maxTotal: o.maxTotal, now: () => clock.now });
  return steps.map((s) => {
    switch (s[0]) {
      case 'table':
        fdb.load({ vnis: s[1].map((v) => ({ vni: v.vni, peers: [...v.peers], macs: [] })) });
        return null;
      case 'learn':
        clock.now = s[4];
        return fdb.learn(s[1], mac(s[2]), s[3]);
      case 'lookup': {
        clock.now = s[3];
        const r = fdb.lookup(s[1], mac(s[2]));
        return r.kind === 'unicast' ? r.vtep : null;
      }
      case 'sweep':
        clock.now = s[1];
        fdb.expire(MAX_LEARNED + 1); // to the end of the pass under way...
        fdb.expire(MAX_LEARNED + 1); // ...and one whole pass
        return fdb.learnedCount();
    }
  });
}

function mac(text: string): Uint8Array {
  return Uint8Array.from(text.split(':').map((b) => parseInt(b, 16)));
}
const nth = (i: number): string => formatMac(Uint8Array.of(2, 0, (i >>> 24) & 0xff, (i >>> 16) & 0xff, (i >>> 8) & 0xff, i & 0xff));

t.test('bounds, refreshes, moves, aging and departed peers: the same answers in C++ and TypeScript', async (t) => {
  const o = { agingMs: 1000, maxPerPeer: 3, maxTotal: 5 };
  const both = [{ vni: 42, peers: [P1, P2, P6] }, { vni: 43, peers: [P1] }];
  const steps: LearnStep[] = [
    ['table', both],
    ['learn', 42, nth(0), P1, 0],
    ['learn', 42, nth(1), P1, 0],
    ['learn', 42, nth(2), P1, 0],
    ['learn', 42, nth(3), P1, 0], // per-peer bound
    ['learn', 42, nth(0), P1, 10], // refresh while full
    ['learn', 42, nth(10), P6, 10],
    ['learn', 42, nth(11), P6, 10],
    ['learn', 43, nth(12), P1, 10], // total bound
    ['lookup', 42, nth(3), 10],
    ['lookup', 42, nth(10), 10],
    ['learn', 42, nth(10), P2, 20], // a move frees P6's slot
    ['lookup', 42, nth(10), 20],
    ['sweep', 500],
    ['sweep', 1005], // nth(1), nth(2) aged (seen at 0); nth(0) refreshed at 10
    ['learn', 42, nth(4), P1, 1006],
    ['table', [{ vni: 42, peers: [P2, P6] }]], // P1 departs
    ['lookup', 42, nth(4), 1007],
    ['lookup', 42, nth(10), 1007],
    ['sweep', 1008],
  ];
  const c = native.learnScript(o, steps);
  t.same(c, runTs(o, steps), 'C++ and TypeScript agree step by step');
  t.same(c.slice(1, 9), ['learned', 'learned', 'learned', 'full', 'known', 'learned', 'learned', 'full']);
  t.same(c.slice(9, 13), [null, P6, 'learned', P2]);
  t.same(c.slice(13, 15), [5, 3], 'the sweep erases only what aged');
  t.same(c.slice(17, 20), [null, P2, 2], "a departed peer's entries stop answering at once and go with the next sweep");
});

t.test('random scripts: the same answers', async (t) => {
  const rnd = mulberry32(14);
  for (let run = 0; run < 20; run++) {
    const o = { agingMs: 50 + Math.floor(rnd() * 200), maxPerPeer: 1 + Math.floor(rnd() * 20), maxTotal: 1 + Math.floor(rnd() * 40) };
    const peers = [P1, P2, P6];
    const steps: LearnStep[] = [['table', [{ vni: 1, peers }, { vni: 2, peers }]]];
    let peers1 = peers; // VNI 1's peers now: the engines only learn from peers (classification refuses the rest)
    let now = 0;
    for (let i = 0; i < 400; i++) {
      now += Math.floor(rnd() * 5);
      const r = rnd();
      const vni = 1 + Math.floor(rnd() * 2);
      const m = nth(Math.floor(rnd() * 60));
      const from = peers[Math.floor(rnd() * 3)]!;
      if (r < 0.75) {
        if (vni === 2 || peers1.includes(from)) steps.push(['learn', vni, m, from, now]);
      }
      else if (r < 0.9) steps.push(['lookup', vni, m, now]);
      else if (r < 0.97) steps.push(['sweep', now]);
      else {
        peers1 = peers.filter(() => rnd() < 0.7);
        steps.push(['table', [{ vni: 1, peers: peers1 }, { vni: 2, peers }]]);
      }
    }
    const c = native.learnScript(o, steps);
    const ts = runTs(o, steps);
    const first = c.findIndex((x, i) => x !== ts[i]);
    t.equal(first, -1, `run ${run}: first difference at step ${first}: ${JSON.stringify(steps[first])} C++ ${String(c[first])} TS ${String(ts[first])}`);
  }
});

t.test('the default-sized table sweeps in bounded slices and never rehashes past its bound', async (t) => {
  const o = { agingMs: 1000, maxPerPeer: 4096, maxTotal: 65536 };
  const steps: LearnStep[] = [['table', [{ vni: 42, peers: [P1] }]]];
  for (let i = 0; i < 5000; i++) steps.push(['learn', 42, nth(i), P1, 0]);
  steps.push(['sweep', 10], ['sweep', 1000]);
  const c = native.learnScript(o, steps);
  t.equal(c.filter((x) => x === 'learned').length, 4096);
  t.equal(c.filter((x) => x === 'full').length, 5000 - 4096);
  t.same(c.slice(-2), [4096, 0]);
});
