// Types only: the registry itself (and the etcd client with it) is loaded by openRegistry when a host uses etcd.
export type { EtcdConnection, EtcdRegistry, RegistryCounters, RegistryEvents, RegistryOptions } from './etcd-registry.js';
export { openRegistry } from './open-registry.js';
export {
  hostRecordSchema,
  keys,
  MAX_IPS_PER_MAC,
  MAX_MACS_PER_RECORD,
  MAX_NAME_ENTRIES,
  MAX_NAMES_PER_ENTRY,
  CONTAINER_NAME_PATTERN,
  macRecordSchema,
  nameRecordSchema,
  networkDefinitionSchema,
  rangeRecordSchema,
  REGISTRY_PREFIX,
  RejectedRecord,
  undefinedNetwork,
  type HostRecord,
  type MacRecord,
  type NameEntry,
  type NameRecord,
  type NetworkDefinition,
  type RangeRecord,
  type RecordKind,
} from './records.js';
export { HostView } from './host-view.js';
export { NameView, type NameAddress } from './name-view.js';
export { MacView, OWNERSHIP_BURST, OWNERSHIP_PER_SECOND, type AddressClaimant } from './mac-view.js';
export { addressScope } from './address-scope.js';
export { TokenBucket } from './token-bucket.js';
export { ControlPlaneTracker, retryDelay, type ControlPlaneState, type ControlPlaneStatus, type Problem } from './control-plane-state.js';
export { REGISTRY_WARNING_KINDS, RegistryWarning, type RegistryWarningKind } from './registry-warnings.js';
export {
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
export { defaultHostPrefix, Ipv4Subnet, NO_RANGE_REASONS, SliceAddresses, Slices, type HostRange, type NoRange, type NoRangeReason } from './ip-ranges.js';
export { StaticPeers, staticTable } from './static-peers.js';
export { combineStates, type AddressConflict, type AdvertisedMac, type ControlPlane, type ControlPlaneEvents, type HostRow, type MacConflict, type PlaneNetwork, type SelfRecord } from './control-plane.js';
export { EtcdPlane, type EtcdPlaneOptions } from './etcd-plane.js';
