/** What both engines do with the table's neighbours (remote containers' addresses) besides answering ARP and ND. */
import { isIPv6 } from 'node:net';
import { gratuitousArp, senderIpv4, senderIpv6, unsolicitedNa } from '../packet/index.js';
import type { TableSnapshot } from './engine.js';

/** The address a frame from the bridge speaks for (IPv4 first, then IPv6), as the native engine's SenderIp. */
export function senderIp(frame: Uint8Array): string | undefined {
  return senderIpv4(frame) ?? senderIpv6(frame);
}

/** The frame that tells a bridge `ip` is now at `mac`: a gratuitous ARP, or an unsolicited Neighbor Advertisement. */
export function announcement(ip: string, mac: string): Uint8Array {
  return isIPv6(ip) ? unsolicitedNa(ip, mac) : gratuitousArp(ip, mac);
}

/**
 * Addresses whose MAC changed from one table to the next (a container re-created elsewhere with the same address):
 * the bridge must hear of each at once (a gratuitous ARP or an unsolicited Neighbor Advertisement: `announcement`), or its hosts keep sending to the old MAC until their
 * neighbour cache expires. New and vanished addresses need nothing: ARP / ND find the former, the latter just go.
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
