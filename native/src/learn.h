// MACs learned from inbound traffic: (VNI, inner source MAC) → outer source VTEP, with aging.
// Threading: the RX thread writes (LearnBatch, Expire), TX threads read (through a Reader, once per batch), JS reads
// (Dump) and the JS thread prunes on table changes (RetainPeers). A shared_mutex guards the map; refreshing the
// timestamp of an unchanged entry only needs the shared lock (the timestamp is atomic), so steady traffic never takes
// the exclusive lock. Buffer ownership: callers pass their own arrays; nothing here keeps a pointer past the call.
// Semantics twin: the learning in src/fdb/fdb.ts (pinned end to end by the lab tests).
#pragma once
#include <atomic>
#include <cstdint>
#include <mutex>
#include <shared_mutex>
#include <unordered_map>
#include <vector>

#include "table.h"
#include "wire.h"

namespace vxr {

struct LearnKey {
  uint32_t vni;
  uint64_t mac;
  bool operator==(const LearnKey& o) const { return vni == o.vni && mac == o.mac; }
};
struct LearnKeyHash {
  size_t operator()(const LearnKey& k) const { return std::hash<uint64_t>()(k.mac * 0x9e3779b97f4a7c15ull ^ k.vni); }
};

struct LearnRow {
  uint32_t vni;
  uint64_t mac;
  Addr vtep;
  int64_t age_ms;
};

class LearnTable {
 public:
  explicit LearnTable(int64_t aging_ms) : aging_ms_(aging_ms) {}

  // One inbound (VNI, source MAC) sighting from `vtep`.
  struct Sighting {
    uint32_t vni;
    uint64_t mac;
    Addr vtep;
  };
  // Learns a batch of sightings with one shared lock (refreshes), and one exclusive lock only when some entry is
  // new, moved or had expired. Returns how many were new, moved or revived (the `learned` counter).
  int LearnBatch(const Sighting* s, int n, int64_t now_ms);

  // Holds the shared lock for one TX batch's lookups; release it before sending.
  class Reader {
   public:
    explicit Reader(const LearnTable& t) : t_(t), lock_(t.mu_) {}
    // Fills the destination of a fresh entry; false when unknown or aged out.
    bool Lookup(uint32_t vni, uint64_t mac, int64_t now_ms, Peer* out) const;

   private:
    const LearnTable& t_;
    std::shared_lock<std::shared_mutex> lock_;
  };
  void Expire(int64_t now_ms);
  void RetainPeers(const Table& t);  // forget entries whose VTEP is no longer a peer of their VNI
  std::vector<LearnRow> Dump(int64_t now_ms) const;

 private:
  struct Entry {
    Peer peer;
    std::atomic<int64_t> seen_ms;
    Entry(const Peer& p, int64_t now) : peer(p), seen_ms(now) {}
  };
  const int64_t aging_ms_;
  mutable std::shared_mutex mu_;
  std::unordered_map<LearnKey, Entry, LearnKeyHash> map_;
};

}  // namespace vxr
