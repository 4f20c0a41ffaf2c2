// Pure wire-format code (no I/O, no allocation, no throwing): addresses, the Internet checksum, the flow hash,
// the UDP + VXLAN header we prepend, and receive classification. Twins in TypeScript: src/packet/checksum.ts,
// src/packet/flow.ts, src/packet/vxlan.ts (encapsulate), src/dataplane/classify.ts. Every byte read is bounds-checked
// against the length passed in.
#pragma once
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstddef>
#include <cstdint>

#include "counters.h"

namespace vxr {

inline constexpr size_t kEthHeaderLen = 14;
inline constexpr size_t kVxlanHeaderLen = 8;
inline constexpr size_t kUdpHeaderLen = 8;
inline constexpr size_t kEncapHeaderLen = kUdpHeaderLen + kVxlanHeaderLen;  // what we prepend to a frame
inline constexpr uint8_t kVxlanFlagI = 0x08;
inline constexpr uint32_t kMaxVni = 0xffffff;

// An IPv4 or IPv6 address as 16 bytes (IPv4 in the first 4, len = 4), comparable and hashable.
struct Addr {
  uint8_t bytes[16] = {};
  uint8_t len = 0;  // 4 or 16; 0 = invalid
  bool operator==(const Addr& o) const;
  bool operator!=(const Addr& o) const { return !(*this == o); }
};
struct AddrHash {
  size_t operator()(const Addr& a) const;
};

bool ParseAddr(const char* text, Addr* out);         // inet_pton, either family
bool AddrFromSockaddr(const sockaddr_storage& ss, Addr* out);
void AddrToText(const Addr& a, char* out, size_t cap);  // inet_ntop: canonical text
// A sockaddr for sending to `a` on a raw socket (port 0, as raw IPv6 sockets require).
socklen_t ToSockaddr(const Addr& a, uint16_t port, sockaddr_storage* out);

// One's-complement sum of big-endian 16-bit words, odd tail padded with zero, added to `initial` (not folded).
uint64_t Sum16(const uint8_t* p, size_t n, uint64_t initial = 0);
uint16_t FoldChecksum(uint64_t sum);  // folded and inverted: the value for the checksum field

// Outer UDP source port in 49152-65535 from the frame's flow (twin: flowPort in src/packet/flow.ts).
uint16_t FlowPort(const uint8_t* frame, size_t len);

// Writes the 16-byte UDP + VXLAN header for `frame` sent src → dst into `hdr`, UDP checksum included.
// `frame_sum` is Sum16(frame, len), computed once per frame and reused for every destination of a flood.
void WriteEncapHeader(uint8_t hdr[kEncapHeaderLen], uint32_t vni, uint16_t src_port, uint16_t dst_port,
                      const Addr& src, const Addr& dst, size_t frame_len, uint64_t frame_sum);

// Receive classification, in the pinned order (twin: classifyDatagram in src/dataplane/classify.ts).
// `peer_state(vni)` answers 0 = VNI not served, 1 = served but the sender is not one of its peers, 2 = peer.
struct ClassifyResult {
  bool ok = false;
  uint32_t vni = 0;
  Drop reason = Drop::kRxShort;
};

template <typename PeerState>
inline ClassifyResult Classify(const uint8_t* payload, size_t len, size_t max_frame, PeerState&& peer_state) {
  ClassifyResult r;
  if (len < kVxlanHeaderLen) return r;  // kRxShort
  r.reason = Drop::kRxBadFlags;
  if ((payload[0] & kVxlanFlagI) == 0) return r;
  const uint32_t vni = (static_cast<uint32_t>(payload[4]) << 16) | (payload[5] << 8) | payload[6];
  r.vni = vni;  // also on a refusal: the engine reports which VNI an unknown source sent
  const int state = peer_state(vni);
  r.reason = state == 0 ? Drop::kRxUnknownVni : Drop::kRxUnknownSource;
  if (state != 2) return r;
  const size_t inner = len - kVxlanHeaderLen;
  r.reason = inner < kEthHeaderLen ? Drop::kRxTruncatedInner : Drop::kRxOversize;
  if (inner < kEthHeaderLen || inner > max_frame) return r;
  r.ok = true;
  return r;
}

}  // namespace vxr
