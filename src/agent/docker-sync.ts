/**
 * `up --docker` (issue 16): one step per Docker host. The router serves every network defined in etcd, and keeps a
 * Docker network of each name on its own dockerd, so a network created once (`vxlan-router network create`, or
 * `docker network create -d vxlan-router … -o vni=N` on any host) is usable on every host.
 *
 * Three parts, none of them ever run from a plugin handler (dockerd waits on those while holding its locks, and a
 * plugin that called dockerd back hung it at boot):
 * - `dockerJoins`: at start, the networks to serve (etcd's list; the snapshots' when etcd is away) and their bridges;
 * - `DefinitionWatch`: polls etcd's list of networks; when it differs from what is served, the daemon hands its data
 *   path over to a new router process that serves the new list (handover.ts: no frame lost for the networks kept);
 * - `DockerSync`: a background loop on dockerd's API socket that adopts the Docker networks dockerd already has into
 *   the plugin's state (it lives in memory: a new router process starts empty), defines in etcd the networks a
 *   `docker network create` asked for, creates the missing Docker networks and removes unused ones whose network is
 *   gone. dockerd away: retried with backoff. A network of that name that is not ours is left alone (a warning).
 */
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { z } from 'zod';
import type { NetworkJoin } from '../config/index.js';
import { openRegistry, type EtcdConnection, type EtcdRegistry, type NetworkDefinition } from '../control/index.js';
import { ConfigError, describeError } from '../errors.js';
import type { Logger } from '../log.js';
import { writeFileAtomic } from '../control/index.js';
import { NETWORK_NAME_PATTERN } from '../packet/index.js';
import type { DockerNetworkRequest, OverlayNetworkDriver } from './docker-driver.js';
import type { OverlayIpam } from './docker-ipam.js';
import { defaultDockerBridge, dockerCall, messageOf } from './docker-api.js';

const run = promisify(execFile);
export const DRIVER = 'vxlan-router';
/** The label on the Docker networks the router made (informative: `docker network inspect` tells who made it). */
export const MANAGED_LABEL = 'vxlan-router.managed';
/** A Docker network the plugin accepted but dockerd does not show (yet): asked for again this often, this long. */
const UNSEEN_RETRY_MS = 200;
const UNSEEN_MS = 10_000;
const MAX_UNSEEN = 64;

/** The networks to serve: those named in the config, then every other one etcd defines (on a bridge of its own). */
export async function dockerJoins(connection: EtcdConnection, stateDir: string, named: readonly NetworkJoin[], log: Logger): Promise<NetworkJoin[]> {
  let names: string[];
  const registry = await openRegistry({ ...connection, callTimeoutMs: 5000 });
  try {
    names = (await registry.listNetworks()).map((n) => n.name);
  } catch (err) {
    // etcd away: serve what this host served before (the snapshots kept for that), the planes start from them.
    names = snapshotNames(stateDir);
    log.warn(`cannot list the networks in etcd (${describeError(err)}): serving those of the snapshots in ${stateDir}: ${names.join(', ') || 'none'}`);
  } finally {
    await registry.close();
  }
  const joins = [...named];
  for (const name of names) {
    if (joins.some((j) => j.name === name)) continue;
    const bridge = defaultDockerBridge(name);
    await ensureBridge(bridge);
    joins.push({ name, bridge });
  }
  if (joins.length === 0) {
    throw new ConfigError('--docker: no network is defined in etcd yet', { hint: 'define one first: vxlan-router network create NAME --vni N --subnet CIDR --etcd URL (then start this again)' });
  }
  return joins;
}

function snapshotNames(stateDir: string): string[] {
  try {
    return readdirSync(stateDir).flatMap((f) => /^(.+)\.snapshot$/.exec(f)?.[1] ?? []);
  } catch {
    return [];
  }
}

/** A Linux bridge of that name, up (made when missing). */
export async function ensureBridge(name: string): Promise<void> {
  const made = await run('ip', ['link', 'add', 'name', name, 'type', 'bridge'], { timeout: 10_000 }).then(
    () => true,
    (err: { stderr?: string }) => {
      if (!/File exists/.test(err.stderr ?? '')) throw new ConfigError(`cannot make bridge ${name}: ${err.stderr?.trim() ?? String(err)}`);
      return false;
    },
  );
  // No IPv6 link-local of its own: the bridge carries its containers' frames only (its own chatter would be
  // advertised as a local MAC on the overlay).
  if (made) await run('ip', ['link', 'set', name, 'addrgenmode', 'none'], { timeout: 10_000 }).catch(() => undefined);
  await run('ip', ['link', 'set', name, 'up'], { timeout: 10_000 });
}

