export * from './engine.js';
export { JsEngine } from './js-engine.js';
export { NativeEngine } from './native-engine.js';
export { loadNative, toRouterError, type NativeAddon } from './native.js';
export { reboundAddresses } from './neighbors.js';
