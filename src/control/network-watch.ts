/**
 * Following one network's hosts and MACs in etcd: list the network's prefix (hosts and MACs together, one revision),
 * then watch from that revision + 1, so no change falls between the two (LAB.md, "The etcd3 client"). When the watch
 * ends (history it needs was compacted, or the stream was cancelled) it lists again and watches from the new
 * revision, retrying in the background until that works. Each listing is a generation: events of an older watcher
 * are ignored. What it lists and hears goes into the HostView and MacView it is given; the registry publishes.
 */
import { Range, type IKeyValue, type Watcher } from 'etcd3';
import { reasonOf, type EtcdClient } from './etcd-client.js';
import type { HostView } from './host-view.js';
import type { MacView } from './mac-view.js';
import type { NameView } from './name-view.js';
import { keys } from './records.js';
import { RegistryWarning } from './registry-warnings.js';

/** Which record a key under networks/<name>/ holds, and whose; undefined for any other key (config, ranges). */
export function recordKeyOf(key: string, name: string): { kind: 'hosts' | 'macs' | 'names'; id: string } | undefined {
  const prefix = keys.networkPrefix(name);
  if (!key.startsWith(prefix)) return undefined;
  const m = /^(hosts|macs|names)\/(.+)$/.exec(key.slice(prefix.length));
  return m === null ? undefined : { kind: m[1] as 'hosts' | 'macs' | 'names', id: m[2]! };
}

/**
 * Keys per page of a listing. A network of 1 000 hosts with 100 MACs each is ~6 MB, over gRPC's default 4 MiB
 * message limit, so the prefix is listed in pages at one revision: each page at most LIST_PAGE_KEYS values of at most
 * etcd's request limit (1.5 MiB by default) each, which the client's receive limit (etcd-client.ts) must hold.
 */
export const LIST_PAGE_KEYS = 32;

/** Every key under `prefix` at one revision, LIST_PAGE_KEYS at a time; and that revision. Throws E_ETCD. */
export async function listPrefix(client: EtcdClient, prefix: string): Promise<{ kvs: IKeyValue[]; revision: number }> {
  const { etcd } = client;
  const end = Range.prefix(prefix).end;
  const kvs: IKeyValue[] = [];
  let start: Buffer = Buffer.from(prefix);
  let revision: string | undefined;
  for (;;) {
    const from = start;
    const page = await client.call(() => {
      const b = etcd.getAll().inRange(new Range(from, end)).limit(LIST_PAGE_KEYS);
      return (revision === undefined ? b : b.revision(revision)).exec();
    });
    revision ??= String(page.header.revision);
    kvs.push(...page.kvs);
    if (!page.more || page.kvs.length === 0) return { kvs, revision: Number(revision) };
    start = Buffer.concat([page.kvs.at(-1)!.key, Buffer.from([0])]); // the next key after the last one
  }
}

/** What the watch needs from the registry that owns it. */
export interface NetworkWatchHooks {
  /** The views changed as of `revision`: by a listing (`listing`, to be published at once) or by a watch event. */
  changed(revision: number, listing: boolean): void;
  /** The watch is in trouble (disconnected, ended) or well again. */
  trouble(active: boolean): void;
  /** Reports what it recovers from by itself. */
  warn(w: RegistryWarning): void;
  /** Runs `fn` until it succeeds or the registry closes (with backoff and a warning per failure). */
  retry(what: string, fn: () => Promise<void>): Promise<void>;
}

export class NetworkWatch {
  private watcher: Watcher | undefined;
  /** Bumped by each listing: events of an older watcher are ignored. */
  private generation = 0;
  private closed = false;
  /** Full listings after a watch ended (compaction, cancelled stream). */
  relists = 0;

  constructor(
    private readonly client: EtcdClient,
    private readonly name: string,
    private readonly views: { readonly hosts: HostView; readonly macs: MacView; readonly names?: NameView },
    private readonly hooks: NetworkWatchHooks,
  ) {}

  /** How many listings the views hold so far (0: nothing from etcd yet). */
  get listings(): number {
    return this.generation;
  }

  /**
   * Lists, then watches from the listing's revision; on a watch error, does both again (in the background) until it
   * works. `again`: a re-list after the watch ended (counted). Throws E_ETCD when the list or the watch fails.
   */
  async follow(again = false): Promise<void> {
    const { name, views, hooks } = this;
    const { etcd } = this.client;
    const prefix = keys.networkPrefix(name);
    const listing = await listPrefix(this.client, prefix);
    if (again) this.relists++; // before the table it brings is published
    const gen = ++this.generation;
    const entries = listing.kvs.flatMap((kv) => {
      const k = recordKeyOf(kv.key.toString(), name);
      return k === undefined ? [] : [{ ...k, value: kv.value.toString(), revision: Number(kv.mod_revision) }];
    });
    views.hosts.reset(entries.filter((e) => e.kind === 'hosts'));
    views.macs.reset(entries.filter((e) => e.kind === 'macs'));
    views.names?.reset(entries.filter((e) => e.kind === 'names'));
    const revision = listing.revision;
    hooks.changed(revision, true);
    const watcher = await this.client.call(() => etcd.watch().prefix(prefix).startRevision(String(revision + 1)).create());
    const current = (): boolean => gen === this.generation && !this.closed;
    if (!current()) {
      void watcher.cancel().catch(() => undefined);
      return;
    }
    watcher.on('put', (kv) => {
      const k = recordKeyOf(kv.key.toString(), name);
      if (!current() || k === undefined) return;
      if (k.kind === 'hosts') views.hosts.put(k.id, kv.value.toString());
      else if (k.kind === 'names') views.names?.put(k.id, kv.value.toString());
      else views.macs.put(k.id, kv.value.toString(), Number(kv.mod_revision));
      hooks.changed(Number(kv.mod_revision), false);
    });
    watcher.on('delete', (kv) => {
      const k = recordKeyOf(kv.key.toString(), name);
      if (!current() || k === undefined) return;
      if (k.kind === 'hosts') views.hosts.delete(k.id);
      else if (k.kind === 'names') views.names?.delete(k.id);
      else views.macs.delete(k.id);
      hooks.changed(Number(kv.mod_revision), false);
    });
    watcher.on('disconnected', () => current() && hooks.trouble(true));
    watcher.on('connected', () => current() && hooks.trouble(false));
    watcher.on('error', (err: Error) => {
      if (!current()) return;
      hooks.trouble(true);
      hooks.warn(new RegistryWarning('E_ETCD', 'watch-ended', `etcd watch ended (${reasonOf(err)}): listing again`, { cause: err }));
      void watcher.cancel().catch(() => undefined);
      void hooks.retry('listing again', async () => {
        await this.follow(true);
        hooks.trouble(false);
      });
    });
    const old = this.watcher;
    this.watcher = watcher;
    hooks.trouble(false);
    await old?.cancel().catch(() => undefined);
  }

  /** Stops following: later events and listings are ignored. Resolves when the watch is cancelled. Safe to call twice. */
  async close(): Promise<void> {
    this.closed = true;
    await this.watcher?.cancel();
  }
}
