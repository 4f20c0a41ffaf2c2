// "Too big" answers for frames from the bridge that do not fit the path to their VTEP (no MTU black holes): ICMP
// Destination Unreachable / Fragmentation Needed (RFC 792, RFC 1191) for IPv4 with DF, ICMPv6 Packet Too Big
// (RFC 4443, RFC 8201) for IPv6, written back to the sender on the bridge so that its path MTU discovery lowers the
// size. Pure functions, bounds-checked, no allocation. Twin: tooBigReply in src/packet/icmp.ts, pinned byte for byte
// by test/native/icmp.test.ts.
//
// Source address: the overlay has no router address of ours, so the answer comes from the offending packet's
// destination address (and its destination MAC): what the kernel's VXLAN device does on bridged set-ups
// (skb_tunnel_check_pmtu, Linux 5.9+). Path MTU caches are keyed by destination, so that is also what the sender's
// stack needs to see.
#pragma once
#include <cstddef>
#include <cstdint>

namespace vxr {

// What an answer quotes of the offending packet: RFC 1812 §4.3.2.3 (an IPv4 error fits 576 bytes) and RFC 4443 §2.4
// (an ICMPv6 error fits the minimum MTU, 1280).
inline constexpr size_t kTooBigQuote4 = 576 - 20 - 8;
inline constexpr size_t kTooBigQuote6 = 1280 - 40 - 8;
inline constexpr size_t kMaxTooBigFrame = 14 + 40 + 8 + kTooBigQuote6;

// The answer to `f` (a frame from the bridge, `len` bytes) saying the path carries packets of `mtu` bytes, written
// into `out` (room for kMaxTooBigFrame); returns its length, or 0 when `f` gets no answer: not untagged unicast
// Ethernet carrying IPv4 with DF (first fragment only) or IPv6; an ICMP / ICMPv6 error itself; a source that names no
// host (0.0.0.0, 127/8, multicast, broadcast; ::, ::1, multicast) or a multicast / broadcast destination (which could
// not be the answer's source); a header that does not fit the frame.
size_t WriteTooBig(const uint8_t* f, size_t len, uint32_t mtu, uint8_t* out);

// At most `rate` answers a second, `burst` at once (a token bucket). One per TX thread (per TAP); NowMs clock.
class TooBigLimiter {
 public:
  TooBigLimiter(uint32_t rate, uint32_t burst) : rate_(rate), burst_(burst), tokens_milli_(uint64_t{burst} * 1000) {}
  // True when an answer may be sent at `now_ms` (takes a token).
  bool Take(int64_t now_ms);

 private:
  const uint32_t rate_, burst_;
  uint64_t tokens_milli_;  // thousandths of a token, so that refills at any rate stay exact
  int64_t last_ms_ = -1;
};

// The engine's limits (twin: TOO_BIG_RATE / TOO_BIG_BURST in src/packet/icmp.ts): as Linux's icmp_msgs_per_sec and
// icmp_msgs_burst defaults.
inline constexpr uint32_t kTooBigRate = 1000;
inline constexpr uint32_t kTooBigBurst = 50;

}  // namespace vxr
