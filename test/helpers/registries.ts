/** The registries a test opens against its etcd: each one is closed at the end of the test, before etcd goes. */
import { spawnSync } from 'node:child_process';
import type { Test } from 'tap';
import { EtcdRegistry, type HostRecord, type NetworkDefinition, type RegistryOptions } from '../../src/control/etcd-registry.js';
import { EtcdServer } from '../../src/lab/etcd.js';

/** `open(opts)` makes a registry on `endpoint` (with `defaults`, then `opts`); `then` runs after they are closed. */
export function registryOpener(t: Test, endpoint: string, defaults: Partial<RegistryOptions>, then: () => Promise<void> | void): (opts?: Partial<RegistryOptions>) => EtcdRegistry {
  const registries: EtcdRegistry[] = [];
  t.teardown(async () => {
    for (const r of registries) await r.close();
    await then();
  });
  return (opts = {}) => {
    const r = new EtcdRegistry({ endpoints: [endpoint], ...defaults, ...opts });
    registries.push(r);
    return r;
  };
}

/** A host record as a router of host `hostId` at `ip` writes it, on network default. */
export const hostRecord = (hostId: string, ip: string): HostRecord => ({
  version: 1, hostId, underlay: [ip], port: 4789, networks: ['default'], mtu: 1450, software: 'test', startedAt: new Date().toISOString(),
});

/**
 * A private etcd with network default (VNI 42, 198.18.0.0/15) and two registries joined to it as hosts a
 * (198.51.100.1) and b (198.51.100.2); `value(key)` reads a key under the network's prefix with etcdctl.
 */
export async function twoJoined(t: Test): Promise<{ a: EtcdRegistry; b: EtcdRegistry; etcd: EtcdServer; value: (key: string) => string }> {
  const etcd = await EtcdServer.start();
  const open = registryOpener(t, etcd.endpoint, {}, () => etcd.destroy());
  const admin = open();
  await admin.createNetwork({ version: 1, name: 'default', vni: 42, subnet: '198.18.0.0/15' });
  const network = (await admin.getNetwork('default')) as NetworkDefinition;
  const [a, b] = [open(), open()];
  await a.join(network, hostRecord('a', '198.51.100.1'));
  await b.join(network, hostRecord('b', '198.51.100.2'));
  const value = (key: string): string =>
    spawnSync('etcdctl', ['--endpoints', etcd.endpoint, 'get', `/vxlan-router/v1/networks/default/${key}`, '--print-value-only'], { encoding: 'utf8' }).stdout;
  return { a, b, etcd, value };
}
