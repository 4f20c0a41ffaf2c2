/**
 * Docker's network-driver calls (issue 16): a Docker network of driver `vxlan-router` is one overlay network
 * (one VNI) served by this router; each container endpoint is a veth pair whose host end sits on the network's
 * bridge, so the router's TAP on that bridge carries its frames to other hosts.
 *
 * Join gives no gateway on purpose: dockerd then adds the container to docker_gwbridge, a plain bridge network of
 * its own, for outbound NAT and `-p` publishing (libnetwork's remote.md), which keep working even while the router
 * is down. The overlay subnet is on-link through the container's interface on our network.
 *
 * What a network is (its VNI, bridge, MTU; defined in etcd or adopted from there) is the daemon's business, asked
 * through `OverlayNetworks`; links are made through `EndpointLinks`. Neither ever calls dockerd (dockerd waits on
 * our answer while holding its own locks).
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { isIPv4 } from 'node:net';
import { promisify } from 'node:util';
import { PluginCallError, type CreateEndpointRequest, type CreateEndpointResponse, type CreateNetworkRequest, type EndpointRequest, type JoinRequest, type JoinResponse, type NetworkDriver, type NetworkRequest } from './docker-plugin.js';

const run = promisify(execFile);
/** Both families: a dual-stack container's IPv6 crosses the bridge too. */
const IPTABLES = ['iptables', 'ip6tables'] as const;
const MISSING_TOOL = 'not installed';
/** No iptables on the host: no firewall that could drop bridged frames either. */
const ignoreMissingTool = (err: unknown): void => {
  if (!(err instanceof PluginCallError && err.hint === MISSING_TOOL)) throw err;
};

/** The overlay network a Docker network is, once the daemon has defined or adopted it and serves it. */
export interface OverlayAttachment {
  readonly name: string;
  readonly vni: number;
  readonly bridge: string;
  readonly mtu: number;
}

/** What dockerd's `docker network create -o key=value …` asked for, decoded. */
export interface DockerNetworkRequest {
  readonly dockerId: string;
  readonly subnet: string;
  /** From `-o vni=N`; absent: adopt the etcd network with this subnet. */
  readonly vni?: number;
  /** From `-o network=NAME` (the overlay's name in etcd); absent: the daemon finds it by subnet or VNI. */
  readonly network?: string;
}

export interface OverlayNetworks {
  /**
   * Defines (or adopts) the overlay network and makes sure this router serves it; rejects with a PluginCallError.
   * Undefined: accepted, but served only later (a network defined by this call: `up --docker`).
   */
  attach(req: DockerNetworkRequest, opts?: { readonly define?: boolean }): Promise<OverlayAttachment | undefined>;
  /**
   * A Docker network that `attach` accepted for later: resolves once it can carry containers (defined in etcd, this
   * host's slice leased, its bridge made), rejects with a PluginCallError after a bounded wait; undefined when none
   * of that id waits.
   */
  later?(dockerId: string): Promise<OverlayAttachment> | undefined;
  /** dockerd removed its network here: the router may stop serving it (the definition in etcd stays). */
  detach(dockerId: string): Promise<void>;
}

export interface EndpointLinks {
  /** A veth pair: `host` on `bridge` and up, `peer` with `mac`, both with `mtu`. */
  createVeth(host: string, peer: string, bridge: string, mtu: number, mac: string): Promise<void>;
  /** Deletes a link (and a veth's peer with it); no error when it is already gone. */
  deleteLink(name: string): Promise<void>;
  /**
   * Lets frames cross `bridge` past the firewall: on Docker hosts br_netfilter sends bridged frames through the
   * FORWARD chain, whose policy dockerd sets to DROP (its own networks get their own ACCEPT rules; ours would not).
   */
  allowBridged(bridge: string): Promise<void>;
  /** Takes that rule away again. */
  disallowBridged(bridge: string): Promise<void>;
}

/** Endpoints (containers) on this host's vxlan-router networks at once; more is a refused call, not growth. */
export const MAX_ENDPOINTS = 4096;
/** Docker networks of this driver at once. */
export const MAX_DOCKER_NETWORKS = 256;

interface Endpoint {
  readonly networkId: string;
  readonly host: string;
  readonly peer: string;
}

/** Interface names from an endpoint id: Linux allows 15 bytes; ten hex digits keep a clash out of reach. */
export function endpointLinkNames(endpointId: string): { host: string; peer: string } {
  const tag = endpointId.replace(/[^0-9a-f]/gi, '').slice(0, 10).toLowerCase().padEnd(10, '0');
  return { host: `vxh${tag}`, peer: `vxc${tag}` };
}

/**
 * The MAC of an endpoint dockerd gave none: 02:42 and the IPv4 address, as Docker's bridge driver makes it, so a
 * container that comes back with its address (a dockerd restart replays it) comes back with its MAC too and its
 * peers' ARP caches stay right; random (locally administered, unicast) when there is no IPv4 address.
 */
