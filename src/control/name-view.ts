/**
 * Every host's container names (names/<hostId> records, records.ts): which addresses a name has on one network.
 * Pure (no etcd), tested on its own. A record is hostile until parsed: one that is not JSON, breaks the schema
 * (bounded count, bounded names of a fixed charset) or names another host is rejected whole (counted, reported as an
 * E_RECORD warning), never a throw; the host's previous record is dropped with it.
 */
import { nameRecordSchema, parseRecord, RejectedRecord, type NameEntry } from './records.js';

/** One address a name has: the container's MAC and the host that advertised it. */
export interface NameAddress {
  readonly ip: string;
  readonly mac: string;
  readonly hostId: string;
}

export class NameView {
  private readonly byId = new Map<string, readonly NameEntry[]>();
  private index: Map<string, NameAddress[]> | undefined;
  rejected = 0;

  constructor(private readonly onReject: (err: RejectedRecord) => void = () => undefined) {}

  reset(entries: Iterable<{ readonly id: string; readonly value: string }>): void {
    this.byId.clear();
    this.index = undefined;
    for (const e of entries) this.put(e.id, e.value);
  }

  put(id: string, value: string): boolean {
    this.index = undefined;
    const r = parseRecord(nameRecordSchema, id, value);
    if ('reason' in r) {
      this.byId.delete(id);
      this.rejected++;
      this.onReject(new RejectedRecord(id, r.reason, 'name'));
      return false;
    }
    this.byId.set(id, r.record.names);
    return true;
  }

  delete(id: string): void {
    this.byId.delete(id);
    this.index = undefined;
  }

  /** How many hosts have a names record here. */
  get size(): number {
    return this.byId.size;
  }

  /**
   * The addresses of `name` (lowercase) on this network, from every host's record but `skipId`'s (this host, whose
   * own names the caller has fresher), sorted so every host answers in the same order.
   */
  lookup(name: string, skipId?: string): NameAddress[] {
    const index = (this.index ??= this.build());
    return (index.get(name) ?? []).filter((a) => a.hostId !== skipId);
  }

  private build(): Map<string, NameAddress[]> {
    const index = new Map<string, NameAddress[]>();
    for (const [hostId, entries] of this.byId) {
      for (const e of entries) {
        for (const n of new Set(e.names)) {
          const list = index.get(n) ?? [];
          for (const ip of e.ips) list.push({ ip, mac: e.mac, hostId });
          index.set(n, list);
        }
      }
    }
    for (const list of index.values()) list.sort((a, b) => a.ip.localeCompare(b.ip) || a.hostId.localeCompare(b.hostId));
    return index;
  }
}
