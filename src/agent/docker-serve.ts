/**
 * `up --docker-plugin`: Docker's network and IPAM plugin served by the running router, for the networks it serves.
 * A Docker network of driver vxlan-router is matched to a served network by `-o network=NAME`, `-o vni=N` or its
 * subnet (all that are given must agree); its containers get addresses from this host's leased slice of that
 * network. A network this router does not serve is refused with the command that serves it.
 */
import { isIPv4 } from 'node:net';
import type { ControlServer } from './control-socket.js';
import { listenUnix } from './control-socket.js';
import type { DaemonView, ServedNetwork } from './daemon.js';
import { IpCommandLinks, OverlayNetworkDriver, type DockerNetworkRequest, type OverlayAttachment, type OverlayNetworks } from './docker-driver.js';
import { OverlayIpam, type OverlaySlices } from './docker-ipam.js';
import { PluginCallError, pluginRoutes, pluginServer } from './docker-plugin.js';
import type { PendingDefinition } from './docker-sync.js';
import { Ipv4Subnet } from '../control/index.js';

const sameSubnet = (a: string, b: string): boolean => Ipv4Subnet.parse(a)?.toString() === Ipv4Subnet.parse(b)?.toString();

/** The served network a Docker network asks for, or a refusal saying how to serve it. */
export function matchServed(networks: readonly ServedNetwork[], req: Omit<DockerNetworkRequest, 'dockerId'>): ServedNetwork {
  const candidates = networks.filter((n) => n.name !== null && n.subnet !== null);
  const found =
    req.network !== undefined ? candidates.find((n) => n.name === req.network) : req.vni !== undefined ? candidates.find((n) => n.vni === req.vni) : candidates.find((n) => sameSubnet(n.subnet!, req.subnet));
  const asked = req.network !== undefined ? `network ${req.network}` : req.vni !== undefined ? `VNI ${req.vni}` : `subnet ${req.subnet}`;
  if (found === undefined) {
    const served = candidates.map((n) => `${n.name} (VNI ${n.vni}, ${n.subnet})`).join(', ') || 'none from etcd';
    throw new PluginCallError(`this router does not serve ${asked} (it serves ${served})`, 'define it with `vxlan-router network create NAME --vni N --subnet CIDR` and start the router with --network NAME:BRIDGE');
  }
  if (req.vni !== undefined && req.vni !== found.vni) throw new PluginCallError(`network ${found.name} has VNI ${found.vni}, not ${req.vni}`);
  if (!sameSubnet(found.subnet!, req.subnet)) throw new PluginCallError(`network ${found.name}'s subnet is ${found.subnet}, not ${req.subnet}`, `docker network create … --subnet ${found.subnet}`);
  return found;
}

/** Docker networks created for a network not defined yet (`up --docker`), for the sync to define once named. */
export class PendingDefinitions {
  private readonly items = new Map<string, PendingDefinition>();
  constructor(private readonly onAdd: () => void) {}
  add(p: PendingDefinition): void {
    if (this.items.size >= 64) throw new PluginCallError('too many networks waiting to be defined in etcd', 'try again in a few seconds');
    this.items.set(p.dockerId, p);
    this.onAdd();
  }
  take(): PendingDefinition[] {
    const all = [...this.items.values()];
    this.items.clear();
    return all;
  }
}

function servedOverlays(view: DaemonView, pending: PendingDefinitions | undefined): OverlayNetworks {
  return {
    attach: (req, opts): Promise<OverlayAttachment | undefined> => {
      let n: ServedNetwork;
      try {
        n = matchServed(view.info.networks, req);
      } catch (err) {
        // --docker: a VNI no network has yet (nor this subnet) is a new network, defined in etcd in the background.
        const fresh = req.vni !== undefined && !view.info.networks.some((s) => s.vni === req.vni || (s.subnet !== null && sameSubnet(s.subnet, req.subnet)) || (req.network !== undefined && s.name === req.network));
        if (pending !== undefined && opts?.define !== false && req.vni === undefined && err instanceof PluginCallError && /does not serve/.test(err.message)) {
          // A network etcd does not define, and no VNI to define it with (compose: no driver_opts).
          throw new PluginCallError(err.message, `define it once: \`vxlan-router network create NAME --vni N --subnet ${req.subnet}\` (then every host serves it), or give it a VNI here: -o vni=N (compose: driver_opts: { vni: "N" })`);
        }
        if (pending === undefined || opts?.define === false || !fresh || Ipv4Subnet.parse(req.subnet, 8, 29) === undefined) throw err;
        pending.add({ dockerId: req.dockerId, request: req });
        return Promise.resolve(undefined);
      }
      return Promise.resolve({ name: n.name!, vni: n.vni, bridge: n.bridge, mtu: n.containerMtu });
    },
    detach: () => Promise.resolve(), // the router keeps serving it: other hosts and non-Docker members still use it
  };
}

function servedSlices(view: DaemonView): OverlaySlices {
  return {
    sliceOf: (subnet) => {
      const i = view.info.networks.findIndex((n) => n.subnet !== null && isIPv4(n.subnet.split('/')[0]!) && sameSubnet(n.subnet, subnet));
      if (i < 0) {
        // Most often a network just defined through Docker (-o vni=N, compose's driver_opts): served after a handover.
        return Promise.reject(new PluginCallError(`this router serves no network with subnet ${subnet} (yet)`, 'a network just defined is served within seconds: start the container again (docker-compose up -d again)'));
      }
      const range = view.ranges()[i]!;
      const name = view.info.networks[i]!.name!;
      if ('none' in range) return Promise.reject(new PluginCallError(`network ${name} has no address range on this host: ${range.none}`));
      return Promise.resolve({ network: name, slice: range });
    },
  };
}

export interface DockerPlugin {
  readonly driver: OverlayNetworkDriver;
  readonly ipam: OverlayIpam;
  /** With `up --docker` only: Docker networks waiting for their network to be defined. */
  readonly pending: PendingDefinitions | undefined;
  /** Serves it on `path` (dockerd finds /run/docker/plugins/vxlan-router.sock by itself). */
  serve(path: string, onError: (err: Error) => void): Promise<ControlServer>;
}

/** The plugin's driver and IPAM for the networks this router serves (`defineLater`: up --docker, see attach). */
export function dockerPlugin(view: DaemonView, defineLater?: () => void): DockerPlugin {
  const pending = defineLater === undefined ? undefined : new PendingDefinitions(defineLater);
  const driver = new OverlayNetworkDriver(servedOverlays(view, pending), new IpCommandLinks());
  const ipam = new OverlayIpam(servedSlices(view));
  const routes = pluginRoutes(driver, ipam);
  return {
    driver,
    ipam,
    pending,
    serve: (path, onError) => {
      const server = pluginServer(routes, (call, err) => onError(new Error(`Docker plugin ${call}: ${err instanceof Error ? err.message : String(err)}`)));
      return listenUnix(path, server, '--docker-plugin', onError);
    },
  };
}

/** Serves the plugin on `path` (dockerd finds /run/docker/plugins/vxlan-router.sock by itself). */
export function serveDockerPlugin(path: string, view: DaemonView, onError: (err: Error) => void): Promise<ControlServer> {
  return dockerPlugin(view).serve(path, onError);
}
