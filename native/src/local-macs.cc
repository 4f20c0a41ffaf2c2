// This host's own MACs, bounded per VNI and aged (rules in local-macs.h).
#include "local-macs.h"

namespace vxr {

void LocalMacTable::Sweep(Vni& v, int64_t now_ms) {
  v.swept_ms = now_ms;
  for (auto it = v.macs.begin(); it != v.macs.end();) {
    if (now_ms - it->second.seen_ms >= aging_ms_)
      it = v.macs.erase(it);
    else
      ++it;
  }
}

int LocalMacTable::SeenBatch(uint32_t vni, const Sighting* s, int n, int64_t now_ms) {
  std::lock_guard<std::mutex> lock(mu_);
  Vni& v = vnis_[vni];  // one per VNI the engine serves: bounded by its networks
  if (now_ms - v.swept_ms >= kSweepMs) Sweep(v, now_ms);
  int refused = 0;
  for (int i = 0; i < n; i++) {
    auto it = v.macs.find(s[i].mac);
    if (it == v.macs.end()) {
      if (v.macs.size() >= max_per_vni_) {
        refused++;
        continue;
      }
      it = v.macs.try_emplace(s[i].mac).first;
    }
    Entry& e = it->second;
    e.seen_ms = now_ms;
    if (s[i].ip.len == 0 || (!e.ips.empty() && e.ips.front() == s[i].ip)) continue;
    for (auto ip = e.ips.begin(); ip != e.ips.end(); ++ip) {
      if (*ip == s[i].ip) {
        e.ips.erase(ip);
        break;
      }
    }
    e.ips.insert(e.ips.begin(), s[i].ip);
    if (e.ips.size() > kMaxIps) e.ips.pop_back();
  }
  return refused;
}

std::vector<LocalMacRow> LocalMacTable::Dump(int64_t now_ms) {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<LocalMacRow> rows;
  for (auto& [vni, v] : vnis_) {
    Sweep(v, now_ms);
    for (const auto& [mac, e] : v.macs) rows.push_back(LocalMacRow{vni, mac, now_ms - e.seen_ms, e.ips});
  }
  return rows;
}

}  // namespace vxr
