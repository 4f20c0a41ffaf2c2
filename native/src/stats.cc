#include "stats.h"

#include <algorithm>
#include <unordered_set>

namespace vxr {

void Tally::Peer(const Addr& a, uint64_t frames, uint64_t bytes) {
  for (int i = 0; i < np_; i++) {
    if (peers_[i].first == a) {
      peers_[i].second.frames += frames;
      peers_[i].second.bytes += bytes;
      return;
    }
  }
  if (np_ < kMax) peers_[np_++] = {a, FlowCount{frames, bytes}};
}

void Tally::Vni(uint32_t vni, uint64_t frames, uint64_t bytes) {
  for (int i = 0; i < nv_; i++) {
    if (vnis_[i].first == vni) {
      vnis_[i].second.frames += frames;
      vnis_[i].second.bytes += bytes;
      return;
    }
  }
  if (nv_ < kMax) vnis_[nv_++] = {vni, FlowCount{frames, bytes}};
}

void TrafficStats::Merge(Tally* t, Dir dir, int64_t now_ms) {
  if (t->Empty()) return;
  std::lock_guard<std::mutex> lock(mu_);
  for (int i = 0; i < t->np_; i++) {
    const auto& [addr, c] = t->peers_[i];
    auto it = peers_.find(addr);
    if (it == peers_.end()) {
      if (peers_.size() >= kMaxPeers) continue;
      it = peers_.emplace(addr, PeerRow{addr, {}, {}, -1}).first;
    }
    FlowCount& f = dir == Dir::kRx ? it->second.rx : it->second.tx;
    f.frames += c.frames;
    f.bytes += c.bytes;
    if (dir == Dir::kRx) it->second.last_rx_ms = now_ms;
  }
  for (int i = 0; i < t->nv_; i++) {
    const auto& [vni, c] = t->vnis_[i];
    VniRow& row = vnis_[vni];
    row.vni = vni;
    FlowCount& f = dir == Dir::kRx ? row.rx : row.tx;
    f.frames += c.frames;
    f.bytes += c.bytes;
  }
  t->Clear();
}

void TrafficStats::Rejected(const Addr& from, uint32_t vni, int64_t now_ms) {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& r : rejected_) {
    if (r.addr == from && r.vni == vni) {
      r.count++;
      r.last_ms = now_ms;
      return;
    }
  }
  if (rejected_.size() == kMaxRejected) {  // the least recently seen makes room
    rejected_.erase(std::min_element(rejected_.begin(), rejected_.end(),
                                     [](const RejectRow& a, const RejectRow& b) { return a.last_ms < b.last_ms; }));
  }
  rejected_.push_back(RejectRow{from, vni, 1, now_ms});
}

void TrafficStats::Retain(const Table& t) {
  std::unordered_set<Addr, AddrHash> keep;
  for (const auto& p : t.peers) keep.insert(p.addr);
  std::lock_guard<std::mutex> lock(mu_);
  for (auto it = peers_.begin(); it != peers_.end();) it = keep.count(it->first) ? std::next(it) : peers_.erase(it);
}

std::vector<PeerRow> TrafficStats::Peers() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<PeerRow> out;
  out.reserve(peers_.size());
  for (const auto& [addr, row] : peers_) out.push_back(row);
  return out;
}

std::vector<VniRow> TrafficStats::Vnis() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<VniRow> out;
  for (const auto& [vni, row] : vnis_) out.push_back(row);
  return out;
}

std::vector<RejectRow> TrafficStats::RejectedSources() const {
  std::lock_guard<std::mutex> lock(mu_);
  return rejected_;
}

}  // namespace vxr
