export { buildConfig, ETCD_PASSWORD_ENV, etcdClientConfig, readConfigFile, type EtcdClientConfig, type EtcdOptionValues, type RawConfig } from './load.js';
export { CONFIG_KEYS, ENGINES, configSchema, type ConfigKey, type RouterConfig } from './schema.js';
