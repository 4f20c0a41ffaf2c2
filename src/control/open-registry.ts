/**
 * Opening an etcd registry loads the etcd client then, not when the control plane is imported: a router on static
 * peers never talks to etcd, and the client (etcd3, grpc-js, protobufjs) is ~30 MiB of a ~80 MiB router — memory
 * that also costs idle latency on hosts that run DAMON (README, "Idle pings and DAMON").
 */
import type { EtcdRegistry, RegistryOptions } from './etcd-registry.js';

export async function openRegistry(opts: RegistryOptions): Promise<EtcdRegistry> {
  const { EtcdRegistry: Registry } = await import('./etcd-registry.js');
  return new Registry(opts);
}
