/** BridgePresence: a local MAC that leaves its bridge (port deleted, or now behind the TAP) is withdrawn at once. */
import t from 'tap';
import { BridgePresence, type BridgeReader } from '../../src/agent/bridge-presence.js';
import { encodeBridgeFdb } from '../../src/fdb/index.js';
import type { LocalMac } from '../../src/dataplane/index.js';

t.test('BridgePresence withdraws MACs that left the bridge, and only those seen there before', async (t) => {
  let entries: { mac: string; port: number; local?: boolean }[] = [];
  let readable = true;
  const read: BridgeReader = () => (readable ? { fdb: encodeBridgeFdb(entries.map((e) => ({ local: false, ageTicks: 0, ...e }))), tapPort: 1 } : undefined);
  const p = new BridgePresence([{ vni: 42, bridge: 'br0', tap: 'vxr42' }], read);
  const mac = (m: string, vni = 42): LocalMac => ({ vni, mac: m, ageMs: 0, ips: [] });
  const a = '02:00:00:00:00:0a';
  const b = '02:00:00:00:00:0b';
  const g = '02:00:00:00:00:99';
  entries = [{ mac: a, port: 2 }, { mac: b, port: 3 }, { mac: '02:00:00:00:00:01', port: 1, local: true }];
  const ours = [mac(a), mac(b), mac(g), mac(a, 7)];
  t.same(p.filter(ours), ours, 'all there (g never seen on the bridge: kept, as with a bridge that keeps no table)');
  entries = [{ mac: b, port: 3 }];
  t.same(p.filter(ours).map((m) => m.mac), [b, g, a], "a's port went: a withdrawn (its VNI 7 twin is another network)");
  t.equal(p.withdrawn, 1);
  entries = [{ mac: b, port: 1 }];
  t.same(p.filter(ours).map((m) => m.mac), [g, a], 'b is behind the TAP now (it moved to another host): withdrawn');
  readable = false;
  t.same(p.filter(ours).map((m) => m.mac), [g, a], 'an unreadable table changes nothing');
  readable = true;
  entries = [{ mac: a, port: 4 }, { mac: b, port: 3 }];
  t.same(p.filter(ours), ours, 'both back on the bridge: advertised again');
  t.equal(p.withdrawn, 2);
  t.same(p.filter([mac(b)]).map((m) => m.mac), [b], 'what the engine forgot is forgotten here');
});
