/**
 * Checks made before anything is created, so that a router that cannot run says why in one line and leaves nothing
 * half-configured behind. Each failure is a VxlanRouterError: its message says what is wrong, its hint the fix.
 */
import { existsSync, readFileSync } from 'node:fs';
import { VxlanRouterError } from '../errors.js';

const CAP_NET_ADMIN = 12;
const CAP_NET_RAW = 13;

/** Effective capabilities of this process, from /proc (no libcap dependency). */
function effectiveCaps(): bigint {
  const m = /^CapEff:\s*([0-9a-f]+)$/m.exec(readFileSync('/proc/self/status', 'utf8'));
  return m ? BigInt(`0x${m[1]}`) : 0n;
}

/** CAP_NET_ADMIN always, CAP_NET_RAW for the native engine; `caps` is the effective set (default: this process's). */
export function checkPrivileges(needRaw: boolean, caps = effectiveCaps()): void {
  const has = (bit: number): boolean => (caps & (1n << BigInt(bit))) !== 0n;
  if (!has(CAP_NET_ADMIN)) {
    throw new VxlanRouterError('E_PRIVILEGE', 'needs CAP_NET_ADMIN to create the TAP device', { hint: 'run as root (sudo)', kind: 'no-cap-net-admin' });
  }
  if (needRaw && !has(CAP_NET_RAW)) {
    throw new VxlanRouterError('E_PRIVILEGE', 'the native engine needs CAP_NET_RAW for its send socket', { hint: 'run as root', kind: 'no-cap-net-raw' });
  }
}

export function checkTun(): void {
  if (!existsSync('/dev/net/tun')) {
    throw new VxlanRouterError('E_NO_TUN', '/dev/net/tun is missing', {
      hint: 'load the tun module (modprobe tun) or, in a container, pass --device /dev/net/tun',
    });
  }
}

export function checkBridge(bridge: string): void {
  if (!existsSync(`/sys/class/net/${bridge}`)) {
    throw new VxlanRouterError('E_NO_BRIDGE', `bridge ${bridge} does not exist`, {
      hint: `create it (ip link add ${bridge} type bridge && ip link set ${bridge} up) or pass --bridge`,
    });
  }
  if (!existsSync(`/sys/class/net/${bridge}/bridge`)) {
    throw new VxlanRouterError('E_NO_BRIDGE', `${bridge} is not a bridge`, { hint: 'pass the name of a Linux bridge to --bridge' });
  }
}

export function checkFreeLinkName(name: string): void {
  if (existsSync(`/sys/class/net/${name}`)) {
    throw new VxlanRouterError('E_CONFIG', `an interface named ${name} already exists`, { hint: 'pick another --tap name' });
  }
}

export interface Underlay {
  readonly device: string;
  readonly mtu: number;
}

/** Finds the device that holds the local underlay address (whether its link is up yet or not), and its MTU. */
export function findUnderlay(local: string, interfaceOf: (address: string) => string | null): Underlay {
  const device = interfaceOf(local);
  if (device === null) {
    throw new VxlanRouterError('E_ADDRESS', `local address ${local} is not configured on any interface of this host`, {
      hint: "pass one of this host's underlay addresses to --local",
    });
  }
  return { device, mtu: Number(readFileSync(`/sys/class/net/${device}/mtu`, 'utf8').trim()) };
}
