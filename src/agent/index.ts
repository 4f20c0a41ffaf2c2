export { createNetwork } from './network.js';
export { defaultTapName, startRouter, type Router, type RouterInfo } from './router.js';
export * from './control-protocol.js';
export { serveControl, type ControlServer, type ControlSource } from './control-socket.js';
export { controlSource } from './status.js';
export { parseListen, routerMetrics, serveMetrics, type MetricsServer } from './metrics.js';
export { runDoctor, type Check, type DoctorInput } from './doctor.js';
