export * from './engine.js';
export { JsEngine } from './js-engine.js';
export { NativeEngine } from './native-engine.js';
export { loadNative, toRouterError, type NativeAddon, type LinkInfo, type LinkWatch } from './native.js';
export { reboundAddresses, ReboundTracker, REBOUND_MEMORY_MS } from './neighbors.js';
export { TrafficStats, MAX_REJECTED, type Traffic, type PeerTraffic, type VniTraffic, type RejectedSource, type FlowCounts } from './traffic.js';
export { PeerProber, DEFAULT_PROBE_INTERVAL_MS, LOSS_WINDOW_MS, MAX_PROBED_PEERS, MAX_PROBES_PER_SECOND, PROBE_TIMEOUT_MS, type PeerHealthRow, type PeerState, type ProbeReply, type ProbeSendResult } from './peer-health.js';
