/**
 * A TAP deleted from under a running router (issue 14, finding 8; issue 15): the router recreates it, with its MTU,
 * and hands the new one to its data path, never keeping a dead transmit thread and no longer exiting. Here the
 * harder order: the bridge is gone first, so the new TAP waits on no bridge and joins br0 when it returns.
 *
 *   [h1] br0 ── TAP vxr42 (router)   ip link del br0; ip link del vxr42  ──▶  vxr42 again (no master)
 *                                     ip link add br0 …                   ──▶  vxr42 on br0, c1 ⇄ c2
 */
import t from 'tap';
import { Lab, labSkipReason, twoHosts } from '../../src/lab/lab.js';
import { waitFor } from '../../src/lab/wait.js';

const skip = labSkipReason();

for (const engine of ['native', 'js'] as const) {
  t.test(`TAP deleted under a running router while its bridge is gone, ${engine} engine`, { skip: skip ?? false }, async (t) => {
    const lab = new Lab();
    t.teardown(() => lab.destroy());
    const { h1, h2, c1, c2 } = await twoHosts(lab);
    const r = await lab.startRouter(h1, { peers: [h2.underlayIp], engine });
    await lab.startRouter(h2, { peers: [h1.underlayIp], engine });
    t.equal((await lab.ping(c1.ns, c2.ip)).loss, 0, 'c1 → c2 before');

    await lab.exec(h1.ns, 'ip', ['link', 'del', 'br0']);
    await waitFor(async () => (await r.status()).networks[0]!.bridgeMissingSince != null, { timeoutMs: 5000, what: 'the bridge reported missing' });
    const t0 = Date.now();
    await lab.exec(h1.ns, 'ip', ['link', 'del', 'vxr42']);
    await waitFor(async () => (await r.status()).networks[0]!.tapsRecreated === 1, { timeoutMs: 5000, what: 'the TAP recreated' });
    const ms = Date.now() - t0;
    t.ok(ms < 2000, `TAP recreated ${ms} ms after it was deleted`);
    const tap = JSON.parse((await lab.exec(h1.ns, 'ip', ['-j', 'link', 'show', 'vxr42'])).stdout) as { master?: string; mtu: number; flags: string[] }[];
    t.equal(tap[0]!.master, undefined, 'on no bridge while br0 is gone');
    t.equal(tap[0]!.mtu, 1450, 'with its MTU');
    t.equal(r.child.exitCode, null, 'the router stays up');
    t.notOk(r.logs().some((m) => /data path stopped/.test(m)), 'no data-path fault');

    await lab.addBridge(h1, 'br0');
    await lab.exec('', 'ip', ['-n', h1.ns, 'link', 'set', c1.name, 'master', 'br0', 'up']);
    await waitFor(async () => (await r.status()).networks[0]!.bridgeMissingSince === null, { timeoutMs: 5000, what: 'the bridge rejoined' });
    t.equal((await lab.ping(c1.ns, c2.ip)).loss, 0, 'c1 → c2 through the new TAP on the new bridge');
    const k = await r.counters();
    t.ok(k.tx_datagrams! > 0 && k.rx_datagrams! > 0, `forwarding both ways (tx ${k.tx_datagrams}, rx ${k.rx_datagrams})`);
    t.equal(await r.stop(), 0, 'stops with exit 0');
    t.notMatch((await lab.exec(h1.ns, 'ip', ['-o', 'link'])).stdout, /vxr42/, 'and removes the recreated TAP');
  });
}
