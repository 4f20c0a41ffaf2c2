// IPv6 Neighbor Discovery (RFC 4861) as the engine needs it (pure functions, bounds-checked, no allocation): which
// IPv6 address a frame from the bridge speaks for (so it can be advertised), whether a frame is a Neighbor
// Solicitation the engine may answer itself (suppression), and the answer. Untagged Ethernet; an IPv6 header followed
// directly by ICMPv6 (extension headers are not parsed: such a frame is simply not answered). Pinned by
// test/native/nd.test.ts against the TypeScript twin src/packet/nd.ts.
#pragma once
#include <cstddef>
#include <cstdint>

namespace vxr {

// Ethernet + IPv6 + Neighbor Advertisement with a Target Link-Layer Address option.
inline constexpr size_t kNaFrameLen = 14 + 40 + 32;

// The IPv6 address a frame's sender uses: a Neighbor Advertisement's target, else an IPv6 packet's source. False for
// anything else, and for addresses that name no host: :: (DAD probes), ::1, multicast. Link-local counts (ND for it
// crosses the overlay like any other).
bool SenderIpv6(const uint8_t* f, size_t len, uint8_t ip[16]);

// A Neighbor Solicitation for address resolution that the owner of the target would answer: hop limit 255, code 0,
// to the target's solicited-node multicast address, options well formed, ICMPv6 checksum right, and a source address
// (a DAD probe, from ::, is never answered: that would tell the prober its address is taken). Fills the target.
bool NdSolicitTarget(const uint8_t* f, size_t len, uint8_t target[16]);

// The solicited Neighbor Advertisement (Solicited + Override, TLLA = mac) answering `ns` (which NdSolicitTarget
// accepted) for the owner of its target: from the target address to the solicitor's address and MAC.
void WriteNdAdvert(const uint8_t* ns, uint64_t mac, uint8_t out[kNaFrameLen]);

}  // namespace vxr
