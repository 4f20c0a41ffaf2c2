/**
 * The one interface between the daemon and whatever tells it where other hosts are: static peers from the config,
 * or the etcd registry. The daemon holds one control plane per network it serves, asks each what it serves (`open`),
 * starts it under this host's record (`start`), forwards with the union of their tables (`table` events), hands them
 * this host's MACs (`advertise`) and closes them on the way out. It never asks which kind it holds.
 *
 * Lifecycle: open → start → (table | state | warning events) → close. `close` is safe to call twice and at any step.
 */
import type { EventEmitter } from 'node:events';
import type { VxlanRouterError } from '../errors.js';
import type { TableSnapshot } from '../fdb/index.js';
import type { ControlPlaneState } from './control-plane-state.js';
import type { RegistryCounters } from './etcd-registry.js';
import type { HostRange, NoRange } from './ip-ranges.js';
import type { NameAddress } from './name-view.js';
import type { HostRecord, NameEntry } from './records.js';

export type { NoRange } from './ip-ranges.js';

/** What a control plane serves, as it found out in `open`. */
export interface PlaneNetwork {
  /** The etcd network's name; null for static peers. */
  readonly name: string | null;
  readonly vni: number;
  /** The MTU the network's definition asks for (undefined: derived from the underlay). */
  readonly mtu: number | undefined;
  /** The network's subnet (etcd definitions have one; static peers do not). */
  readonly subnet: string | undefined;
  /** Where the network and the first table came from: the config, etcd, or the on-disk snapshot (etcd away). */
  readonly startedFrom: 'config' | 'etcd' | 'snapshot';
}

/** This host as the other hosts should see it: what `start` registers. */
export interface SelfRecord {
  /** The TAP's MTU on this network. */
  readonly mtu: number;
  /** Every network this router serves (etcd names). */
  readonly networks: readonly string[];
}

/** A MAC of this host's bridge side, with the addresses it used and how long ago it was last seen. */
export interface AdvertisedMac {
  readonly vni: number;
  readonly mac: string;
  readonly ips?: readonly string[];
  readonly ageMs?: number;
}

/** A registry host and when its record last changed (ms since the epoch). */
export interface HostRow {
  readonly record: HostRecord;
  readonly updatedAt: number;
}

/** A MAC several hosts claim at once, the claimants newest first (the first one gets the traffic). */
export interface MacConflict {
  readonly vni: number;
  readonly mac: string;
  readonly hostIds: string[];
}

/** An address several MACs claim: the owner (ARP / ND answer with it) and the others; `advertised: false`: a MAC of
 * this host whose claim this host refused to advertise. */
export interface AddressConflict {
  readonly vni: number;
  readonly ip: string;
  readonly owner: { readonly mac: string; readonly hostId: string };
  readonly claimants: { readonly mac: string; readonly hostId: string; readonly advertised: boolean }[];
}

export interface ControlPlaneEvents {
  /** A new table for the data path (the whole of it: the daemon replaces, never patches). */
  table: [TableSnapshot];
  /** The control plane's state changed (connected, degraded, starting). */
  state: [ControlPlaneState];
  /** Something went wrong that the control plane recovers from by itself; `kind` says what, for rate-limiting. */
  warning: [VxlanRouterError];
}

export interface ControlPlane extends EventEmitter<ControlPlaneEvents> {
  readonly kind: 'static' | 'etcd';
  /** Finds out what this control plane serves (etcd: the network's definition, or the snapshot's while etcd is away). */
  open(): Promise<PlaneNetwork>;
  /** Joins under this host's record and starts following; resolves once the first table is there (or, from a snapshot, at once). */
  start(self: SelfRecord): Promise<void>;
  /** The newest table. */
  table(): TableSnapshot;
  /** Connected / degraded / starting, since when, at which revision; null for static peers (nothing to lose). */
  state(): ControlPlaneState | null;
  /** This host's slice of the network's subnet for Docker's IPAM, or why it has none. */
  range(): HostRange | NoRange;
  /** The registry's hosts (this one included); [] for static peers. */
  hosts(): HostRow[];
  macConflicts(): MacConflict[];
  /** Addresses several MACs claim (a forged or duplicate address); [] for static peers. */
  addressConflicts(): AddressConflict[];
  /** What the registry recovered from or refused (relists, rejected records, lease re-grants, MACs left out); null for static peers. */
  counters(): RegistryCounters | null;
  /** This host's MACs of this network, the whole current set; written out only when it changed. Never throws. */
  advertise(macs: readonly AdvertisedMac[]): void;
  /** The names of this host's containers on this network, the whole current set (etcd only; static: ignored). Never throws. */
  advertiseNames(entries: readonly NameEntry[]): void;
  /** The addresses a container name (lowercase) has on this network, on any host; [] for static peers. */
  lookupName(name: string): NameAddress[];
  /**
   * Withdraws this host and stops. Safe to call twice. `keepLease` (a handover to a router that took over): stops
   * without withdrawing; the records stay under the lease until the new router's replace them or it runs out.
   */
  close(opts?: { keepLease?: boolean }): Promise<void>;
}

/** Several networks' states as one: the worst state (since when), the oldest revision, the most hosts; null if none. */
export function combineStates(states: readonly (ControlPlaneState | null)[]): ControlPlaneState | null {
  const known = states.filter((s): s is ControlPlaneState => s !== null);
  if (known.length <= 1) return known[0] ?? null;
  const rank = { connected: 0, starting: 1, degraded: 2 } as const;
  const worst = known.reduce((a, b) => (rank[b.state] > rank[a.state] ? b : a));
  return { ...worst, revision: Math.min(...known.map((s) => s.revision)), hosts: Math.max(...known.map((s) => s.hosts)) };
}
