/**
 * Reads the YAML config file and the command-line flags, merges them (flags win), validates the result against the
 * schema and freezes it. Every error names the key and its source: the file path or the flag; the fix, where there is
 * one to name, is the error's hint. A secret's value (the etcd password) is never echoed.
 */
import { accessSync, constants, readFileSync, statSync } from 'node:fs';
import { isIP } from 'node:net';
import { parse as parseYaml } from 'yaml';
import { ConfigError } from '../errors.js';
import { checkClientCertPair, type EtcdConnection } from '../etcd-connection.js';
import { canonicalIp } from '../packet/index.js';
import { defaultStateDir } from './paths.js';
import { CONFIG_KEYS, configSchema, type ConfigKey, type NetworkJoin, type RouterConfig } from './schema.js';

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
  arpSuppression: '--no-arp-suppression',
  clampMss: '--clamp-mss',
  offloads: '--offloads',
  loop: '--loop',
  agingSeconds: '--aging',
  learnMaxPerPeer: '--learn-max-per-peer',
  learnMax: '--learn-max',
  sourceCheck: '--no-source-check',
  maxLocalMacs: '--max-local-macs',
  probeInterval: '--probe-interval',
  etcd: '--etcd',
  network: '--network',
  networks: '--network <name>:<bridge>',
  hostId: '--host-id',
  leaseTtl: '--lease-ttl',
  socket: '--socket',
  dockerPlugin: '--docker-plugin',
  dns: '--dns',
  docker: '--docker',
  dockerSocket: '--docker-socket',
  metrics: '--metrics',
  logLevel: '--log-level',
  stateDir: '--state-dir',
  etcdCa: '--etcd-ca',
  etcdCert: '--etcd-cert',
  etcdKey: '--etcd-key',
  etcdUser: '--etcd-user',
  etcdPassword: '--etcd-password',
};

/** The environment variable that can carry the etcd password (kept out of argv and config files). */
export const ETCD_PASSWORD_ENV = 'VXLAN_ROUTER_ETCD_PASSWORD';

/** How to reach etcd, checked: the shape the control plane connects with (src/etcd-connection.ts). */
export type EtcdClientConfig = EtcdConnection;

export interface EtcdOptionValues {
  readonly etcd?: readonly string[] | undefined;
  readonly etcdCa?: string | undefined;
  readonly etcdCert?: string | undefined;
  readonly etcdKey?: string | undefined;
  readonly etcdUser?: string | undefined;
  readonly etcdPassword?: string | undefined;
}

function checkReadable(file: string, key: 'etcdCa' | 'etcdCert' | 'etcdKey'): void {
  try {
    accessSync(file, constants.R_OK);
    if (!statSync(file).isFile()) throw new Error('not a file');
  } catch (cause) {
    const why = (cause as NodeJS.ErrnoException).code ?? (cause as Error).message;
    throw new ConfigError(`${FLAG_OF[key]} ${file}: cannot read it (${why})`, { cause });
  }
}

/**
 * Checks the etcd connection options together (files readable, cert with key, TLS only with https:// endpoints, a
 * user with a password) and returns them in the shape the registry takes; undefined without --etcd.
 */
export function etcdClientConfig(v: EtcdOptionValues): EtcdClientConfig | undefined {
  const tlsGiven = v.etcdCa !== undefined || v.etcdCert !== undefined || v.etcdKey !== undefined;
  if (v.etcd === undefined || v.etcd.length === 0) {
    if (tlsGiven || v.etcdUser !== undefined) throw new ConfigError('--etcd-ca/--etcd-cert/--etcd-key/--etcd-user need --etcd');
    return undefined;
  }
  checkClientCertPair({ certFile: v.etcdCert, keyFile: v.etcdKey });
  if (v.etcdCa !== undefined) checkReadable(v.etcdCa, 'etcdCa');
  if (v.etcdCert !== undefined) checkReadable(v.etcdCert, 'etcdCert');
  if (v.etcdKey !== undefined) checkReadable(v.etcdKey, 'etcdKey');
  const plain = v.etcd.filter((e) => !e.startsWith('https://'));
  if (tlsGiven && plain.length > 0) throw new ConfigError(`--etcd ${plain[0]}: TLS options need https:// endpoints`);
  if (!tlsGiven && plain.length > 0 && plain.length < v.etcd.length) throw new ConfigError('--etcd: all endpoints http:// or all https://, not a mix');
  if (v.etcdUser === undefined && v.etcdPassword !== undefined) throw new ConfigError(`an etcd password (--etcd-password or ${ETCD_PASSWORD_ENV}) needs --etcd-user`);
  if (v.etcdUser !== undefined && v.etcdPassword === undefined) throw new ConfigError(`--etcd-user ${v.etcdUser} needs a password`, { hint: `--etcd-password or ${ETCD_PASSWORD_ENV}` });
  return {
    endpoints: v.etcd,
    ...(tlsGiven ? { tls: { ...(v.etcdCa ? { caFile: v.etcdCa } : {}), ...(v.etcdCert ? { certFile: v.etcdCert } : {}), ...(v.etcdKey ? { keyFile: v.etcdKey } : {}) } } : {}),
    ...(v.etcdUser !== undefined ? { auth: { username: v.etcdUser, password: v.etcdPassword! } } : {}),
  };
}

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

