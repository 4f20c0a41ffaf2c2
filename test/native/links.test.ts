/**
 * The addon's rtnetlink pieces against the real kernel, in a throwaway namespace (links.h / links-js.cc):
 * watchLinks sees a veth created, put on br0 and deleted; getLink reads a link (or null); attachLink makes a
 * link a bridge port with an MTU and brings it up; openTap with no bridge leaves the TAP on none.
 * The addon acts on the namespace of the calling process, so the case runs in a child `node` inside it.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { Lab, labSkipReason } from '../../src/lab/lab.js';

const NATIVE = fileURLToPath(new URL('../../src/dataplane/native.ts', import.meta.url));
const TSX = import.meta.resolve('tsx');

t.test('watchLinks / getLink / attachLink', { skip: labSkipReason() ?? false }, async (t) => {
  const lab = new Lab();
  t.teardown(() => lab.destroy());
  const host = await lab.addHost('links', '198.51.100.1');
  const code = `
    const { loadNative } = await import(${JSON.stringify(NATIVE)});
    const { execFileSync } = await import('node:child_process');
    const n = loadNative();
    const seen = [];
    const watch = n.watchLinks((events, overflow) => seen.push(...events.map((e) => ({ ...e, overflow }))));
    const until = async (f) => { for (let i = 0; i < 100 && !f(); i++) await new Promise((r) => setTimeout(r, 20)); };
    execFileSync('ip', ['link', 'add', 'vxrd0', 'type', 'veth', 'peer', 'name', 'vxrd0p']);
    await until(() => seen.some((e) => e.name === 'vxrd0' && e.type === 'new'));
    const before = n.getLink('vxrd0');
    n.attachLink('vxrd0', 'br0', 1400);
    const br = n.getLink('br0');
    const after = n.getLink('vxrd0');
    await until(() => seen.some((e) => e.name === 'vxrd0' && e.master === br.index));
    execFileSync('ip', ['link', 'del', 'vxrd0']);
    await until(() => seen.some((e) => e.name === 'vxrd0' && e.type === 'del'));
    watch.close();
    watch.close();
    execFileSync('ip', ['link', 'add', 'vxrd1', 'type', 'veth', 'peer', 'name', 'vxrd1p']);
    await new Promise((r) => setTimeout(r, 200));
    const tap = n.openTap('vxrt9', 1300, '');
    const lone = n.getLink('vxrt9');
    n.closeFd(tap.fd);
    let noBridge = '';
    try { n.attachLink('vxrd1', 'nobr0', 1400); } catch (e) { noBridge = e.code + ' | ' + e.message; }
    let badName = '';
    try { n.getLink('x'.repeat(16)); } catch (e) { badName = e.code; }
    let badCb = '';
    try { n.watchLinks(42); } catch (e) { badCb = e.name + ': ' + e.message; }
    console.log(JSON.stringify({ seen, before, br, after, none: n.getLink('nosuch0'), lone, noBridge, badName, badCb, afterClose: seen.some((e) => e.name === 'vxrd1') }));
    process.exit(0);`;
  const r = spawnSync('ip', ['netns', 'exec', host.ns, process.execPath, '--import', TSX, '--input-type=module', '-e', code], { encoding: 'utf8', timeout: 20_000 });
  t.equal(r.status, 0, r.stderr);
  const o = JSON.parse(r.stdout) as Record<string, unknown> & { seen: { name: string; type: string; kind: string; master: number }[]; br: { index: number } };
  t.match(o.before, { type: 'new', name: 'vxrd0', kind: 'veth', master: 0, up: false, mtu: 1500 }, 'getLink reads a fresh veth');
  t.match(o.br, { name: 'br0', kind: 'bridge', up: true }, 'and a bridge');
  t.match(o.after, { name: 'vxrd0', master: o.br.index, up: true, mtu: 1400 }, 'attachLink: on br0, MTU 1400, up');
  const mine = o.seen.filter((e) => e.name === 'vxrd0');
  t.match(mine[0], { type: 'new', kind: 'veth', master: 0 }, 'watchLinks: the link created');
  t.ok(mine.some((e) => e.type === 'new' && e.master === o.br.index), 'its move onto br0');
  t.match(mine.at(-1), { type: 'del', name: 'vxrd0' }, 'and its deletion, last');
  t.equal(o.afterClose, false, 'nothing delivered after close()');
  t.equal(o.none, null, 'getLink of a missing link: null');
  t.match(o.lone, { name: 'vxrt9', kind: 'tun', master: 0, mtu: 1300 }, "openTap with no bridge: on none");
  t.match(o.noBridge, /^ENODEV \| SIOCBRADDIF vxrd1 to bridge nobr0/, 'attachLink to a missing bridge: ENODEV, named');
  t.equal(o.badName, 'EINVAL', 'a name too long: EINVAL');
  t.match(o.badCb, /TypeError: watchLinks: callback must be a function/);
});
