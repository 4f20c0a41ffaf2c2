// MACs learned from inbound traffic: (VNI, inner source MAC) → outer source VTEP, with aging.
// Threading: the RX thread writes (Learn, Expire), TX threads read (Lookup), JS reads (Dump) and the JS thread
// prunes on table changes (RetainPeers). A shared_mutex guards the map; refreshing the timestamp of an unchanged
// entry only needs the shared lock (the timestamp is atomic), so steady traffic never takes the exclusive lock.
#pragma once
#include <atomic>
#include <cstdint>
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

  // True when the entry is new or moved to another VTEP.
  bool Learn(uint32_t vni, uint64_t mac, const Addr& vtep, int64_t now_ms);
  // Fills the destination of a fresh entry; false when unknown or aged out.
  bool Lookup(uint32_t vni, uint64_t mac, int64_t now_ms, Peer* out) const;
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
