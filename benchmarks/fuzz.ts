/**
 * `npm run fuzz`: the fuzz of test/lab/fuzz.test.ts at any size (src/lab/fuzz-run.ts draws the lab).
 *
 *   npm run fuzz -- [--count 1000000] [--frames N (default count/2)] [--engine native|js] [--seed 14] [--pps 40000]
 *                   [--rounds 2]
 *
 * `count` datagrams in all, half from a non-peer and half from a peer, then `frames` frames into the bridge; with
 * `--rounds N` that mix N times on the same router (new seeds each round). Prints each phase (expected and counted per
 * drop reason, kernel drops), where the router's memory is after each round (V8 heap vs the rest), RSS before and
 * after and the time; exits 1 when the router died, the transfer failed, RSS grew by 24 MiB or more, or by 5 MiB
 * or more after round 1 (round 1 fills the bounded tables: 4096 learned MACs from the peer, 1024 local MACs with 8
 * addresses each, and the V8 heap sizes itself for them — measured +17 to +20 MiB; a leak grows every round), or a
 * datagram is unaccounted for.
 */
import { parseArgs } from 'node:util';
import { labSkipReason } from '../src/lab/lab.js';
import { runFuzz } from '../src/lab/fuzz-run.js';

const { values: opt } = parseArgs({
  options: {
    count: { type: 'string', default: '1000000' },
    frames: { type: 'string' },
    engine: { type: 'string', default: 'native' },
    seed: { type: 'string', default: '14' },
    pps: { type: 'string', default: '40000' },
    rounds: { type: 'string', default: '2' },
  },
});
const skip = labSkipReason();
if (skip !== undefined) {
  console.error(`fuzz: ${skip}`);
  process.exit(2);
}
const count = Number(opt.count);
const engine = opt.engine === 'js' ? 'js' : 'native';
const s = await runFuzz({
  engine,
  datagramsPerSender: Math.ceil(count / 2),
  frames: Number(opt.frames ?? Math.ceil(count / 2)),
  seed: Number(opt.seed),
  pps: Number(opt.pps),
  rounds: Number(opt.rounds),
  log: (l) => console.log(l),
});
const problems: string[] = [];
if (!s.alive) problems.push('router not alive');
if (!s.transfer.ok) problems.push('transfer failed');
if (s.rssAfterMiB - s.rssBeforeMiB >= 24) problems.push(`RSS grew ${(s.rssAfterMiB - s.rssBeforeMiB).toFixed(1)} MiB`);
const afterFirst = s.rssAfterRoundMiB.at(-1)! - s.rssAfterRoundMiB[0]!;
if (afterFirst >= 5) problems.push(`RSS grew ${afterFirst.toFixed(1)} MiB after round 1 (rounds ${s.rssAfterRoundMiB.map((r) => r.toFixed(1)).join(' → ')} MiB)`);
for (const p of s.phases) {
  const missing = p.sent - p.accounted - p.kernelDrops;
  if (missing !== 0) problems.push(`${p.sender}: ${missing} datagrams in no counter (${p.empty} had an empty payload)`);
}
console.log(`summary: engine ${engine}, seed ${s.seed}, ${s.phases.reduce((n, p) => n + p.sent, 0)} datagrams + ${s.frames.sent} frames, RSS ${s.rssBeforeMiB.toFixed(1)} → ${s.rssAfterRoundMiB.map((r) => r.toFixed(1)).join(' → ')} MiB, ${s.seconds.toFixed(0)} s: ${problems.length === 0 ? 'ok' : problems.join('; ')}`);
process.exit(problems.length === 0 ? 0 : 1);
