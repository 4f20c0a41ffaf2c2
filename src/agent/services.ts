/**
 * What a started router serves beside the data path: the networks' .env files, the control socket, Docker's plugin
 * and sync (up --docker), the name server (up --dns) and metrics.
 */
import { dirname } from 'node:path';
import type { EtcdClientConfig, RouterConfig } from '../config/index.js';
import type { ControlPlane } from '../control/index.js';
import { describeError } from '../errors.js';
import type { Logger, RateLimited } from '../log.js';
import type { Closable } from './closable.js';
import { serveControl, type TakeoverSession } from './control-socket.js';
import type { Daemon, DaemonView, ServedNetwork } from './daemon.js';
import type { DockerSync } from './docker-sync.js';
import { serveDocker } from './docker-wiring.js';
import { processGone } from './handover.js';
import { routerMetrics, serveMetrics } from './metrics.js';
import { serveNames, type NamesService } from './names-service.js';
import { EnvFiles } from './runtime-files.js';
import { controlSource } from './status.js';
import type { Handed } from './tap-setup.js';

/** How often the .env files are compared with this host's slices (a write only when one changed). */
const ENV_FILES_MS = 1000;

/** How long the new router waits for the old one to exit after a handover before it takes the control socket. */
const OLD_EXIT_MS = 10_000;

export interface Services {
  readonly config: RouterConfig;
  /** The router: what the services show, its slices (the .env files) and its side of a takeover. */
  readonly router: DaemonView & Pick<Daemon, 'slices' | 'handOver'>;
  readonly startedAt: Date;
  /** Start a process that serves the new list of networks and hand over to it (up --docker). */
  readonly respawn: (why: string) => void;
  /** Hands each service back to the router as it starts, so that status and a handover see it from then on. */
  readonly adopt: { sync(sync: DockerSync | undefined): void; names(names: NamesService): void };
  readonly networks: readonly ServedNetwork[];
  readonly planes: readonly ControlPlane[];
  readonly connection: EtcdClientConfig | undefined;
  readonly socketPath: string;
  /** What the router taken over handed on (--takeover). */
  readonly handed: Handed | undefined;
  /** This host's id in etcd (its address ranges are leased under it). */
  readonly hostId: string;
  readonly log: Logger;
  readonly warn: RateLimited;
}

/** Starts each service, pushing it to `owned` as it runs (closed in reverse, before the data path). */
export async function startServices(o: Services, owned: Closable[]): Promise<void> {
  const { config, router, networks, socketPath, handed, log, warn } = o;
  // <run dir>/<network>.env for scripts (flannel's subnet.env): kept as this host's slices are (runtime-files.ts).
  const envFiles = new EnvFiles(dirname(socketPath), config.docker);
  const keepEnv = (): void => {
    try {
      envFiles.update(router.slices());
    } catch (err) {
      warn.warn('env-file', `cannot write the networks' .env files in ${dirname(socketPath)}: ${describeError(err)}`);
    }
  };
  keepEnv();
  const envTimer = setInterval(keepEnv, ENV_FILES_MS);
  envTimer.unref();
  owned.push({ close: () => clearInterval(envTimer) });

  const serverError = (what: string) => (err: Error) => warn.warn(what, `${what}: ${describeError(err)}`);
  // After a handover the old router still closes its control socket and metrics: wait until it has gone.
  if (handed !== undefined && !(await processGone(handed.state.pid, OLD_EXIT_MS)))
    log.warn({ oldPid: handed.state.pid }, `the router that handed over (pid ${handed.state.pid}) has not exited after ${OLD_EXIT_MS} ms`);
  const takeoverHandler = (req: unknown, session: TakeoverSession): void => router.handOver(req, session);
  owned.push(await serveControl(socketPath, controlSource(router, config, o.startedAt), serverError('control socket'), takeoverHandler));
  const docker = await serveDocker({ config, view: router, networks, connection: o.connection, hostId: o.hostId, log, warn: (kind, message) => warn.warn(kind, message), serverError, respawn: o.respawn });
  owned.push(...docker.owned);
  o.adopt.sync(docker.sync);
  if (config.dns !== undefined && config.dns !== 'off') {
    const onError = (what: string, err: Error): void => warn.warn(what, `${what}: ${describeError(err)}`);
    const names = await serveNames({ address: config.dns, dockerSocket: config.dockerSocket, networks, planes: o.planes, onError, ...(handed?.state.dnsAdded !== undefined ? { inheritedAddress: handed.state.dnsAdded } : {}) });
    o.adopt.names(names);
    owned.push(names);
  }
  if (config.metrics !== 'off') owned.push(await serveMetrics(config.metrics, routerMetrics(router, o.startedAt), serverError('metrics server')));
}
