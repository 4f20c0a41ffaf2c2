/**
 * Container names for DNS across hosts (issue 16): which containers of this host are on each served network, with
 * their names, MACs and addresses, learned from the local dockerd's API in the background (never from a plugin
 * handler: dockerd waits on those while holding its locks), and handed to each network's control plane, which
 * advertises them in etcd under this host's lease (records.ts, NameRecord).
 *
 * A Docker network is one of ours when its driver is vxlan-router (matched to a served network as the plugin does:
 * docker-serve.ts) or when it is a bridge network on a served bridge (`docker-network create`). Names are the
 * container's name and its aliases on that network (compose's service names), lowercased; the container's short id
 * alias is left out. dockerd is asked every POLL_MS (a removed container's name leaves within a second everywhere).
 */
import { request } from 'node:http';
import { z } from 'zod';
import { CONTAINER_NAME_PATTERN, MAX_NAME_ENTRIES, MAX_NAMES_PER_ENTRY, type NameAddress, type NameEntry } from '../control/index.js';
import type { ServedNetwork } from './daemon.js';
import { matchServed } from './docker-serve.js';

/**
 * How often dockerd is asked for the containers of our networks when it says nothing: its network events (`watchDockerEvents`) make it asked at once, so this is only the backstop (a missed event, a stream that
 * broke).
 */
export const POLL_MS = 2000;
/** The largest dockerd answer read (a network of thousands of containers is well under it). */
const MAX_ANSWER_BYTES = 16 << 20;

/** GET on dockerd's API: the parsed JSON, or a rejection saying what went wrong. */
export type DockerGet = (path: string) => Promise<unknown>;

/** GET over dockerd's unix socket, bounded in time and size. */
export function unixDockerGet(socketPath: string, timeoutMs = 3000): DockerGet {
  return (path) =>
    new Promise((resolve, reject) => {
      const req = request({ socketPath, path, method: 'GET', timeout: timeoutMs, headers: { host: 'docker' } }, (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (b: Buffer) => {
          size += b.length;
          if (size > MAX_ANSWER_BYTES) req.destroy(new Error(`dockerd's answer to ${path} is over ${MAX_ANSWER_BYTES} bytes`));
          else chunks.push(b);
        });
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          if (res.statusCode !== 200) return reject(new Error(`dockerd answered ${res.statusCode} to GET ${path}: ${text.trim().slice(0, 200)}`));
          try {
            resolve(JSON.parse(text));
          } catch {
            reject(new Error(`dockerd's answer to GET ${path} is not JSON`));
          }
        });
        res.on('error', reject);
      });
      req.on('timeout', () => req.destroy(new Error(`dockerd did not answer GET ${path} in ${timeoutMs} ms`)));
      req.on('error', reject);
      req.end();
    });
}

/**
 * Follows dockerd's network events (GET /events, a stream of JSON lines) and calls `onEvent` for each
 * (what it was does not matter: the caller asks again); the stream is opened again RETRY_MS after it ends. Never
 * throws; `close` stops it.
 */
export function watchDockerEvents(socketPath: string, onEvent: () => void, onError: (err: Error) => void, retryMs = 1000): { close(): void } {
  let closed = false;
  let current: ReturnType<typeof request> | undefined;
  let timer: NodeJS.Timeout | undefined;
  // A container joining or leaving a network (run, start, stop, rm, network connect / disconnect); a rename is seen
  // by the backstop poll.
  const filters = encodeURIComponent(JSON.stringify({ type: ['network'], event: ['connect', 'disconnect'] }));
  const open = (): void => {
    if (closed) return;
    const again = (err?: Error): void => {
      if (closed || current !== req) return;
      current = undefined;
      if (err !== undefined) onError(err);
      timer = setTimeout(open, retryMs).unref();
    };
    const req = request({ socketPath, path: `/events?filters=${filters}`, method: 'GET', headers: { host: 'docker' } }, (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        return again(new Error(`dockerd answered ${res.statusCode} to GET /events`));
      }
      onEvent(); // (re)connected: whatever happened meanwhile is read now
      res.on('data', () => onEvent());
      res.on('end', () => again());
      res.on('error', (err) => again(err));
    });
    req.on('error', (err) => again(err));
    req.end();
    current = req;
  };
  open();
  return {
    close: () => {
      closed = true;
      clearTimeout(timer);
      current?.destroy();
    },
  };
}

const stringMap = z.record(z.string(), z.unknown()).nullish();
const networkListSchema = z.array(
  z.object({
    Name: z.string(),
    Id: z.string().regex(/^[0-9a-f]{1,64}$/),
    Driver: z.string(),
    Options: stringMap,
    IPAM: z.object({ Config: z.array(z.object({ Subnet: z.string().optional() })).nullish() }).nullish(),
  }),
);
const networkSchema = z.object({
  Containers: z
    .record(
      z.string(),
      z.object({ Name: z.string(), MacAddress: z.string().optional(), IPv4Address: z.string().optional(), IPv6Address: z.string().optional() }),
    )
    .nullish(),
});
const containerSchema = z.object({
  NetworkSettings: z.object({ Networks: z.record(z.string(), z.object({ Aliases: z.array(z.string()).nullish() })).nullish() }).nullish(),
});

