// Neighbor Discovery for the engine (see nd.h). Every offset is checked against the length passed in.
#include "nd.h"

#include <string.h>

#include "arp.h"
#include "wire.h"

namespace vxr {

namespace {

constexpr uint16_t kTypeIpv6 = 0x86dd;
constexpr uint8_t kIcmpv6 = 58, kNs = 135, kNa = 136;
constexpr size_t kIp = 14, kIcmp = kIp + 40;  // offsets of the IPv6 header and of what follows it
constexpr size_t kNdLen = 24;                  // ICMPv6 header, flags/reserved, target

uint16_t Be16(const uint8_t* p) { return static_cast<uint16_t>((p[0] << 8) | p[1]); }

bool IsZero(const uint8_t* a, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (a[i] != 0) return false;
  return true;
}

// An untagged IPv6 packet whose payload (payload length) lies within the frame.
bool IsIpv6(const uint8_t* f, size_t len) {
  return len >= kIcmp && Be16(f + 12) == kTypeIpv6 && (f[kIp] >> 4) == 6 && kIcmp + Be16(f + kIp + 4) <= len;
}

// ICMPv6 ND message of `type` (RFC 4861 §7.1: hop limit 255, code 0, at least 24 bytes) right after the IPv6 header.
bool IsNd(const uint8_t* f, size_t len, uint8_t type) {
  return IsIpv6(f, len) && f[kIp + 6] == kIcmpv6 && f[kIp + 7] == 255 && Be16(f + kIp + 4) >= kNdLen &&
         f[kIcmp] == type && f[kIcmp + 1] == 0;
}

}  // namespace

bool SenderIpv6(const uint8_t* f, size_t len, uint8_t ip[16]) {
  if (!IsIpv6(f, len)) return false;
  memcpy(ip, IsNd(f, len, kNa) ? f + kIcmp + 8 : f + kIp + 8, 16);
  const bool loopback = IsZero(ip, 15) && ip[15] == 1;
  return ip[0] != 0xff && !IsZero(ip, 16) && !loopback;
}

bool NdSolicitTarget(const uint8_t* f, size_t len, uint8_t target[16]) {
  if (!IsNd(f, len, kNs)) return false;
  const uint8_t* src = f + kIp + 8;
  const uint8_t* dst = f + kIp + 24;
  const uint8_t* t = f + kIcmp + 8;
  if (IsZero(src, 16) || t[0] == 0xff) return false;  // DAD probe; a multicast target is invalid
  static const uint8_t kSolicited[13] = {0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff};
  if (memcmp(dst, kSolicited, 13) != 0 || memcmp(dst + 13, t + 13, 3) != 0) return false;
  const size_t plen = Be16(f + kIp + 4);
  for (size_t o = kNdLen; o < plen;) {  // options: type, length in 8-byte units (never 0), within the payload
    if (o + 2 > plen || f[kIcmp + o + 1] == 0 || o + f[kIcmp + o + 1] * 8u > plen) return false;
    o += f[kIcmp + o + 1] * 8u;
  }
  const uint64_t pseudo = Sum16(src, 32, plen + kIcmpv6);
  if (FoldChecksum(Sum16(f + kIcmp, plen, pseudo)) != 0) return false;
  memcpy(target, t, 16);
  return true;
}

void WriteNdAdvert(const uint8_t* ns, uint64_t mac, uint8_t out[kNaFrameLen]) {
  uint8_t m[6];
  StartAnswer(ns, mac, out, kNaFrameLen, m);  // to the solicitor, from the MAC that has the address
  out[12] = 0x86;
  out[13] = 0xdd;
  uint8_t* ip = out + kIp;
  ip[0] = 0x60;
  ip[5] = 32;  // payload length
  ip[6] = kIcmpv6;
  ip[7] = 255;                        // hop limit: ND is accepted only if no router forwarded it
  memcpy(ip + 8, ns + kIcmp + 8, 16);  // source: the target address itself, as its owner would send it
  memcpy(ip + 24, ns + kIp + 8, 16);   // destination: the solicitor
  uint8_t* icmp = out + kIcmp;
  icmp[0] = kNa;
  icmp[4] = 0x60;  // Solicited + Override (Router clear: the table does not know which remotes route)
  memcpy(icmp + 8, ns + kIcmp + 8, 16);  // target
  icmp[24] = 2;                          // option: Target Link-Layer Address, 1 × 8 bytes
  icmp[25] = 1;
  memcpy(icmp + 26, m, 6);
  const uint16_t sum = FoldChecksum(Sum16(icmp, 32, Sum16(ip + 8, 32, 32 + kIcmpv6)));
  icmp[2] = static_cast<uint8_t>(sum >> 8);
  icmp[3] = static_cast<uint8_t>(sum);
}

}  // namespace vxr
