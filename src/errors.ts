/**
 * The one error family of vxlan-router. Every error the product raises on purpose is a VxlanRouterError with a
 * stable `code` (for scripts and tests), a message that says what is wrong, the fix as a field of its own (`hint`),
 * an optional machine-readable `kind` where callers branch, and whether retrying can help. Nothing parses a message:
 * whoever needs the fix reads `hint`, whoever branches reads `code` and `kind`.
 * Foreign errors (errno from the addon, etcd, fs) are translated at one boundary each, never scattered.
 */
export type ErrorCode =
  | 'E_PACKET' // bytes that do not parse
  | 'E_CONFIG' // bad configuration value, key or file
  | 'E_RECORD' // another host's record in etcd that does not parse or does not fit (ignored, reported)
  | 'E_PRIVILEGE' // not root / no CAP_NET_ADMIN
  | 'E_NO_TUN' // /dev/net/tun missing
  | 'E_NO_BRIDGE' // bridge named in config does not exist
  | 'E_ADDRESS' // local address not on this host
  | 'E_PORT_IN_USE' // UDP port taken
  | 'E_NATIVE' // native addon missing or failed
  | 'E_ETCD' // etcd unreachable or refusing
  | 'E_CONTROL' // control socket: no router running, taken by another, or an answer that does not parse
  | 'E_DOCKER' // dockerd not reachable, or refusing a network
  | 'E_SYSTEM'; // any other OS failure

export interface ErrorOptions {
  readonly cause?: unknown;
  /** Retrying (later, unchanged) can succeed: etcd away, a transient OS failure. */
  readonly recoverable?: boolean;
  /** What the user should do about it, as a command or a flag to pass. */
  readonly hint?: string;
  /** A finer, stable name for callers that branch on one case of a code (e.g. 'ranges-exhausted'). */
  readonly kind?: string;
}

export class VxlanRouterError extends Error {
  readonly code: ErrorCode;
  readonly recoverable: boolean;
  readonly hint: string | undefined;
  readonly kind: string | undefined;

  constructor(code: ErrorCode, message: string, options: ErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.recoverable = options.recoverable ?? false;
    this.hint = options.hint;
    this.kind = options.kind;
  }

  /** The message and the fix, as one line for people (CLI, logs). */
  describe(): string {
    return this.hint === undefined ? this.message : `${this.message}: ${this.hint}`;
  }
}

/** Raised by the packet codecs: `offset` is where parsing stopped, `layer` which header was being read. */
export class PacketError extends VxlanRouterError {
  readonly layer: string;
  readonly offset: number;

  constructor(layer: string, offset: number, message: string) {
    super('E_PACKET', `${layer}: ${message} (at byte ${offset})`);
    this.layer = layer;
    this.offset = offset;
  }
}

export class ConfigError extends VxlanRouterError {
  constructor(message: string, options: Omit<ErrorOptions, 'recoverable'> = {}) {
    super('E_CONFIG', message, options);
  }
}

/** Anything thrown, as one line for people: a VxlanRouterError with its fix, else the error's message. */
export function describeError(err: unknown): string {
  if (err instanceof VxlanRouterError) return err.describe();
  return err instanceof Error ? err.message : String(err);
}
