export { ForwardingTable, macKey, type FdbRow, type Route, type TableInput } from './fdb.js';
