// TCP MSS clamping; see mss.h. Every read is checked against `len` and the IP / TCP lengths first.
#include "mss.h"

namespace vxr {
namespace {

constexpr uint16_t kTpidVlan = 0x8100, kTpidQinq = 0x88a8, kTypeIpv4 = 0x0800, kTypeIpv6 = 0x86dd;
constexpr int kMaxVlanTags = 2;  // as FlowHash and MAX_VLAN_TAGS in src/packet/ethernet.ts
constexpr uint8_t kProtoTcp = 6, kTcpSyn = 0x02, kOptEol = 0, kOptNop = 1, kOptMss = 2;

uint16_t Be16(const uint8_t* p) { return static_cast<uint16_t>((p[0] << 8) | p[1]); }
uint16_t Swap16(uint16_t v) { return static_cast<uint16_t>((v << 8) | (v >> 8)); }

}  // namespace

MssResult ClampMss(uint8_t* f, size_t len, const MssClamp& clamp) {
  if (len < 14) return MssResult::kNone;
  size_t type_at = 12;
  for (int tags = 0;; tags++) {
    const uint16_t t = Be16(f + type_at);
    if (t != kTpidVlan && t != kTpidQinq) break;
    if (tags == kMaxVlanTags || type_at + 6 > len) return MssResult::kNone;
    type_at += 4;
  }
  const uint16_t type = Be16(f + type_at);
  const size_t l3 = type_at + 2;
  size_t l4, end;
  uint16_t mss;
  if (type == kTypeIpv4) {
    if (clamp.ipv4 == 0 || l3 + 20 > len || (f[l3] >> 4) != 4) return MssResult::kNone;
    const size_t ihl = (f[l3] & 0xf) * 4u;
    const size_t total = Be16(f + l3 + 2);
    if (ihl < 20 || total < ihl || l3 + total > len || f[l3 + 9] != kProtoTcp) return MssResult::kNone;
    if ((Be16(f + l3 + 6) & 0x3fff) != 0) return MssResult::kNone;  // a fragment (MF or offset)
    l4 = l3 + ihl;
    end = l3 + total;
    mss = clamp.ipv4;
  } else if (type == kTypeIpv6) {
    if (clamp.ipv6 == 0 || l3 + 40 > len || (f[l3] >> 4) != 6 || f[l3 + 6] != kProtoTcp) return MssResult::kNone;
    l4 = l3 + 40;
    end = l4 + Be16(f + l3 + 4);
    if (end > len) return MssResult::kNone;
    mss = clamp.ipv6;
  } else {
    return MssResult::kNone;
  }
  if (l4 + 20 > end || (f[l4 + 13] & kTcpSyn) == 0) return MssResult::kNone;
  const size_t hdr_end = l4 + (f[l4 + 12] >> 4) * 4u;
  if (hdr_end < l4 + 20 || hdr_end > end) return MssResult::kMalformed;
  for (size_t i = l4 + 20; i < hdr_end;) {
    const uint8_t kind = f[i];
    if (kind == kOptEol) break;
    if (kind == kOptNop) {
      i++;
      continue;
    }
    if (i + 1 >= hdr_end) return MssResult::kMalformed;
    const size_t opt_len = f[i + 1];
    if (opt_len < 2 || i + opt_len > hdr_end) return MssResult::kMalformed;
    if (kind == kOptMss) {
      if (opt_len != 4) return MssResult::kMalformed;
      const uint16_t old = Be16(f + i + 2);
      if (old <= mss) return MssResult::kNone;
      f[i + 2] = static_cast<uint8_t>(mss >> 8);
      f[i + 3] = static_cast<uint8_t>(mss);
      // RFC 1624: HC' = ~(~HC + ~m + m'); a field at an odd offset counts byte-swapped (RFC 1071 §2(B)).
      const bool odd = ((i + 2 - l4) & 1) != 0;
      const uint16_t m = odd ? Swap16(old) : old, m2 = odd ? Swap16(mss) : mss;
      uint32_t s = static_cast<uint16_t>(~Be16(f + l4 + 16)) + static_cast<uint16_t>(~m) + uint32_t{m2};
      while (s > 0xffff) s = (s & 0xffff) + (s >> 16);
      const uint16_t sum = static_cast<uint16_t>(~s);
      f[l4 + 16] = static_cast<uint8_t>(sum >> 8);
      f[l4 + 17] = static_cast<uint8_t>(sum);
      return MssResult::kClamped;
    }
    i += opt_len;
  }
  return MssResult::kNone;
}

}  // namespace vxr
