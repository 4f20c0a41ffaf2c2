/**
 * What the registry keeps in etcd: where each record lives (the keys) and what it holds (one zod schema per record),
 * and how a record another host wrote is parsed, or rejected with a reason. One definition each: the registry, the
 * views, the snapshot and `network create` all read these. Values are JSON, readable with `etcdctl get`.
 *
 * Keys, all under REGISTRY_PREFIX:
 *   networks/<name>/config            NetworkDefinition
 *   networks/<name>/hosts/<hostId>    HostRecord, attached to the host's lease
 *   networks/<name>/macs/<hostId>     MacRecord: the MACs on that host's bridge, under the same lease
 *   networks/<name>/names/<hostId>    NameRecord: the names of that host's containers (DNS across hosts), under the
 *                                     same lease; a key of its own, so routers that predate it (which reject any
 *                                     field their MAC schema does not know) ignore it
 *   networks/<name>/ranges/<cidr>     RangeRecord: the slice of the subnet a host leased for Docker's IPAM, under a
 *                                     long lease of its own, so a restart keeps the host's addresses
 *
 * Everything another host wrote is hostile until parsed: a record that is not JSON, does not match its schema or
 * names another host than its key is a RejectedRecord (code E_RECORD), reported and ignored, never a throw.
 */
import { isIP } from 'node:net';
import { z } from 'zod';
import { canonicalIp, MAX_VNI, NETWORK_NAME_PATTERN, NETWORK_NAME_RULE, VXLAN_PORT } from '../packet/index.js';
import { ConfigError } from '../errors.js';
import { RegistryWarning } from './registry-warnings.js';

export const REGISTRY_PREFIX = '/vxlan-router/v1';

/** The key of each record, and the prefixes that are listed and watched. */
export const keys = {
  network: (name: string): string => `${REGISTRY_PREFIX}/networks/${name}/config`,
  /** Everything of one network: listed and watched as one (hosts and MACs at one revision). */
  networkPrefix: (name: string): string => `${REGISTRY_PREFIX}/networks/${name}/`,
  host: (name: string, hostId: string): string => `${REGISTRY_PREFIX}/networks/${name}/hosts/${hostId}`,
  macs: (name: string, hostId: string): string => `${REGISTRY_PREFIX}/networks/${name}/macs/${hostId}`,
  names: (name: string, hostId: string): string => `${REGISTRY_PREFIX}/networks/${name}/names/${hostId}`,
  rangesPrefix: (name: string): string => `${REGISTRY_PREFIX}/networks/${name}/ranges/`,
} as const;

/** How many addresses a MAC's record may carry (ARP / ND suppression); the advertiser keeps the first this many. */
export const MAX_IPS_PER_MAC = 16;

/**
 * How many MACs one host's record may carry. The advertiser keeps this many (the ones already advertised first, so a
 * container spraying random MACs cannot push the others out; the rest counted and reported), and a record of another
 * host with more is rejected. 1024 MACs with MAX_IPS_PER_MAC long IPv6 addresses each is about 0.8 MiB, under etcd's
 * default request limit of 1.5 MiB (--max-request-bytes).
 */
export const MAX_MACS_PER_RECORD = 1024;

/**
 * An address in a record, in the one spelling the engines compare (canonicalIp): node's isIP() also accepts a zone id
 * (`fe80::1%eth0`), which names an interface of the writer's host, means nothing here, and the native table refuses.
 */
const ip = z
  .string()
  .refine((s) => isIP(s) !== 0, { message: 'is not an IP address' })
  .refine((s) => !s.includes('%'), { message: 'has a zone id (an address in a record names no interface)' })
  .transform(canonicalIp);

/** 4 or 6: the family of a valid address. */
export const familyOf = (address: string): 4 | 6 => (isIP(address) === 4 ? 4 : 6);

export const networkDefinitionSchema = z.strictObject({
  version: z.literal(1),
  name: z.string().regex(NETWORK_NAME_PATTERN, { message: NETWORK_NAME_RULE }),
  vni: z.number().int().min(1).max(MAX_VNI),
  subnet: z.string().regex(/^[0-9a-f.:]+\/\d{1,3}$/i, { message: 'is not a CIDR subnet' }),
  mtu: z.number().int().min(68).max(65535).optional(),
  port: z.number().int().min(1).max(65535).default(VXLAN_PORT),
  /** Prefix length of each host's slice of the subnet (Docker IPAM ranges); default from the subnet's size. */
  hostPrefix: z.number().int().min(1).max(30).optional(),
});
export type NetworkDefinition = z.infer<typeof networkDefinitionSchema>;

export const hostRecordSchema = z.object({
  version: z.literal(1),
  hostId: z.string().min(1),
  underlay: z.array(ip).min(1),
  port: z.number().int().min(1).max(65535),
  networks: z.array(z.string()),
  mtu: z.number().int(),
  software: z.string(),
  startedAt: z.string(),
});
export type HostRecord = z.infer<typeof hostRecordSchema>;

