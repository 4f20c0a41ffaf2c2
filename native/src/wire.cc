// Pure wire-format code: any thread, no shared state, no allocation; buffers belong to the caller (see wire.h).
#include "wire.h"

#include <arpa/inet.h>
#include <string.h>

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "Sum16 and the virtio header assume a little-endian host");

namespace vxr {

bool Addr::operator==(const Addr& o) const { return len == o.len && memcmp(bytes, o.bytes, len) == 0; }

size_t AddrHash::operator()(const Addr& a) const {
  uint64_t h = 0xcbf29ce484222325ull;
  for (int i = 0; i < a.len; i++) h = (h ^ a.bytes[i]) * 0x100000001b3ull;
  return static_cast<size_t>(h);
}

bool ParseAddr(const char* text, Addr* out) {
  *out = Addr{};
  if (inet_pton(AF_INET, text, out->bytes) == 1) {
    out->len = 4;
    return true;
  }
  if (inet_pton(AF_INET6, text, out->bytes) == 1) {
    out->len = 16;
    return true;
  }
  return false;
}

bool AddrFromSockaddr(const sockaddr_storage& ss, Addr* out) {
  *out = Addr{};
  if (ss.ss_family == AF_INET) {
    memcpy(out->bytes, &reinterpret_cast<const sockaddr_in&>(ss).sin_addr, 4);
    out->len = 4;
    return true;
  }
  if (ss.ss_family == AF_INET6) {
    memcpy(out->bytes, &reinterpret_cast<const sockaddr_in6&>(ss).sin6_addr, 16);
    out->len = 16;
    return true;
  }
  return false;
}

void AddrToText(const Addr& a, char* out, size_t cap) {
  if (inet_ntop(a.len == 4 ? AF_INET : AF_INET6, a.bytes, out, cap) == nullptr && cap > 0) out[0] = '\0';
}

socklen_t ToSockaddr(const Addr& a, uint16_t port, sockaddr_storage* out) {
  memset(out, 0, sizeof(*out));
  if (a.len == 4) {
    auto* sin = reinterpret_cast<sockaddr_in*>(out);
    sin->sin_family = AF_INET;
    sin->sin_port = htons(port);
    memcpy(&sin->sin_addr, a.bytes, 4);
    return sizeof(sockaddr_in);
  }
  auto* sin6 = reinterpret_cast<sockaddr_in6*>(out);
  sin6->sin6_family = AF_INET6;
  sin6->sin6_port = htons(port);
  memcpy(&sin6->sin6_addr, a.bytes, 16);
  return sizeof(sockaddr_in6);
}

uint64_t Sum16(const uint8_t* p, size_t n, uint64_t initial) {
  // Sums 32-bit little-endian loads (the one's complement sum does not care about word order or byte order, as long
  // as the result is folded and swapped back): 8 bytes per add instead of 2. The result is folded to 16 bits.
  uint64_t s = 0;
  for (; n >= 16; n -= 16, p += 16) {
    uint32_t w[4];
    memcpy(w, p, 16);
    s += static_cast<uint64_t>(w[0]) + w[1] + w[2] + w[3];
  }
  for (; n >= 4; n -= 4, p += 4) {
    uint32_t w;
    memcpy(&w, p, 4);
    s += w;
  }
  if (n >= 2) {
    uint16_t w;
    memcpy(&w, p, 2);
    s += w;
    p += 2;
    n -= 2;
  }
  if (n == 1) s += p[0];  // the odd byte is the high byte of a big-endian word padded with zero
  while (s >> 16) s = (s & 0xffff) + (s >> 16);
  return initial + static_cast<uint16_t>((s >> 8) | ((s & 0xff) << 8));
}

uint16_t FoldChecksum(uint64_t sum) {
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum & 0xffff);
}

