export { buildConfig, readConfigFile, type RawConfig } from './load.js';
export { CONFIG_KEYS, ENGINES, OFFLOADS, configSchema, type ConfigKey, type Offload, type RouterConfig } from './schema.js';
