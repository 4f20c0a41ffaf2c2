/**
 * The etcd client as the registry uses it: the etcd3 options (TLS from PEM files, auth, and the tuning measured
 * against a real etcd in LAB.md, "The etcd3 client"), every call bounded in time, and the one translation of
 * etcd3's errors into ours. This is the only module that looks inside etcd3's errors: the rest of src/control gets
 * VxlanRouterErrors (code E_ETCD, whether retrying can help, the fix as `hint`) or a reason to put in a message.
 * Loaded only with the registry (open-registry.ts), never by src/control/index.ts.
 */
import { readFileSync } from 'node:fs';
import { circuitBreaker, ConsecutiveBreaker, ExponentialBackoff, handleWhen } from 'cockatiel';
import { Etcd3, EtcdAuthenticationFailedError, EtcdPermissionDeniedError, isRecoverableError, type IOptions } from 'etcd3';
import { ConfigError, VxlanRouterError } from '../errors.js';
import { checkClientCertPair, type EtcdConnection } from '../etcd-connection.js';

export type { EtcdConnection } from '../etcd-connection.js';

/** The fix when etcd does not answer. */
const UNREACHABLE_HINT = 'check that it runs and that --etcd names it';

/** The flag that names each PEM file, for the hint when it cannot be read. */
const PEM_FLAG = { 'CA certificate': '--etcd-ca', 'client certificate': '--etcd-cert', 'client key': '--etcd-key' } as const;

function readPem(file: string, what: keyof typeof PEM_FLAG): Buffer {
  try {
    return readFileSync(file);
  } catch (cause) {
    throw new ConfigError(`cannot read the etcd ${what} ${file}: ${(cause as Error).message}`, { cause, hint: `check the file given to ${PEM_FLAG[what]}` });
  }
}

/**
 * Client tuning measured against a real etcd (LAB.md): short watch backoff (at most 1 s between retries), quick
 * half-open, gRPC keepalive (a silent cut is noticed), and a short gRPC reconnect backoff (grpc-js backs off up to
 * 120 s by default, which delays recovery long after etcd is back). The receive limit holds a page of a listing
 * (LIST_PAGE_KEYS values of at most etcd's 1.5 MiB request limit each: 48 MiB) and a watch response carrying a large
 * transaction's events, where gRPC's default of 4 MiB is reached by ~700 hosts with 100 MACs each. Throws a ConfigError for TLS files that are
 * missing or a client certificate without its key.
 */
function clientOptions(c: EtcdConnection): IOptions {
  const opts: IOptions = {
    hosts: [...c.endpoints],
    grpcOptions: {
      'grpc.keepalive_time_ms': 5000,
      'grpc.keepalive_timeout_ms': 3000,
      'grpc.keepalive_permit_without_calls': 1,
      'grpc.initial_reconnect_backoff_ms': 100,
      'grpc.max_reconnect_backoff_ms': 1000,
      'grpc.max_receive_message_length': 64 * 1024 * 1024,
    },
    faultHandling: {
      host: () => circuitBreaker(handleWhen(isRecoverableError), { halfOpenAfter: 1000, breaker: new ConsecutiveBreaker(3) }),
      // etcd3's typing says IBackoff; it takes a backoff factory such as cockatiel's ExponentialBackoff.
      watchBackoff: new ExponentialBackoff({ initialDelay: 100, maxDelay: 1000 }) as unknown as NonNullable<IOptions['faultHandling']>['watchBackoff'],
    } as IOptions['faultHandling'],
  };
  if (c.tls !== undefined) {
    const { caFile, certFile, keyFile } = c.tls;
    checkClientCertPair(c.tls);
    if (caFile !== undefined || certFile !== undefined) {
      // grpc-js wants a root certificate argument; without --etcd-ca it uses the system's roots (null).
      opts.credentials = {
        rootCertificate: (caFile === undefined ? null : readPem(caFile, 'CA certificate')) as Buffer,
        ...(certFile !== undefined ? { certChain: readPem(certFile, 'client certificate') } : {}),
        ...(keyFile !== undefined ? { privateKey: readPem(keyFile, 'client key') } : {}),
      };
    }
  }
  if (c.auth !== undefined) opts.auth = { username: c.auth.username, password: c.auth.password };
  return opts;
}

/** What went wrong, as text for a message: an etcd3 error's own words, or ours. */
export function reasonOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** One etcd client: `etcd` for building requests, `call` to run one, bounded in time, with etcd3's errors made ours. */
export class EtcdClient {
  readonly etcd: Etcd3;
  private readonly where: string;

  /** Throws a ConfigError when the TLS options are wrong (unreadable PEM file, certificate without key). */
  constructor(
    connection: EtcdConnection,
    private readonly callTimeoutMs: number,
  ) {
    this.etcd = new Etcd3(clientOptions(connection));
    this.where = `etcd at ${connection.endpoints.join(', ')}`;
  }

  /**
   * Runs an etcd call, bounded in time (the client would otherwise retry an unreachable etcd forever); etcd3's
   * errors become ours here, with whether retrying can help. `timeoutMs` bounds this call (default: callTimeoutMs).
   */
  async call<T>(call: () => Promise<T>, timeoutMs = this.callTimeoutMs): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new VxlanRouterError('E_ETCD', `${this.where} did not answer in ${timeoutMs / 1000} s`, {
              recoverable: true,
              kind: 'etcd-timeout',
              hint: UNREACHABLE_HINT,
            }),
          ),
        timeoutMs,
      );
    });
    try {
      return await Promise.race([call(), deadline]);
    } catch (err) {
      throw this.translate(err);
    } finally {
      clearTimeout(timer);
    }
  }

  /** etcd3's error (or ours, unchanged) as a VxlanRouterError of code E_ETCD: the one place that looks inside them. */
  translate(err: unknown): VxlanRouterError {
    if (err instanceof VxlanRouterError) return err;
    if (err instanceof EtcdAuthenticationFailedError || err instanceof EtcdPermissionDeniedError) {
      return new VxlanRouterError('E_ETCD', `${this.where} refused us: ${err.message}`, {
        cause: err,
        kind: 'etcd-refused',
        hint: 'check --etcd-user and --etcd-password / VXLAN_ROUTER_ETCD_PASSWORD',
      });
    }
    // Recoverable: etcd is away or busy (connection refused, unavailable): the same fix as for a call that timed out.
    const recoverable = err instanceof Error && isRecoverableError(err);
    return new VxlanRouterError('E_ETCD', `${this.where}: ${reasonOf(err)}`, { cause: err, recoverable, ...(recoverable ? { hint: UNREACHABLE_HINT } : {}) });
  }

  close(): void {
    this.etcd.close();
  }
}
