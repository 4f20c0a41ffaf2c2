export { buildConfig, ETCD_PASSWORD_ENV, etcdClientConfig, joinsOf, readConfigFile, type EtcdClientConfig, type EtcdOptionValues, type RawConfig } from './load.js';
export { CONFIG_KEYS, ENGINES, LOOPS, OFFLOADS, configSchema, type ConfigKey, type LoopChoice, type NetworkJoin, type Offload, type RouterConfig } from './schema.js';
export { defaultRunDir, defaultStateDir, namespaceName, RUN_DIR, RUN_DIR_ENV, STATE_DIR, STATE_DIR_ENV, type NamespaceProbe } from './paths.js';
