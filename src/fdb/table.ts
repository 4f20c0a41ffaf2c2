/**
 * The one table the data path gets from the control side, and its one schema: the engines take it (`applyTable`),
 * the control socket answers it (`table`), the on-disk snapshot stores it. Defined once here so the three cannot
 * drift (the snapshot once dropped `origin` and `neighbors` this way). The type is the schema's, so a field cannot
 * be added to one and not the other; unknown keys (a newer writer) are dropped on parse.
 */
import { z } from 'zod';

/** A MAC whose home the control side knows: configured (static) or advertised by its host through etcd. */
export const MAC_ORIGINS = ['static', 'etcd'] as const;
export type MacOrigin = (typeof MAC_ORIGINS)[number];
/** Where a forwarding entry came from: the control side, or learned from inbound traffic. */
export type FdbOrigin = MacOrigin | 'learned';

export const tableSchema = z.object({
  vnis: z.array(
    z.object({
      vni: z.number().int(),
      /** The VNI's flood list and source allow-list. */
      peers: z.array(z.string()),
      /**
       * Known MACs (origin default static). `revision`: etcd MACs, the etcd revision of the write where its host's
       * record first claimed it (what `why` shows).
       */
      macs: z.array(z.object({ mac: z.string(), vtep: z.string(), origin: z.enum(MAC_ORIGINS).optional(), revision: z.number().int().optional() })),
      /** Addresses of remote containers (from their hosts' advertisements): ARP/ND for them is answered locally. */
      neighbors: z.array(z.object({ ip: z.string(), mac: z.string() })).optional(),
    }),
  ),
});

export type DeepReadonly<T> = T extends (infer E)[] ? readonly DeepReadonly<E>[] : T extends object ? { readonly [K in keyof T]: DeepReadonly<T[K]> } : T;

/** What the control side knows, per VNI: peers (flood list, source allow-list), static and etcd MACs, neighbours. */
export type TableSnapshot = DeepReadonly<z.infer<typeof tableSchema>>;
export type TableVni = TableSnapshot['vnis'][number];

/** One row of the forwarding table as the engines report it (`fdb`). */
export interface FdbEntry {
  readonly vni: number;
  readonly mac: string;
  readonly vtep: string;
  readonly origin: FdbOrigin;
  readonly ageMs: number;
}

/** Static peers and the control planes' tables (their MACs and neighbours), per VNI, without duplicate peers. */
export function mergeTables(...tables: TableSnapshot[]): TableSnapshot {
  const byVni = new Map<number, { peers: Set<string>; macs: TableVni['macs'][number][]; neighbors: { ip: string; mac: string }[] }>();
  for (const v of tables.flatMap((t) => t.vnis)) {
    const e = byVni.get(v.vni) ?? { peers: new Set<string>(), macs: [], neighbors: [] };
    for (const p of v.peers) e.peers.add(p);
    e.macs.push(...v.macs);
    e.neighbors.push(...(v.neighbors ?? []));
    byVni.set(v.vni, e);
  }
  return { vnis: [...byVni].map(([vni, e]) => ({ vni, peers: [...e.peers], macs: e.macs, neighbors: e.neighbors })) };
}

export const EMPTY_TABLE: TableSnapshot = { vnis: [] };
