// TCP MSS clamping (`--clamp-mss`): a SYN or SYN-ACK crossing the overlay (both directions: TX thread before
// encapsulation, RX thread before the TAP write) whose MSS option is above the clamp gets the clamp, and its TCP
// checksum is updated incrementally (RFC 1624, eqn. 3). Pure, in place, bounds-checked, no allocation.
// Twin: clampMss in src/packet/tcp-mss.ts, pinned by test/native/mss.test.ts (rules written there).
#pragma once
#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "counters.h"

namespace vxr {

// MSS per inner family; 0 = not clamped.
struct MssClamp {
  uint16_t ipv4 = 0;
  uint16_t ipv6 = 0;
  bool on() const { return ipv4 != 0 || ipv6 != 0; }
};

// The smallest MSS clamped to (config clampMss's lower bound; 0 would mean off).
constexpr size_t kMinClampMss = 88;

// The clamp toward one peer whose path carries inner IP packets of at most `ip_mtu` bytes (its measured path MTU less
// the encapsulation): each family's MSS no higher than what fits (− 40 IPv4, − 60 IPv6) and never above `c`; a family
// at 0 stays off. Twin: clampForPath in src/packet/tcp-mss.ts (pinned by test/native/mss.test.ts).
inline MssClamp ClampForPath(const MssClamp& c, size_t ip_mtu) {
  auto fit = [&](uint16_t mss, size_t overhead) -> uint16_t {
    if (mss == 0) return 0;
    const size_t path = std::max(kMinClampMss, ip_mtu > overhead ? ip_mtu - overhead : 0);
    return static_cast<uint16_t>(std::min<size_t>(mss, path));
  };
  return MssClamp{fit(c.ipv4, 40), fit(c.ipv6, 60)};
}

enum class MssResult : uint8_t { kNone, kClamped, kMalformed };

MssResult ClampMss(uint8_t* f, size_t len, const MssClamp& clamp);

// The counters a clamping verdict adds to (tcp_mss_clamped, tcp_mss_bad_options).
inline void CountClamp(MssResult r, Counters& c) {
  if (r == MssResult::kClamped) c.add(Traffic::kTcpMssClamped);
  else if (r == MssResult::kMalformed) c.add(Traffic::kTcpMssBadOptions);
}

}  // namespace vxr
