/**
 * The native engine's io_uring loop (issue 17), and its fallback to the threads loop:
 *
 *   c1 ── [h1] router --loop uring (one thread: vxr-uring) ══ underlay ══ [h2] router --loop uring, io_uring
 *                                                                          "forbidden" (VXLAN_ROUTER_URING_FAIL=EPERM,
 *                                                                          as a seccomp filter says) → threads ── c2
 *
 * Both forward, bytes intact both ways, between the two loops; `status` says which loop runs (and how io_uring
 * receives) and why not io_uring;
 * SIGTERM stops the io_uring loop promptly. h1 receives with a multishot recvmsg (VXLAN_ROUTER_URING_RECV=multishot)
 * into only 2 provided buffers
 * (VXLAN_ROUTER_URING_BUFS): it runs out of them, counts it and re-arms, and loses nothing. (The lab tests as a whole run on either loop with VXLAN_ROUTER_LOOP.)
 */
import { readdirSync, readFileSync } from 'node:fs';
import t from 'tap';
import { Lab, labSkipReason, twoHosts } from '../../src/lab/lab.js';
import { hashedTransfer } from '../../src/lab/transfers.js';
import { formatStatus } from '../../src/cli/format.js';

const skip = labSkipReason();
const STOP_BOUND_MS = 3000;

/** The names of a process's threads. */
function threadNames(pid: number): string[] {
  return readdirSync(`/proc/${pid}/task`).flatMap((tid) => {
    try {
      return [readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim()];
    } catch {
      return [];
    }
  });
}

t.test('io_uring loop: forwards, falls back where forbidden, stops promptly', { skip: skip ?? false }, async (t) => {
  const lab = new Lab();
  t.teardown(() => lab.destroy());
  const { h1, h2, c1, c2 } = await twoHosts(lab);
  Object.assign(process.env, { VXLAN_ROUTER_URING_RECV: 'multishot', VXLAN_ROUTER_URING_BUFS: '2' });
  const r1 = await lab.startRouter(h1, { peers: [h2.underlayIp], engine: 'native', args: ['--loop', 'uring'] }).finally(() => {
    delete process.env.VXLAN_ROUTER_URING_RECV;
    delete process.env.VXLAN_ROUTER_URING_BUFS;
  });
  // The router inherits this process's environment at spawn: only r2 sees the injected failure.
  process.env.VXLAN_ROUTER_URING_FAIL = 'EPERM';
  const r2 = await lab.startRouter(h2, { peers: [h1.underlayIp], engine: 'native', args: ['--loop', 'uring'] }).finally(() => delete process.env.VXLAN_ROUTER_URING_FAIL);

  t.same(await r1.loop(), { kind: 'uring', fallback: '', receive: 'multishot' }, 'h1 runs the io_uring loop, receiving with a multishot recvmsg');
  t.match(formatStatus(await r1.status()).join('\n'), /^  loop: uring, receive: multishot recvmsg into provided buffers$/m, 'status text says both');
  const names = threadNames(r1.pid);
  t.ok(names.includes('vxr-uring') && !names.some((n) => n === 'vxr-rx' || n.startsWith('vxr-tx')), `one data-path thread (${names.filter((n) => n.startsWith('vxr')).join(', ')})`);
  const l2 = await r2.loop();
  t.equal(l2.kind, 'threads', 'h2, io_uring forbidden, falls back to the threads loop');
  t.match(l2.fallback, /EPERM/, `and says why (${l2.fallback})`);
  t.equal(l2.receive, undefined, 'and no io_uring receive');
  t.ok(threadNames(r2.pid).includes('vxr-rx'), 'with its RX thread');

  t.equal((await lab.ping(c1.ns, c2.ip, 3)).loss, 0, 'c1 → c2 ping');
  t.equal((await lab.ping(c2.ns, c1.ip, 3)).loss, 0, 'c2 → c1 ping');
  for (const [from, to] of [[c1, c2], [c2, c1]] as const) {
    const x = await hashedTransfer(lab, from, to, 64);
    t.equal(x.receivedSha256, x.sentSha256, `64 MiB ${from.name} → ${to.name} intact (${x.mbitPerS.toFixed(0)} Mbit/s)`);
  }
  const k = await r1.counters();
  t.ok(k.rx_merged! > 0 || k.rx_datagrams! > 0, `h1 received (${k.rx_datagrams} datagrams, ${k.rx_merged} merged)`);
  t.ok(k.tx_tso_frames! > 0, `h1 sent TSO frames as segments (${k.tx_tso_frames})`);
  t.ok(k.rx_uring_no_buffers! > 0, `h1's multishot receive ran out of its 2 buffers and was re-armed (${k.rx_uring_no_buffers} times), transfers intact`);

  const t0 = Date.now();
  r1.child.kill('SIGTERM');
  const code = await Promise.race([r1.exited, new Promise<'hung'>((resolve) => setTimeout(() => resolve('hung'), STOP_BOUND_MS).unref())]);
  const ms = Date.now() - t0;
  if (code === 'hung') await r1.stop();
  t.equal(code, 0, `exit 0 ${ms} ms after SIGTERM (bound ${STOP_BOUND_MS} ms)`);
  t.notMatch((await lab.exec(h1.ns, 'ip', ['-o', 'link'])).stdout, /vxr42/, 'and its TAP is gone');
  t.equal(await r2.stop(), 0, 'the threads-loop router stops with exit 0');
});
