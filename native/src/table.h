// The forwarding table snapshot the engine threads read: per VNI, the peers (flood list and source allow-list) and
// the static MAC entries. Immutable once built; JS builds a new one for every change and the engine swaps the
// shared_ptr atomically, so a batch sees the old table or the new one, never a mix.
#pragma once
#include <sys/socket.h>

#include <cstdint>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "wire.h"

namespace vxr {

struct Peer {
  Addr addr;
  sockaddr_storage sa{};  // where the raw socket sends (port 0)
  socklen_t salen = 0;
};

struct VniTable {
  std::vector<int> flood;                      // indices into Table::peers
  std::unordered_set<Addr, AddrHash> sources;  // who may send us this VNI
  std::unordered_map<uint64_t, int> macs;      // static (MAC → peer index)
  std::unordered_map<uint32_t, uint64_t> arp;  // IPv4 (host order) → MAC of remote containers: ARP suppression
  std::unordered_map<Addr, uint64_t, AddrHash> nd;  // IPv6 → MAC of remote containers: ND suppression
};

struct Table {
  std::vector<Peer> peers;
  std::unordered_map<uint32_t, VniTable> vnis;
  // Every peer of any VNI (probes are answered for these only), and the path MTUs measured by probing (outer IP
  // packet bytes) of peers whose path is smaller than the underlay's; absent: the underlay MTU.
  std::unordered_set<Addr, AddrHash> any_peer;
  std::unordered_map<Addr, int, AddrHash> path_mtus;

  // 0 = VNI not served, 1 = served but `from` is not a peer of it, 2 = peer (Classify's contract).
  int PeerState(uint32_t vni, const Addr& from) const {
    auto it = vnis.find(vni);
    if (it == vnis.end()) return 0;
    return it->second.sources.count(from) ? 2 : 1;
  }

  int AddPeer(const Addr& a);  // index of `a`, added if new
};

// A MAC's 48 bits (network order) as an integer key.
inline uint64_t MacKey(const uint8_t* m) {
  return (static_cast<uint64_t>(m[0]) << 40) | (static_cast<uint64_t>(m[1]) << 32) |
         (static_cast<uint64_t>(m[2]) << 24) | (static_cast<uint64_t>(m[3]) << 16) |
         (static_cast<uint64_t>(m[4]) << 8) | m[5];
}
bool ParseMac(const char* text, uint64_t* key);
void MacToText(uint64_t key, char out[18]);

}  // namespace vxr
