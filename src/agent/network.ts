/** `vxlan-router network create`: defines an overlay network in etcd, once. */
import { networkDefinitionSchema, openRegistry, Slices, type EtcdConnection, type NetworkDefinition } from '../control/index.js';
import { isIPv4 } from 'node:net';
import { ConfigError } from '../errors.js';

export async function createNetwork(
  connection: EtcdConnection,
  input: { name: string; vni: unknown; subnet: unknown; mtu?: unknown; port?: unknown; hostPrefix?: unknown },
  force: boolean,
): Promise<{ outcome: 'created' | 'unchanged' | 'replaced'; network: NetworkDefinition }> {
  const parsed = networkDefinitionSchema.safeParse({ version: 1, ...input });
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const flag = String(issue.path[0] ?? 'name').replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
    throw new ConfigError(`--${flag}: ${issue.message}`);
  }
  // An IPv4 subnet is cut into per-host slices (Docker IPAM ranges): refuse a slice size that does not fit now.
  if (isIPv4(parsed.data.subnet.split('/')[0]!)) new Slices(parsed.data.subnet, parsed.data.hostPrefix);
  else if (parsed.data.hostPrefix !== undefined) throw new ConfigError(`--host-prefix: per-host ranges need an IPv4 subnet; ${parsed.data.subnet} is not one`);
  const registry = await openRegistry(connection);
  try {
    return { outcome: await registry.createNetwork(parsed.data, force), network: parsed.data };
  } finally {
    await registry.close();
  }
}

/**
 * `vxlan-router network rm`: removes a network's definition everywhere (every record under it in etcd), refused while
 * any host advertises a MAC on it (a container, a VM: MAC records are what the hosts forward to). Routers started
 * with --docker then stop serving it and remove their Docker network of that name when it has no containers.
 */
export async function removeNetwork(connection: EtcdConnection, name: string): Promise<void> {
  const registry = await openRegistry(connection);
  try {
    const def = await registry.getNetwork(name);
    if (def === undefined) throw new ConfigError(`network ${name} is not defined in etcd`, { hint: "see the names with `etcdctl get --prefix --keys-only /vxlan-router/v1/networks/`" });
    const use = await registry.deleteNetworkUnlessUsed(name, def.subnet);
    if (use.length > 0) {
      const who = use.map((u) => `${u.hostId} (${u.macs} MAC${u.macs === 1 ? '' : 's'})`).join(', ');
      throw new ConfigError(`network ${name} is in use: ${who} advertise${use.length === 1 ? 's' : ''} containers on it`, {
        hint: `remove or disconnect them first (docker rm -f … / docker network disconnect ${name} …), then run this again`,
      });
    }
  } finally {
    await registry.close();
  }
}
