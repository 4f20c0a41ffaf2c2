/**
 * The Docker side of `up`: the plugin's socket (`--docker-plugin`, or `--docker`'s default), and with `--docker` the
 * loop that keeps a Docker network of each etcd network on dockerd (docker-sync.ts) and the watch that hands the data
 * path to a new process when networks are defined or removed in etcd (the engine's network list is fixed at start).
 */
import { join } from 'node:path';
import { joinsOf, type RouterConfig } from '../config/index.js';
import { Ipv4Subnet, openRegistry, type EtcdConnection, type EtcdRegistry } from '../control/index.js';
import { describeError, VxlanRouterError } from '../errors.js';
import { innerMtuLimit } from '../packet/index.js';
import type { Logger } from '../log.js';
import type { Closable } from './closable.js';
import { DEFAULT_PLUGIN_SOCKET } from './control-protocol.js';
import type { DaemonView, ServedNetwork } from './daemon.js';
import { defaultDockerBridge } from './docker-api.js';
import { PluginCallError } from './docker-plugin.js';
import { dockerPlugin, matchServed, type EarlyNetworks } from './docker-serve.js';
import { DefinitionWatch, DockerSync, ensureBridge } from './docker-sync.js';

/** A definition this router wrote is given this long to be served before the sync counts its network as not ours. */
const DEFINED_GRACE_MS = 60_000;

export interface DockerWiring {
  readonly config: RouterConfig;
  readonly view: DaemonView;
  /** The networks this process serves (filled by the daemon before this runs). */
  readonly networks: readonly ServedNetwork[];
  readonly connection: EtcdConnection | undefined;
  /** This host's id in etcd: the slice of a network defined through Docker is leased under it before it is served. */
  readonly hostId: string;
  readonly log: Logger;
  readonly warn: (kind: string, message: string) => void;
  readonly serverError: (what: string) => (err: Error) => void;
  /** Start a process that serves the new list of networks and hand over to it. */
  readonly respawn: (why: string) => void;
}

/**
 * A network just defined in etcd for a Docker network, readied for that network's containers on this host before the
 * router serves it (a handover, seconds later): this host's slice leased under its host id (the router that serves
 * the network next takes the same slice), the bridge it will serve the network on made. The containers' plugin
 * calls wait for this (EarlyNetworks) instead of failing compose's first `up`.
 */
async function readyEarly(registry: EtcdRegistry, name: string, dockerId: string, early: EarlyNetworks, o: DockerWiring): Promise<void> {
  const network = await registry.getNetwork(name);
  if (network === undefined) throw new PluginCallError(`network ${name} is not in etcd right after it was defined`);
  const range = await registry.reserveRange(network, o.hostId);
  if ('none' in range) throw new PluginCallError(`network ${name} has no address range on this host: ${range.none}`);
  const bridge = joinsOf(o.config).find((j) => j.name === name)?.bridge ?? defaultDockerBridge(name);
  await ensureBridge(bridge);
  const mtu = network.mtu ?? innerMtuLimit(o.view.info.underlay.mtu, o.view.info.local);
  early.ready(dockerId, { attachment: { name, vni: network.vni, bridge, mtu }, subnet: network.subnet, slice: range });
}

/** Serves what the config asks for; returns what to close at stop and the sync (for its problems), if any. */
export async function serveDocker(o: DockerWiring): Promise<{ owned: Closable[]; sync: DockerSync | undefined }> {
  const { config, networks, connection } = o;
  const owned: Closable[] = [];
  const pluginSocket = config.dockerPlugin !== 'off' ? config.dockerPlugin : config.docker ? DEFAULT_PLUGIN_SOCKET : undefined;
  let sync: DockerSync | undefined;
  const plugin = pluginSocket === undefined ? undefined : dockerPlugin(o.view, config.docker ? () => sync?.kick() : undefined);
  if (config.docker && connection !== undefined && plugin !== undefined) {
    // Docker networks this router defined in etcd, and when: not removed while the new definition is being served.
    const definedAt = new Map<string, number>();
    sync = new DockerSync({
      socket: config.dockerSocket,
      served: () => networks.flatMap((n) => (n.name !== null && n.subnet !== null && Ipv4Subnet.parse(n.subnet) !== undefined ? [{ name: n.name, subnet: n.subnet }] : [])),
      driver: plugin.driver,
      ipam: plugin.ipam,
      pending: () => {
        const taken = plugin.pending?.take() ?? [];
        for (const p of taken) definedAt.set(p.dockerId, Date.now());
        return taken;
      },
      define: async (def, dockerId) => {
        const early = plugin.early;
        // What the containers of that Docker network are told when they cannot start on it (a refusal, not a bug).
        const failed = (err: unknown): void => early?.failed(dockerId, err instanceof VxlanRouterError ? err : new PluginCallError(describeError(err)));
        const registry = await openRegistry(connection);
        try {
          const outcome = await registry.createNetwork({ version: 1, ...def }).catch((err: unknown) => {
            failed(err);
            throw err;
          });
          if (early !== undefined) {
            await readyEarly(registry, def.name, dockerId, early, o).catch((err: unknown) => {
              failed(err);
              o.warn(`docker-early:${def.name}`, `network ${def.name}: cannot ready it for containers before it is served (${describeError(err)}): they start once this router serves it`);
            });
          }
          return outcome;
        } finally {
          await registry.close();
        }
      },
      serves: (req) => {
        try {
          matchServed(networks, req);
          return true;
        } catch {
          return false;
        }
      },
      adopted: () => plugin.adopted(),
      waiting: (id) => definedAt.has(id) && Date.now() - definedAt.get(id)! < DEFINED_GRACE_MS,
      leftFile: join(config.stateDir, 'docker-left.json'),
      log: o.log,
      warn: o.warn,
    });
    owned.push(sync);
    const watch = new DefinitionWatch(connection, () => networks.flatMap((n) => (n.name !== null ? [n.name] : [])), (defined) => {
      const have = new Set(networks.map((n) => n.name));
      const want = new Set(defined.map((n) => n.name));
      const named = new Set(joinsOf(config).map((j) => j.name));
      const added = [...want].filter((n) => !have.has(n));
      const removed = [...have].filter((n) => n !== null && !want.has(n) && !named.has(n));
      if (added.length === 0 && removed.length === 0) return;
      o.respawn(`networks in etcd changed (${[...added.map((n) => `+${n}`), ...removed.map((n) => `-${n}`)].join(' ')})`);
    });
    await watch.start();
    owned.push(watch);
  }
  if (plugin !== undefined && pluginSocket !== undefined) owned.push(await plugin.serve(pluginSocket, o.serverError('docker plugin')));
  sync?.start();
  return { owned, sync };
}
