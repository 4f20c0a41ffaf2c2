export { defaultTapName, startRouter, type Router, type RouterInfo } from './router.js';
