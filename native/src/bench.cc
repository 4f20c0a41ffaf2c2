// Lookup micro-benchmark, JS thread only; owns every buffer it touches (see bench.h).
#include "bench.h"

#include <chrono>
#include <vector>

#include "table.h"

namespace vxr {

double BenchLookup(uint32_t entries, uint32_t lookups) {
  if (entries == 0 || lookups == 0) return 0;
  Table t;
  Addr peer;
  ParseAddr("198.51.100.2", &peer);
  const int p = t.AddPeer(peer);
  VniTable& vt = t.vnis[42];
  std::vector<uint64_t> keys(entries);
  uint64_t x = 0x9e3779b97f4a7c15ull;
  for (auto& k : keys) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    k = (x & 0xfeffffffffffull) | 0x020000000000ull;  // unicast, locally administered
    vt.macs[k] = p;
  }
  uint64_t hits = 0;
  const auto start = std::chrono::steady_clock::now();
  for (uint32_t i = 0; i < lookups; i++) {
    const auto v = t.vnis.find(42);
    hits += v->second.macs.count(keys[(i * 2654435761u) % entries]);
  }
  const auto ns = std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - start).count();
  return hits == lookups ? ns / lookups : -1;  // -1: a lookup missed, which would be a bug
}

}  // namespace vxr
