// TCP MSS clamping (`--clamp-mss`): a SYN or SYN-ACK crossing the overlay (both directions: TX thread before
// encapsulation, RX thread before the TAP write) whose MSS option is above the clamp gets the clamp, and its TCP
// checksum is updated incrementally (RFC 1624, eqn. 3). Pure, in place, bounds-checked, no allocation.
// Twin: clampMss in src/packet/tcp-mss.ts, pinned by test/native/mss.test.ts (rules written there).
#pragma once
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

enum class MssResult : uint8_t { kNone, kClamped, kMalformed };

MssResult ClampMss(uint8_t* f, size_t len, const MssClamp& clamp);

// The counters a clamping verdict adds to (tcp_mss_clamped, tcp_mss_bad_options).
inline void CountClamp(MssResult r, Counters& c) {
  if (r == MssResult::kClamped) c.add(Traffic::kTcpMssClamped);
  else if (r == MssResult::kMalformed) c.add(Traffic::kTcpMssBadOptions);
}

}  // namespace vxr
