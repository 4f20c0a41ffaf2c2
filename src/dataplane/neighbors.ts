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

/** How long an address that left the table remembers its MAC (a move is often a withdrawal, then a new claim). */
export const REBOUND_MEMORY_MS = 60_000;
/** Addresses remembered after leaving the table, at most (the oldest forgotten first). */
export const REBOUND_MEMORY_MAX = 16_384;

/**
 * `reboundAddresses` across withdrawals: an address that left the table (its container gone, the old host withdrew it
 * first) and comes back within REBOUND_MEMORY_MS at another MAC (the new container's host claimed it next) is a
 * rebinding too, and must be announced: the bridge's hosts still hold the old MAC in their neighbour caches.
 */
export class ReboundTracker {
  private readonly last = new Map<string, { mac: string; goneAt?: number }>();

  constructor(private readonly now: () => number = Date.now) {}

  /** The addresses of `table` whose MAC is not the one they had last (in a table, or before they left it). */
  next(table: TableSnapshot): { vni: number; ip: string; mac: string }[] {
    const t = this.now();
    const present = new Set<string>();
    const out: { vni: number; ip: string; mac: string }[] = [];
    for (const v of table.vnis) {
      for (const n of v.neighbors ?? []) {
        const key = `${v.vni}/${n.ip}`;
        present.add(key);
        const was = this.last.get(key);
        if (was !== undefined && was.mac !== n.mac && (was.goneAt === undefined || t - was.goneAt < REBOUND_MEMORY_MS)) out.push({ vni: v.vni, ip: n.ip, mac: n.mac });
        if (was === undefined || was.mac !== n.mac || was.goneAt !== undefined) this.last.set(key, { mac: n.mac });
      }
    }
    let excess = this.last.size - present.size - REBOUND_MEMORY_MAX;
    for (const [key, e] of this.last) {
      if (present.has(key)) continue;
      if (e.goneAt === undefined) this.last.set(key, { mac: e.mac, goneAt: t });
      else if (t - e.goneAt >= REBOUND_MEMORY_MS || excess > 0) {
        this.last.delete(key);
        excess--;
      }
    }
    return out;
  }
}
