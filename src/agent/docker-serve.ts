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

function servedOverlays(view: DaemonView): OverlayNetworks {
  return {
    attach: (req): Promise<OverlayAttachment> => {
      const n = matchServed(view.info.networks, req);
      return Promise.resolve({ name: n.name!, vni: n.vni, bridge: n.bridge, mtu: n.containerMtu });
    },
    detach: () => Promise.resolve(), // the router keeps serving it: other hosts and non-Docker members still use it
  };
}

function servedSlices(view: DaemonView): OverlaySlices {
  return {
    sliceOf: (subnet) => {
      const i = view.info.networks.findIndex((n) => n.subnet !== null && isIPv4(n.subnet.split('/')[0]!) && sameSubnet(n.subnet, subnet));
      if (i < 0) return Promise.reject(new PluginCallError(`this router serves no network with subnet ${subnet}`));
      const range = view.ranges()[i]!;
      const name = view.info.networks[i]!.name!;
      if ('none' in range) return Promise.reject(new PluginCallError(`network ${name} has no address range on this host: ${range.none}`));
      return Promise.resolve({ network: name, slice: range });
    },
  };
}

/** Serves the plugin on `path` (dockerd finds /run/docker/plugins/vxlan-router.sock by itself). */
export function serveDockerPlugin(path: string, view: DaemonView, onError: (err: Error) => void): Promise<ControlServer> {
  const routes = pluginRoutes(new OverlayNetworkDriver(servedOverlays(view), new IpCommandLinks()), new OverlayIpam(servedSlices(view)));
  const server = pluginServer(routes, (call, err) => onError(new Error(`Docker plugin ${call}: ${err instanceof Error ? err.message : String(err)}`)));
  return listenUnix(path, server, '--docker-plugin', onError);
}