/** What one served network has from this host's dockerd: its containers' names, and its Docker networks' names. */
export interface LocalNames {
  readonly entries: NameEntry[];
  /** The Docker networks on it here (lowercase, valid as a DNS name): `name.<docker network>` resolves too. */
  readonly dockerNetworks: string[];
}

/** `name` lowercased if it can be a DNS name, else undefined. */
function dnsName(name: string): string | undefined {
  const n = name.replace(/^\//, '').toLowerCase();
  return CONTAINER_NAME_PATTERN.test(n) ? n : undefined;
}

/** The served network a Docker network is (by driver and options), or undefined when it is not one of ours. */
export function servedIndexOf(served: readonly ServedNetwork[], net: z.infer<typeof networkListSchema>[number]): number | undefined {
  const opts = net.Options ?? {};
  if (net.Driver === 'vxlan-router' || net.Driver.startsWith('vxlan-router:')) {
    const subnet = net.IPAM?.Config?.[0]?.Subnet;
    if (subnet === undefined) return undefined;
    try {
      const vni = opts.vni === undefined ? undefined : Number(opts.vni);
      const found = matchServed(served, { subnet, ...(typeof opts.network === 'string' ? { network: opts.network } : {}), ...(vni !== undefined ? { vni } : {}) });
      return served.indexOf(found);
    } catch {
      return undefined; // not served here (the plugin refused it too)
    }
  }
  if (net.Driver === 'bridge') {
    const i = served.findIndex((s) => s.name !== null && s.bridge === opts['com.docker.network.bridge.name']);
    return i < 0 ? undefined : i;
  }
  return undefined;
}

/** Asks dockerd for the containers of our networks; `poll` gives each served network's names (by index). */
export class DockerNames {
  /** A container's aliases on a network (container id/network id → names), asked once per container. */
  private readonly aliases = new Map<string, string[]>();

  constructor(
    private readonly get: DockerGet,
    private readonly served: readonly ServedNetwork[],
  ) {}

  async poll(): Promise<LocalNames[]> {
    const out: { entries: NameEntry[]; dockerNetworks: string[] }[] = this.served.map(() => ({ entries: [], dockerNetworks: [] }));
    const list = networkListSchema.parse(await this.get('/networks'));
    const live = new Set<string>();
    for (const net of list) {
      const i = servedIndexOf(this.served, net);
      if (i === undefined) continue;
      const zone = dnsName(net.Name);
      if (zone !== undefined && !out[i]!.dockerNetworks.includes(zone)) out[i]!.dockerNetworks.push(zone);
      const detail = networkSchema.parse(await this.get(`/networks/${net.Id}`));
      for (const [id, c] of Object.entries(detail.Containers ?? {})) {
        if (out[i]!.entries.length >= MAX_NAME_ENTRIES) break;
        const mac = (c.MacAddress ?? '').toLowerCase();
        const ips = [c.IPv4Address, c.IPv6Address].flatMap((a) => (a === undefined || a === '' ? [] : [a.split('/')[0]!]));
        if (!/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/.test(mac) || ips.length === 0 || !/^[0-9a-f]{1,64}$/.test(id)) continue;
        const key = `${id}/${net.Id}`;
        live.add(key);
        let aliases = this.aliases.get(key);
        if (aliases === undefined) {
          aliases = await this.aliasesOf(id, net.Name);
          this.aliases.set(key, aliases);
        }
        const names = [...new Set([dnsName(c.Name), ...aliases].filter((n): n is string => n !== undefined))].slice(0, MAX_NAMES_PER_ENTRY);
        if (names.length > 0) out[i]!.entries.push({ mac, ips, names });
      }
    }
    for (const k of this.aliases.keys()) if (!live.has(k)) this.aliases.delete(k);
    return out;
  }

  /** A container's aliases on network `netName`, without its short id; [] when dockerd does not say. */
  private async aliasesOf(id: string, netName: string): Promise<string[]> {
    try {
      const c = containerSchema.parse(await this.get(`/containers/${id}/json`));
      const aliases = c.NetworkSettings?.Networks?.[netName]?.Aliases ?? [];
      return aliases.flatMap((a) => {
        const n = dnsName(a);
        return n === undefined || id.startsWith(n) ? [] : [n];
      });
    } catch {
      return [];
    }
  }
}

/** One served network as the resolver sees it: the zones `name.<zone>` is asked in, and its names' addresses. */
export interface ResolverNetwork {
  /** The overlay's name and its Docker networks' names on this host (lowercase). */
  readonly zones: readonly string[];
  readonly lookup: (name: string) => readonly NameAddress[];
}

/**
 * The addresses of a queried name (lowercase, no trailing dot): `name` on any served network, or `name.<zone>` on
 * the network of that zone. Undefined when no container has that name (the query is forwarded).
 */
export function resolveName(query: string, networks: readonly ResolverNetwork[]): string[] | undefined {
  const found = new Set<string>();
  for (const n of networks) {
    for (const a of n.lookup(query)) found.add(a.ip);
    for (const z of n.zones) {
      if (query.length > z.length + 1 && query.endsWith(`.${z}`)) for (const a of n.lookup(query.slice(0, -(z.length + 1)))) found.add(a.ip);
    }
  }
  return found.size === 0 ? undefined : [...found];
}
