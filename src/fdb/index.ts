export { ForwardingTable, macKey, type Route } from './fdb.js';
export { EMPTY_TABLE, MAC_ORIGINS, mergeTables, tableSchema, type FdbEntry, type DeepReadonly, type FdbOrigin, type MacOrigin, type TableSnapshot, type TableVni } from './table.js';
