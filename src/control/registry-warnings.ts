/**
 * What the etcd registry reports while it recovers by itself (its `warning` event): each warning is a
 * VxlanRouterError with a stable `kind`, so the daemon rate-limits and counts by kind, never by message text.
 */
import { VxlanRouterError, type ErrorCode, type ErrorOptions } from '../errors.js';

export const REGISTRY_WARNING_KINDS = [
  'record-rejected', // another host's record does not parse or does not fit: ignored (a RejectedRecord, E_RECORD)
  'lease-lost', // this host's lease ran out (etcd away longer than the TTL): registering again
  'range-lease-lost', // the lease of this host's address range ran out: leasing again
  'watch-ended', // the watch ended (compaction, cancelled stream): listing again
  'retry', // background work (join, re-list, re-register, re-lease) failed: retrying after a backoff
  'ranges-exhausted', // every slice of the subnet is leased: this host has no address range for Docker
  'mac-record-full', // this host has more MACs than its record may carry (MAX_MACS_PER_RECORD): the newest are left out
  'address-claim-refused', // a local MAC uses an address a live MAC on another host owns: not advertised
] as const;
export type RegistryWarningKind = (typeof REGISTRY_WARNING_KINDS)[number];

/** A warning of the registry: always recoverable, always with a kind. */
export class RegistryWarning extends VxlanRouterError {
  declare readonly kind: RegistryWarningKind;

  constructor(code: ErrorCode, kind: RegistryWarningKind, message: string, options: Omit<ErrorOptions, 'kind' | 'recoverable'> = {}) {
    super(code, message, { ...options, kind, recoverable: true });
  }
}
