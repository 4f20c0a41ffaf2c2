export * from './engine.js';
export { JsEngine } from './js-engine.js';
export { NativeEngine } from './native-engine.js';
export { loadNative, toRouterError, type NativeAddon, type LinkInfo, type LinkWatch } from './native.js';
export { reboundAddresses } from './neighbors.js';
export { TrafficStats, MAX_REJECTED, type Traffic, type PeerTraffic, type VniTraffic, type RejectedSource, type FlowCounts } from './traffic.js';
