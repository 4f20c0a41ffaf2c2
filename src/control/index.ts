export { staticTable, type StaticNetwork } from './static-peers.js';
