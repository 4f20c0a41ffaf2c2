/**
 * `vxlan-router docker-network create`: a Docker bridge network that is this host's part of an overlay network.
 * Its subnet is the overlay's whole subnet (containers on every host are on one L2 segment), its --ip-range is the
 * slice this host leased in etcd (so no two hosts hand out one address), its gateway the slice's first address (one
 * a host, so gateways never clash either), and its bridge name and MTU are what `vxlan-router up` will use.
 *
 * The Docker Engine API is two plain HTTP calls over the local Unix socket (docker-api.ts).
 */
import { isIPv6 } from 'node:net';
import { openRegistry, undefinedNetwork, type EtcdConnection, type HostRange, type NetworkDefinition, type NoRange } from '../control/index.js';
import { loadNative } from '../dataplane/index.js';
import { ConfigError, VxlanRouterError } from '../errors.js';
import { innerMtuLimit } from '../packet/index.js';
import { DEFAULT_DOCKER_SOCKET } from './control-protocol.js';
import { defaultDockerBridge, dockerCall, messageOf } from './docker-api.js';

export { defaultDockerBridge } from './docker-api.js';
import { findUnderlay } from './preflight.js';
import { defaultHostId } from './daemon.js';


/** The Docker network asked for: what `docker network create` would be given. */
export interface DockerNetworkSpec {
  readonly name: string;
  readonly bridge: string;
  readonly subnet: string;
  readonly ipRange: string;
  readonly gateway: string;
  readonly mtu: number;
  /** The overlay network and VNI, as labels (docker network inspect tells what the network is for). */
  readonly overlay: string;
  readonly vni: number;
}

/** Docker's view of a network, reduced to the fields we set. */
function specOf(net: Record<string, unknown>): Omit<DockerNetworkSpec, 'overlay' | 'vni'> | undefined {
  const ipam = (net.IPAM as { Config?: { Subnet?: string; IPRange?: string; Gateway?: string }[] } | undefined)?.Config?.[0];
  const options = (net.Options ?? {}) as Record<string, string>;
  if (ipam === undefined) return undefined;
  return {
    name: String(net.Name),
    bridge: options['com.docker.network.bridge.name'] ?? '',
    subnet: ipam.Subnet ?? '',
    ipRange: ipam.IPRange ?? '',
    gateway: ipam.Gateway ?? '',
    mtu: Number(options['com.docker.network.driver.mtu'] ?? 1500),
  };
}

/**
 * Creates the Docker network, or finds it already as asked ('unchanged'); one that differs is refused with the
 * command that removes it.
 */
export async function ensureDockerNetwork(socketPath: string, spec: DockerNetworkSpec): Promise<'created' | 'unchanged'> {
  const existing = await dockerCall(socketPath, 'GET', `/networks/${encodeURIComponent(spec.name)}`);
  if (existing.status === 200) {
    const have = specOf(existing.body as Record<string, unknown>);
    const want = { name: spec.name, bridge: spec.bridge, subnet: spec.subnet, ipRange: spec.ipRange, gateway: spec.gateway, mtu: spec.mtu };
    if (have !== undefined && JSON.stringify(have) === JSON.stringify(want)) return 'unchanged';
    throw new ConfigError(`Docker network ${spec.name} exists with other settings (${JSON.stringify(have)}, want ${JSON.stringify(want)})`, {
      hint: `remove it with \`docker network rm ${spec.name}\` (after stopping its containers) and run this again`,
    });
  }
  if (existing.status !== 404) throw new VxlanRouterError('E_DOCKER', `dockerd answered ${existing.status} for network ${spec.name}: ${messageOf(existing)}`);
  const created = await dockerCall(socketPath, 'POST', '/networks/create', {
    Name: spec.name,
    Driver: 'bridge',
    CheckDuplicate: true,
    IPAM: { Driver: 'default', Config: [{ Subnet: spec.subnet, IPRange: spec.ipRange, Gateway: spec.gateway, ...sliceBaseReserved(spec) }] },
    Options: { 'com.docker.network.bridge.name': spec.bridge, 'com.docker.network.driver.mtu': String(spec.mtu) },
    Labels: { 'vxlan-router.network': spec.overlay, 'vxlan-router.vni': String(spec.vni) },
  });
  if (created.status !== 201) throw new VxlanRouterError('E_DOCKER', `dockerd refused to create network ${spec.name} (${created.status}): ${messageOf(created)}`);
  return 'created';
}

/**
 * Docker's default IPAM hands out an --ip-range's first address first: for a slice other than the subnet's first, that
 * is the slice's `.0` (valid, but it surprises people and some tools). Reserving it as an auxiliary address makes the
 * first container get the address after the gateway, as the plugin's IPAM does. The subnet's own first address is
 * Docker's network address, reserved already.
 */
function sliceBaseReserved(spec: DockerNetworkSpec): { AuxiliaryAddresses?: Record<string, string> } {
  const base = spec.ipRange.split('/')[0]!;
  return base === spec.subnet.split('/')[0] ? {} : { AuxiliaryAddresses: { 'vxr-slice-base': base } };
}

export interface DockerNetworkInput {
  readonly network: string;
  readonly local: string;
  readonly hostId?: string;
  readonly bridge?: string;
  readonly dockerName?: string;
  readonly socketPath?: string;
}

/** Reads the overlay network from etcd, leases this host's range, and makes the Docker network that uses it. */
export async function createDockerNetwork(connection: EtcdConnection, input: DockerNetworkInput): Promise<{ outcome: 'created' | 'unchanged'; spec: DockerNetworkSpec; hostId: string }> {
  const underlay = findUnderlay(input.local, (a) => loadNative().interfaceOf(a));
  const hostId = input.hostId ?? defaultHostId(input.local);
  const registry = await openRegistry(connection);
  let network: NetworkDefinition | undefined;
  let range: HostRange | NoRange;
  try {
    network = await registry.getNetwork(input.network);
    if (network === undefined) {
      throw undefinedNetwork(input.network);
    }
    range = await registry.reserveRange(network, hostId);
  } finally {
    await registry.close();
  }
  if ('none' in range) throw new ConfigError(`no address range for this host in network ${network.name}: ${range.none}`, { kind: `range-${range.reason}` });
  const spec: DockerNetworkSpec = {
    name: input.dockerName ?? `vxr-${network.name}`, // Docker reserves some names (default, bridge, host, none)
    bridge: input.bridge ?? defaultDockerBridge(network.name),
    subnet: network.subnet,
    ipRange: range.range,
    gateway: range.gateway,
    mtu: network.mtu ?? innerMtuLimit(underlay.mtu, input.local),
    overlay: network.name,
    vni: network.vni,
  };
  return { outcome: await ensureDockerNetwork(input.socketPath ?? DEFAULT_DOCKER_SOCKET, spec), spec, hostId };
}
