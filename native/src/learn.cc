#include "learn.h"

#include <mutex>

namespace vxr {

bool LearnTable::Learn(uint32_t vni, uint64_t mac, const Addr& vtep, int64_t now_ms) {
  const LearnKey key{vni, mac};
  {
    std::shared_lock<std::shared_mutex> lock(mu_);
    auto it = map_.find(key);
    if (it != map_.end() && it->second.peer.addr == vtep) {
      const bool was_fresh = now_ms - it->second.seen_ms.load(std::memory_order_relaxed) < aging_ms_;
      it->second.seen_ms.store(now_ms, std::memory_order_relaxed);
      return !was_fresh;
    }
  }
  Peer p;
  p.addr = vtep;
  p.salen = ToSockaddr(vtep, 0, &p.sa);
  std::unique_lock<std::shared_mutex> lock(mu_);
  map_.erase(key);
  map_.try_emplace(key, p, now_ms);
  return true;
}

bool LearnTable::Lookup(uint32_t vni, uint64_t mac, int64_t now_ms, Peer* out) const {
  std::shared_lock<std::shared_mutex> lock(mu_);
  auto it = map_.find(LearnKey{vni, mac});
  if (it == map_.end() || now_ms - it->second.seen_ms.load(std::memory_order_relaxed) >= aging_ms_) return false;
  *out = it->second.peer;
  return true;
}

void LearnTable::Expire(int64_t now_ms) {
  std::unique_lock<std::shared_mutex> lock(mu_);
  for (auto it = map_.begin(); it != map_.end();) {
    if (now_ms - it->second.seen_ms.load(std::memory_order_relaxed) >= aging_ms_)
      it = map_.erase(it);
    else
      ++it;
  }
}

void LearnTable::RetainPeers(const Table& t) {
  std::unique_lock<std::shared_mutex> lock(mu_);
  for (auto it = map_.begin(); it != map_.end();) {
    if (t.PeerState(it->first.vni, it->second.peer.addr) != 2)
      it = map_.erase(it);
    else
      ++it;
  }
}

std::vector<LearnRow> LearnTable::Dump(int64_t now_ms) const {
  std::shared_lock<std::shared_mutex> lock(mu_);
  std::vector<LearnRow> rows;
  for (const auto& [k, e] : map_) {
    const int64_t age = now_ms - e.seen_ms.load(std::memory_order_relaxed);
    if (age < aging_ms_) rows.push_back(LearnRow{k.vni, k.mac, e.peer.addr, age});
  }
  return rows;
}

}  // namespace vxr
