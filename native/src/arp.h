// ARP as the engine needs it (pure functions, bounds-checked, no allocation): which IPv4 address a frame from the
// bridge speaks for (so it can be advertised), whether a frame is an ARP request the engine may answer itself
// (suppression), and the answer. Untagged Ethernet + IPv4 only. Pinned by test/native/arp.test.ts against the
// TypeScript codecs in src/packet (arp.ts, ethernet.ts).
#pragma once
#include <cstddef>
#include <cstdint>

namespace vxr {

inline constexpr size_t kArpFrameLen = 42;  // Ethernet + ARP for IPv4; padded to kMinFrame on the wire
inline constexpr size_t kMinFrame = 60;

// The IPv4 address a frame's sender uses: an ARP packet's sender address, or an IPv4 packet's source; false for
// anything else, and for 0.0.0.0 (a host that has no address yet).
bool SenderIpv4(const uint8_t* f, size_t len, uint32_t* ip);

// An ARP request (who-has) for IPv4 over Ethernet: its target address (host order).
bool ArpRequestTarget(const uint8_t* f, size_t len, uint32_t* target);

// The start of an answer the engine writes for the owner of an address: `len` bytes zeroed, then the Ethernet
// destination = `request`'s source, the source = `mac` (48 bits); `m` gets `mac` as bytes (the answer repeats it).
void StartAnswer(const uint8_t* request, uint64_t mac, uint8_t* out, size_t len, uint8_t m[6]);

// The reply to `request` saying `ip` is at `mac` (48 bits), addressed to the requester; writes kMinFrame bytes.
void WriteArpReply(const uint8_t* request, uint64_t mac, uint8_t out[kMinFrame]);

}  // namespace vxr
