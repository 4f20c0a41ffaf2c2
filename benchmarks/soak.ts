/**
 * `npm run soak`: hosts through etcd at full load with MAC churn and peers joining and leaving (src/lab/soak.ts).
 *
 *   npm run soak -- [--minutes 10] [--engine native|js] [--udp-mbit 300] [--churn-seconds 5]
 *
 * Prints the routers' RSS and open fds every minute (warm-up: the first minute, or a third of a shorter run), then the
 * drop counters that moved, the traffic, and ok or what failed; exits 1 on a failure.
 */
import { parseArgs } from 'node:util';
import { etcdSkipReason } from '../src/lab/etcd.js';
import { labSkipReason } from '../src/lab/lab.js';
import { runSoak } from '../src/lab/soak.js';

const { values: opt } = parseArgs({
  options: {
    minutes: { type: 'string', default: '10' },
    engine: { type: 'string', default: 'native' },
    'udp-mbit': { type: 'string', default: '300' },
    'churn-seconds': { type: 'string', default: '5' },
  },
});
const skip = labSkipReason() ?? etcdSkipReason();
if (skip !== undefined) {
  console.error(`soak: ${skip}`);
  process.exit(2);
}
const seconds = Math.round(Number(opt.minutes) * 60);
const started = Date.now();
const r = await runSoak({
  seconds,
  warmupSeconds: Math.min(60, Math.round(seconds / 3)),
  sampleSeconds: Math.min(60, Math.max(5, Math.round(seconds / 6))),
  churnSeconds: Number(opt['churn-seconds']),
  engine: opt.engine === 'js' ? 'js' : 'native',
  udpMbit: Number(opt['udp-mbit']),
  log: (l) => console.log(l),
});
console.log(`drops after warm-up: ${r.drops.map((d, i) => `h${i + 1} ${JSON.stringify(d)}`).join(', ')}`);
console.log(`traffic: TCP ${r.tcpGbit.toFixed(2)} Gbit/s avg, UDP ${r.udpPackets} datagrams (${r.udpLostPercent.toFixed(2)} % lost); ${r.macChanges} MAC changes, ${r.joins} joins of h3; transfer at the end ${r.transferOk ? 'ok' : 'FAILED'}`);
console.log(`soak ${opt.minutes} min, ${((Date.now() - started) / 1000).toFixed(0)} s in all: ${r.problems.length === 0 ? 'ok' : `FAILED: ${r.problems.join('; ')}`}`);
process.exit(r.problems.length === 0 ? 0 : 1);
