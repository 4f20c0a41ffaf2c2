// Learned (VNI, MAC) → VTEP table (threading and ownership rules in learn.h).
#include "learn.h"

#include <algorithm>
#include <mutex>

namespace vxr {

LearnTable::LearnTable(int64_t aging_ms, int max_per_peer, int max_total)
    : aging_ms_(aging_ms),
      max_per_peer_(static_cast<size_t>(max_per_peer > 0 ? max_per_peer : 0)),
      max_total_(static_cast<size_t>(max_total > 0 ? max_total : 0)) {
  map_.reserve(max_total_);  // never exceeded: no rehash, no allocation but the entries' own
}

bool LearnTable::Live(const Map::value_type& kv, int64_t now_ms) const {
  return now_ms - kv.second.seen_ms.load(std::memory_order_relaxed) < aging_ms_ &&
         (departed_.empty() || !departed_.count(PairKey{kv.first.vni, kv.second.peer.addr}));
}

void LearnTable::Erase(Map::const_iterator it) {
  const auto pc = per_pair_.find(PairKey{it->first.vni, it->second.peer.addr});
  if (pc != per_pair_.end() && --pc->second == 0) {
    departed_.erase(pc->first);
    per_pair_.erase(pc);
  }
  map_.erase(it);
}

int LearnTable::LearnBatch(const Sighting* s, int n, int64_t now_ms, Verdict* verdicts) {
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
        if (it != map_.end() && it->second.peer.addr == s[from].vtep && Live(*it, now_ms)) {
          it->second.seen_ms.store(now_ms, std::memory_order_relaxed);
          verdicts[from] = kKnown;
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
      if (it != map_.end() && it->second.peer.addr == x.vtep && Live(*it, now_ms)) {
        it->second.seen_ms.store(now_ms, std::memory_order_relaxed);  // an earlier sighting in this batch added it
        verdicts[pending[i]] = kKnown;
        continue;
      }
      if (it != map_.end()) Erase(it);  // aged, moved or departed: its slot is free again
      const PairKey pk{x.vni, x.vtep};
      const auto pc = per_pair_.find(pk);
      if (map_.size() >= max_total_ || (pc != per_pair_.end() && pc->second >= max_per_peer_) || max_per_peer_ == 0) {
        verdicts[pending[i]] = kFull;
        continue;
      }
      Peer p;
      p.addr = x.vtep;
      p.salen = ToSockaddr(x.vtep, 0, &p.sa);
      map_.try_emplace(key, p, now_ms);
      per_pair_[pk]++;
      verdicts[pending[i]] = kLearned;
      learned++;
    }
  }
  return learned;
}

bool LearnTable::Reader::Lookup(uint32_t vni, uint64_t mac, int64_t now_ms, Peer* out) const {
  const auto it = t_.map_.find(LearnKey{vni, mac});
  if (it == t_.map_.end() || !t_.Live(*it, now_ms)) return false;
  *out = it->second.peer;
  return true;
}

bool LearnTable::Expire(int64_t now_ms) {
  std::unique_lock<std::shared_mutex> lock(mu_);
  const size_t buckets = map_.bucket_count();
  if (cursor_ >= buckets) cursor_ = 0;
  const size_t end = std::min(buckets, cursor_ + kExpireBuckets);
  for (; cursor_ < end; cursor_++) {
    // Erasing an element invalidates only iterators to it; `next` stays valid.
    for (auto lit = map_.cbegin(cursor_); lit != map_.cend(cursor_);) {
      const auto cur = lit++;
      if (!Live(*cur, now_ms)) Erase(map_.find(cur->first));
    }
  }
  return cursor_ >= buckets;
}

void LearnTable::RetainPeers(const Table& t) {
  std::unique_lock<std::shared_mutex> lock(mu_);
  for (const auto& [pk, count] : per_pair_) {
    if (t.PeerState(pk.vni, pk.vtep) == 2)
      departed_.erase(pk);  // back again: its entries answer again (until they age)
    else
      departed_.insert(pk);
  }
}

size_t LearnTable::Size() const {
  std::shared_lock<std::shared_mutex> lock(mu_);
  return map_.size();
}

std::vector<LearnRow> LearnTable::Dump(int64_t now_ms) const {
  std::shared_lock<std::shared_mutex> lock(mu_);
  std::vector<LearnRow> rows;
  rows.reserve(map_.size());
  for (const auto& kv : map_) {
    const int64_t age = now_ms - kv.second.seen_ms.load(std::memory_order_relaxed);
    if (Live(kv, now_ms)) rows.push_back(LearnRow{kv.first.vni, kv.first.mac, kv.second.peer.addr, age});
  }
  return rows;
}

}  // namespace vxr
