/**
 * LinkKeeper (src/agent/links.ts) against fake links and a fake engine: what it does when the bridge goes and comes
 * back, when the TAP is deleted (with and without the bridge), and that trouble is retried, never thrown.
 * The real kernel side is pinned by test/native/links.test.ts and test/lab/bridge-churn.test.ts.
 */
import t from 'tap';
import { LinkKeeper, type KeptNetwork } from '../../src/agent/links.js';
import type { LinkInfo, VniTap } from '../../src/dataplane/index.js';
import { silentLogger } from '../../src/log.js';

const NET: KeptNetwork = { vni: 42, tap: 'vxr42', bridge: 'br0', mtu: 1450, offloads: true };

/** A namespace's links by name, and what was done to them. */
function world() {
  let next = 10;
  const links = new Map<string, LinkInfo>();
  const calls: string[] = [];
  const add = (name: string, kind: string, master = 0): LinkInfo => {
    const l: LinkInfo = { type: 'new', index: next++, name, master, up: true, mtu: 1450, kind };
    links.set(name, l);
    return l;
  };
  let onEvents: ((e: LinkInfo[], overflow: boolean) => void) | undefined;
  let failOpen = false;
  const native = {
    watchLinks: (cb: (e: LinkInfo[], overflow: boolean) => void) => ((onEvents = cb), { close: () => calls.push('close') }),
    getLink: (name: string) => links.get(name) ?? null,
    attachLink: (link: string, bridge: string, mtu: number) => {
      const b = links.get(bridge);
      if (b === undefined) throw Object.assign(new Error(`SIOCBRADDIF ${link} to bridge ${bridge}: No such device`), { code: 'ENODEV', syscall: 'SIOCBRADDIF' });
      links.set(link, { ...links.get(link)!, master: b.index, mtu, up: true });
      calls.push(`attach ${link} ${bridge} ${mtu}`);
    },
    openTap: (name: string, mtu: number, bridge: string, offloads?: boolean) => {
      if (failOpen) throw Object.assign(new Error('TUNSETIFF vxr42: Device or resource busy'), { code: 'EBUSY' });
      add(name, 'tun', bridge === '' ? 0 : links.get(bridge)!.index);
      calls.push(`open ${name} ${mtu} '${bridge}' ${offloads}`);
      return { fd: 99, name, vnetHdr: offloads === true, offloads: [] };
    },
    deleteLink: (name: string) => {
      links.delete(name);
      calls.push(`delete ${name}`);
    },
  };
  const lost = new Set<number>();
  const replaced: VniTap[] = [];
  const engine = {
    lostTaps: () => [...lost],
    replaceTap: (tap: VniTap) => {
      lost.delete(tap.vni);
      replaced.push(tap);
    },
  };
  return { links, calls, add, native, engine, lost, replaced, event: (overflow = false, about: LinkInfo[] = []) => onEvents!(about, overflow), failOpen: (v: boolean) => (failOpen = v) };
}

t.test('bridge deleted, then created again: missing since, then rejoined with the MTU', async (t) => {
  const w = world();
  const br = w.add('br0', 'bridge');
  w.add('vxr42', 'tun', br.index);
  let clock = Date.parse('2026-01-01T00:00:00Z');
  const k = new LinkKeeper([NET], w.engine, w.native, silentLogger, () => new Date(clock));
  k.start();
  t.teardown(() => k.close());
  t.same(w.calls, [], 'nothing to do while the TAP is on its bridge');
  t.equal(k.state()[0]!.bridgeMissingSince, null);

  w.links.delete('br0');
  w.links.set('vxr42', { ...w.links.get('vxr42')!, master: 0 });
  w.event(true); // an overflow also makes it look
  t.same(k.state()[0]!.bridgeMissingSince, new Date(clock), 'missing since the event');
  clock += 5000;
  k.reconcile();
  t.same(k.state()[0]!.bridgeMissingSince, new Date(clock - 5000), 'the first time is kept');

  const other = w.add('eth1', 'veth');
  w.event(false, [other]);
  t.same(w.calls, [], 'events about other links change nothing');
  w.event(false, [w.add('br0', 'bridge')]);
  t.same(w.calls, ['attach vxr42 br0 1450'], 'the TAP joins the new bridge with its MTU');
  t.match(k.state()[0], { bridgeMissingSince: null, bridgeRejoins: 1, tapsRecreated: 0 });
  k.reconcile();
  t.equal(w.calls.length, 1, 'once');
});

t.test('TAP deleted: recreated on the bridge, or on none while the bridge is missing; failures retried', async (t) => {
  const w = world();
  w.add('br0', 'bridge');
  const k = new LinkKeeper([NET], w.engine, w.native, silentLogger);
  k.start();
  t.teardown(() => k.close());

  w.links.delete('vxr42');
  k.reconcile();
  t.same(w.calls, [], 'the engine has not said it lost the TAP yet: wait');
  w.lost.add(42);
  w.failOpen(true);
  k.reconcile();
  t.equal(w.replaced.length, 0, 'an open that fails is not fatal');
  t.not(k.state()[0]!.tapLostSince, null, 'lost since');
  w.failOpen(false);
  k.reconcile();
  t.same(w.calls, ["open vxr42 1450 'br0' true"], 'recreated on br0 with its MTU and offloads');
  t.match(w.replaced, [{ vni: 42, tapFd: 99, tapName: 'vxr42', mtu: 1450, vnetHdr: true }], 'and handed to the engine');
  t.match(k.state()[0], { tapLostSince: null, tapsRecreated: 1 });

  w.links.delete('br0');
  w.links.delete('vxr42');
  w.lost.add(42);
  k.reconcile();
  t.same(w.calls.at(-1), "open vxr42 1450 '' true", 'on no bridge while br0 is missing');
  w.add('br0', 'bridge');
  k.reconcile();
  t.same(w.calls.at(-1), 'attach vxr42 br0 1450', 'joins it when it returns');
  t.match(k.state()[0], { bridgeMissingSince: null, bridgeRejoins: 1, tapsRecreated: 2 });

  w.lost.add(42); // a stale link of that name is removed first
  k.reconcile();
  t.same(w.calls.slice(-2), ['delete vxr42', "open vxr42 1450 'br0' true"]);
  k.close();
  t.equal(w.calls.at(-1), 'close', 'close stops the watch');
});
