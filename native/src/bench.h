// Micro-benchmark of the data path's table lookup (JS thread only; used by `npm run bench`, pinned by
// test/bench/quick.test.ts): builds a Table with `entries` static MACs in one VNI and times `lookups` lookups of
// (VNI, MAC) the way TxLoop does them (VNI map, then MAC map). Returns mean nanoseconds per lookup.
#pragma once
#include <cstdint>

namespace vxr {
double BenchLookup(uint32_t entries, uint32_t lookups);
}
