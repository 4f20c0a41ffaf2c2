// Learned (VNI, MAC) → VTEP table (threading and ownership rules in learn.h).
#include "learn.h"

#include <mutex>

namespace vxr {

int LearnTable::LearnBatch(const Sighting* s, int n, int64_t now_ms) {
  // Sightings that need the exclusive lock; a batch is at most a recvmmsg burst, so a small fixed array suffices and
  // any overflow is handled by another pass.
  constexpr int kMaxPending = 64;
  int pending[kMaxPending];
  int learned = 0;
  for (int from = 0; from < n;) {
    int np = 0;
    {
      std::shared_lock<std::shared_mutex> lock(mu_);
      for (; from < n && np < kMaxPending; from++) {
        const auto it = map_.find(LearnKey{s[from].vni, s[from].mac});
        if (it != map_.end() && it->second.peer.addr == s[from].vtep &&
            now_ms - it->second.seen_ms.load(std::memory_order_relaxed) < aging_ms_) {
          it->second.seen_ms.store(now_ms, std::memory_order_relaxed);
          continue;
        }
        pending[np++] = from;
      }
    }
    if (np == 0) continue;
    std::unique_lock<std::shared_mutex> lock(mu_);
    for (int i = 0; i < np; i++) {
      const Sighting& x = s[pending[i]];
      const LearnKey key{x.vni, x.mac};
      const auto it = map_.find(key);
      if (it != map_.end() && it->second.peer.addr == x.vtep &&
          now_ms - it->second.seen_ms.load(std::memory_order_relaxed) < aging_ms_) {
        it->second.seen_ms.store(now_ms, std::memory_order_relaxed);  // an earlier sighting in this batch added it
        continue;
      }
      Peer p;
      p.addr = x.vtep;
      p.salen = ToSockaddr(x.vtep, 0, &p.sa);
      if (it != map_.end()) map_.erase(it);
      map_.try_emplace(key, p, now_ms);
      learned++;
    }
  }
  return learned;
}

bool LearnTable::Reader::Lookup(uint32_t vni, uint64_t mac, int64_t now_ms, Peer* out) const {
  const auto it = t_.map_.find(LearnKey{vni, mac});
  if (it == t_.map_.end() || now_ms - it->second.seen_ms.load(std::memory_order_relaxed) >= t_.aging_ms_) return false;
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
