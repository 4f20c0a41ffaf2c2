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
import { Ipv4Subnet, type HostRange } from '../control/index.js';

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

/** How long a plugin call waits for a network defined through Docker moments ago to carry containers. */
export const EARLY_WAIT_MS = 10_000;
/** Networks waiting at once (as PendingDefinitions). */
const MAX_EARLY = 64;

/** A network defined through Docker, ready for containers on this host before the router serves it. */
export interface EarlyNetwork {
  readonly attachment: OverlayAttachment;
  readonly subnet: string;
  /** This host's slice, leased in etcd (the router that serves the network next keeps it: same host id). */
  readonly slice: HostRange;
}

/**
 * Docker networks defined through Docker (`-o vni=N`, compose's `driver_opts`) that this router does not serve yet.
 * The router serves a new network only after a handover (seconds), but compose starts its containers right after it
 * created the network: the first `up` failed. So once the sync has defined the network in etcd it leases this host's
 * slice and makes the bridge (`ready`), and the calls for its containers (RequestAddress, CreateEndpoint, Join) wait
 * for that, up to `waitMs`, instead of refusing: the container is on the network's bridge at once and its frames
 * cross the overlay once the new router process has put its TAP there.
 */
export class EarlyNetworks {
  private readonly items = new Map<string, { subnet: string; settled: Promise<EarlyNetwork>; resolve(n: EarlyNetwork): void; reject(err: unknown): void }>();

  constructor(private readonly waitMs = EARLY_WAIT_MS) {}

  /** A Docker network accepted for a network not served yet: its containers' calls wait for `ready` or `failed`. */
  expect(dockerId: string, subnet: string): void {
    if (this.items.has(dockerId)) return;
    if (this.items.size >= MAX_EARLY) this.items.delete(this.items.keys().next().value!); // the oldest: its calls refuse as before
    let resolve!: (n: EarlyNetwork) => void;
    let reject!: (err: unknown) => void;
    const settled = new Promise<EarlyNetwork>((res, rej) => ((resolve = res), (reject = rej)));
    settled.catch(() => undefined); // a failure nobody waits for is no unhandled rejection
    this.items.set(dockerId, { subnet, settled, resolve, reject });
  }

  ready(dockerId: string, n: EarlyNetwork): void {
    this.items.get(dockerId)?.resolve(n);
  }

  failed(dockerId: string, err: unknown): void {
    this.items.get(dockerId)?.reject(err);
  }

  drop(dockerId: string): void {
    this.items.get(dockerId)?.reject(new PluginCallError(`network ${dockerId.slice(0, 12)} was removed`));
    this.items.delete(dockerId);
  }

  /** The network once it can carry containers (rejects after `waitMs`); undefined when none of that id waits. */
  byId(dockerId: string): Promise<EarlyNetwork> | undefined {
    const item = this.items.get(dockerId);
    return item === undefined ? undefined : this.bounded(item.settled, `network ${dockerId.slice(0, 12)}`);
  }

  /** The same, by subnet (the IPAM knows pools, not networks). */
  bySubnet(subnet: string): Promise<EarlyNetwork> | undefined {
    const item = [...this.items.values()].find((i) => sameSubnet(i.subnet, subnet));
    return item === undefined ? undefined : this.bounded(item.settled, `the network with subnet ${subnet}`);
  }

  private bounded(p: Promise<EarlyNetwork>, what: string): Promise<EarlyNetwork> {
    return within(p, this.waitMs, () => {
      throw new PluginCallError(`${what} is not served by vxlan-router yet: it was not defined in etcd within ${this.waitMs / 1000} s`, 'see `vxlan-router status` for why (etcd away, a conflicting definition); start the container again');
    });
  }
}

/** `p`, or after `ms` what `late` gives (or throws): the timer never outlives the race. */
function within<T>(p: Promise<T>, ms: number, late: () => T): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<void>((resolve) => (timer = setTimeout(resolve, ms))).then(late);
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

function servedOverlays(view: DaemonView, pending: PendingDefinitions | undefined, early: EarlyNetworks | undefined): OverlayNetworks {
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
        early?.expect(req.dockerId, req.subnet);
        return Promise.resolve(undefined);
      }
      return Promise.resolve({ name: n.name!, vni: n.vni, bridge: n.bridge, mtu: n.containerMtu });
    },
    later: (dockerId) => early?.byId(dockerId)?.then((e) => e.attachment),
    detach: (dockerId) => {
      early?.drop(dockerId);
      return Promise.resolve(); // the router keeps serving it: other hosts and non-Docker members still use it
    },
  };
}

function servedSlices(view: DaemonView, early: EarlyNetworks | undefined): OverlaySlices {
  return {
    sliceOf: (subnet) => {
      const i = view.info.networks.findIndex((n) => n.subnet !== null && isIPv4(n.subnet.split('/')[0]!) && sameSubnet(n.subnet, subnet));
      if (i < 0) {
        // A network just defined through Docker (-o vni=N, compose's driver_opts): its slice once the sync leased it.
        const e = early?.bySubnet(subnet);
        if (e !== undefined) return e.then((n) => ({ network: n.attachment.name, slice: n.slice }));
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
  /** With `up --docker` only: those networks, for the sync to say when they can carry containers. */
  readonly early: EarlyNetworks | undefined;
  /** The sync's first look at dockerd is done (what it had is adopted): calls for unknown networks wait no more. */
  adopted(): void;
  /** Serves it on `path` (dockerd finds /run/docker/plugins/vxlan-router.sock by itself). */
  serve(path: string, onError: (err: Error) => void): Promise<ControlServer>;
}

/** The plugin's driver and IPAM for the networks this router serves (`defineLater`: up --docker, see attach). */
export function dockerPlugin(view: DaemonView, defineLater?: () => void, earlyWaitMs = EARLY_WAIT_MS): DockerPlugin {
  const pending = defineLater === undefined ? undefined : new PendingDefinitions(defineLater);
  const early = defineLater === undefined ? undefined : new EarlyNetworks(earlyWaitMs);
  // --docker: the sync adopts what dockerd has (a new process starts empty); calls for what is not known yet wait.
  let adoptedNow: () => void = () => undefined;
  const adoption = new Promise<void>((resolve) => (adoptedNow = resolve));
  const adopted = early === undefined ? undefined : () => within(adoption, earlyWaitMs, () => undefined); // then answered with what is known
  const driver = new OverlayNetworkDriver(servedOverlays(view, pending, early), new IpCommandLinks(), adopted);
  const ipam = new OverlayIpam(servedSlices(view, early), adopted);
  const routes = pluginRoutes(driver, ipam);
  return {
    driver,
    ipam,
    pending,
    early,
    adopted: () => adoptedNow(),
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
