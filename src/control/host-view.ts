/**
 * The hosts of one network as the registry sees them: filled from a listing, then kept current by watch events;
 * pure (no etcd), so it is tested on its own. It makes the data path's flood list and source allow-list.
 */
import type { TableSnapshot } from '../fdb/index.js';
import { familyOf, hostRecordSchema, parseRecord, RejectedRecord, type HostRecord } from './records.js';

/** This host, as the view checks the others against it: its id and its underlay address (canonical spelling). */
export interface SelfHost {
  readonly id: string;
  readonly underlay: string;
}

/**
 * The hosts of one network, keyed by the id in their key. A value that is not JSON, does not match the schema or
 * names another host than its key is rejected: counted, reported, and it removes whatever that key held before (the
 * key no longer holds a valid record). So is a record this host could not use: one without an underlay address of
 * this host's family (it could never be reached), or another host's record naming this host's own address (we would
 * flood to and accept ourselves). A host's address is the first underlay address of this host's family. Never throws.
 */
export class HostView {
  private readonly byId = new Map<string, { record: HostRecord; address: string }>();
  /** When each record was last put (the peers command's "last update"). */
  private readonly updated = new Map<string, number>();
  rejected = 0;

  constructor(
    private readonly vni: number,
    private readonly self: SelfHost,
    private readonly onReject: (err: RejectedRecord) => void = () => undefined,
    private readonly now: () => number = Date.now,
  ) {}

  /** Replaces everything with a listing's contents. */
  reset(entries: Iterable<{ readonly id: string; readonly value: string }>): void {
    this.byId.clear();
    this.updated.clear();
    for (const e of entries) this.put(e.id, e.value);
  }

  /** A put of hosts/<id>: returns whether the record was accepted. */
  put(id: string, value: string): boolean {
    const r = parseRecord(hostRecordSchema, id, value);
    if ('reason' in r) return this.reject(id, r.reason);
    const family = familyOf(this.self.underlay);
    const address = r.record.underlay.find((a) => familyOf(a) === family);
    if (address === undefined) return this.reject(id, `it has no IPv${family} underlay address (${r.record.underlay.join(', ')}), and this host's underlay is IPv${family}`);
    if (id !== this.self.id && address === this.self.underlay) return this.reject(id, `its underlay address ${address} is this host's own`);
    this.byId.set(id, { record: r.record, address });
    this.updated.set(id, this.now());
    return true;
  }

  delete(id: string): void {
    this.byId.delete(id);
    this.updated.delete(id);
  }

  /** Each host's record and when it was last put (ms since the epoch). */
  rows(): { record: HostRecord; updatedAt: number }[] {
    return [...this.byId].map(([id, { record }]) => ({ record, updatedAt: this.updated.get(id)! }));
  }

  get size(): number {
    return this.byId.size;
  }

  hosts(): HostRecord[] {
    return [...this.byId.values()].map((h) => h.record);
  }

  /** The underlay address host `id` registered (the one this host reaches it at), or undefined when it has none. */
  addressOf(id: string): string | undefined {
    return this.byId.get(id)?.address;
  }

  /** The data path's view: every other host of the network is a peer (flood list and source allow-list), once each. */
  table(): TableSnapshot {
    const peers = new Set<string>();
    for (const [id, h] of this.byId) if (id !== this.self.id) peers.add(h.address);
    return { vnis: [{ vni: this.vni, peers: [...peers], macs: [] }] };
  }

  private reject(id: string, reason: string): false {
    this.delete(id);
    this.rejected++;
    this.onReject(new RejectedRecord(id, reason, 'host'));
    return false;
  }
}
