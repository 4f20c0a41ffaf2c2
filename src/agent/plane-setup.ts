/** The control planes of a starting router, one per network: built, their warnings and states logged, opened. */
import type { EtcdClientConfig, NetworkJoin, RouterConfig } from '../config/index.js';
import { EtcdPlane, StaticPeers, type ControlPlane, type PlaneNetwork } from '../control/index.js';
import { ConfigError, describeError } from '../errors.js';
import type { Logger, RateLimited } from '../log.js';
import type { Closable } from './closable.js';
import { SOFTWARE } from './control-protocol.js';

export interface PlaneSetup {
  readonly config: RouterConfig;
  readonly joins: readonly NetworkJoin[];
  /** etcd; undefined with static peers only. */
  readonly connection: EtcdClientConfig | undefined;
  readonly hostId: string;
  readonly snapshotDebounceMs: number | undefined;
  readonly log: Logger;
  readonly warn: RateLimited;
}

/**
 * A control plane per network (static peers, or etcd's network), each pushed to `owned` as it is made, then opened:
 * what each serves (etcd's definition, the snapshot's, or the configured VNI), in the order of the joins. Two
 * networks on one VNI are refused.
 */
export async function openPlanes(o: PlaneSetup, owned: Closable[]): Promise<{ planes: ControlPlane[]; served: PlaneNetwork[] }> {
  const { config, joins, connection, log, warn } = o;
  const planes = joins.map((j): ControlPlane => {
    const plane: ControlPlane =
      connection === undefined || j.name === undefined
        ? new StaticPeers(config.vni!, config.peers)
        : new EtcdPlane({ connection, network: j.name, hostId: o.hostId, local: config.local, port: config.port, leaseTtl: config.leaseTtl, stateDir: config.stateDir, software: SOFTWARE, ...(o.snapshotDebounceMs !== undefined ? { snapshotDebounceMs: o.snapshotDebounceMs } : {}) });
    owned.push(plane);
    const tag = joins.length > 1 && j.name !== undefined ? `network ${j.name}: ` : '';
    // Keyed by kind, so one kind of trouble logs once per window however often it repeats.
    plane.on('warning', (err) => warn.warn(tag + (err.kind ?? err.code), `${tag}${describeError(err)}`, { code: err.code, ...(err.kind ? { kind: err.kind } : {}) }));
    plane.on('state', (st) => {
      const line = `${tag}control plane ${st.state} since ${st.since} (revision ${st.revision}, ${st.hosts} hosts)`;
      if (st.state === 'degraded') log.warn(`${line}: etcd is away, forwarding with the last table`);
      else log.info(line);
    });
    return plane;
  });
  const served: PlaneNetwork[] = [];
  for (const p of planes) served.push(await p.open());
  const vnis = new Map<number, string>();
  for (const s of served) {
    const other = vnis.get(s.vni);
    if (other !== undefined) throw new ConfigError(`networks ${other} and ${s.name} both have VNI ${s.vni}`, { hint: 'serve one of them' });
    vnis.set(s.vni, s.name ?? String(s.vni));
  }
  return { planes, served };
}
