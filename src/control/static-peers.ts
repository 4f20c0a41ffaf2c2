/**
 * The no-etcd control plane: peers named in the config or on the command line. Produces the same table snapshot
 * the etcd registry will, so the data path cannot tell the two apart.
 */
import type { TableSnapshot } from '../fdb/index.js';

export interface StaticNetwork {
  readonly vni: number;
  readonly peers: readonly string[];
}


/** One VNI, flooding to every configured peer; MACs are learned from traffic (no static MAC entries yet). */
export function staticTable(networks: readonly StaticNetwork[]): TableSnapshot {
  return { vnis: networks.map((n) => ({ vni: n.vni, peers: [...n.peers], macs: [] })) };
}
