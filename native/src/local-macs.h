// MACs seen as the source of frames read from a TAP: this host's own containers, which the control plane advertises
// to the other hosts (so they never have to flood to find them). Written by the TX threads (one lock per batch, and
// only for (MAC, address) pairs not reported in the last 250 ms), read by JS (Dump).
//
// Bounded (DESIGN.md habit 13): at most `max_per_vni` MACs per VNI; a MAC not seen for the aging time is forgotten
// (each VNI is swept at most once a second, from SeenBatch, so entries age out even when nobody calls Dump, as with
// static peers). A new MAC while its VNI is full is refused: not recorded, not advertised, counted by the caller
// (local_mac_refused); its frame is still forwarded. Twin: JsEngine.noteLocal in src/dataplane/js-engine.ts;
// pinned by test/native/tx-hostile.test.ts.
// Buffer ownership: callers pass their own arrays; nothing here keeps a pointer past the call.
#pragma once
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "wire.h"

namespace vxr {

struct LocalMacRow {
  uint32_t vni;
  uint64_t mac;
  int64_t age_ms;
  std::vector<Addr> ips;  // IPv4 and IPv6 addresses it used, most recent first
};

class LocalMacTable {
 public:
  static constexpr int kMaxIps = 8;  // per MAC: an IPv4 address, an IPv6 link-local one, a global or two
  static constexpr int64_t kSweepMs = 1000;
  struct Sighting {
    uint64_t mac;
    Addr ip;  // len 0: the frame said nothing about an address
  };
  LocalMacTable(int64_t aging_ms, size_t max_per_vni) : aging_ms_(aging_ms), max_per_vni_(max_per_vni) {}
  // Records a batch of one VNI's sightings under one lock. Returns how many were refused (new MACs while the VNI
  // already held max_per_vni fresh ones).
  int SeenBatch(uint32_t vni, const Sighting* s, int n, int64_t now_ms);
  std::vector<LocalMacRow> Dump(int64_t now_ms);  // fresh entries; forgets aged ones
  // Holds the lock for one RX batch's source checks (a datagram whose inner source is one of our own MACs is a
  // spoof: rx_spoofed_source). Twin: JsEngine.spoofed (src/dataplane/js-engine.ts); pinned end to end by
  // test/lab/hostile-rx.test.ts.
  class Reader {
   public:
    explicit Reader(LocalMacTable& t) : t_(t), lock_(t.mu_) {}
    bool IsLocal(uint32_t vni, uint64_t mac, int64_t now_ms) const {
      const auto v = t_.vnis_.find(vni);
      if (v == t_.vnis_.end()) return false;
      const auto it = v->second.macs.find(mac);
      return it != v->second.macs.end() && now_ms - it->second.seen_ms < t_.aging_ms_;
    }

   private:
    const LocalMacTable& t_;
    std::lock_guard<std::mutex> lock_;
  };

 private:
  struct Entry {
    int64_t seen_ms = 0;
    std::vector<Addr> ips;
  };
  struct Vni {
    int64_t swept_ms = 0;
    std::unordered_map<uint64_t, Entry> macs;
  };
  void Sweep(Vni& v, int64_t now_ms);  // forgets the VNI's aged entries

  const int64_t aging_ms_;
  const size_t max_per_vni_;
  std::mutex mu_;
  std::unordered_map<uint32_t, Vni> vnis_;
};

}  // namespace vxr
