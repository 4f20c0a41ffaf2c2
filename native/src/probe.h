// Peer probes (layout and rules: src/packet/probe.ts, the TypeScript twin, pinned byte for byte by
// test/native/probe.test.ts). A probe is a UDP payload on the VXLAN port whose first byte has the VXLAN I flag clear,
// so every VTEP that is not ours drops it before decapsulation; ours answer requests and hand replies to JS.
// Pure functions, bounds-checked, no allocation.
#pragma once
#include <cstddef>
#include <cstdint>

#include "wire.h"

namespace vxr {

inline constexpr size_t kProbeHeaderLen = 24;
inline constexpr uint8_t kProbeVersion = 1;
inline constexpr uint8_t kProbeRequest = 1, kProbeReply = 2;
// Answers per second and at once, per engine (PROBE_ANSWER_RATE / PROBE_ANSWER_BURST), and replies kept for JS
// (MAX_PROBE_REPLIES).
inline constexpr uint32_t kProbeAnswerRate = 200;
inline constexpr uint32_t kProbeAnswerBurst = 100;
inline constexpr size_t kMaxProbeReplies = 1024;

struct ProbeFields {
  uint8_t kind = 0;
  uint32_t id = 0;
  uint64_t sent_ns = 0;
  uint32_t length = 0;
};

// Flags 0 and the magic: ours to parse, never a VXLAN frame (isProbe).
bool IsProbe(const uint8_t* p, size_t len);
// A well-formed probe (version, kind, reserved bytes zero, at least the header) into *out (parseProbe).
bool ParseProbe(const uint8_t* p, size_t len, ProbeFields* out);
// The 24-byte reply to request `p` into `out`; 0 when `p` is not a well-formed request (probeReply).
size_t WriteProbeReply(const uint8_t* p, size_t len, uint8_t out[kProbeHeaderLen]);
// A UDP header (8 bytes) for `payload` from src to dst, checksum included (the raw socket sends it as is).
void WriteUdpHeader(uint8_t hdr[kUdpHeaderLen], uint16_t src_port, uint16_t dst_port, const Addr& src, const Addr& dst,
                    const uint8_t* payload, size_t len);

}  // namespace vxr
