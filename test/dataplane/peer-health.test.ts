/**
 * The peer prober (src/dataplane/peer-health.ts) on a fake clock against simulated paths: liveness and RTT, the path
 * MTU found by bisection (losses far away, EMSGSIZE close by), a path that shrinks later noticed within a minute, loss
 * over the last minute, down and unknown, the bounds, and replies that match nothing.
 */
import t from 'tap';
import { LOSS_WINDOW_MS, MAX_PROBED_PEERS, MAX_PROBES_PER_SECOND, PeerProber, type ProbeReply } from '../../src/dataplane/peer-health.js';
import { parseProbe } from '../../src/packet/index.js';

interface Path {
  /** Largest outer packet that crosses (beyond: lost silently); local: refused at once (EMSGSIZE). */
  mtu: number;
  local?: number;
  up: boolean;
  rttMs: number;
}

/** A prober on a fake clock whose sends go through `paths`; step() advances time and delivers the replies. */
function sim(paths: Record<string, Path>, intervalMs = 5000, maxMtu = 1500) {
  let now = 1_000_000;
  const pending: { at: number; reply: ProbeReply }[] = [];
  const sent: { at: number; to: string; size: number }[] = [];
  const prober = new PeerProber({
    maxMtu,
    intervalMs,
    now: () => now,
    nowNs: () => BigInt(now) * 1_000_000n,
    send: async (to, payload) => {
      const size = payload.length + 28;
      const path = paths[to]!;
      if (path.local !== undefined && size > path.local) return 'too-big';
      sent.push({ at: now, to, size });
      const p = parseProbe(payload)!;
      if (path.up && size <= path.mtu) pending.push({ at: now + path.rttMs, reply: { from: to, id: p.id, length: payload.length, rttMs: path.rttMs } });
      return 'sent';
    },
  });
  prober.setPeers(Object.keys(paths));
  const step = async (ms: number): Promise<void> => {
    for (const end = now + ms; now < end; ) {
      now += 250;
      for (const p of pending.splice(0)) if (p.at <= now) prober.answer(p.reply);
      else pending.push(p);
      prober.tick();
      await Promise.resolve(); // the send's promise settles
      await Promise.resolve();
    }
  };
  const row = (a: string) => prober.rows().find((r) => r.address === a)!;
  return { prober, step, row, sent, get now() { return now; } };
}

t.test('peers answering: up, RTT, path MTU of the whole underlay with one probe', async (t) => {
  const s = sim({ '198.51.100.2': { mtu: 1500, up: true, rttMs: 0.5 }, '198.51.100.3': { mtu: 1500, up: true, rttMs: 20 } });
  t.equal(s.row('198.51.100.2').state, 'unknown', 'unknown before the first answer');
  await s.step(3000);
  const a = s.row('198.51.100.2');
  t.match(a, { state: 'up', rttMs: 0.5, pathMtu: 1500, measuring: false, lossPercent: 0 });
  t.equal(s.row('198.51.100.3').rttMs, 20);
  t.equal(s.sent.filter((x) => x.to === '198.51.100.2' && x.size > 100).length, 1, 'one full-size probe was enough');
  t.same([...s.prober.pathMtus()], [], 'nothing to hold the data path to');
});

t.test('a smaller path far away: bisection to the byte, through losses', async (t) => {
  const s = sim({ '198.51.100.2': { mtu: 1400, up: true, rttMs: 1 } });
  await s.step(30_000);
  t.match(s.row('198.51.100.2'), { state: 'up', pathMtu: 1400, measuring: false });
  t.same([...s.prober.pathMtus()], [['198.51.100.2', 1400]]);
  t.equal(s.row('198.51.100.2').lossPercent, 0, 'lost MTU probes are not liveness loss');
});

t.test('a smaller link here: EMSGSIZE makes the search quick', async (t) => {
  const s = sim({ '198.51.100.2': { mtu: 1500, local: 1280, up: true, rttMs: 1 } });
  await s.step(4000);
  t.equal(s.row('198.51.100.2').pathMtu, 1280);
});

