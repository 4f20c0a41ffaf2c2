// TAP offloads as pure functions (see offload.h). Buffers belong to the caller; nothing here allocates or throws.
#include "offload.h"

#include <string.h>

#include "wire.h"

namespace vxr {

namespace {

constexpr uint16_t kTpidVlan = 0x8100, kTpidQinq = 0x88a8, kTypeIpv4 = 0x0800, kTypeIpv6 = 0x86dd;
constexpr uint8_t kProtoTcp = 6;
constexpr uint8_t kTcpFin = 0x01, kTcpPsh = 0x08, kTcpAck = 0x10, kTcpCwr = 0x80;
constexpr size_t kMaxIpLength = 65535;

uint16_t Be16(const uint8_t* p) { return static_cast<uint16_t>((p[0] << 8) | p[1]); }
uint32_t Be32(const uint8_t* p) {
  return (static_cast<uint32_t>(p[0]) << 24) | (static_cast<uint32_t>(p[1]) << 16) | (p[2] << 8) | p[3];
}
void PutBe16(uint8_t* p, uint32_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}
void PutBe32(uint8_t* p, uint32_t v) {
  PutBe16(p, v >> 16);
  PutBe16(p + 2, v & 0xffff);
}

// The IP header's offset and EtherType after up to two VLAN tags.
bool FindL3(const uint8_t* f, size_t len, size_t* l3, uint16_t* type) {
  if (len < kEthHeaderLen) return false;
  size_t at = 12;
  for (int tags = 0; tags < 2; tags++) {
    const uint16_t t = Be16(f + at);
    if (t != kTpidVlan && t != kTpidQinq) break;
    if (at + 6 > len) return false;
    at += 4;
  }
  *type = Be16(f + at);
  *l3 = at + 2;
  return true;
}

// IP and TCP header positions of a TCP packet (no IPv4 fragment, no IPv6 extension header), and the IP datagram's
// end: from the IP length (frames may carry Ethernet padding after it), or the frame's end for a super-frame, whose
// IP length is not meaningful.
struct TcpHeaders {
  bool v4 = false;
  size_t l3 = 0, l4 = 0, hdr_len = 0, ip_end = 0;
};

bool FindTcp(const uint8_t* f, size_t len, bool super_frame, TcpHeaders* out) {
  uint16_t type = 0;
  size_t l3 = 0;
  if (!FindL3(f, len, &l3, &type)) return false;
  if (type == kTypeIpv4) {
    if (l3 + 20 > len || (f[l3] >> 4) != 4) return false;
    const size_t ihl = (f[l3] & 0xf) * 4u;
    const size_t total = super_frame ? len - l3 : Be16(f + l3 + 2);
    if (ihl < 20 || total < ihl || l3 + total > len || f[l3 + 9] != kProtoTcp) return false;
    if ((Be16(f + l3 + 6) & 0x3fff) != 0) return false;  // a fragment
    *out = TcpHeaders{true, l3, l3 + ihl, 0, l3 + total};
  } else if (type == kTypeIpv6) {
    if (l3 + 40 > len || (f[l3] >> 4) != 6 || f[l3 + 6] != kProtoTcp) return false;
    const size_t end = super_frame ? len : l3 + 40 + Be16(f + l3 + 4);
    if (end > len) return false;
    *out = TcpHeaders{false, l3, l3 + 40, 0, end};
  } else {
    return false;
  }
  if (out->l4 + 20 > out->ip_end) return false;
  const size_t thl = (f[out->l4 + 12] >> 4) * 4u;
  if (thl < 20 || out->l4 + thl > out->ip_end || out->l4 + thl > kMaxSegHeader) return false;
  out->hdr_len = out->l4 + thl;
  return true;
}

// Sum of the pseudo-header (addresses, protocol, TCP length) for a TCP packet whose IP header is at `ip`.
uint64_t PseudoSum(const uint8_t* ip, bool v4, size_t tcp_len) {
  const uint64_t sum = v4 ? Sum16(ip + 12, 8) : Sum16(ip + 8, 32);
  return sum + kProtoTcp + (tcp_len >> 16) + (tcp_len & 0xffff);
}

void SetIpv4Checksum(uint8_t* ip) {
  ip[10] = ip[11] = 0;
  PutBe16(ip + 10, FoldChecksum(Sum16(ip, (ip[0] & 0xf) * 4u)));
}

// Sets the IP length fields for `l4_len` bytes of TCP (header + payload) after the IP header at `l3`.
void SetIpLength(uint8_t* f, bool v4, size_t l3, size_t l4, size_t l4_len) {
  if (v4) {
    PutBe16(f + l3 + 2, static_cast<uint32_t>(l4 - l3 + l4_len));
    SetIpv4Checksum(f + l3);
  } else {
    PutBe16(f + l3 + 4, static_cast<uint32_t>(l4 - l3 - 40 + l4_len));
  }
}

bool RangeEqual(const uint8_t* a, const uint8_t* b, size_t from, size_t to) { return memcmp(a + from, b + from, to - from) == 0; }

}  // namespace

VnetHdr ReadVnetHdr(const uint8_t* p) {
  VnetHdr h;
  h.flags = p[0];
  h.gso_type = p[1];
  memcpy(&h.hdr_len, p + 2, 2);
  memcpy(&h.gso_size, p + 4, 2);
  memcpy(&h.csum_start, p + 6, 2);
  memcpy(&h.csum_offset, p + 8, 2);
  return h;
}

void WriteVnetHdr(const VnetHdr& h, uint8_t* p) {
  p[0] = h.flags;
  p[1] = h.gso_type;
  memcpy(p + 2, &h.hdr_len, 2);
  memcpy(p + 4, &h.gso_size, 2);
  memcpy(p + 6, &h.csum_start, 2);
  memcpy(p + 8, &h.csum_offset, 2);
}

bool FinishChecksum(uint8_t* frame, size_t len, const VnetHdr& h) {
  const size_t start = h.csum_start, field = start + h.csum_offset;
  if (start >= len || field + 2 > len) return false;
  uint16_t csum = FoldChecksum(Sum16(frame + start, len - start));
  if (csum == 0) csum = 0xffff;  // the same value in one's complement, and the only one UDP allows
  PutBe16(frame + field, csum);
  return true;
}

bool ParseTso(const uint8_t* frame, size_t len, const VnetHdr& h, TsoFrame* out) {
  const uint8_t type = h.gso_type & ~VIRTIO_NET_HDR_GSO_ECN;
  if ((type != VIRTIO_NET_HDR_GSO_TCPV4 && type != VIRTIO_NET_HDR_GSO_TCPV6) || h.gso_size == 0) return false;
  TcpHeaders th;
  if (!FindTcp(frame, len, true, &th) || th.v4 != (type == VIRTIO_NET_HDR_GSO_TCPV4)) return false;
  if (th.hdr_len >= len || th.hdr_len % 2 != 0) return false;  // even: segment sums concatenate (header + payload)
  out->v4 = th.v4;
  out->l3 = th.l3;
  out->l4 = th.l4;
  out->hdr_len = th.hdr_len;
  out->mss = h.gso_size;
  out->payload = len - th.hdr_len;
  out->segments = (out->payload + out->mss - 1) / out->mss;
  return true;
}

size_t SegmentPayload(const TsoFrame& t, size_t i) {
  return i + 1 < t.segments ? t.mss : t.payload - (t.segments - 1) * t.mss;
}

void WriteSegmentHeader(const uint8_t* frame, const TsoFrame& t, size_t i, uint8_t* out) {
  memcpy(out, frame, t.hdr_len);
  const size_t payload = SegmentPayload(t, i);
  const size_t tcp_len = t.hdr_len - t.l4 + payload;
  uint8_t* tcp = out + t.l4;
  if (t.v4) PutBe16(out + t.l3 + 4, static_cast<uint32_t>(Be16(frame + t.l3 + 4) + i));  // IP ID, as TSO does
  SetIpLength(out, t.v4, t.l3, t.l4, tcp_len);
  PutBe32(tcp + 4, Be32(frame + t.l4 + 4) + static_cast<uint32_t>(i * t.mss));
  if (i + 1 < t.segments) tcp[13] &= static_cast<uint8_t>(~(kTcpFin | kTcpPsh));
  if (i > 0) tcp[13] &= static_cast<uint8_t>(~kTcpCwr);
  tcp[16] = tcp[17] = 0;
  uint64_t sum = PseudoSum(out + t.l3, t.v4, tcp_len);
  sum = Sum16(tcp, t.hdr_len - t.l4, sum);
  sum = Sum16(frame + t.hdr_len + i * t.mss, payload, sum);  // even offset: the TCP header is a multiple of 4
  PutBe16(tcp + 16, FoldChecksum(sum));
}

bool ParseTcpSegment(const uint8_t* frame, size_t len, TcpSegment* out) {
  TcpHeaders th;
  if (!FindTcp(frame, len, false, &th)) return false;
  const uint8_t flags = frame[th.l4 + 13];
  if ((flags & ~(kTcpAck | kTcpPsh)) != 0 || (flags & kTcpAck) == 0 || th.ip_end == th.hdr_len) return false;
  *out = TcpSegment{th.v4, th.l3, th.l4, th.hdr_len, th.ip_end - th.hdr_len, Be32(frame + th.l4 + 4), flags};
  return true;
}

bool TcpChecksumOk(const uint8_t* frame, const TcpSegment& s) {
  const size_t tcp_len = s.hdr_len - s.l4 + s.payload;
  return FoldChecksum(Sum16(frame + s.l4, tcp_len, PseudoSum(frame + s.l3, s.v4, tcp_len))) == 0;
}

bool OuterChecksumVerified(const uint8_t* addr, size_t addr_len, bool udp_gro) {
  if (udp_gro) return true;
  if (addr_len != 16) return false;
  static const uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  return memcmp(addr, kMapped, sizeof(kMapped)) != 0;
}

bool Continues(const uint8_t* first, const TcpSegment& f, size_t run_payload, size_t mss, bool run_closed,
               const uint8_t* next, const TcpSegment& n) {
  if (run_closed || n.v4 != f.v4 || n.l3 != f.l3 || n.l4 != f.l4 || n.hdr_len != f.hdr_len) return false;
  if (n.payload > mss || n.seq != f.seq + static_cast<uint32_t>(run_payload)) return false;
  if (f.hdr_len - f.l3 + run_payload + n.payload > kMaxIpLength) return false;
  const size_t l3 = f.l3, l4 = f.l4;
  if (!RangeEqual(first, next, 0, l3)) return false;  // Ethernet and VLAN tags
  if (f.v4) {  // all but total length, ID and header checksum
    if (!RangeEqual(first, next, l3, l3 + 2) || !RangeEqual(first, next, l3 + 6, l3 + 10) ||
        !RangeEqual(first, next, l3 + 12, l4))
      return false;
  } else if (!RangeEqual(first, next, l3, l3 + 4) || !RangeEqual(first, next, l3 + 6, l4)) {  // all but length
    return false;
  }
  // TCP: ports, ACK, data offset, window, urgent pointer and options; not the sequence, flags (PSH) or checksum.
  return RangeEqual(first, next, l4, l4 + 4) && RangeEqual(first, next, l4 + 8, l4 + 13) &&
         RangeEqual(first, next, l4 + 14, l4 + 16) && RangeEqual(first, next, l4 + 18, f.hdr_len);
}

void WriteMergedHeader(const uint8_t* first, const TcpSegment& f, size_t total_payload, size_t mss, bool psh,
                       uint8_t* out, VnetHdr* vh) {
  memcpy(out, first, f.hdr_len);
  const size_t tcp_len = f.hdr_len - f.l4 + total_payload;
  SetIpLength(out, f.v4, f.l3, f.l4, tcp_len);
  uint8_t* tcp = out + f.l4;
  if (psh) tcp[13] |= kTcpPsh;
  // NEEDS_CSUM: the field holds the pseudo-header sum, folded but not inverted; whoever segments finishes it.
  PutBe16(tcp + 16, static_cast<uint16_t>(~FoldChecksum(PseudoSum(out + f.l3, f.v4, tcp_len))));
  *vh = VnetHdr{};
  vh->flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
  vh->gso_type = f.v4 ? VIRTIO_NET_HDR_GSO_TCPV4 : VIRTIO_NET_HDR_GSO_TCPV6;
  vh->hdr_len = static_cast<uint16_t>(f.hdr_len);
  vh->gso_size = static_cast<uint16_t>(mss);
  vh->csum_start = static_cast<uint16_t>(f.l4);
  vh->csum_offset = 16;
}

}  // namespace vxr
