// MACs learned from inbound traffic: (VNI, inner source MAC) → outer source VTEP, with aging.
// Threading: the RX thread writes (LearnBatch, Expire), TX threads read (through a Reader, once per batch), JS reads
// (Dump, Size) and the JS thread marks departed VTEPs on table changes (RetainPeers). A shared_mutex guards the map; refreshing the
// timestamp of an unchanged entry only needs the shared lock (the timestamp is atomic), so steady traffic never takes
// the exclusive lock. Buffer ownership: callers pass their own arrays; nothing here keeps a pointer past the call.
// Semantics twin: the learning in src/fdb/fdb.ts (pinned end to end by the lab tests).
#pragma once
#include <atomic>
#include <cstdint>
#include <mutex>
#include <shared_mutex>
#include <unordered_map>
#include <unordered_set>
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

// Largest learnMax / learnMaxPerPeer the engine takes (MAX_LEARNED in src/fdb/fdb.ts; pinned by
// test/native/limits.test.ts): buckets for learnMax are reserved up front (8 bytes each).
inline constexpr uint32_t kMaxLearned = 1u << 20;

class LearnTable {
 public:
  // Bounds: at most `max_per_peer` entries per (VNI, VTEP) and `max_total` in all (config learnMaxPerPeer /
  // learnMax). The map's buckets are reserved for max_total up front and never exceed it, so it never rehashes
  // (a rehash under -fno-exceptions could abort, and would move the buckets the expiry cursor walks).
  LearnTable(int64_t aging_ms, int max_per_peer, int max_total);

  // One inbound (VNI, source MAC) sighting from `vtep`.
  struct Sighting {
    uint32_t vni;
    uint64_t mac;
    Addr vtep;
  };
  // What LearnBatch did with one sighting. kFull: new (or moved) and over a bound; the caller drops the frame and
  // counts rx_learn_full, like a switch port over its MAC limit.
  enum Verdict : uint8_t { kKnown, kLearned, kFull };
  // Learns a batch of sightings with one shared lock (refreshes), and one exclusive lock only when some entry is
  // new, moved or had expired. Writes one verdict per sighting; returns how many were learned (the `learned`
  // counter). Twin: ForwardingTable.learn in src/fdb/fdb.ts (pinned by test/native/learn.test.ts).
  int LearnBatch(const Sighting* s, int n, int64_t now_ms, Verdict* verdicts);

  // Holds the shared lock for one TX batch's lookups; release it before sending.
  class Reader {
   public:
    explicit Reader(const LearnTable& t) : t_(t), lock_(t.mu_) {}
    // Fills the destination of a fresh entry; false when unknown, aged out or its VTEP left the VNI.
    bool Lookup(uint32_t vni, uint64_t mac, int64_t now_ms, Peer* out) const;

   private:
    const LearnTable& t_;
    std::shared_lock<std::shared_mutex> lock_;
  };
  // Forgets aged entries and those of departed VTEPs in one slice of kExpireBuckets buckets, resuming where the
  // last call stopped: the exclusive lock is held for a bounded time, and a full sweep takes
  // bucket_count / kExpireBuckets calls (twin: ForwardingTable.expire). True when this call ended a sweep.
  bool Expire(int64_t now_ms);
  // Marks the (VNI, VTEP) pairs that are no longer peers as departed: O(pairs), never a walk of the entries. Their
  // entries stop answering lookups at once and are erased by Expire's sweep.
  void RetainPeers(const Table& t);
  std::vector<LearnRow> Dump(int64_t now_ms) const;
  // Entries held (fresh or waiting for the sweep): what the bounds count. O(1), for metrics.
  size_t Size() const;

  static constexpr size_t kExpireBuckets = 8192;  // default bounds: ~65 k buckets, swept in ~8 ticks

 private:
  struct Entry {
    Peer peer;
    std::atomic<int64_t> seen_ms;
    Entry(const Peer& p, int64_t now) : peer(p), seen_ms(now) {}
  };
  struct PairKey {
    uint32_t vni;
    Addr vtep;
    bool operator==(const PairKey& o) const { return vni == o.vni && vtep == o.vtep; }
  };
  struct PairHash {
    size_t operator()(const PairKey& k) const { return AddrHash()(k.vtep) ^ (static_cast<size_t>(k.vni) * 0x9e3779b97f4a7c15ull); }
  };
  using Map = std::unordered_map<LearnKey, Entry, LearnKeyHash>;
  bool Live(const Map::value_type& kv, int64_t now_ms) const;  // fresh, and its VTEP still a peer (lock held)
  void Erase(Map::const_iterator it);                          // exclusive lock held

  const int64_t aging_ms_;
  const size_t max_per_peer_, max_total_;
  mutable std::shared_mutex mu_;
  Map map_;
  std::unordered_map<PairKey, size_t, PairHash> per_pair_;  // entries per (VNI, VTEP); bounded by the table's peers
  std::unordered_set<PairKey, PairHash> departed_;          // pairs with entries that are no longer peers
  size_t cursor_ = 0;                                        // next bucket Expire looks at
};

}  // namespace vxr