/**
 * Polls etcd's list of networks (`everyMs`) and calls `changed` with it when the names differ from `served`. Polling
 * rather than a watch: one keys-only range a second, and nothing to resume after etcd comes back.
 */
export class DefinitionWatch {
  private timer: NodeJS.Timeout | undefined;
  private registry: EtcdRegistry | undefined;
  private closed = false;
  private busy = false;

  constructor(
    private readonly connection: EtcdConnection,
    private readonly served: () => readonly string[],
    private readonly changed: (defined: readonly NetworkDefinition[]) => void,
    private readonly everyMs = 1000,
  ) {}

  async start(): Promise<void> {
    this.registry = await openRegistry({ ...this.connection, callTimeoutMs: 5000 });
    this.timer = setInterval(() => void this.poll(), this.everyMs);
    this.timer.unref();
  }

  private async poll(): Promise<void> {
    if (this.busy || this.closed || this.registry === undefined) return;
    this.busy = true;
    try {
      const defined = await this.registry.listNetworks();
      const want = defined.map((n) => n.name).sort().join(',');
      const have = [...this.served()].sort().join(',');
      if (want !== have && !this.closed) this.changed(defined);
    } catch {
      /* etcd away: the planes say so in status; the list is asked again next time */
    } finally {
      this.busy = false;
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
    await this.registry?.close();
  }
}

const dockerNetworkSchema = z.object({
  Name: z.string(),
  Id: z.string(),
  Driver: z.string(),
  IPAM: z.object({ Driver: z.string().optional(), Config: z.array(z.object({ Subnet: z.string().optional(), Gateway: z.string().optional() })).nullish() }).optional(),
  Options: z.record(z.string(), z.string()).nullish(),
  Labels: z.record(z.string(), z.string()).nullish(),
  Containers: z.record(z.string(), z.object({ EndpointID: z.string(), IPv4Address: z.string().optional() })).nullish(),
});
type DockerNetwork = z.infer<typeof dockerNetworkSchema>;

/** A `docker network create -d vxlan-router` for a network not yet defined: defined by the sync, once named. */
export interface PendingDefinition {
  readonly dockerId: string;
  readonly request: DockerNetworkRequest;
}

export interface DockerSyncOptions {
  readonly socket: string;
  /** The etcd networks served now: name and subnet (the Docker network made for each). */
  readonly served: () => readonly { readonly name: string; readonly subnet: string }[];
  readonly driver: OverlayNetworkDriver;
  readonly ipam: OverlayIpam;
  /** Docker networks created through the plugin for networks not defined yet (taken by the sync). */
  readonly pending: () => PendingDefinition[];
  /**
   * Defines a network in etcd ('created' / 'unchanged'; a conflicting one throws) for the Docker network `dockerId`,
   * and readies it for that network's containers before the router serves it (docker-serve.ts, EarlyNetworks).
   */
  readonly define: (def: { name: string; vni: number; subnet: string }, dockerId: string) => Promise<string>;
  /** Whether a Docker network's request matches a network served now (by -o network, -o vni or subnet). */
  readonly serves: (req: DockerNetworkRequest) => boolean;
  /** Called once after the first pass looked at dockerd's networks (adopted them, or could not). */
  readonly adopted?: () => void;
  /** Whether a Docker network waits for its network to be defined and served (just created through the plugin). */
  readonly waiting: (dockerId: string) => boolean;
  /** Where the names of Docker networks a user removed on this host are kept (not made again). */
  readonly leftFile: string;
  readonly log: Logger;
  /** A warning for the log, rate-limited by kind. */
  readonly warn: (kind: string, message: string) => void;
}

export class DockerSync {
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private running: Promise<void> | undefined;
  private again = false;
  private adopted = false;
  private failures = 0;
  /** Names of Docker networks seen on this dockerd: one that disappears was removed by a user, and stays removed. */
  private readonly seen = new Set<string>();
  private readonly left: Set<string>;
  /** Pending definitions whose Docker network dockerd did not show yet, and since when (asked again soon). */
  private readonly unseen: PendingDefinition[] = [];
  private readonly firstAsked = new Map<string, number>();
  /** Problems now, for status. */
  problems: string[] = [];

  constructor(private readonly o: DockerSyncOptions) {
    this.left = new Set(readLeft(o.leftFile));
  }

  start(): void {
    this.kick();
  }

