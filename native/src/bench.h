// The benchmark hook (bench.cc): a micro-benchmark of the data path's table lookup, used by `npm run bench` and
// pinned by test/bench/quick.test.ts. Not product surface. JS thread only.
#pragma once
#include <napi.h>

#include <cstdint>

namespace vxr {

// Builds a Table with `entries` static MACs in one VNI and times `lookups` lookups of (VNI, MAC) the way the TX
// thread does them (VNI map, then MAC map). Returns mean nanoseconds per lookup (-1 if a lookup missed).
double BenchLookup(uint32_t entries, uint32_t lookups);

// Adds benchLookup to the addon's exports (NativeBench in src/dataplane/native.ts).
void RegisterBench(Napi::Env env, Napi::Object exports);

}  // namespace vxr