export function endpointMac(address: string | undefined): string {
  const ip = address?.split('/')[0] ?? '';
  const b = isIPv4(ip) ? Buffer.from([0x02, 0x42, ...ip.split('.').map(Number)]) : randomBytes(6);
  b[0] = (b[0]! & 0xfe) | 0x02;
  return [...b].map((x) => x.toString(16).padStart(2, '0')).join(':');
}

/** `-o vni=N` and `-o network=NAME`, from CreateNetwork's options. */
export function dockerNetworkRequest(req: CreateNetworkRequest): DockerNetworkRequest {
  const v4 = req.IPv4Data ?? [];
  if (v4.length !== 1) throw new PluginCallError(`a vxlan-router network has one IPv4 subnet, not ${v4.length}`, 'docker network create -d vxlan-router --ipam-driver vxlan-router --subnet 198.18.0.0/16 …');
  if ((req.IPv6Data ?? []).length > 0) throw new PluginCallError('vxlan-router networks carry IPv6 inside, but Docker hands out IPv4 only here', 'leave out --ipv6');
  const generic = req.Options?.['com.docker.network.generic'];
  const opts: Record<string, unknown> = typeof generic === 'object' && generic !== null ? (generic as Record<string, unknown>) : {};
  const known = new Set(['vni', 'network']);
  const unknown = Object.keys(opts).filter((k) => !known.has(k));
  if (unknown.length > 0) throw new PluginCallError(`unknown option ${unknown.map((k) => `-o ${k}`).join(', ')}`, 'vxlan-router takes -o vni=N and -o network=NAME');
  const out: { -readonly [K in keyof DockerNetworkRequest]: DockerNetworkRequest[K] } = { dockerId: req.NetworkID, subnet: v4[0]!.Pool };
  if (opts.vni !== undefined) {
    const vni = Number(opts.vni);
    if (!/^\d+$/.test(String(opts.vni)) || vni < 1 || vni > 0xffffff) throw new PluginCallError(`-o vni=${String(opts.vni)} is not a VNI`, 'give a number from 1 to 16777215');
    out.vni = vni;
  }
  if (opts.network !== undefined) out.network = String(opts.network);
  return out;
}

export class OverlayNetworkDriver implements NetworkDriver {
  private readonly networks = new Map<string, OverlayAttachment>();
  private readonly endpoints = new Map<string, Endpoint>();

  /**
   * `adopted`: resolves (bounded) once the networks dockerd already has are adopted (`up --docker`, docker-sync.ts):
   * a call for a network not known yet waits for it rather than failing during a new router process's first second.
   */
  constructor(
    private readonly overlays: OverlayNetworks,
    private readonly links: EndpointLinks,
    private readonly adopted?: () => Promise<void>,
  ) {}

  async createNetwork(req: CreateNetworkRequest): Promise<void> {
    if (this.networks.has(req.NetworkID)) return; // dockerd replays its networks after a restart
    if (this.networks.size >= MAX_DOCKER_NETWORKS) throw new PluginCallError(`this host already has ${MAX_DOCKER_NETWORKS} vxlan-router networks`);
    const net = await this.overlays.attach(dockerNetworkRequest(req));
    if (net === undefined) return; // served once defined: the router then adopts it from dockerd (docker-sync.ts)
    await this.links.allowBridged(net.bridge);
    this.networks.set(req.NetworkID, net);
  }

  /**
   * A Docker network dockerd already has (and its endpoints), taken into this driver's state: a new router process
   * starts with none, and dockerd does not replay to a plugin that restarted (docker-sync.ts asks dockerd, never a
   * handler). A network this router does not serve is left out (a PluginCallError).
   */
  async adopt(req: DockerNetworkRequest, endpointIds: readonly string[]): Promise<void> {
    if (this.networks.has(req.dockerId)) return;
    // Never defined from here: a Docker network whose definition was removed would bring it back.
    const net = await this.overlays.attach(req, { define: false });
    if (net === undefined) return;
    await this.links.allowBridged(net.bridge);
    this.networks.set(req.dockerId, net);
    for (const id of endpointIds) if (this.endpoints.size < MAX_ENDPOINTS) this.endpoints.set(id, { networkId: req.dockerId, ...endpointLinkNames(id) });
  }

  async deleteNetwork(req: NetworkRequest): Promise<void> {
    for (const [id, ep] of this.endpoints) if (ep.networkId === req.NetworkID) await this.deleteEndpoint({ NetworkID: req.NetworkID, EndpointID: id });
    const net = this.networks.get(req.NetworkID);
    if (net === undefined) return this.overlays.detach(req.NetworkID); // one that waited to be defined waits no more
    this.networks.delete(req.NetworkID);
    if (![...this.networks.values()].some((n) => n.bridge === net.bridge)) await this.links.disallowBridged(net.bridge);
    await this.overlays.detach(req.NetworkID);
  }

