// Peer probes (see probe.h). Every offset is checked against the length passed in.
#include "probe.h"

#include <string.h>

namespace vxr {

namespace {
constexpr uint8_t kMagic[3] = {0x56, 0x58, 0x50};  // "VXP"

uint32_t Be32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}
void Put32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = static_cast<uint8_t>(v >> (24 - 8 * i));
}
}  // namespace

bool IsProbe(const uint8_t* p, size_t len) { return len >= 4 && p[0] == 0 && memcmp(p + 1, kMagic, 3) == 0; }

bool ParseProbe(const uint8_t* p, size_t len, ProbeFields* out) {
  if (!IsProbe(p, len) || len < kProbeHeaderLen || p[4] != kProbeVersion || p[6] != 0 || p[7] != 0) return false;
  if (p[5] != kProbeRequest && p[5] != kProbeReply) return false;
  out->kind = p[5];
  out->id = Be32(p + 8);
  out->sent_ns = (uint64_t{Be32(p + 12)} << 32) | Be32(p + 16);
  out->length = Be32(p + 20);
  return true;
}

size_t WriteProbeReply(const uint8_t* p, size_t len, uint8_t out[kProbeHeaderLen]) {
  ProbeFields f;
  if (!ParseProbe(p, len, &f) || f.kind != kProbeRequest) return 0;
  memcpy(out, p, 20);  // flags, magic, version, reserved, id, sent time
  out[5] = kProbeReply;
  Put32(out + 20, static_cast<uint32_t>(len));
  return kProbeHeaderLen;
}

void WriteUdpHeader(uint8_t hdr[kUdpHeaderLen], uint16_t src_port, uint16_t dst_port, const Addr& src, const Addr& dst,
                    const uint8_t* payload, size_t len) {
  const uint32_t udp_len = static_cast<uint32_t>(kUdpHeaderLen + len);
  hdr[0] = static_cast<uint8_t>(src_port >> 8);
  hdr[1] = static_cast<uint8_t>(src_port);
  hdr[2] = static_cast<uint8_t>(dst_port >> 8);
  hdr[3] = static_cast<uint8_t>(dst_port);
  hdr[4] = static_cast<uint8_t>(udp_len >> 8);
  hdr[5] = static_cast<uint8_t>(udp_len);
  hdr[6] = hdr[7] = 0;
  uint64_t sum = Sum16(payload, len);
  sum = Sum16(src.bytes, src.len, sum);
  sum = Sum16(dst.bytes, dst.len, sum);
  sum += 17 + (udp_len >> 16) + (udp_len & 0xffff);
  sum = Sum16(hdr, kUdpHeaderLen, sum);
  uint16_t csum = FoldChecksum(sum);
  if (csum == 0) csum = 0xffff;
  hdr[6] = static_cast<uint8_t>(csum >> 8);
  hdr[7] = static_cast<uint8_t>(csum);
}

}  // namespace vxr
