/**
 * A TAP deleted from under a running router (issue 14, finding 8): the data path cannot go on, so the router must say
 * so and exit non-zero for its supervisor to restart it, never keep running with a dead transmit thread.
 *
 *   [h1] br0 ── TAP vxr42 (router)        ip link del vxr42  ──▶  error log line + exit 1 within a few seconds
 */
import t from 'tap';
import { Lab, labSkipReason } from '../../src/lab/lab.js';

const skip = labSkipReason();

for (const engine of ['native', 'js'] as const) {
  t.test(`TAP deleted under a running router, ${engine} engine`, { skip: skip ?? false }, async (t) => {
    const lab = new Lab();
    t.teardown(() => lab.destroy());
    const h1 = await lab.addHost('h1', '198.51.100.1');
    const r = await lab.startRouter(h1, { peers: ['198.51.100.2'], engine });
    const t0 = Date.now();
    await lab.exec(h1.ns, 'ip', ['link', 'del', 'vxr42']);
    const code = await Promise.race([r.exited, new Promise<'hung'>((resolve) => setTimeout(() => resolve('hung'), 5000).unref())]);
    const ms = Date.now() - t0;
    if (code === 'hung') await r.stop();
    t.equal(code, 1, `the router exits 1 (${ms} ms after the TAP went)`);
    t.ok(ms < 5000, 'within 5 s');
    t.ok(
      r.logs().some((m) => /data path stopped: .*(VNI 42|vxr42)/.test(m)),
      `an error log line names the stopped data path (logs: ${JSON.stringify(r.logs().slice(-3))})`,
    );
    t.match(r.stderr, /vxlan-router: error \[E_SYSTEM\]: data path stopped/, 'and the one-line error on stderr');
  });
}
