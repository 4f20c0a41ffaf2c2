export { createNetwork, removeNetwork } from './network.js';
export { createDockerNetwork, defaultDockerBridge, type DockerNetworkSpec } from './docker-network.js';
export { Daemon, defaultHostId, defaultTapName, type DaemonInfo, type DaemonOptions, type DaemonView, type ServedNetwork } from './daemon.js';
/** The shape of Router.controlPlane(), for `status` (the cli may not import control/ directly). */
export type { ControlPlaneState, ControlPlaneStatus } from '../control/index.js';
export * from './control-protocol.js';
export { serveControl, type ControlServer, type ControlSource } from './control-socket.js';
export { controlSource } from './status.js';
export { parseListen, routerMetrics, serveMetrics, type MetricsServer } from './metrics.js';
export { routerChecks, runDoctor, type Check, type DoctorInput } from './doctor.js';
export { cniConflist, type HostSlice } from './runtime-files.js';
