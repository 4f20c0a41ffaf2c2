/**
 * How an overlay network may be named: the name is part of etcd keys (networks/<name>/...), of snapshot file names
 * (<name>.snapshot) and of config files. Not wire format, but kept here because the packet layer is the one both
 * src/config (the `network`/`networks` keys) and src/control (network definitions in etcd) may import: one rule,
 * one place.
 */

/** a-z, 0-9, then . _ - too; at most 63 characters. */
export const NETWORK_NAME_PATTERN = /^[a-z0-9][a-z0-9_.-]{0,62}$/;

/** What to say about a name that does not match (after the value: "Blue is not a network name ..."). */
export const NETWORK_NAME_RULE = 'is not a network name (a-z, 0-9, . _ -)';
