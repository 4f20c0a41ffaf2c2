// Types only: the registry itself (and the etcd client with it) is loaded by openRegistry when a host uses etcd.
export type { EtcdConnection, EtcdRegistry, RegistryCounters, RegistryOptions } from './etcd-registry.js';
export { openRegistry } from './open-registry.js';
export {
  ControlPlaneTracker,
  HostView,
  hostRecordSchema,
  networkDefinitionSchema,
  RejectedRecord,
  type ControlPlaneState,
  type ControlPlaneStatus,
  type HostRecord,
  type NetworkDefinition,
} from './registry-view.js';
export {
  DEFAULT_STATE_DIR,
  decodeSnapshot,
  encodeSnapshot,
  readSnapshot,
  SNAPSHOT_FORMAT,
  SnapshotWriter,
  snapshotPath,
  writeFileAtomic,
  type RegistrySnapshot,
  type SnapshotRead,
} from './snapshot.js';
export { defaultHostPrefix, rangeRecordSchema, Slices, type HostRange, type RangeRecord } from './ip-ranges.js';
export { StaticPeers, staticTable } from './static-peers.js';
export { combineStates, type AdvertisedMac, type ControlPlane, type ControlPlaneEvents, type HostRow, type MacConflict, type NoRange, type PlaneNetwork, type SelfRecord } from './control-plane.js';
export { EtcdPlane, type EtcdPlaneOptions } from './etcd-plane.js';
