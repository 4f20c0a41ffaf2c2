/**
 * The no-etcd control plane: peers named in the config or on the command line. Produces the same table the etcd
 * registry does, so the data path cannot tell the two apart; MACs are learned from traffic (no static MAC entries).
 */
import { EventEmitter } from 'node:events';
import type { TableSnapshot } from '../fdb/index.js';
import type { AddressConflict, ControlPlane, ControlPlaneEvents, HostRow, MacConflict, NoRange, PlaneNetwork } from './control-plane.js';

/** Every VNI floods to every static peer (the source allow-list too). */
export function staticTable(vnis: readonly number[], peers: readonly string[]): TableSnapshot {
  return { vnis: vnis.map((vni) => ({ vni, peers: [...peers], macs: [] })) };
}

export class StaticPeers extends EventEmitter<ControlPlaneEvents> implements ControlPlane {
  readonly kind = 'static' as const;

  constructor(
    private readonly vni: number,
    private readonly peers: readonly string[],
  ) {
    super();
  }

  async open(): Promise<PlaneNetwork> {
    return { name: null, vni: this.vni, mtu: undefined, subnet: undefined, startedFrom: 'config' };
  }

  async start(): Promise<void> {}

  table(): TableSnapshot {
    return staticTable([this.vni], this.peers);
  }

  state(): null {
    return null;
  }

  range(): NoRange {
    return { none: 'static peers: no etcd to lease a range from', reason: 'no-registry' };
  }

  hosts(): HostRow[] {
    return [];
  }

  macConflicts(): MacConflict[] {
    return [];
  }

  addressConflicts(): AddressConflict[] {
    return [];
  }

  counters(): null {
    return null;
  }

  advertise(): void {}

  advertiseNames(): void {}

  lookupName(): [] {
    return [];
  }

  async close(): Promise<void> {}
}
