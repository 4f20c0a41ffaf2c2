/** The registries a test opens against its etcd: each one is closed at the end of the test, before etcd goes. */
import type { Test } from 'tap';
import { EtcdRegistry, type RegistryOptions } from '../../src/control/etcd-registry.js';

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