  /** Runs a pass soon (coalesced with one running). */
  kick(): void {
    if (this.closed) return;
    if (this.running !== undefined) {
      this.again = true;
      return;
    }
    clearTimeout(this.timer);
    this.running = this.pass().finally(() => this.o.adopted?.()).then(
      () => {
        this.failures = 0;
        this.schedule(this.again ? 0 : this.unseen.length > 0 ? UNSEEN_RETRY_MS : 5000);
      },
      (err: unknown) => {
        this.failures++;
        this.problems = [describeError(err)];
        this.o.warn('docker-sync', `Docker networks: ${describeError(err)} (trying again)`);
        this.schedule(Math.min(30_000, 500 * 2 ** Math.min(this.failures, 6)));
      },
    );
  }

  private schedule(ms: number): void {
    this.running = undefined;
    this.again = false;
    if (this.closed) return;
    this.timer = setTimeout(() => this.kick(), ms);
    this.timer.unref();
  }

  private async list(): Promise<DockerNetwork[]> {
    const r = await dockerCall(this.o.socket, 'GET', '/networks');
    if (r.status !== 200 || !Array.isArray(r.body)) throw new ConfigError(`dockerd answered ${r.status} to GET /networks: ${messageOf(r)}`);
    return r.body.flatMap((n) => {
      const p = dockerNetworkSchema.safeParse(n);
      return p.success ? [p.data] : [];
    });
  }

  private async inspect(id: string): Promise<DockerNetwork | undefined> {
    const r = await dockerCall(this.o.socket, 'GET', `/networks/${encodeURIComponent(id)}`);
    if (r.status === 404) return undefined;
    const p = dockerNetworkSchema.safeParse(r.body);
    if (r.status !== 200 || !p.success) throw new ConfigError(`dockerd answered ${r.status} to GET /networks/${id}: ${messageOf(r)}`);
    return p.data;
  }

