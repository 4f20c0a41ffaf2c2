export { createNetwork } from './network.js';
export { defaultTapName, startRouter, type Router, type RouterInfo, type StartOptions } from './router.js';
/** The shape of Router.controlPlane(), for `status` (the cli may not import control/ directly). */
export type { ControlPlaneState, ControlPlaneStatus } from '../control/index.js';