namespace {

constexpr uint32_t kFnvOffset = 0x811c9dc5u;
constexpr uint32_t kFnvPrime = 0x01000193u;
constexpr uint16_t kTpidVlan = 0x8100, kTpidQinq = 0x88a8, kTypeIpv4 = 0x0800, kTypeIpv6 = 0x86dd;

uint32_t Fnv(uint32_t h, const uint8_t* p, size_t from, size_t to) {
  for (size_t i = from; i < to; i++) h = (h ^ p[i]) * kFnvPrime;
  return h;
}

uint16_t Be16(const uint8_t* p) { return static_cast<uint16_t>((p[0] << 8) | p[1]); }

uint32_t MacKeyHash(const uint8_t* f, size_t type_at) { return Fnv(Fnv(kFnvOffset, f, 0, 12), f, type_at, type_at + 2); }

uint32_t FlowHash(const uint8_t* f, size_t len) {
  if (len < kEthHeaderLen) return kFnvOffset;
  size_t type_at = 12;
  for (int tags = 0; tags < 2; tags++) {
    const uint16_t t = Be16(f + type_at);
    if (t != kTpidVlan && t != kTpidQinq) break;
    if (type_at + 6 > len) return MacKeyHash(f, type_at);
    type_at += 4;
  }
  const uint16_t type = Be16(f + type_at);
  const size_t l3 = type_at + 2;
  if (type == kTypeIpv4 && l3 + 20 <= len && (f[l3] >> 4) == 4) {
    const size_t ihl = (f[l3] & 0xf) * 4u;
    if (ihl >= 20 && l3 + ihl <= len) {
      uint32_t h = Fnv(kFnvOffset, f, l3 + 12, l3 + 20);
      h = Fnv(h, f, l3 + 9, l3 + 10);
      const uint8_t proto = f[l3 + 9];
      const bool fragment = (Be16(f + l3 + 6) & 0x3fff) != 0;
      if ((proto == 6 || proto == 17) && !fragment && l3 + ihl + 4 <= len) h = Fnv(h, f, l3 + ihl, l3 + ihl + 4);
      return h;
    }
  } else if (type == kTypeIpv6 && l3 + 40 <= len) {
    uint32_t h = Fnv(kFnvOffset, f, l3 + 8, l3 + 40);
    h = Fnv(h, f, l3 + 6, l3 + 7);
    const uint8_t next = f[l3 + 6];
    if ((next == 6 || next == 17) && l3 + 44 <= len) h = Fnv(h, f, l3 + 40, l3 + 44);
    return h;
  }
  return MacKeyHash(f, type_at);
}

}  // namespace

uint16_t FlowPort(const uint8_t* frame, size_t len) {
  const uint32_t h = FlowHash(frame, len);
  return static_cast<uint16_t>(49152 + ((h ^ (h >> 16)) & 0x3fff));
}

void WriteEncapHeader(uint8_t hdr[kEncapHeaderLen], uint32_t vni, uint16_t src_port, uint16_t dst_port,
                      const Addr& src, const Addr& dst, size_t frame_len, uint64_t frame_sum) {
  const uint32_t udp_len = static_cast<uint32_t>(kEncapHeaderLen + frame_len);
  hdr[0] = src_port >> 8;
  hdr[1] = src_port & 0xff;
  hdr[2] = dst_port >> 8;
  hdr[3] = dst_port & 0xff;
  hdr[4] = (udp_len >> 8) & 0xff;
  hdr[5] = udp_len & 0xff;
  hdr[6] = hdr[7] = 0;
  hdr[8] = kVxlanFlagI;
  hdr[9] = hdr[10] = hdr[11] = 0;
  hdr[12] = (vni >> 16) & 0xff;
  hdr[13] = (vni >> 8) & 0xff;
  hdr[14] = vni & 0xff;
  hdr[15] = 0;
  // Pseudo-header (src, dst, protocol 17, UDP length) + header + frame.
  uint64_t sum = Sum16(src.bytes, src.len, frame_sum);
  sum = Sum16(dst.bytes, dst.len, sum);
  sum += 17 + (udp_len >> 16) + (udp_len & 0xffff);
  sum = Sum16(hdr, kEncapHeaderLen, sum);
  uint16_t csum = FoldChecksum(sum);
  if (csum == 0) csum = 0xffff;  // 0 would mean "no checksum"
  hdr[6] = csum >> 8;
  hdr[7] = csum & 0xff;
}

}  // namespace vxr
