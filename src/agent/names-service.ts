/**
 * `up --dns`: names across hosts, put together. A background loop asks the local dockerd for the containers of the
 * served networks (docker-names.ts) at each of its network or container events (and every POLL_MS) and hands each network's names to its control plane (advertised in
 * etcd under this host's lease); the name server (dns-server.ts) answers from every host's names, through the planes.
 */
import type { ControlPlane } from '../control/index.js';
import type { ServedNetwork } from './daemon.js';
import { DockerNames, POLL_MS, resolveName, unixDockerGet, watchDockerEvents } from './docker-names.js';
import { DnsServer, type DnsCounters } from './dns-server.js';

/** The least time between two polls of dockerd, whatever its events say. */
const MIN_GAP_MS = 100;

export interface NamesService {
  readonly address: string;
  counters(): DnsCounters;
  /** The address the name server put on lo, if it did: a handover passes it on (handover state `dnsAdded`). */
  addedAddress(): string | undefined;
  /** The handover went ahead: leave the address on lo at close, for the new router. */
  keepAddress(): void;
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
  /** The address the router this one took over put on lo and left (its handover state's `dnsAdded`). */
  readonly inheritedAddress?: string;
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
    53,
    undefined,
    opts.inheritedAddress,
  );
  const docker = new DockerNames(unixDockerGet(opts.dockerSocket), networks);
  let closed = false;
  let timer: NodeJS.Timeout | undefined;
  /** A poll is running; `again`: an event came meanwhile, so poll once more right after. */
  let polling = false;
  let again = false;
  let lastEnd = 0;
  const kick = (): void => {
    if (closed) return;
    if (polling) {
      again = true;
      return;
    }
    clearTimeout(timer);
    // At most one poll per MIN_GAP_MS however many events come.
    const wait = lastEnd + MIN_GAP_MS - Date.now();
    if (wait > 0) timer = setTimeout(() => void tick(), wait).unref();
    else void tick();
  };
  const tick = async (): Promise<void> => {
    polling = true;
    again = false;
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
    polling = false;
    lastEnd = Date.now();
    if (closed) return;
    if (again) kick();
    else timer = setTimeout(kick, POLL_MS).unref();
  };
  // dockerd's events make it asked at once; the poll is the backstop.
  const events = watchDockerEvents(opts.dockerSocket, kick, (err) => opts.onError('docker events', new Error(`dockerd's event stream (${opts.dockerSocket}): ${err.message}`)));
  void tick();
  return {
    address: opts.address,
    counters: () => server.counters,
    addedAddress: () => server.addedAddress,
    keepAddress: () => server.keepAddress(),
    close: async () => {
      closed = true;
      clearTimeout(timer);
      events.close();
      await server.close();
    },
  };
}
