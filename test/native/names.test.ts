/**
 * The counter names are part of the wire between C++ and TypeScript: native/src/counters.h must list DROP_REASONS and
 * TRAFFIC_COUNTERS (src/dataplane/engine.ts) in the same order, because the order is the counter's index.
 */
import t from 'tap';
import { DROP_REASONS, TRAFFIC_COUNTERS } from '../../src/dataplane/engine.js';
import { loadNative } from '../../src/dataplane/native.js';

t.test('counter names are the same lists, in the same order, in C++ and TypeScript', async (t) => {
  const native = loadNative();
  t.same(native.dropReasons, DROP_REASONS);
  t.same(native.trafficCounters, TRAFFIC_COUNTERS);
});
