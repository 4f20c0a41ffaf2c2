/**
 * Where a router keeps its files when not told (--socket, --state-dir): the control socket's directory and the
 * state dir. Both belong to the network namespace: routers in two namespaces of one machine (labs, tests, people
 * trying it out) never collide, and `ip netns exec <ns> vxlan-router status` finds the router of that namespace,
 * because the CLI computes the same directory from the same namespace.
 *
 *   a named namespace (`ip netns add h1`)       /run/vxlan-router/netns/h1   /var/lib/vxlan-router/netns/h1
 *   any other (the machine's own, a container's) /run/vxlan-router            /var/lib/vxlan-router
 *
 * "Named" is what iproute2 says: a name under /run/netns bound to this namespace. (Comparing with PID 1's namespace
 * is not possible everywhere: reading /proc/1/ns/net needs ptrace rights that a root in a sandbox may lack.) A
 * container has its own /run and /var/lib, so the plain paths are its own.
 *
 * VXLAN_ROUTER_RUN_DIR / VXLAN_ROUTER_STATE_DIR replace the two roots (tests keep to temp dirs with them).
 */
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

export const RUN_DIR = '/run/vxlan-router';
export const STATE_DIR = '/var/lib/vxlan-router';
export const RUN_DIR_ENV = 'VXLAN_ROUTER_RUN_DIR';
export const STATE_DIR_ENV = 'VXLAN_ROUTER_STATE_DIR';
/** Where `ip netns add` keeps its namespaces (iproute2's NETNS_RUN_DIR). */
const NETNS_DIR = '/run/netns';

type Env = Readonly<Record<string, string | undefined>>;

/** What the namespace test reads, injectable for tests. */
export interface NamespaceProbe {
  /** The names under /run/netns whose namespace is this process's. */
  namesOfSelf(): string[];
}

export const procProbe: NamespaceProbe = {
  namesOfSelf: () => {
    try {
      const ino = statSync('/proc/self/ns/net').ino;
      return readdirSync(NETNS_DIR).filter((n) => {
        try {
          return statSync(join(NETNS_DIR, n)).ino === ino;
        } catch {
          return false;
        }
      });
    } catch {
      return [];
    }
  },
};

/** The name of this process's network namespace when iproute2 knows it by one (`ip netns`), else null. */
export function namespaceName(probe: NamespaceProbe = procProbe): string | null {
  return probe.namesOfSelf().sort()[0] ?? null;
}

function scoped(root: string, probe: NamespaceProbe): string {
  const name = namespaceName(probe);
  return name === null ? root : join(root, 'netns', name);
}

/** The directory of control sockets by default (`<dir>/<tap>.sock`). */
export function defaultRunDir(env: Env = process.env, probe: NamespaceProbe = procProbe): string {
  return scoped(env[RUN_DIR_ENV] || RUN_DIR, probe);
}

/** The state dir by default (the etcd snapshots). */
export function defaultStateDir(env: Env = process.env, probe: NamespaceProbe = procProbe): string {
  return scoped(env[STATE_DIR_ENV] || STATE_DIR, probe);
}