  private async pass(): Promise<void> {
    const problems: string[] = [];
    let nets = await this.list();
    const ours = (n: DockerNetwork): boolean => n.Driver === DRIVER;
    if (!this.adopted) {
      // The plugin's state is in memory: what dockerd holds is adopted before anything else is asked of it.
      for (const n of nets.filter(ours)) {
        const full = await this.inspect(n.Id);
        if (full === undefined) continue;
        const subnet = full.IPAM?.Config?.[0]?.Subnet;
        if (subnet === undefined) continue;
        const req = requestOf(full, subnet);
        const eps = Object.values(full.Containers ?? {});
        try {
          await this.o.driver.adopt(req, eps.map((e) => e.EndpointID));
          this.o.ipam.adopt(subnet, full.IPAM?.Config?.[0]?.Gateway, eps.flatMap((e) => (e.IPv4Address ? [e.IPv4Address.split('/')[0]!] : [])));
        } catch (err) {
          problems.push(`Docker network ${full.Name}: ${describeError(err)}`);
        }
      }
      this.adopted = true;
      this.o.adopted?.();
    }
    // Networks a `docker network create` asked for: named by dockerd now, defined in etcd (the watch then serves them).
    // The pass runs the moment the plugin accepted one, maybe before dockerd stored it: not found, it is asked again.
    const now = Date.now();
    const todo = [...this.unseen.splice(0), ...this.o.pending()];
    while (todo.length > 0) {
      const p = todo[0]!;
      let full: DockerNetwork | undefined;
      try {
        full = await this.inspect(p.dockerId);
      } catch (err) {
        this.unseen.push(...todo.slice(0, MAX_UNSEEN)); // dockerd away: asked again with the next pass
        throw err;
      }
      todo.shift();
      const since = this.firstAsked.get(p.dockerId) ?? now;
      if (full === undefined && now - since < UNSEEN_MS && this.unseen.length < MAX_UNSEEN) {
        this.firstAsked.set(p.dockerId, since);
        this.unseen.push(p);
        continue;
      }
      this.firstAsked.delete(p.dockerId);
      if (full === undefined || p.request.vni === undefined) continue;
      const name = definitionName(full, p.request);
      try {
        const outcome = await this.o.define({ name, vni: p.request.vni, subnet: p.request.subnet }, p.dockerId);
        this.o.log.info(`network ${name} ${outcome} in etcd (VNI ${p.request.vni}, ${p.request.subnet}) for Docker network ${full.Name}`);
      } catch (err) {
        problems.push(`Docker network ${full.Name}: cannot define network ${name} in etcd: ${describeError(err)}`);
      }
    }
    const served = this.o.served();
    const byName = new Map(nets.map((n) => [n.Name, n]));
    for (const s of served) {
      const have = byName.get(s.name);
      if (have !== undefined) {
        if (ours(have)) this.seen.add(s.name);
        else problems.push(`Docker network ${s.name} exists with driver ${have.Driver}: left alone (remove it to have vxlan-router's)`);
        continue;
      }
      if (this.left.has(s.name)) continue;
      if (this.seen.has(s.name)) {
        // It was here and is gone: a user's `docker network rm` on this host. Not made again.
        this.left.add(s.name);
        writeLeft(this.o.leftFile, this.left);
        this.o.log.info(`Docker network ${s.name} was removed on this host: not made again (docker network create -d vxlan-router --ipam-driver vxlan-router --subnet ${s.subnet} ${s.name} brings it back)`);
        continue;
      }
      const body = { Name: s.name, Driver: DRIVER, CheckDuplicate: true, IPAM: { Driver: DRIVER, Config: [{ Subnet: s.subnet }] }, Options: { network: s.name }, Labels: { [MANAGED_LABEL]: 'true' } };
      const r = await dockerCall(this.o.socket, 'POST', '/networks/create', body);
      if (r.status === 201) {
        this.seen.add(s.name);
        this.o.log.info(`Docker network ${s.name} created on this host's dockerd`);
      } else problems.push(`dockerd refused to create Docker network ${s.name} (${r.status}): ${messageOf(r)}`);
    }
    // A user's own `docker network create` of a served network brings it back into the sync.
    for (const name of [...this.left]) {
      if (byName.get(name)?.Driver === DRIVER) {
        this.left.delete(name);
        writeLeft(this.o.leftFile, this.left);
      }
    }
    // Ours, for a network no longer served (removed from etcd): removed once it has no containers.
    for (const n of nets.filter(ours)) {
      if (served.some((s) => s.name === n.Name)) continue;
      const full = await this.inspect(n.Id);
      const subnet = full?.IPAM?.Config?.[0]?.Subnet;
      if (full === undefined || subnet === undefined || this.o.serves(requestOf(full, subnet)) || this.o.waiting(full.Id)) continue;
      const used = Object.keys(full.Containers ?? {}).length;
      if (used > 0) {
        problems.push(`Docker network ${n.Name} is no longer defined in etcd but has ${used} container(s) here: removed once they are gone`);
        continue;
      }
      const r = await dockerCall(this.o.socket, 'DELETE', `/networks/${encodeURIComponent(n.Id)}`);
      if (r.status === 204 || r.status === 404) this.o.log.info(`Docker network ${n.Name} removed (its network is no longer defined in etcd)`);
      else problems.push(`dockerd refused to remove Docker network ${n.Name} (${r.status}): ${messageOf(r)}`);
    }
    for (const p of problems) if (!this.problems.includes(p)) this.o.warn(`docker-sync:${p}`, p);
    this.problems = problems;
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    await this.running?.catch(() => undefined);
  }
}

/** The label compose puts on the networks it makes: the network's name in the compose file (`networks: blue:`). */
export const COMPOSE_NETWORK_LABEL = 'com.docker.compose.network';

/**
 * The name a Docker network created for a new VNI is defined under in etcd: `-o network=NAME` when given; for a
 * network compose made (`<project>_blue`), its name in the compose file (`blue`): the same on every host whatever
 * the project is called there, so two hosts that bring up the same file define (or race to define) one network;
 * else the Docker network's own name.
 */
export function definitionName(n: { readonly Name: string; readonly Labels?: Record<string, string> | null }, req: DockerNetworkRequest): string {
  if (req.network !== undefined) return req.network;
  const compose = n.Labels?.[COMPOSE_NETWORK_LABEL];
  return compose !== undefined && NETWORK_NAME_PATTERN.test(compose) ? compose : n.Name;
}

/** The request a Docker network was created with, from dockerd's view of it. */
function requestOf(n: DockerNetwork, subnet: string): DockerNetworkRequest {
  const o = n.Options ?? {};
  const vni = o.vni !== undefined && /^\d+$/.test(o.vni) ? Number(o.vni) : undefined;
  return { dockerId: n.Id, subnet, ...(vni !== undefined ? { vni } : {}), ...(o.network !== undefined ? { network: o.network } : {}) };
}

function readLeft(path: string): string[] {
  try {
    const v = JSON.parse(readFileSync(path, 'utf8')) as unknown;
    return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
  } catch {
    return [];
  }
}

function writeLeft(path: string, left: ReadonlySet<string>): void {
  try {
    writeFileAtomic(path, Buffer.from(JSON.stringify([...left].sort())));
  } catch {
    /* the state dir is not writable: forgotten at the next start, when the network is made again */
  }
}
