export { buildConfig, readConfigFile, type RawConfig } from './load.js';
export { CONFIG_KEYS, ENGINES, configSchema, type ConfigKey, type RouterConfig } from './schema.js';
