/** `vxlan-router network create`: defines an overlay network in etcd, once. */
import { EtcdRegistry, networkConfigSchema, type EtcdConnection, type NetworkConfig } from '../control/index.js';
import { ConfigError } from '../errors.js';

export async function createNetwork(
  connection: EtcdConnection,
  input: { name: string; vni: unknown; subnet: unknown; mtu?: unknown; port?: unknown },
  force: boolean,
): Promise<{ outcome: 'created' | 'unchanged' | 'replaced'; network: NetworkConfig }> {
  const parsed = networkConfigSchema.safeParse({ version: 1, ...input });
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new ConfigError(`--${String(issue.path[0] ?? 'name')}: ${issue.message}`);
  }
  const registry = new EtcdRegistry(connection);
  try {
    return { outcome: await registry.createNetwork(parsed.data, force), network: parsed.data };
  } finally {
    await registry.close();
  }
}
