/**
 * Issue 14, "Proof, in CI": the 30-second soak (src/lab/soak.ts draws the lab and defines which drops are expected).
 * Three hosts through etcd, TCP and UDP at full load, MAC churn on the bridges, h3's router joining and leaving;
 * afterwards no router died, RSS grew ≤ 5 MiB and fds ≤ 4 after the 10 s warm-up, no unexpected drop counter moved,
 * and a SHA-256-checked transfer passes. `npm run soak -- --minutes N` is the long version.
 */
import t from 'tap';
import { etcdSkipReason } from '../../src/lab/etcd.js';
import { labSkipReason } from '../../src/lab/lab.js';
import { runSoak } from '../../src/lab/soak.js';

t.test('30-second soak: load, MAC churn, a peer joining and leaving', { skip: labSkipReason() ?? etcdSkipReason() ?? false }, async (t) => {
  const r = await runSoak({ seconds: 30, warmupSeconds: 10, sampleSeconds: 5, churnSeconds: 4, engine: 'native', udpMbit: 300, log: (l) => t.comment(l) });
  t.comment(`drops after warm-up: ${JSON.stringify(r.drops)}; TCP ${r.tcpGbit.toFixed(2)} Gbit/s, UDP ${r.udpPackets} datagrams`);
  t.same(r.problems, [], 'no death, growth, unexpected drop or failed transfer');
  t.ok(r.joins >= 1, `h3 joined (${r.joins}×) and left`);
  t.ok(r.macChanges >= 4, `MACs changed (${r.macChanges}×)`);
  t.ok(r.tcpGbit > 0 && r.udpPackets > 0, 'TCP and UDP ran');
  t.ok(r.transferOk, 'the transfer at the end passed');
});