t.test('IPv6 peer: sizes are outer IPv6 packets', async (t) => {
  const s = sim({ '2001:db8::2': { mtu: 1500, up: true, rttMs: 1 } });
  // The simulation adds 28 bytes of headers; IPv6 has 48: a 1500-byte IPv6 probe looks like 1480 here.
  await s.step(3000);
  t.equal(s.row('2001:db8::2').pathMtu, 1500);
});

t.test('a path that shrinks later is noticed within a minute', async (t) => {
  const paths = { '198.51.100.2': { mtu: 1500, up: true, rttMs: 1 } };
  const s = sim(paths);
  await s.step(5000);
  t.equal(s.row('198.51.100.2').pathMtu, 1500);
  paths['198.51.100.2'].mtu = 1380; // a tunnel appears on the underlay
  let found = -1;
  for (let ms = 0; ms <= 60_000 && found < 0; ms += 250) {
    await s.step(250);
    if (s.row('198.51.100.2').pathMtu === 1380 && !s.row('198.51.100.2').measuring) found = ms;
  }
  t.ok(found >= 0 && found <= 60_000, `noticed after ${found / 1000} s`);
  t.equal(s.row('198.51.100.2').state, 'up', 'and it stayed up throughout');
  paths['198.51.100.2'].mtu = 1500; // and grows back: the raise probe (every 60 intervals) finds it
  await s.step(5 * 60_000 + 5000);
  t.equal(s.row('198.51.100.2').pathMtu, 1500, 'a path that grew back is found again');
});

t.test('loss over the last minute, then down; back up', async (t) => {
  const paths = { '198.51.100.2': { mtu: 1500, up: true, rttMs: 1 } };
  const s = sim(paths, 1000);
  await s.step(30_000);
  t.equal(s.row('198.51.100.2').lossPercent, 0);
  paths['198.51.100.2'].up = false;
  await s.step(2500);
  t.equal(s.row('198.51.100.2').state, 'up', 'still up within 3 intervals');
  await s.step(2000);
  const down = s.row('198.51.100.2');
  t.equal(down.state, 'down', 'down after 3 intervals without an answer');
  t.ok(down.lossPercent! > 0 && down.lossPercent! < 20, `loss ${down.lossPercent}% over the minute`);
  t.equal(down.pathMtu, 1500, "a dead peer's losses do not shrink its path MTU");
  await s.step(LOSS_WINDOW_MS);
  t.equal(s.row('198.51.100.2').lossPercent, 100, 'a minute later: all lost');
  paths['198.51.100.2'].up = true;
  await s.step(2000);
  t.equal(s.row('198.51.100.2').state, 'up', 'up again at the next answer');
});

t.test('never answering: unknown while its traffic arrives (a kernel VTEP), else down', async (t) => {
  const s = sim({ '198.51.100.2': { mtu: 1500, up: false, rttMs: 1 }, '198.51.100.3': { mtu: 1500, up: false, rttMs: 1 } });
  await s.step(5000);
  t.equal(s.row('198.51.100.3').state, 'unknown', 'not probed long enough');
  await s.step(15_000);
  const rows = s.prober.rows((a) => (a === '198.51.100.2' ? 300 : undefined));
  t.match(rows.find((r) => r.address === '198.51.100.2'), { state: 'unknown', pathMtu: null, rttMs: null, lastAnswerAgoMs: null });
  t.match(rows.find((r) => r.address === '198.51.100.3'), { state: 'down', lossPercent: 100 });
  t.notOk(s.sent.some((x) => x.size > 100), 'no path MTU probes to a peer that never answered');
});

