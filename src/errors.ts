/**
 * The one error family of vxlan-router. Every error the product raises on purpose is a VxlanRouterError with a
 * stable `code` (for scripts and tests), a message that names the thing to fix, and whether retrying can help.
 * Foreign errors (errno from the addon, etcd, fs) are translated at one boundary each, never scattered.
 */
export type ErrorCode =
  | 'E_PACKET' // bytes that do not parse
  | 'E_CONFIG' // bad configuration value, key or file
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

export class VxlanRouterError extends Error {
  readonly code: ErrorCode;
  readonly recoverable: boolean;

  constructor(code: ErrorCode, message: string, options: { cause?: unknown; recoverable?: boolean } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.recoverable = options.recoverable ?? false;
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
  constructor(message: string, options: { cause?: unknown } = {}) {
    super('E_CONFIG', message, options);
  }
}