  async createEndpoint(req: CreateEndpointRequest): Promise<CreateEndpointResponse> {
    const net = await this.network(req.NetworkID);
    if (this.endpoints.has(req.EndpointID)) throw new PluginCallError(`endpoint ${req.EndpointID.slice(0, 12)} exists already`);
    if (this.endpoints.size >= MAX_ENDPOINTS) throw new PluginCallError(`this host already has ${MAX_ENDPOINTS} containers on vxlan-router networks`);
    const given = req.Interface?.MacAddress ?? '';
    const mac = given === '' ? endpointMac(req.Interface?.Address) : given;
    const { host, peer } = endpointLinkNames(req.EndpointID);
    await this.links.createVeth(host, peer, net.bridge, net.mtu, mac);
    this.endpoints.set(req.EndpointID, { networkId: req.NetworkID, host, peer });
    // dockerd set the addresses (from our IPAM); it takes a MAC back only when it gave none.
    return given === '' ? { Interface: { MacAddress: mac } } : {};
  }

  async deleteEndpoint(req: EndpointRequest): Promise<void> {
    const ep = this.endpoints.get(req.EndpointID);
    const { host } = ep ?? endpointLinkNames(req.EndpointID);
    await this.links.deleteLink(host);
    this.endpoints.delete(req.EndpointID);
  }

  async join(req: JoinRequest): Promise<JoinResponse> {
    await this.network(req.NetworkID);
    const ep = this.endpoints.get(req.EndpointID);
    if (ep === undefined) throw new PluginCallError(`endpoint ${req.EndpointID.slice(0, 12)} is unknown to vxlan-router`, 'restart the container: its endpoint was made before the router restarted');
    return { InterfaceName: { SrcName: ep.peer, DstPrefix: 'eth' } };
  }

  async leave(req: EndpointRequest): Promise<void> {
    await this.network(req.NetworkID);
  }

  /** The overlay network a Docker network id is (for `status`). */
  attachment(dockerId: string): OverlayAttachment | undefined {
    return this.networks.get(dockerId);
  }

  /** The network's attachment; one accepted for later (a network defined through Docker just now) is waited for. */
  private async network(id: string): Promise<OverlayAttachment> {
    const known = this.networks.get(id);
    if (known !== undefined) return known;
    const later = this.overlays.later?.(id);
    if (later === undefined && this.adopted !== undefined) await this.adopted();
    else if (later !== undefined) {
      const net = await later;
      if (!this.networks.has(id)) {
        if (this.networks.size >= MAX_DOCKER_NETWORKS) throw new PluginCallError(`this host already has ${MAX_DOCKER_NETWORKS} vxlan-router networks`);
        await this.links.allowBridged(net.bridge);
        this.networks.set(id, net);
      }
    }
    const net = this.networks.get(id);
    if (net === undefined) throw new PluginCallError(`network ${id.slice(0, 12)} is not served by vxlan-router yet`, 'a network just created is served within seconds (try again); else restart dockerd so it replays its networks, or recreate the network');
    return net;
  }
}

/**
 * Links through iproute2's `ip` (on every Docker host): a veth pair is two commands, and the kernel's own error
 * text is what a user needs to see. `netns` runs them in a named network namespace (the lab's hosts).
 */
export class IpCommandLinks implements EndpointLinks {
  constructor(private readonly netns?: string) {}

  async createVeth(host: string, peer: string, bridge: string, mtu: number, mac: string): Promise<void> {
    await this.ip('link', 'add', host, 'mtu', String(mtu), 'type', 'veth', 'peer', 'name', peer, 'mtu', String(mtu), 'address', mac);
    try {
      await this.ip('link', 'set', host, 'master', bridge, 'up');
    } catch (err) {
      await this.deleteLink(host);
      throw err;
    }
  }

  async deleteLink(name: string): Promise<void> {
    try {
      await this.ip('link', 'del', name);
    } catch (err) {
      if (!(err instanceof PluginCallError && /Cannot find device|does not exist/.test(err.message))) throw err;
    }
  }

  async allowBridged(bridge: string): Promise<void> {
    for (const cmd of IPTABLES) {
      const rule = ['FORWARD', '-i', bridge, '-o', bridge, '-j', 'ACCEPT'];
      if (!(await this.tool(cmd, ['-w', '5', '-C', ...rule]).then(() => true, () => false))) await this.tool(cmd, ['-w', '5', '-I', ...rule]).catch(ignoreMissingTool);
    }
  }

  async disallowBridged(bridge: string): Promise<void> {
    for (const cmd of IPTABLES) await this.tool(cmd, ['-w', '5', '-D', 'FORWARD', '-i', bridge, '-o', bridge, '-j', 'ACCEPT']).catch(() => undefined);
  }

  private ip(...args: string[]): Promise<void> {
    return this.tool('ip', args);
  }

  /** Runs `cmd` (in `netns` when given); a failure is a PluginCallError with the tool's own words. */
  private async tool(cmd: string, args: string[]): Promise<void> {
    const [file, argv] = this.netns === undefined ? [cmd, args] : ['ip', ['netns', 'exec', this.netns, cmd, ...args]];
    try {
      await run(file, argv, { timeout: 10_000 });
    } catch (err) {
      const e = err as { stderr?: string; code?: unknown };
      throw new PluginCallError(`${cmd} ${args.join(' ')}: ${e.stderr?.trim() || (err instanceof Error ? err.message : String(err))}`, e.code === 'ENOENT' ? MISSING_TOOL : undefined);
    }
  }
}