t.test('bounds: peers probed, probes per second', async (t) => {
  const paths: Record<string, Path> = {};
  for (let i = 0; i < MAX_PROBED_PEERS + 50; i++) paths[`10.${(i >> 8) & 255}.${i & 255}.1`] = { mtu: 1400, up: true, rttMs: 1 };
  const s = sim(paths, 1000);
  t.equal(s.prober.unprobed, 50, 'peers over the bound are not probed');
  await s.step(10_000);
  const perSecond = new Map<number, number>();
  for (const x of s.sent) perSecond.set(Math.floor(x.at / 1000), (perSecond.get(Math.floor(x.at / 1000)) ?? 0) + 1);
  t.ok(Math.max(...perSecond.values()) <= MAX_PROBES_PER_SECOND, `at most ${MAX_PROBES_PER_SECOND} probes a second (max seen ${Math.max(...perSecond.values())})`);
  s.prober.setPeers(['10.0.0.1']);
  t.equal(s.prober.rows().length, 1, 'peers that left are forgotten');
});

t.test('replies that match nothing are ignored', async (t) => {
  const s = sim({ '198.51.100.2': { mtu: 1500, up: false, rttMs: 1 } });
  await s.step(1000);
  for (let id = 0; id < 100; id++) s.prober.answer({ from: '198.51.100.2', id, length: 24, rttMs: 1 });
  s.prober.answer({ from: '198.51.100.9', id: 1, length: 24, rttMs: 1 });
  t.match(s.row('198.51.100.2'), { answers: 0, lastAnswerAgoMs: null });
});

t.test('a peer away for a while comes back with its whole path MTU, not a byte less', async (t) => {
  const paths = { '198.51.100.2': { mtu: 1500, up: true, rttMs: 1 } };
  const s = sim(paths, 1000);
  await s.step(3000);
  t.equal(s.row('198.51.100.2').pathMtu, 1500);
  paths['198.51.100.2'].up = false;
  await s.step(10_000);
  paths['198.51.100.2'].up = true;
  await s.step(10_000);
  t.match(s.row('198.51.100.2'), { state: 'up', pathMtu: 1500, measuring: false });
  t.same([...s.prober.pathMtus()], [], 'the data path is not held to less');
});

t.test("a peer that does not answer probes (a kernel VTEP): the kernel's path MTU toward it, when below the underlay's", async (t) => {
  let now = 1_000_000;
  const route: Record<string, number> = { '198.51.100.3': 1500, '198.51.100.4': 0 };
  let changed = 0;
  const prober = new PeerProber({
    maxMtu: 1500,
    intervalMs: 1000,
    now: () => now,
    send: async () => 'sent', // nobody answers
    routeMtu: (to) => route[to] ?? 0,
    onPathMtu: () => changed++,
  });
  prober.setPeers(['198.51.100.3', '198.51.100.4']);
  const run = (ms: number): void => {
    for (const end = now + ms; now < end; now += 250) prober.tick();
  };
  const row = (a: string) => prober.rows().find((r) => r.address === a)!;
  run(2000);
  t.match(row('198.51.100.3'), { pathMtu: null, routeMtu: null }, 'the underlay MTU itself: nothing to say');
  t.same([...prober.pathMtus()], [], 'and nothing for the data path');
  route['198.51.100.3'] = 1400; // the device's MTU lowered, or an ICMP "fragmentation needed" from the underlay
  run(1500);
  t.match(row('198.51.100.3'), { pathMtu: null, routeMtu: 1400 }, 'read again at its next liveness probe');
  t.same([...prober.pathMtus()], [['198.51.100.3', 1400]], 'the data path holds frames to it');
  t.equal(changed, 1, 'and hears of it at once');
  t.equal(row('198.51.100.4').routeMtu, null, 'a path the kernel cannot tell (0) is not used');
  route['198.51.100.3'] = 20; // nonsense: smaller than any probe
  run(1500);
  t.equal(row('198.51.100.3').routeMtu, null, 'a figure below the smallest packet is ignored');
  t.equal(changed, 2);
});
