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

// MACs seen as the source of frames read from a TAP: this host's own containers, which the control plane advertises
// to the other hosts (so they never have to flood to find them). Written by the TX threads (one lock per batch, and
// only for MACs not refreshed in the last second), read by JS (Dump).
struct LocalMacRow {
  uint32_t vni;
  uint64_t mac;
  int64_t age_ms;
  std::vector<Addr> ips;  // IPv4 and IPv6 addresses it used, most recent first
};

class LocalMacTable {
 public:
  static constexpr int kMaxIps = 8;  // per MAC: an IPv4 address, an IPv6 link-local one, a global or two
  struct Sighting {
    uint64_t mac;
    Addr ip;  // len 0: the frame said nothing about an address
  };
  explicit LocalMacTable(int64_t aging_ms) : aging_ms_(aging_ms) {}
  void SeenBatch(uint32_t vni, const Sighting* s, int n, int64_t now_ms);
  std::vector<LocalMacRow> Dump(int64_t now_ms);  // fresh entries; forgets aged ones

 private:
  struct Entry {
    int64_t seen_ms = 0;
    std::vector<Addr> ips;
  };
  const int64_t aging_ms_;
  std::mutex mu_;
  std::unordered_map<LearnKey, Entry, LearnKeyHash> seen_;
};

}  // namespace vxr