/** The MACs one host has seen on its bridge side (its containers), advertised under its lease. */
export const macRecordSchema = z.strictObject({
  version: z.literal(1),
  hostId: z.string().min(1),
  vtep: ip,
  macs: z
    .array(
      z.strictObject({
        vni: z.number().int().min(1).max(MAX_VNI),
        mac: z.string().regex(/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/),
        /**
         * IPv4 and IPv6 addresses the MAC used, sorted (older routers wrote IPv4 only, most recent first: parsed as
         * before), for ARP / ND suppression and gratuitous ARP / unsolicited NA elsewhere.
         */
        ips: z.array(ip).max(MAX_IPS_PER_MAC).optional(),
      }),
    )
    .max(MAX_MACS_PER_RECORD, { message: `has more than ${MAX_MACS_PER_RECORD} MACs (the cap of one host's record)` }),
});
export type MacRecord = z.infer<typeof macRecordSchema>;

/** Names one container may carry in a NameRecord (its name and aliases); the advertiser keeps the first this many. */
export const MAX_NAMES_PER_ENTRY = 8;
/** Containers one host's NameRecord may carry (as many as MACs): ~0.8 MiB at most, under etcd's 1.5 MiB. */
export const MAX_NAME_ENTRIES = MAX_MACS_PER_RECORD;
/** Addresses one container's entry may carry (IPv4 and IPv6). */
export const MAX_IPS_PER_NAME = 4;
/**
 * A container name as DNS answers it: lowercase letters, digits, '_' and '-', dot-separated labels that start with a
 * letter or digit, 63 bytes in all (Docker's names are [a-zA-Z0-9][a-zA-Z0-9_.-]+, lowercased by the advertiser).
 */
export const CONTAINER_NAME_PATTERN = /^(?=.{1,63}$)[a-z0-9][a-z0-9_-]*(\.[a-z0-9][a-z0-9_-]*)*$/;

/** The names of one host's containers on one network, under its lease: each container's MAC, addresses and names. */
export const nameRecordSchema = z.strictObject({
  version: z.literal(1),
  hostId: z.string().min(1),
  names: z
    .array(
      z.strictObject({
        mac: z.string().regex(/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/),
        ips: z.array(ip).min(1).max(MAX_IPS_PER_NAME),
        names: z.array(z.string().regex(CONTAINER_NAME_PATTERN, { message: 'is not a container name (a-z 0-9 _ - and dots, 63 at most)' })).min(1).max(MAX_NAMES_PER_ENTRY),
      }),
    )
    .max(MAX_NAME_ENTRIES, { message: `has more than ${MAX_NAME_ENTRIES} containers (the cap of one host's record)` }),
});
export type NameRecord = z.infer<typeof nameRecordSchema>;
export type NameEntry = NameRecord['names'][number];

/** What ranges/<cidr> holds: which host has the slice, since when. */
export const rangeRecordSchema = z.object({
  version: z.literal(1),
  hostId: z.string().min(1),
  range: z.string(),
  leasedAt: z.string(),
});
export type RangeRecord = z.infer<typeof rangeRecordSchema>;

/** Which record a RejectedRecord was. */
export type RecordKind = 'host' | 'MAC' | 'name';

/**
 * Another host's record under hosts/<id> or macs/<id> that was not accepted: code E_RECORD, kind 'record-rejected'
 * (the registry reports it as a warning and carries on without it).
 */
export class RejectedRecord extends RegistryWarning {
  constructor(
    readonly id: string,
    readonly reason: string,
    readonly record: RecordKind = 'host',
  ) {
    super('E_RECORD', 'record-rejected', `ignoring the ${record} record of ${id}: ${reason}`, {
      hint: `host ${id} wrote it: fix or upgrade the router there, or delete the key with etcdctl`,
    });
  }
}

/** `text` as JSON, or undefined when it is not JSON. */
export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** A record under hosts/<id> or macs/<id>: JSON matching `schema` and naming `id` as its host; or why not. */
export function parseRecord<T extends { hostId: string }>(schema: z.ZodType<T, unknown>, id: string, value: string): { record: T } | { reason: string } {
  const json = parseJson(value);
  if (json === undefined) return { reason: 'not JSON' };
  const parsed = schema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    return { reason: `${issue.path.join('.') || 'record'} ${issue.message}` };
  }
  if (parsed.data.hostId !== id) return { reason: `its hostId is ${JSON.stringify(parsed.data.hostId)}` };
  return { record: parsed.data };
}

/** The network a command or a router asked for is not in etcd: what to run to define it. */
export function undefinedNetwork(name: string): ConfigError {
  return new ConfigError(`network ${name} is not defined in etcd`, {
    hint: `create it once with \`vxlan-router network create ${name} --vni <N> --subnet <CIDR> --etcd <url>\``,
    kind: 'network-undefined',
  });
}
