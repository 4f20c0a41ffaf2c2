export {
  EtcdRegistry,
  hostRecordSchema,
  networkConfigSchema,
  REGISTRY_PREFIX,
  type HostRecord,
  type NetworkConfig,
  type RegistryOptions,
  type RegistryState,
} from './etcd-registry.js';
export { staticTable, type StaticNetwork } from './static-peers.js';
