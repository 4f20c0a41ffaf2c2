/**
 * VXLAN is never fragmented. With the TAP MTU forced above what the underlay can carry (--mtu 1500 on a 1500-byte
 * underlay, container MTU 1500 too), a full-size frame cannot fit: it is dropped as tx_too_big, and no IP fragment
 * ever appears on the underlay. Frames that fit still cross.
 *
 *   [c1 mtu 1500] ── br0 ── TAP mtu 1500 (router) [h1] ══ underlay mtu 1500 ══ [h2] router ── br0 ── [c2]
 */
import t from 'tap';
import { Lab, labSkipReason, twoHosts } from '../../src/lab/lab.js';

for (const engine of ['native', 'js'] as const) {
  t.test(`frames too big for the underlay, ${engine} engine`, { skip: labSkipReason() ?? false }, async (t) => {
    const lab = new Lab();
    t.teardown(() => lab.destroy());
    const { h1, h2, c1, c2 } = await twoHosts(lab);
    const r1 = await lab.startRouter(h1, { peers: [h2.underlayIp], engine, args: ['--mtu', '1500'] });
    await lab.startRouter(h2, { peers: [h1.underlayIp], engine });
    await lab.exec('', 'ip', ['-n', h1.ns, 'link', 'set', 'c1', 'mtu', '1500']);
    await lab.exec('', 'ip', ['-n', c1.ns, 'link', 'set', 'eth0', 'mtu', '1500']);

    const dump = await lab.capture(h1.ns, 'eth0', ['ip[6:2] & 0x3fff != 0'], { seconds: 30 });

    t.equal((await lab.ping(c1.ns, c2.ip, 2)).loss, 0, 'small frames cross');
    const before = await r1.counters();
    // 1472 bytes of ICMP payload: a 1514-byte frame, 1550 bytes once encapsulated: more than the underlay's 1500.
    t.equal((await lab.ping(c1.ns, c2.ip, 3, 1472)).loss, 100, 'full-size frames do not arrive');
    const after = await r1.counters();
    t.equal(after.tx_too_big! - before.tx_too_big!, 3, 'each one counted as tx_too_big');
    t.equal((await lab.ping(c1.ns, c2.ip, 2)).loss, 0, 'and the router keeps forwarding');
    t.equal((await dump.stop()).trim(), '', 'no IP fragment on the underlay');
  });
}
