/**
 * This host's part of an overlay network for runtimes other than Docker (issue 16): a CNI conflist for
 * nerdctl/containerd (`vxlan-router cni-config <network>`), and `<run dir>/<network>.env` for scripts, as flannel's
 * subnet.env. Both say the same: the overlay's subnet, the slice this host leased (containers get addresses only from
 * it, so no two hosts hand out one), its gateway (the slice's .1, on this host's bridge: one per host, never clashing)
 * and the MTU containers need.
 */
import { mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Ipv4Subnet, writeFileAtomic, type HostRange } from '../control/index.js';
import { ConfigError } from '../errors.js';

/** What a runtime needs of one overlay network on this host. */
export interface HostSlice {
  readonly network: string;
  readonly vni: number;
  readonly bridge: string;
  /** The overlay's whole subnet (one L2 segment across hosts). */
  readonly subnet: string;
  readonly slice: HostRange;
  readonly mtu: number;
}

/** The addresses a runtime may hand out: the slice without its .0, its gateway and the subnet's broadcast. */
export function sliceRange(subnet: string, slice: HostRange): { start: string; end: string } {
  const net = Ipv4Subnet.parse(subnet);
  const own = Ipv4Subnet.parse(slice.range);
  if (net === undefined || own === undefined || !net.contains(own.at(0))) throw new ConfigError(`slice ${slice.range} is not an IPv4 range of ${subnet}`);
  const last = own.at(-1) === net.at(-1) ? own.at(-2) : own.at(-1);
  return { start: own.at(2), end: last };
}

/**
 * A CNI conflist (spec 1.0.0): the bridge plugin on the router's bridge, as the gateway of this host's slice with
 * outbound NAT (what Docker's bridge does), host-local IPAM on the slice, and portmap for published ports.
 */
export function cniConflist(s: HostSlice): object {
  const { start, end } = sliceRange(s.subnet, s.slice);
  return {
    cniVersion: '1.0.0',
    name: s.network,
    plugins: [
      {
        type: 'bridge',
        bridge: s.bridge,
        isGateway: true,
        ipMasq: true,
        mtu: s.mtu,
        ipam: {
          type: 'host-local',
          ranges: [[{ subnet: s.subnet, rangeStart: start, rangeEnd: end, gateway: s.slice.gateway }]],
          routes: [{ dst: '0.0.0.0/0' }],
        },
      },
      { type: 'portmap', capabilities: { portMappings: true } },
    ],
  };
}

/** `<network>.env`: shell-sourceable lines, one value each (flannel's subnet.env, with our names). */
export function envFile(s: HostSlice): string {
  const { start, end } = sliceRange(s.subnet, s.slice);
  const prefix = s.subnet.split('/')[1]!;
  return [
    `VXLAN_ROUTER_NETWORK=${s.network}`,
    `VXLAN_ROUTER_VNI=${s.vni}`,
    `VXLAN_ROUTER_SUBNET=${s.subnet}`,
    `VXLAN_ROUTER_RANGE=${s.slice.range}`,
    `VXLAN_ROUTER_RANGE_START=${start}`,
    `VXLAN_ROUTER_RANGE_END=${end}`,
    `VXLAN_ROUTER_GATEWAY=${s.slice.gateway}`,
    `VXLAN_ROUTER_GATEWAY_CIDR=${s.slice.gateway}/${prefix}`,
    `VXLAN_ROUTER_MTU=${s.mtu}`,
    `VXLAN_ROUTER_BRIDGE=${s.bridge}`,
    '',
  ].join('\n');
}

export const envPath = (runDir: string, network: string): string => join(runDir, `${network}.env`);

/**
 * Keeps `<runDir>/<network>.env` as the slices are: written (atomically) when one appears or changes, removed when
 * its network goes. Remembers what it wrote, so a tick with nothing new touches no file.
 */
export class EnvFiles {
  private readonly written = new Map<string, string>();

  /** `owner`: this router is the run dir's only one that writes them (up --docker): .env files of networks it no
   * longer serves (removed while another process served them) are removed too. */
  constructor(
    private readonly runDir: string,
    owner = false,
  ) {
    if (!owner) return;
    try {
      for (const f of readdirSync(runDir)) if (f.endsWith('.env')) this.written.set(f.slice(0, -4), '');
    } catch {
      /* no run dir yet */
    }
  }

  /** `slices`: every network served now that has a slice on this host. */
  update(slices: readonly HostSlice[]): void {
    const now = new Set<string>();
    for (const s of slices) {
      now.add(s.network);
      const text = envFile(s);
      if (this.written.get(s.network) === text) continue;
      mkdirSync(this.runDir, { recursive: true });
      writeFileAtomic(envPath(this.runDir, s.network), Buffer.from(text));
      this.written.set(s.network, text);
    }
    for (const name of [...this.written.keys()]) if (!now.has(name)) this.remove(name);
  }

  remove(network: string): void {
    rmSync(envPath(this.runDir, network), { force: true });
    this.written.delete(network);
  }
}