/** Flags win over the environment (only VXLAN_ROUTER_ETCD_PASSWORD), which wins over the file. */
export function buildConfig(sources: { file?: string; fileValues?: RawConfig; flags: RawConfig; env?: Readonly<Record<string, string | undefined>> }): RouterConfig {
  const fileValues = sources.fileValues ?? (sources.file === undefined ? {} : readConfigFile(sources.file));
  const merged: RawConfig = { ...fileValues };
  const envPassword = sources.env?.[ETCD_PASSWORD_ENV];
  if (envPassword !== undefined && envPassword !== '') merged.etcdPassword = envPassword;
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
    const item = issue.path.length > 1 ? ` (item ${issue.path.slice(1).map(String).join(', ')})` : '';
    // The value at the issue's path (the item of a list, the field of a network), not the whole key's value.
    const value = issue.path.slice(1).reduce<unknown>((v, p) => (v as Record<PropertyKey, unknown> | undefined)?.[p], merged[key as ConfigKey]);
    const fromFile = where !== FLAG_OF[key as ConfigKey] && sources.file !== undefined;
    const quote = fromFile && issue.code === 'invalid_type' && issue.expected === 'string' && (typeof value === 'number' || typeof value === 'boolean');
    throw new ConfigError(`${where}${item}: ${issueText(issue.message, value, SECRET_KEYS.has(key))}`, quote ? { hint: `quote the value in ${sources.file}` } : {});
  }
  const c = result.data;
  if (c.docker && c.etcd === undefined) throw new ConfigError('--docker needs --etcd (the networks it joins are defined there)');
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
  etcdClientConfig(c);
  const frozen = Object.freeze({ ...c, local, peers: Object.freeze(peers) as string[], stateDir: c.stateDir ?? defaultStateDir(sources.env ?? process.env) });
  joinsOf(frozen);
  return frozen;
}

/**
 * The networks the router serves, each with its bridge (a network that names none takes --bridge), checked: with
 * several, etcd is needed and no two may share a name, a bridge or a TAP (one bridge with two VNIs would merge them).
 */
export function joinsOf(c: RouterConfig): NetworkJoin[] {
  if (c.networks !== undefined && c.tap !== undefined) throw new ConfigError('--tap names one TAP', { hint: "with several networks, give each its 'tap' in the config file" });
  // --docker: the networks named here keep their bridges; every other one of the registry is added at start (daemon).
  const named = c.networks ?? (c.docker && c.bridge === undefined ? [] : [{ name: c.network, ...(c.tap ? { tap: c.tap } : {}), ...(c.mtu ? { mtu: c.mtu } : {}) }]);
  const joins: NetworkJoin[] = named.map((n) => {
    const bridge = n.bridge ?? c.bridge;
    if (bridge === undefined) throw new ConfigError(`--bridge is required (or --network ${n.name}:<bridge>, or 'bridge' in a --config file)`);
    return { name: c.etcd === undefined ? undefined : n.name, bridge, ...(n.tap ? { tap: n.tap } : {}), ...(n.mtu ? { mtu: n.mtu } : {}) };
  });
  if (joins.length > 1 && c.etcd === undefined) throw new ConfigError('several networks need --etcd (their VNIs are defined there)', { hint: 'without etcd, run one router per VNI' });
  for (const key of ['name', 'bridge', 'tap'] as const) {
    const seen = new Set<string>();
    for (const j of joins) {
      const v = j[key];
      if (v === undefined) continue;
      if (seen.has(v)) throw new ConfigError(`${FLAG_OF.networks}: ${key} ${v} is used by two networks${key === 'bridge' ? ' (one bridge would merge their segments)' : ''}`);
      seen.add(v);
    }
  }
  return joins;
}

/** Keys whose value is never shown in an error (errors end up in the journal). */
const SECRET_KEYS: ReadonlySet<string> = new Set<ConfigKey>(['etcdPassword']);

/** A schema issue as text, with the value it refused ("70000 is out of range 1-65535"); a secret as "the value". */
function issueText(message: string, value: unknown, secret: boolean): string {
  if (secret) return message.startsWith('is ') ? `the value ${message}` : message;
  const shown = value === undefined ? 'missing' : JSON.stringify(value);
  return message.startsWith('is ') ? `${shown} ${message}` : `${message} (got ${shown})`;
}
