/**
 * Interop with the Linux kernel's VXLAN device:
 *
 *   [c1 198.18.0.1] ── br0 ── TAP (vxlan-router, each engine) [h1 198.51.100.1] ══ switch ══ [h2 198.51.100.2] vx0 (kernel) ── br0 ── [c2 198.18.0.2]
 *
 * Ping and hash-checked TCP both ways; a capture on h1's underlay proves our datagrams are what RFC 7348 and the
 * kernel expect: UDP dst 4789, flags 0x08, VNI 42, source port in 49152-65535, a valid outer UDP checksum.
 *
 * The native engine runs four ways: offloads on (TSO from the TAP, UDP GSO sends, GRO); the same with TX checksum
 * offload off on h1's underlay (the kernel then computes GSO checksums in software, which the capture checks, or
 * refuses GSO on kernels before 6.10, which the engine must survive by falling back to its raw socket); TAP offloads
 * only (super-frames cut and sent one datagram at a time through the raw socket); and none.
 */
import { rmSync } from 'node:fs';
import t from 'tap';
import { Lab, labSkipReason, PROBE_FILTER, twoHosts, VNI } from '../../src/lab/lab.js';
import { hashedTransfer } from '../../src/lab/transfers.js';

const variants = [
  { engine: 'native', mode: 'all', name: 'native router (offloads on)' },
  { engine: 'native', mode: 'software-csum', name: 'native router (offloads on, no TX checksum offload on the underlay)' },
  { engine: 'native', mode: 'tap', name: 'native router (--offloads tap)' },
  { engine: 'native', mode: 'none', name: 'native router (--no-offloads)' },
  { engine: 'js', mode: 'none', name: 'js router' },
] as const;

for (const { engine, mode, name } of variants) {
t.test(`${name} ↔ kernel vxlan`, { skip: labSkipReason() ?? false }, async (t) => {
  const lab = new Lab();
  const pcap = `/tmp/vxr${lab.id}-interop.pcap`;
  t.teardown(async () => {
    await lab.destroy();
    rmSync(pcap, { force: true });
  });
  const { h1, h2, c1, c2 } = await twoHosts(lab);
  // Kernel UDP sockets (the js engine's, and the native engine's GSO sends) leave the UDP checksum to the device:
  // veth hands the capture a checksum still to be filled in (a NIC would fill it). TX checksum offload off makes
  // the kernel compute it, so the capture shows what goes on a wire, and it makes UDP GSO impossible.
  if (engine === 'js' || mode === 'software-csum') await lab.exec(h1.ns, 'ethtool', ['-K', 'eth0', 'tx', 'off']);
  const args = engine === 'native' && mode !== 'all' && mode !== 'software-csum' ? ['--offloads', mode] : [];
  const router = await lab.startRouter(h1, { peers: [h2.underlayIp], engine, args });
  await lab.addKernelVtep(h2, [h1.underlayIp]);

  // Capture what h1 sends (bounded: a packet count and a timeout), while pings and a transfer cross.
  const dump = await lab.capture(h1.ns, 'eth0', ['udp', 'and', 'src', 'host', h1.underlayIp, 'and', 'not', PROBE_FILTER], { seconds: 60, count: 400, pcap });

  // Eight TCP flows (a SYN each, to eight closed ports) besides the pings and the transfer: the js engine picks one of
  // 8 source sockets per flow hash, so two flows alone share one port 1 time in 8; ten flows all in one slot do not.
  // (TCP, not UDP: tshark's udp.* fields would list an inner UDP header's ports too.)
  const flows = `const net=require('net');let n=0;for(let p=7000;p<7008;p++)net.connect(p,'${c2.ip}').on('error',()=>{}).on('close',()=>{if(++n===8)process.exit(0)});setTimeout(()=>process.exit(0),5000)`;
  await lab.exec(c1.ns, process.execPath, ['-e', flows]);
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
  // With GSO on, the checksum is the device's job (see above): every other field is checked.
  const checksums = mode !== 'all';
  const bad = rows.filter(([dport, flags, vni, sport, csum]) => {
    const s = Number(sport);
    return dport !== '4789' || Number(flags) !== 0x0800 || Number(vni) !== VNI || s < 49152 || s > 65535 || (checksums && csum !== '1');
  });
  t.same(bad.slice(0, 5), [], `every datagram: dst 4789, flags 0x08 (I), VNI 42, src port 49152-65535${checksums ? ', checksum good' : ''}`);
  if (engine === 'native') {
    const [k, o] = [await router.counters(), await router.offloads()];
    if (mode === 'all') t.ok(o.udpGso === true && k.tx_gso_sends! > 0, `GSO on: ${k.tx_gso_sends} GSO sends`);
    if (mode === 'software-csum') {
      // Either way every datagram above was checked; say which way this kernel went.
      t.ok(k.tx_tso_frames! > 0 && (o.udpGso === true) === k.tx_gso_sends! > 0, `TSO frames ${k.tx_tso_frames}, GSO ${o.udpGso ? `on (${k.tx_gso_sends} sends)` : 'refused: raw socket'}`);
    }
    if (mode === 'tap') t.ok(k.tx_tso_frames! > 0 && k.tx_gso_sends === 0, `${k.tx_tso_frames} TSO frames cut and sent through the raw socket`);
    if (mode === 'none') t.equal(k.tx_tso_frames! + k.tx_gso_sends!, 0, 'no offload used');
    t.equal(k.tx_send_error, 0, 'no send errors');
  }
  t.ok(new Set(rows.map((r) => r[3])).size >= 2, 'different flows use different source ports');
});
}
