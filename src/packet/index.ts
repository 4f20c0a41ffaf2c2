export * from './arp.js';
export * from './bytes.js';
export * from './checksum.js';
export * from './ethernet.js';
export * from './flow.js';
export * from './ip.js';
export * from './udp.js';
export * from './vxlan.js';
