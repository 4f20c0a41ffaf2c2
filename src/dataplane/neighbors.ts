/** What both engines do with the table's neighbours (remote containers' addresses) besides answering ARP. */
import type { TableSnapshot } from './engine.js';

/**
 * Addresses whose MAC changed from one table to the next (a container re-created elsewhere with the same address):
 * the bridge must hear of each at once (a gratuitous ARP), or its hosts keep sending to the old MAC until their
 * neighbour cache expires. New and vanished addresses need nothing: ARP finds the former, the latter just go.
 */
export function reboundAddresses(before: TableSnapshot, after: TableSnapshot): { vni: number; ip: string; mac: string }[] {
  const old = new Map<string, string>();
  for (const v of before.vnis) for (const n of v.neighbors ?? []) old.set(`${v.vni}/${n.ip}`, n.mac);
  const out: { vni: number; ip: string; mac: string }[] = [];
  for (const v of after.vnis) {
    for (const n of v.neighbors ?? []) {
      const was = old.get(`${v.vni}/${n.ip}`);
      if (was !== undefined && was !== n.mac) out.push({ vni: v.vni, ip: n.ip, mac: n.mac });
    }
  }
  return out;
}
