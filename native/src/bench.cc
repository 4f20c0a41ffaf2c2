// The benchmark hook, JS thread only; owns every buffer it touches (see bench.h).
#include "bench.h"

#include <chrono>
#include <vector>

#include "js-args.h"
#include "js-error.h"
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

namespace {

// benchLookup(entries, lookups) → mean ns per lookup. Pinned by test/bench/quick.test.ts.
Napi::Value BenchLookupJs(const Napi::CallbackInfo& info) {
  uint32_t entries, lookups;
  if (!GetUint(info[0], 10000000, &entries) || !GetUint(info[1], 1000000000, &lookups) || entries == 0 || lookups == 0)
    return ThrowType(info.Env(), "benchLookup: entries (1-10000000) and lookups (1-1000000000) must be integers");
  return Napi::Number::New(info.Env(), BenchLookup(entries, lookups));
}

}  // namespace

void RegisterBench(Napi::Env env, Napi::Object exports) {
  exports.Set("benchLookup", Napi::Function::New(env, BenchLookupJs, "benchLookup"));
}

}  // namespace vxr
