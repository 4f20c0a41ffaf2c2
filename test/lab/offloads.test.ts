/**
 * The native engine's offloads (TSO from the TAP, UDP GSO sends, GRO-style merging into the TAP) under bulk TCP:
 *
 *   native ↔ native: 1 GiB c1 → c2 with its SHA-256 checked, while a capture on h2 shows what the wire carries.
 *     The switch port towards h2 has UDP segmentation offload off, so the kernel cuts our GSO sends there into
 *     datagrams as a NIC would: every one must be a whole, unfragmented VXLAN datagram within the underlay MTU.
 *   native ↔ kernel VXLAN: 1 GiB each way, SHA-256 checked.
 */
import { rmSync } from 'node:fs';
import t from 'tap';
import { Lab, labSkipReason, PROBE_FILTER, twoHosts, UNDERLAY_MTU } from '../../src/lab/lab.js';
import { hashedTransfer } from '../../src/lab/transfers.js';

const skip = labSkipReason();
const GIB = 1024;

t.test('native ↔ native, offloads on: 1 GiB intact, nothing fragmented or oversized on the wire', { skip: skip ?? false }, async (t) => {
  const lab = new Lab();
  const pcap = `/tmp/vxr${lab.id}-offloads.pcap`;
  t.teardown(async () => {
    await lab.destroy();
    rmSync(pcap, { force: true });
  });
  const { h1, h2, c1, c2 } = await twoHosts(lab);
  const r1 = await lab.startRouter(h1, { peers: [h2.underlayIp], engine: 'native' });
  const r2 = await lab.startRouter(h2, { peers: [h1.underlayIp], engine: 'native' });
  const sw = (await lab.exec('', 'ip', ['netns', 'list'])).stdout.match(new RegExp(`vxr${lab.id}-switch`))?.[0];
  t.ok(sw, 'the switch namespace');
  await lab.exec(sw!, 'ethtool', ['-K', 'h2', 'tx-udp-segmentation', 'off']);

  const dump = await lab.capture(h2.ns, 'eth0', ['udp', 'and', 'src', 'host', h1.underlayIp, 'and', 'not', PROBE_FILTER], { seconds: 120, count: 5000, pcap });
  const x = await hashedTransfer(lab, c1, c2, GIB);
  t.equal(x.receivedSha256, x.sentSha256, `1 GiB c1 → c2 intact (${x.mbitPerS.toFixed(0)} Mbit/s)`);
  await dump.stop();

  const fields = await lab.exec('', 'tshark', [
    // occurrence=f: the outer IP header's fields (the inner frame has one too).
    '-r', pcap, '-T', 'fields', '-E', 'separator=,', '-E', 'occurrence=f',
    '-e', 'ip.len', '-e', 'ip.flags.mf', '-e', 'ip.frag_offset', '-e', 'udp.length', '-e', 'vxlan.vni', '-e', 'tcp.len',
  ]);
  const rows = fields.stdout.trim().split('\n').map((l) => l.split(',').map(Number));
  t.ok(rows.length >= 1000, `captured ${rows.length} datagrams`);
  const bad = rows.filter(([ipLen, mf, frag, udpLen, vni]) => ipLen! > UNDERLAY_MTU || mf !== 0 || frag !== 0 || udpLen !== ipLen! - 20 || vni !== 42);
  t.same(bad.slice(0, 5), [], `every datagram: one whole VXLAN datagram of at most ${UNDERLAY_MTU} bytes, not a fragment`);
  t.ok(rows.filter((r) => r[5]! > 1000).length > rows.length / 2, 'mostly full-size TCP segments inside');

  const [k1, k2] = [await r1.counters(), await r2.counters()];
  t.ok(k1.tx_tso_frames! > 1000 && k1.tx_gso_sends! > 1000, `h1 cut ${k1.tx_tso_frames} TSO frames, ${k1.tx_gso_sends} GSO sends`);
  t.ok(k2.rx_merged! > 100_000, `h2 merged ${k2.rx_merged} segments`);
  t.equal(k1.tx_too_big! + k1.tx_bad_offload! + k1.tx_send_error!, 0, 'no TX drops');
  t.equal(k2.rx_oversize! + k2.rx_tap_write_error!, 0, 'no RX drops');
});

t.test('native ↔ kernel VXLAN, offloads on: 1 GiB each way intact', { skip: skip ?? false }, async (t) => {
  const lab = new Lab();
  t.teardown(() => lab.destroy());
  const { h1, h2, c1, c2 } = await twoHosts(lab);
  const router = await lab.startRouter(h1, { peers: [h2.underlayIp], engine: 'native' });
  await lab.addKernelVtep(h2, [h1.underlayIp]);

  const there = await hashedTransfer(lab, c1, c2, GIB);
  t.equal(there.receivedSha256, there.sentSha256, `1 GiB native → kernel intact (${there.mbitPerS.toFixed(0)} Mbit/s)`);
  const back = await hashedTransfer(lab, c2, c1, GIB, 5002);
  t.equal(back.receivedSha256, back.sentSha256, `1 GiB kernel → native intact (${back.mbitPerS.toFixed(0)} Mbit/s)`);
  const k = await router.counters();
  t.ok(k.tx_gso_sends! > 1000 && k.rx_merged! > 10_000, `offloads used: ${k.tx_gso_sends} GSO sends, ${k.rx_merged} segments merged`);
  t.equal(k.tx_send_error! + k.rx_tap_write_error! + k.tx_bad_offload!, 0, 'no errors');
});
