/**
 * Source validation and malformed input, for each engine:
 *
 *   [c1] ── br0 ── router [h1 198.51.100.1] ══ switch ══ [h2 198.51.100.2] router ── br0 ── [c2]
 *                                                  ╚═══ [x 198.51.100.99] (not a peer)
 *
 * A well-formed VXLAN datagram from x is dropped as rx_unknown_source and its inner frame never reaches c1 (the same
 * datagram from the peer h2 does: the capture would have seen it). Malformed datagrams from the peer are each counted
 * under their reason, and traffic keeps flowing afterwards.
 */
import t from 'tap';
import { Lab, labSkipReason, twoHosts, type Host } from '../../src/lab/lab.js';
import { waitFor } from '../../src/lab/wait.js';
import { encodeEthernet, encodeIpv4, encodeUdp, encodeVxlanHeader, ETHERTYPE_IPV4, parseIp, parseMac, PROTO_UDP } from '../../src/packet/index.js';

const MARK_PORT = 7777;

/** Sends each payload as one UDP datagram from `host` to dst:4789 (a node one-liner inside the namespace). */
async function sendRaw(lab: Lab, host: Host, dst: string, payloads: Uint8Array[]): Promise<void> {
  const code = `const s=require('dgram').createSocket('udp4');s.bind(0,'${host.underlayIp}',async()=>{for(const p of process.argv.slice(1)){await new Promise(r=>s.send(Buffer.from(p,'base64'),4789,'${dst}',r));}s.close();});`;
  await lab.exec(host.ns, process.execPath, ['-e', code, ...payloads.map((p) => Buffer.from(p).toString('base64'))], 10_000);
}

function innerFrame(dstMac: string, dstIp: string, body: string): Uint8Array {
  const src = parseIp('198.18.0.200');
  const dst = parseIp(dstIp);
  const udp = encodeUdp(src, dst, 40000, MARK_PORT, new TextEncoder().encode(body));
  const ip = encodeIpv4({ protocol: PROTO_UDP, src, dst, payloadLen: udp.length });
  const packet = new Uint8Array(ip.length + udp.length);
  packet.set(ip);
  packet.set(udp, ip.length);
  return encodeEthernet(parseMac(dstMac), parseMac('02:00:00:00:00:c8'), ETHERTYPE_IPV4, packet);
}

const vxlan = (vni: number, inner: Uint8Array, flags = 0x08): Uint8Array => {
  const h = encodeVxlanHeader(vni);
  h[0] = flags;
  const out = new Uint8Array(h.length + inner.length);
  out.set(h);
  out.set(inner, h.length);
  return out;
};

for (const engine of ['native', 'js'] as const) {
  t.test(`spoofed and malformed datagrams, ${engine} engine`, { skip: labSkipReason() ?? false }, async (t) => {
    const lab = new Lab();
    t.teardown(() => lab.destroy());
    const { h1, h2, c1, c2 } = await twoHosts(lab);
    const x = await lab.addHost('x', '198.51.100.99', { bridge: false });
    // TAPs at the path's MTU (not the 65000 default), so a 1500-byte inner frame is one the TAP cannot take.
    const args = ['--mtu', '1450'];
    const r1 = await lab.startRouter(h1, { peers: [h2.underlayIp], engine, args });
    await lab.startRouter(h2, { peers: [h1.underlayIp], engine, args });
    t.equal((await lab.ping(c2.ns, c1.ip)).loss, 0, 'overlay up');

    const capture = await lab.capture(c1.ns, 'eth0', ['udp', 'port', String(MARK_PORT)], { seconds: 30, ascii: true });

    const before = await r1.counters();
    await sendRaw(lab, x, h1.underlayIp, [vxlan(42, innerFrame(c1.mac, c1.ip, 'SPOOFED-FROM-X'))]);
    await waitFor(async () => (await r1.counters()).rx_unknown_source! > before.rx_unknown_source!, { timeoutMs: 3000, what: 'rx_unknown_source' });
    await sendRaw(lab, h2, h1.underlayIp, [vxlan(42, innerFrame(c1.mac, c1.ip, 'GENUINE-FROM-PEER'))]);
    await waitFor(() => capture.text().includes('GENUINE-FROM-PEER'), { timeoutMs: 3000, what: 'the genuine frame at c1' });

    const frame = innerFrame(c1.mac, c1.ip, 'malformed-probe');
    const cases: [string, Uint8Array][] = [
      ['rx_short', Uint8Array.of(0x08, 0, 0, 0)],
      ['rx_bad_flags', vxlan(42, frame, 0x00)],
      ['rx_unknown_vni', vxlan(43, frame)],
      ['rx_truncated_inner', vxlan(42, frame.subarray(0, 10))],
      ['rx_oversize', vxlan(42, new Uint8Array(1500).fill(0xab))],
    ];
    for (const [reason, payload] of cases) {
      const b = await r1.counters();
      await sendRaw(lab, h2, h1.underlayIp, [payload]);
      await waitFor(async () => (await r1.counters())[reason]! > b[reason]!, { timeoutMs: 3000, what: reason });
      const a = await r1.counters();
      t.equal(a[reason]! - b[reason]!, 1, `${reason}: counted once`);
    }
    const seen = await capture.stop();
    t.notMatch(seen, /SPOOFED-FROM-X/, 'the spoofed inner frame never reached the bridge');
    t.match(seen, /GENUINE-FROM-PEER/, 'the same frame from a peer did (so the capture would have seen it)');
    t.notMatch(seen, /malformed-probe/, 'no malformed datagram delivered its inner frame');
    t.equal((await lab.ping(c2.ns, c1.ip)).loss, 0, 'still forwarding after all of it');
    t.equal(r1.child.exitCode, null, 'router still running');
  });
}
