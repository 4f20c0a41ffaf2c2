/**
 * The Linux bridge's own forwarding table as /sys/class/net/<bridge>/brforward gives it: pure (the agent reads the
 * file). Kernel ABI (include/uapi/linux/if_bridge.h), 16 bytes per entry, host byte order:
 *   struct __fdb_entry { u8 mac_addr[6]; u8 port_no; u8 is_local; u32 ageing_timer_value; u8 port_hi; u8 pad0; u16 unused; }
 * The kernel drops a port's entries when the port goes (a container's veth deleted), which is how the router tells
 * that a container left its bridge long before its MAC ages out.
 */

/** Bytes of one struct __fdb_entry. */
export const BRIDGE_FDB_ENTRY_BYTES = 16;

/** One entry: a MAC, the bridge port it is behind (port_hi << 8 | port_no), whether it is the bridge's or a port's own. */
export interface BridgeFdbEntry {
  readonly mac: string;
  readonly port: number;
  readonly local: boolean;
  /** Time since last seen, in the kernel's clock ticks (USER_HZ). */
  readonly ageTicks: number;
}

const hex = (b: number): string => b.toString(16).padStart(2, '0');

/** Every whole entry of `buf` (a trailing partial one is ignored); `littleEndian`: the host's byte order. */
export function decodeBridgeFdb(buf: Uint8Array, littleEndian = true): BridgeFdbEntry[] {
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const out: BridgeFdbEntry[] = [];
  for (let o = 0; o + BRIDGE_FDB_ENTRY_BYTES <= buf.length; o += BRIDGE_FDB_ENTRY_BYTES) {
    const mac = [0, 1, 2, 3, 4, 5].map((i) => hex(buf[o + i]!)).join(':');
    out.push({ mac, port: (buf[o + 12]! << 8) | buf[o + 6]!, local: buf[o + 7] !== 0, ageTicks: view.getUint32(o + 8, littleEndian) });
  }
  return out;
}

/** The inverse of decodeBridgeFdb (tests). */
export function encodeBridgeFdb(entries: readonly BridgeFdbEntry[], littleEndian = true): Uint8Array {
  const buf = new Uint8Array(entries.length * BRIDGE_FDB_ENTRY_BYTES);
  const view = new DataView(buf.buffer);
  entries.forEach((e, i) => {
    const o = i * BRIDGE_FDB_ENTRY_BYTES;
    e.mac.split(':').forEach((b, j) => (buf[o + j] = parseInt(b, 16)));
    buf[o + 6] = e.port & 0xff;
    buf[o + 7] = e.local ? 1 : 0;
    view.setUint32(o + 8, e.ageTicks, littleEndian);
    buf[o + 12] = (e.port >> 8) & 0xff;
  });
  return buf;
}
