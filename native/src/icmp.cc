// Too-big answers (see icmp.h). Every offset is checked against the length passed in.
#include "icmp.h"

#include <string.h>

#include <algorithm>

#include "wire.h"

namespace vxr {

namespace {

constexpr size_t kIp = 14;  // untagged Ethernet
constexpr uint8_t kProtoIcmp = 1, kProtoIcmpv6 = 58;

uint16_t Be16(const uint8_t* p) { return static_cast<uint16_t>((p[0] << 8) | p[1]); }
void Put16(uint8_t* p, uint32_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}

bool IsZero(const uint8_t* a, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (a[i] != 0) return false;
  return true;
}

// Swapped Ethernet addresses: to the sender, from the MAC it sent to.
void WriteEth(const uint8_t* f, uint16_t type, uint8_t* out) {
  memcpy(out, f + 6, 6);
  memcpy(out + 6, f, 6);
  Put16(out + 12, type);
}

size_t TooBig4(const uint8_t* f, size_t len, uint32_t mtu, uint8_t* out) {
  if (len < kIp + 20) return 0;
  const uint8_t* ip = f + kIp;
  const size_t ihl = (ip[0] & 0xf) * 4u;
  const size_t total = Be16(ip + 2);
  if ((ip[0] >> 4) != 4 || ihl < 20 || total < ihl || kIp + ihl > len) return 0;
  const uint16_t frag = Be16(ip + 6);
  if ((frag & 0x4000) == 0 || (frag & 0x1fff) != 0) return 0;  // no DF: dropped unanswered; later fragments: never
  const uint8_t* src = ip + 12;
  const uint8_t* dst = ip + 16;
  if (IsZero(src, 4) || src[0] == 127 || src[0] >= 224 || dst[0] >= 224) return 0;
  if (ip[9] == kProtoIcmp) {  // never an error about an error (RFC 1122 §3.2.2)
    if (kIp + ihl >= len) return 0;
    const uint8_t type = f[kIp + ihl];
    if (type == 3 || type == 4 || type == 5 || type == 11 || type == 12) return 0;
  }
  const size_t quote = std::min({total, len - kIp, kTooBigQuote4});
  WriteEth(f, 0x0800, out);
  uint8_t* o = out + kIp;
  memset(o, 0, 28);
  o[0] = 0x45;
  Put16(o + 2, 28 + quote);
  o[8] = 64;  // TTL
  o[9] = kProtoIcmp;
  memcpy(o + 12, dst, 4);  // from the address the packet was for (no router address on the overlay: see icmp.h)
  memcpy(o + 16, src, 4);
  Put16(o + 10, FoldChecksum(Sum16(o, 20)));
  uint8_t* icmp = o + 20;
  icmp[0] = 3;  // Destination Unreachable
  icmp[1] = 4;  // Fragmentation Needed and DF set
  Put16(icmp + 6, std::min<uint32_t>(mtu, 0xffff));
  memcpy(icmp + 8, ip, quote);
  Put16(icmp + 2, FoldChecksum(Sum16(icmp, 8 + quote)));
  return kIp + 28 + quote;
}

size_t TooBig6(const uint8_t* f, size_t len, uint32_t mtu, uint8_t* out) {
  if (len < kIp + 40) return 0;
  const uint8_t* ip = f + kIp;
  if ((ip[0] >> 4) != 6) return 0;
  const uint8_t* src = ip + 8;
  const uint8_t* dst = ip + 24;
  const bool loopback = IsZero(src, 15) && src[15] == 1;
  if (IsZero(src, 16) || loopback || src[0] == 0xff || dst[0] == 0xff) return 0;
  if (ip[6] == kProtoIcmpv6) {  // never an error about an error (RFC 4443 §2.4 e)
    if (kIp + 40 >= len || f[kIp + 40] < 128) return 0;
  }
  const size_t quote = std::min({size_t{40} + Be16(ip + 4), len - kIp, kTooBigQuote6});
  WriteEth(f, 0x86dd, out);
  uint8_t* o = out + kIp;
  memset(o, 0, 48);
  o[0] = 0x60;
  Put16(o + 4, 8 + quote);
  o[6] = kProtoIcmpv6;
  o[7] = 64;  // hop limit
  memcpy(o + 8, dst, 16);
  memcpy(o + 24, src, 16);
  uint8_t* icmp = o + 40;
  icmp[0] = 2;  // Packet Too Big
  icmp[4] = static_cast<uint8_t>(mtu >> 24);
  icmp[5] = static_cast<uint8_t>(mtu >> 16);
  icmp[6] = static_cast<uint8_t>(mtu >> 8);
  icmp[7] = static_cast<uint8_t>(mtu);
  memcpy(icmp + 8, ip, quote);
  const size_t plen = 8 + quote;
  Put16(icmp + 2, FoldChecksum(Sum16(icmp, plen, Sum16(o + 8, 32, plen + kProtoIcmpv6))));
  return kIp + 40 + plen;
}

}  // namespace

size_t WriteTooBig(const uint8_t* f, size_t len, uint32_t mtu, uint8_t* out) {
  if (len < kIp || (f[0] & 1) != 0) return 0;  // multicast / broadcast frames are not answered
  const uint16_t type = Be16(f + 12);
  if (type == 0x0800) return TooBig4(f, len, mtu, out);
  if (type == 0x86dd) return TooBig6(f, len, mtu, out);
  return 0;
}

bool TooBigLimiter::Take(int64_t now_ms) {
  const uint64_t cap = uint64_t{burst_} * 1000;
  if (last_ms_ >= 0 && now_ms > last_ms_) tokens_milli_ = std::min(cap, tokens_milli_ + static_cast<uint64_t>(now_ms - last_ms_) * rate_);
  if (now_ms > last_ms_) last_ms_ = now_ms;
  if (tokens_milli_ < 1000) return false;
  tokens_milli_ -= 1000;
  return true;
}

}  // namespace vxr
