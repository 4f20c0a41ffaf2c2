/**
 * Which of this host's MACs are still on their bridge: a container that is gone (its veth deleted, the kernel flushed
 * its port's entries from the bridge's forwarding table) or whose MAC is now behind the TAP (it moved to another
 * host) is withdrawn from what this host advertises at once, not when the engine ages it out (agingSeconds). That is
 * what lets another host's container take over its address within a second (MacView: the first live claim owns an
 * address, so the new one waits until the old claim goes).
 *
 * A MAC is withdrawn only after it was seen behind a port other than the TAP's and then no longer is: with a bridge
 * that keeps no table (ageing_time 0) or a file that cannot be read, nothing is withdrawn (the engine's aging rules).
 * The bridge's own table ages its entries too (ageing_time, 300 s by default): a MAC silent that long is withdrawn,
 * as the engine would. It comes back as soon as the bridge learns it again.
 */
import { readFileSync } from 'node:fs';
import { endianness } from 'node:os';
import type { LocalMac } from '../dataplane/index.js';
import { decodeBridgeFdb } from '../fdb/index.js';

/** The bridge's table (a brforward file's bytes) and the TAP's port number on it; undefined: cannot tell now. */
export type BridgeReader = (bridge: string, tap: string) => { fdb: Uint8Array; tapPort: number } | undefined;

/** Reads /sys/class/net/<bridge>/brforward and the TAP's brport/port_no (this network namespace's sysfs). */
export const sysfsBridgeReader: BridgeReader = (bridge, tap) => {
  try {
    const fdb = readFileSync(`/sys/class/net/${bridge}/brforward`);
    const tapPort = Number(readFileSync(`/sys/class/net/${tap}/brport/port_no`, 'utf8').trim());
    return Number.isInteger(tapPort) ? { fdb, tapPort } : undefined;
  } catch {
    return undefined;
  }
};

export class BridgePresence {
  /** Per VNI: local MACs seen behind a port of the bridge (not the TAP's), and those that since left it. */
  private readonly seen = new Map<number, Set<string>>();
  private readonly gone = new Map<number, Set<string>>();
  /** MACs withdrawn because they left their bridge, since start. */
  withdrawn = 0;

  constructor(
    private readonly networks: readonly { readonly vni: number; readonly bridge: string; readonly tap: string }[],
    private readonly read: BridgeReader = sysfsBridgeReader,
    private readonly littleEndian = endianness() === 'LE',
  ) {}

  /** `macs` without those that left their bridge; reads each bridge's table once. */
  filter(macs: readonly LocalMac[]): LocalMac[] {
    const keep = new Map<number, (mac: string) => boolean>();
    for (const n of this.networks) {
      const local = new Set(macs.filter((m) => m.vni === n.vni).map((m) => m.mac.toLowerCase()));
      const seen = this.seen.get(n.vni) ?? new Set<string>();
      const gone = this.gone.get(n.vni) ?? new Set<string>();
      // Bounded by the engine's local-MAC table: forget what the engine forgot.
      for (const s of [seen, gone]) for (const m of s) if (!local.has(m)) s.delete(m);
      const table = this.read(n.bridge, n.tap);
      if (table !== undefined) {
        const here = new Set<string>();
        for (const e of decodeBridgeFdb(table.fdb, this.littleEndian)) if (e.port !== table.tapPort || e.local) here.add(e.mac);
        for (const m of local) {
          if (here.has(m)) {
            seen.add(m);
            gone.delete(m);
          } else if (seen.has(m) && !gone.has(m)) {
            gone.add(m);
            this.withdrawn++;
          }
        }
      }
      this.seen.set(n.vni, seen);
      this.gone.set(n.vni, gone);
      keep.set(n.vni, (mac) => !gone.has(mac));
    }
    return macs.filter((m) => keep.get(m.vni)?.(m.mac.toLowerCase()) ?? true);
  }
}
