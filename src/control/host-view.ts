/**
 * The hosts of one network as the registry sees them: filled from a listing, then kept current by watch events;
 * pure (no etcd), so it is tested on its own. It makes the data path's flood list and source allow-list.
 */
import type { TableSnapshot } from '../fdb/index.js';
import { hostRecordSchema, parseRecord, RejectedRecord, type HostRecord } from './records.js';

/**
 * The hosts of one network, keyed by the id in their key. A value that is not JSON, does not match the schema or
 * names another host than its key is rejected: counted, reported, and it removes whatever that key held before (the
 * key no longer holds a valid record). Never throws.
 */
export class HostView {
  private readonly byId = new Map<string, HostRecord>();
  /** When each record was last put (the peers command's "last update"). */
  private readonly updated = new Map<string, number>();
  rejected = 0;

  constructor(
    private readonly vni: number,
    private readonly selfId: string,
    private readonly onReject: (err: RejectedRecord) => void = () => undefined,
    private readonly now: () => number = Date.now,
  ) {}

  /** Replaces everything with a listing's contents. */
  reset(entries: Iterable<{ readonly id: string; readonly value: string }>): void {
    this.byId.clear();
    for (const e of entries) this.put(e.id, e.value);
  }

  /** A put of hosts/<id>: returns whether the record was accepted. */
  put(id: string, value: string): boolean {
    const r = parseRecord(hostRecordSchema, id, value);
    if ('reason' in r) return this.reject(id, r.reason);
    this.byId.set(id, r.record);
    this.updated.set(id, this.now());
    return true;
  }

  delete(id: string): void {
    this.byId.delete(id);
    this.updated.delete(id);
  }

  /** Each host's record and when it was last put (ms since the epoch). */
  rows(): { record: HostRecord; updatedAt: number }[] {
    return [...this.byId].map(([id, record]) => ({ record, updatedAt: this.updated.get(id)! }));
  }

  get size(): number {
    return this.byId.size;
  }

  hosts(): HostRecord[] {
    return [...this.byId.values()];
  }

  /** The data path's view: every other host of the network is a peer (flood list and source allow-list). */
  table(): TableSnapshot {
    const peers = this.hosts()
      .filter((h) => h.hostId !== this.selfId)
      .map((h) => h.underlay[0]!);
    return { vnis: [{ vni: this.vni, peers, macs: [] }] };
  }

  private reject(id: string, reason: string): false {
    this.delete(id);
    this.rejected++;
    this.onReject(new RejectedRecord(id, reason, 'host'));
    return false;
  }
}
