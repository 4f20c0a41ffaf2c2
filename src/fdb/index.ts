export { DEFAULT_LEARN_MAX, DEFAULT_LEARN_MAX_PER_PEER, EXPIRE_SLICE, ForwardingTable, MAX_LEARNED, macKey, type ForwardingTableOptions, type LearnVerdict, type Route } from './fdb.js';
export { EMPTY_TABLE, MAC_ORIGINS, mergeTables, tableSchema, type FdbEntry, type DeepReadonly, type FdbOrigin, type MacOrigin, type TableSnapshot, type TableVni } from './table.js';
export { BRIDGE_FDB_ENTRY_BYTES, decodeBridgeFdb, encodeBridgeFdb, type BridgeFdbEntry } from './bridge-fdb.js';
