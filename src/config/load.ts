/**
 * Reads the YAML config file and the command-line flags, merges them (flags win), validates the result against the
 * schema and freezes it. Every error names the key and its source: the file path or the flag.
 */
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { parse as parseYaml } from 'yaml';
import { ConfigError } from '../errors.js';
import { formatIp, parseIp } from '../packet/index.js';
import { CONFIG_KEYS, configSchema, type ConfigKey, type RouterConfig } from './schema.js';

export type RawConfig = Partial<Record<ConfigKey, unknown>>;

/** How a key is spelled on the command line, for error messages. */
const FLAG_OF: Record<ConfigKey, string> = {
  local: '--local',
  vni: '--vni',
  bridge: '--bridge',
  peers: '--peer',
  tap: '--tap',
  port: '--port',
  mtu: '--mtu',
  engine: '--engine',
  learning: '--no-learning',
  offloads: '--offloads',
  agingSeconds: '--aging',
  etcd: '--etcd',
  network: '--network',
  hostId: '--host-id',
  leaseTtl: '--lease-ttl',
  socket: '--socket',
  metrics: '--metrics',
  logLevel: '--log-level',
};

export function readConfigFile(path: string): RawConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (cause) {
    throw new ConfigError(`cannot read config file ${path}: ${(cause as Error).message}`, { cause });
  }
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (cause) {
    throw new ConfigError(`${path}: not valid YAML: ${(cause as Error).message}`, { cause });
  }
  if (doc === null || doc === undefined) return {};
  if (typeof doc !== 'object' || Array.isArray(doc)) throw new ConfigError(`${path}: expected a mapping of keys`);
  const raw = doc as Record<string, unknown>;
  for (const key of Object.keys(raw)) {
    if (!(CONFIG_KEYS as string[]).includes(key)) {
      throw new ConfigError(`${path}: unknown key '${key}' (known keys: ${CONFIG_KEYS.join(', ')})`);
    }
  }
  return raw as RawConfig;
}

/** Canonical text (RFC 5952 for IPv6) so addresses compare equal to what the kernel reports as a datagram's source. */
function canonicalIp(s: string): string {
  return isIP(s) ? formatIp(parseIp(s)) : s;
}

export function buildConfig(sources: { file?: string; fileValues?: RawConfig; flags: RawConfig }): RouterConfig {
  const fileValues = sources.fileValues ?? (sources.file === undefined ? {} : readConfigFile(sources.file));
  const merged: RawConfig = { ...fileValues };
  for (const [k, v] of Object.entries(sources.flags)) if (v !== undefined) merged[k as ConfigKey] = v;

  const result = configSchema.safeParse(merged);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    const key = String(issue.path[0] ?? '');
    const where =
      key in sources.flags && sources.flags[key as ConfigKey] !== undefined
        ? FLAG_OF[key as ConfigKey]
        : `${sources.file ?? 'config'}: key '${key}'`;
    if (merged[key as ConfigKey] === undefined) {
      throw new ConfigError(`${FLAG_OF[key as ConfigKey]} is required (or set '${key}' in a --config file)`);
    }
    const item = issue.path.length > 1 ? ` (item ${String(issue.path[1])})` : '';
    throw new ConfigError(`${where}${item}: ${describe(issue.message, merged[key as ConfigKey])}`);
  }
  const c = result.data;
  if (c.vni === undefined && c.etcd === undefined) {
    throw new ConfigError('--vni is required (or --etcd, to take it from the network defined in etcd)');
  }
  const local = canonicalIp(c.local);
  const peers = [...new Set(c.peers.map(canonicalIp))];
  const family = isIP(local);
  for (const p of peers) {
    if (isIP(p) !== family) throw new ConfigError(`${FLAG_OF.peers} ${p}: not the same address family as --local ${local}`);
    if (p === local) throw new ConfigError(`${FLAG_OF.peers} ${p}: is the local address itself`);
  }
  return Object.freeze({ ...c, local, peers: Object.freeze(peers) as string[] });
}

function describe(message: string, value: unknown): string {
  const shown = value === undefined ? 'missing' : JSON.stringify(value);
  return message.startsWith('is ') ? `${shown} ${message}` : `${message} (got ${shown})`;
}
