/**
 * The native engine's offloads (TSO from the TAP, UDP GSO sends, GRO-style merging into the TAP) under bulk TCP:
 *
 *   native ↔ native: 1 GiB c1 → c2 with its SHA-256 checked, while a capture on h2 shows what the wire carries.
 *     The switch port towards h2 has UDP segmentation offload off, so the kernel cuts our GSO sends there into
 *     datagrams as a NIC would: every one must be a whole, unfragmented VXLAN datagram within the underlay MTU.
 *   native ↔ kernel VXLAN: 1 GiB each way, SHA-256 checked.
 *   Hand-made datagrams (a raw socket in h2) prove the checksum shortcut safe: the engine merges the segments of a
 *   UDP_GRO super-datagram without summing their TCP checksums (the kernel verified the outer UDP checksum, which
 *   covers them: OuterChecksumVerified in native/src/offload.h), so a corrupt inner segment must never be vouched
 *   for when the outer checksum is 0 (IPv4 allows it, the kernel's VXLAN device sends it): c1's TCP finds each bad.
 *   A wrong outer checksum never gets past h1's kernel; good segments reach c1 (its TCP answers with RSTs).
 */
import { rmSync, writeFileSync } from 'node:fs';
import t from 'tap';
import { Lab, labSkipReason, PROBE_FILTER, twoHosts, UNDERLAY_MTU } from '../../src/lab/lab.js';
import { hashedTransfer } from '../../src/lab/transfers.js';
import { waitFor } from '../../src/lab/wait.js';
import { encodeEthernet, encodeIpv4, encodeVxlanHeader, ETHERTYPE_IPV4, internetChecksum, parseIp, parseMac, pseudoHeaderSum, PROTO_UDP } from '../../src/packet/index.js';

const skip = labSkipReason();
const GIB = 1024;

/** A counter of /proc/net/snmp (its `Udp:` or `Tcp:` line) as seen in namespace `ns`. */
async function snmp(lab: Lab, ns: string, proto: 'Udp' | 'Tcp', field: string): Promise<number> {
  const lines = (await lab.exec(ns, 'cat', ['/proc/net/snmp'])).stdout.split('\n').filter((l) => l.startsWith(`${proto}:`));
  const i = lines[0]?.split(/\s+/).indexOf(field) ?? -1;
  if (i < 1) throw new Error(`no ${proto} ${field} in /proc/net/snmp of ${ns}`);
  return Number(lines[1]!.split(/\s+/)[i]);
}

/**
 * `count` consecutive TCP ACK segments (100 B each) c2 → c1:9 (closed), each in a VXLAN datagram (VNI 42) from `src`
 * to `dst`:4789, as the UDP header + payload a raw IPPROTO_UDP socket sends. `outer`: the UDP checksum right, 0, or
 * wrong; `innerOk` false: each TCP checksum off by one.
 */
function rawVxlan(src: string, dst: string, c1Mac: string, c2Mac: string, count: number, outer: 'ok' | 'zero' | 'bad', innerOk: boolean): Buffer {
  const put16 = (b: Uint8Array, at: number, v: number): void => { b[at] = v >> 8; b[at + 1] = v & 0xff; };
  const [ci, cj] = [parseIp('198.18.0.2'), parseIp('198.18.0.1')];
  const out: Uint8Array[] = [];
  for (let k = 0; k < count; k++) {
    const tcp = new Uint8Array(20 + 100).fill(0x5a);
    put16(tcp, 0, 40000);
    put16(tcp, 2, 9);
    tcp.set([0, 1, 0, 0], 4); // the sequence, contiguous below
    put16(tcp, 6, k * 100);
    tcp.set([0, 0, 0, 1, 0x50, 0x10, 0xff, 0xff, 0, 0, 0, 0], 8);
    const sum = internetChecksum(tcp, 0, tcp.length, pseudoHeaderSum(ci, cj, 6, tcp.length));
    put16(tcp, 16, innerOk ? sum : sum ^ 1);
    const ip = encodeIpv4({ protocol: 6, src: ci, dst: cj, payloadLen: tcp.length, id: k });
    const frame = encodeEthernet(parseMac(c1Mac), parseMac(c2Mac), ETHERTYPE_IPV4, Buffer.concat([ip, tcp]));
    const udp = Buffer.concat([Buffer.alloc(8), encodeVxlanHeader(42), frame]);
    put16(udp, 0, 4789);
    put16(udp, 2, 4789);
    put16(udp, 4, udp.length);
    const csum = internetChecksum(udp, 0, udp.length, pseudoHeaderSum(parseIp(src), parseIp(dst), PROTO_UDP, udp.length)) || 0xffff;
    put16(udp, 6, outer === 'ok' ? csum : outer === 'zero' ? 0 : csum ^ 0x0100);
    out.push(udp);
  }
  return Buffer.concat(out);
}

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

  // Each burst is sent back to back by one socat (a block per datagram), so the engine may take it in one batch.
  const path = `/tmp/vxr${lab.id}-raw`;
  t.teardown(() => rmSync(path, { force: true }));
  const burst = async (outer: 'ok' | 'zero' | 'bad', innerOk: boolean): Promise<void> => {
    const b = rawVxlan(h2.underlayIp, h1.underlayIp, c1.mac, c2.mac, 8, outer, innerOk);
    writeFileSync(path, b);
    await lab.exec(h2.ns, 'socat', ['-u', '-b', String(b.length / 8), `OPEN:${path}`, `IP4-SENDTO:${h1.underlayIp}:17,bind=${h2.underlayIp}`]);
  };
  const c1Tcp = async (): Promise<[number, number]> => [await snmp(lab, c1.ns, 'Tcp', 'InCsumErrors'), await snmp(lab, c1.ns, 'Tcp', 'OutRsts')];
  const [csum0, rst0] = await c1Tcp();
  const merged0 = (await router.counters()).rx_merged!;
  await burst('zero', false);
  // Until c1 has found all 8 bad, or taken one as valid (then it resets the closed port, and the checks below fail).
  await waitFor(async () => { const [c, r] = await c1Tcp(); return c - csum0 >= 8 || r > rst0; }, { timeoutMs: 5000, what: 'c1 to see the 8 corrupt segments' });
  const [csum1, rst1] = await c1Tcp();
  t.equal(csum1 - csum0, 8, 'outer checksum 0, inner TCP checksum bad: all 8 segments reach c1, whose TCP finds each bad');
  t.equal(rst1 - rst0, 0, 'none is taken as valid (no RST for the closed port)');
  t.equal((await router.counters()).rx_merged!, merged0, 'the engine merged none of them (each was summed and found bad)');

  const udpErrs = await snmp(lab, h1.ns, 'Udp', 'InCsumErrors');
  await burst('bad', true);
  await waitFor(async () => (await snmp(lab, h1.ns, 'Udp', 'InCsumErrors')) - udpErrs >= 8, { timeoutMs: 5000, what: "h1's kernel to drop 8 datagrams" });
  await burst('ok', true);
  await waitFor(async () => (await c1Tcp())[1] > rst1, { timeoutMs: 5000, what: 'a RST from c1 for good segments' });
  const [csum2] = await c1Tcp();
  t.equal(csum2, csum1, 'a wrong outer checksum: dropped by the kernel, nothing reaches c1; good segments do (c1 resets them)');
});
