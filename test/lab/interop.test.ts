/**
 * Interop with the Linux kernel's VXLAN device:
 *
 *   [c1 198.18.0.1] ── br0 ── TAP (vxlan-router, each engine) [h1 198.51.100.1] ══ switch ══ [h2 198.51.100.2] vx0 (kernel) ── br0 ── [c2 198.18.0.2]
 *
 * Ping and hash-checked TCP both ways; a capture on h1's underlay proves our datagrams are what RFC 7348 and the
 * kernel expect: UDP dst 4789, flags 0x08, VNI 42, source port in 49152-65535, a valid outer UDP checksum.
 */
import { rmSync } from 'node:fs';
import t from 'tap';
import { Lab, labSkipReason, twoHosts, VNI } from '../../src/lab/netns.js';
import { hashedTransfer } from '../../src/lab/traffic.js';

for (const engine of ['native', 'js'] as const) {
t.test(`${engine} router ↔ kernel vxlan`, { skip: labSkipReason() ?? false }, async (t) => {
  const lab = new Lab();
  const pcap = `/tmp/vxr${lab.id}-interop.pcap`;
  t.teardown(async () => {
    await lab.destroy();
    rmSync(pcap, { force: true });
  });
  const { h1, h2, c1, c2 } = await twoHosts(lab);
  await lab.startRouter(h1, { peers: [h2.underlayIp], engine });
  await lab.addKernelVtep(h2, [h1.underlayIp]);
  // The js engine sends through a kernel UDP socket: with TX checksum offload on, veth hands the capture a checksum
  // still to be filled in (a NIC would fill it). Compute it in software so the capture shows what goes on the wire.
  if (engine === 'js') await lab.exec(h1.ns, 'ethtool', ['-K', 'eth0', 'tx', 'off']);

  // Capture what h1 sends (bounded: a packet count and a timeout), while pings and a transfer cross.
  const dump = await lab.capture(h1.ns, 'eth0', ['udp', 'and', 'src', 'host', h1.underlayIp], { seconds: 60, count: 400, pcap });

  t.equal((await lab.ping(c1.ns, c2.ip, 5)).loss, 0, 'router → kernel ping');
  t.equal((await lab.ping(c2.ns, c1.ip, 5)).loss, 0, 'kernel → router ping');
  const there = await hashedTransfer(lab, c1, c2, 30);
  t.equal(there.receivedSha256, there.sentSha256, `30 MB router → kernel intact (${there.mbitPerS.toFixed(0)} Mbit/s)`);
  const back = await hashedTransfer(lab, c2, c1, 30, 5002);
  t.equal(back.receivedSha256, back.sentSha256, `30 MB kernel → router intact (${back.mbitPerS.toFixed(0)} Mbit/s)`);
  await dump.done();

  const fields = await lab.exec('', 'tshark', [
    '-r', pcap, '-o', 'udp.check_checksum:TRUE', '-T', 'fields', '-E', 'separator=,',
    '-e', 'udp.dstport', '-e', 'vxlan.flags', '-e', 'vxlan.vni', '-e', 'udp.srcport', '-e', 'udp.checksum.status',
  ]);
  const rows = fields.stdout.trim().split('\n').map((l) => l.split(','));
  t.ok(rows.length >= 100, `captured ${rows.length} datagrams`);
  const bad = rows.filter(([dport, flags, vni, sport, csum]) => {
    const s = Number(sport);
    return dport !== '4789' || Number(flags) !== 0x0800 || Number(vni) !== VNI || s < 49152 || s > 65535 || csum !== '1';
  });
  t.same(bad.slice(0, 5), [], 'every datagram: dst 4789, flags 0x08 (I), VNI 42, src port 49152-65535, checksum good');
  t.ok(new Set(rows.map((r) => r[3])).size >= 2, 'different flows use different source ports');
});
}
