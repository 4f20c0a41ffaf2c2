/**
 * The one loader of the native addon and its typed face. Nothing else imports the .node file; tests and engines get
 * the addon from `loadNative()` (or are handed a fake `NativeAddon`). Native errors carry an errno name in `code`;
 * `toRouterError` turns them into the product's error family in this one place.
 */
import { createRequire } from 'node:module';
import { VxlanRouterError, type ErrorCode } from '../errors.js';

/** The table as the addon takes it: static MACs as [mac, vtep] pairs. */
export interface NativeTable {
  vnis: { vni: number; peers: string[]; macs: [mac: string, vtep: string][] }[];
}

/** Threads and sockets of one running engine (native/src/engine.h). */
export interface NativeEngineHandle {
  setTable(table: NativeTable): void;
  start(): void;
  /** Joins the threads and closes the sockets and TAP fds. Idempotent. */
  stop(): void;
  counters(): { drops: number[]; traffic: number[] };
  learned(): { vni: number; mac: string; vtep: string; ageMs: number }[];
}

export interface NativeAddon {
  readonly dropReasons: readonly string[];
  readonly trafficCounters: readonly string[];
  /** Opens a TAP (IFF_TAP | IFF_NO_PI), sets its MTU, enslaves it to `bridge`, brings it up. Closing fd removes it. */
  openTap(name: string, mtu: number, bridge: string): { fd: number; name: string };
  closeFd(fd: number): void;
  /** Deletes a link (RTM_DELLINK); for a TAP this also wakes a read() blocked on it. */
  deleteLink(name: string): void;
  /** Name of the interface holding `address` (up or not), or null. */
  interfaceOf(address: string): string | null;
  /** Opens and binds the sockets; takes ownership of every tapFd, also when it throws. */
  createEngine(options: {
    local: string;
    port: number;
    underlayMtu: number;
    learning: boolean;
    agingMs: number;
    networks: { vni: number; tapFd: number; mtu: number }[];
  }): NativeEngineHandle;
  /** Mean ns per (VNI, MAC) lookup in a table of `entries` MACs (the benchmark's lookup-cost figure). */
  benchLookup(entries: number, lookups: number): number;
  /** Twins of the TypeScript codecs, for tests. */
  encapsulate(frame: Uint8Array, vni: number, src: string, dst: string, dstPort: number): Buffer;
  flowPort(frame: Uint8Array): number;
  classify(
    payload: Uint8Array,
    from: string,
    vnis: { vni: number; peers: string[] }[],
    maxFrame: number,
  ): { vni: number; offset: number } | { reason: string };
}

const ADDON_PATH = new URL('../../native/build/Release/vxlan_native.node', import.meta.url);
let cached: NativeAddon | undefined;

export function loadNative(): NativeAddon {
  if (cached === undefined) {
    try {
      cached = createRequire(import.meta.url)(ADDON_PATH.pathname) as NativeAddon;
    } catch (cause) {
      throw new VxlanRouterError(
        'E_NATIVE',
        `native addon not built (${ADDON_PATH.pathname}): run \`npm run build\` (${(cause as Error).message})`,
        { cause },
      );
    }
  }
  return cached;
}

const ERRNO_CODES: Record<string, ErrorCode> = {
  EADDRINUSE: 'E_PORT_IN_USE',
  EPERM: 'E_PRIVILEGE',
  EACCES: 'E_PRIVILEGE',
  EADDRNOTAVAIL: 'E_ADDRESS',
  ENODEV: 'E_NO_BRIDGE',
  ENOENT: 'E_NO_TUN',
};

/** A native Error (code = errno name, syscall = what was attempted) → VxlanRouterError with a fix in the message. */
export function toRouterError(err: unknown): VxlanRouterError {
  if (err instanceof VxlanRouterError) return err;
  const e = err as { code?: unknown; message?: unknown };
  const errno = typeof e.code === 'string' ? e.code : '';
  const code = ERRNO_CODES[errno] ?? 'E_SYSTEM';
  const hint: Partial<Record<ErrorCode, string>> = {
    E_PORT_IN_USE: 'stop the other VTEP (a kernel vxlan device or another router) or pass --port',
    E_PRIVILEGE: 'run as root (CAP_NET_ADMIN and CAP_NET_RAW)',
    E_ADDRESS: 'pass an address of this host to --local',
    E_NO_BRIDGE: 'check the --bridge name',
    E_NO_TUN: 'load the tun module (modprobe tun)',
  };
  const fix = hint[code];
  return new VxlanRouterError(code, `${String(e.message ?? err)}${fix ? `: ${fix}` : ''}`, { cause: err });
}
