/**
 * `up --dns`: names across hosts, put together. A background loop asks the local dockerd for the containers of the
 * served networks (docker-names.ts) every POLL_MS and hands each network's names to its control plane (advertised in
 * etcd under this host's lease); the name server (dns-server.ts) answers from every host's names, through the planes.
 */
import type { ControlPlane } from '../control/index.js';
import type { ServedNetwork } from './daemon.js';
import { DockerNames, POLL_MS, resolveName, unixDockerGet } from './docker-names.js';
import { DnsServer, type DnsCounters } from './dns-server.js';

export interface NamesService {
  readonly address: string;
  counters(): DnsCounters;
  close(): Promise<void>;
}

export interface NamesOptions {
  readonly address: string;
  readonly dockerSocket: string;
  readonly networks: readonly ServedNetwork[];
  /** One per network, in the order of `networks`. */
  readonly planes: readonly ControlPlane[];
  /** dockerd unreachable or answering nonsense, a send that failed: reported (the caller rate-limits), never fatal. */
  readonly onError: (what: string, err: Error) => void;
}

export async function serveNames(opts: NamesOptions): Promise<NamesService> {
  const { networks, planes } = opts;
  const zones: string[][] = networks.map((n) => (n.name === null ? [] : [n.name.toLowerCase()]));
  const server = await DnsServer.start(
    opts.address,
    (name) =>
      resolveName(
        name,
        planes.map((p, i) => ({ zones: zones[i]!, lookup: (n: string) => p.lookupName(n) })),
      ),
    (err) => opts.onError('dns server', err),
  );
  const docker = new DockerNames(unixDockerGet(opts.dockerSocket), networks);
  let closed = false;
  let timer: NodeJS.Timeout | undefined;
  const tick = async (): Promise<void> => {
    try {
      const local = await docker.poll();
      local.forEach((l, i) => {
        planes[i]!.advertiseNames(l.entries);
        const own = networks[i]!.name?.toLowerCase();
        zones[i] = [...new Set([...(own !== undefined ? [own] : []), ...l.dockerNetworks])];
      });
    } catch (err) {
      opts.onError('docker names', new Error(`cannot read container names from dockerd (${opts.dockerSocket}): ${err instanceof Error ? err.message : String(err)}`));
    }
    if (!closed) timer = setTimeout(() => void tick(), POLL_MS).unref();
  };
  void tick();
  return {
    address: opts.address,
    counters: () => server.counters,
    close: async () => {
      closed = true;
      clearTimeout(timer);
      await server.close();
    },
  };
}
