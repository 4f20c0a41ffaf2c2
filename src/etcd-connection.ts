/**
 * How to reach etcd, one shape wherever it comes from: src/config builds it from flags and files and checks it,
 * src/control connects with it. It sits beside errors.ts, below both, because config and control may not import
 * each other (DESIGN.md, layers) and both need the shape and the rule that a client certificate comes with its key.
 * Types and one check; no I/O, nothing from etcd3.
 */
import { ConfigError } from './errors.js';

/** TLS material as PEM files: the CA to trust (default: the system's roots), and a client certificate with its key. */
export interface EtcdTls {
  readonly caFile?: string;
  readonly certFile?: string;
  readonly keyFile?: string;
}

/** How to reach etcd: endpoints, and optionally TLS and a user. */
export interface EtcdConnection {
  readonly endpoints: readonly string[];
  readonly tls?: EtcdTls;
  readonly auth?: { readonly username: string; readonly password: string };
}

/** Throws a ConfigError (naming the flags) when only one of the client certificate and its key is given. */
export function checkClientCertPair(tls: Pick<EtcdTls, 'certFile' | 'keyFile'>): void {
  if ((tls.certFile === undefined) === (tls.keyFile === undefined)) return;
  const [given, missing] = tls.certFile === undefined ? ['--etcd-key', '--etcd-cert'] : ['--etcd-cert', '--etcd-key'];
  throw new ConfigError(`${given} needs ${missing} too`, { hint: 'a client certificate and its key go together: pass both or neither' });
}
