export { createNetwork } from './network.js';
export { defaultTapName, startRouter, type Router, type RouterInfo } from './router.js';
