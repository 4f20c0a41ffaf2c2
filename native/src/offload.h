// TAP offloads as pure functions (no I/O, no allocation): the virtio-net header the tun driver puts before each
// frame when the TAP has IFF_VNET_HDR, finishing a checksum the sender left partial, cutting a TCP super-frame (TSO)
// into wire-sized segments, and the reverse: merging consecutive TCP segments of one flow into one super-frame for
// the TAP (GRO). Every byte read is bounds-checked against the length passed in. Pinned by test/native/offload.test.ts
// (segments and merged frames checked with the TypeScript codecs in src/packet).
#pragma once
#include <sys/uio.h>

#include <array>
#include <cstddef>
#include <cstdint>

namespace vxr {

// From <linux/virtio_net.h>, which C++ cannot include (a member named `class`).
inline constexpr size_t kVnetHdrLen = 10;  // struct virtio_net_hdr: the tun default (TUNSETVNETHDRSZ)
inline constexpr uint8_t VIRTIO_NET_HDR_F_NEEDS_CSUM = 1;
inline constexpr uint8_t VIRTIO_NET_HDR_GSO_NONE = 0;
inline constexpr uint8_t VIRTIO_NET_HDR_GSO_TCPV4 = 1;
inline constexpr uint8_t VIRTIO_NET_HDR_GSO_TCPV6 = 4;
inline constexpr uint8_t VIRTIO_NET_HDR_GSO_ECN = 0x80;
inline constexpr size_t kMaxSegHeader = 256;                    // Ethernet (2 VLAN tags) + IP + TCP fits easily

// The header as the tun driver writes it (native byte order on this little-endian host).
struct VnetHdr {
  uint8_t flags = 0;
  uint8_t gso_type = VIRTIO_NET_HDR_GSO_NONE;
  uint16_t hdr_len = 0;
  uint16_t gso_size = 0;
  uint16_t csum_start = 0;
  uint16_t csum_offset = 0;
};
VnetHdr ReadVnetHdr(const uint8_t* p);
void WriteVnetHdr(const VnetHdr& h, uint8_t* p);

// Fills in the checksum the sender left to us (VIRTIO_NET_HDR_F_NEEDS_CSUM): the one's complement of the sum from
// csum_start to the end, stored at csum_start + csum_offset (which holds the pseudo-header sum already).
// False when the offsets fall outside the frame.
bool FinishChecksum(uint8_t* frame, size_t len, const VnetHdr& h);

// A TCP super-frame handed over with TSO, parsed: where its headers are and how it is cut.
struct TsoFrame {
  bool v4 = false;
  size_t l3 = 0;          // IP header offset (after Ethernet and up to 2 VLAN tags)
  size_t l4 = 0;          // TCP header offset
  size_t hdr_len = 0;     // Ethernet + IP + TCP: repeated before every segment
  size_t mss = 0;         // payload bytes per segment (the last may be shorter)
  size_t payload = 0;     // payload bytes in all
  size_t segments = 0;
};
// False for anything but a well-formed TCPv4 (no fragment) / TCPv6 (TCP right after the fixed header) super-frame
// whose headers fit kMaxSegHeader.
bool ParseTso(const uint8_t* frame, size_t len, const VnetHdr& h, TsoFrame* out);

// Writes segment `i`'s headers into `out` (t.hdr_len bytes): IP length, IPv4 ID + i and header checksum, TCP
// sequence + i*mss, FIN/PSH only on the last segment, CWR only on the first, and the full TCP checksum over the
// headers and the segment's payload (frame + hdr_len + i*mss, SegmentPayload bytes).
size_t SegmentPayload(const TsoFrame& t, size_t i);
void WriteSegmentHeader(const uint8_t* frame, const TsoFrame& t, size_t i, uint8_t* out);

// A run of TCP segments of one flow being merged into one super-frame for the TAP (receive side).
struct TcpSegment {
  bool v4 = false;
  size_t l3 = 0, l4 = 0, hdr_len = 0, payload = 0;
  uint32_t seq = 0;
  uint8_t flags = 0;
};
// True for a TCP segment that may be merged: IPv4 without fragmentation, or IPv6 with TCP right after the fixed
// header; only ACK (and PSH) set; some payload.
bool ParseTcpSegment(const uint8_t* frame, size_t len, TcpSegment* out);
// True when the segment's TCP checksum verifies (merged frames go to the TAP as already checked, like the kernel's
// GRO, so a corrupted segment must not join one). Skipped for a segment whose outer UDP checksum the kernel verified
// (TapWriteMerger::Add's `verified`: see OuterChecksumVerified in rx.cc).
bool TcpChecksumOk(const uint8_t* frame, const TcpSegment& s);
// True when the kernel has verified the outer UDP checksum of a datagram it delivered, so the inner frame (which that
// checksum covers) needs no second pass: it came in a UDP_GRO super-datagram (`udp_gro`: the kernel merges only
// datagrams with a non-zero checksum, each verified, and a local UDP_SEGMENT sender must checksum), or over IPv6
// (`addr` 16 bytes, not IPv4-mapped: a zero checksum is dropped unless UDP_NO_CHECK6_RX, which we never set). A
// lone IPv4 datagram may carry checksum 0 (the kernel's VXLAN device sends that by default): not verified.
bool OuterChecksumVerified(const uint8_t* addr, size_t addr_len, bool udp_gro);
// True when `next` continues the run that starts with `first` (headers equal except lengths, IDs, checksums and
// PSH; sequence contiguous; the run so far has only full-size segments and no PSH; the result fits 64 KiB).
bool Continues(const uint8_t* first, const TcpSegment& f, size_t run_payload, size_t mss, bool run_closed,
               const uint8_t* next, const TcpSegment& n);
// Writes the merged frame's headers (copied from `first`, lengths patched, IPv4 checksum redone, TCP checksum left
// partial as NEEDS_CSUM asks, PSH if the last segment had it) and the virtio header for it.
void WriteMergedHeader(const uint8_t* first, const TcpSegment& f, size_t total_payload, size_t mss, bool psh,
                       uint8_t* out, VnetHdr* vh);

// Turns the inner frames bound for one TAP (in arrival order) into TAP writes: a run of segments that `Continues`
// becomes one super-frame (virtio header + merged headers + every payload, as an iovec list), anything else goes
// alone behind a zero virtio header (or bare, for a TAP without IFF_VNET_HDR). Frames must stay valid until Flush.
// `emit(const iovec*, int iovcnt, int frames)` performs one write. `verified`: the frame arrived in a datagram whose
// outer UDP checksum (which covers the whole inner frame) the kernel checked, so its TCP checksum is not summed again
// before it joins a run (a frame that goes alone keeps a zero virtio header: the receiver checks it as before).
class TapWriteMerger {
 public:
  static constexpr int kMaxRun = 64;  // segments per super-frame (a 64 KiB frame of 1 KiB segments)

  explicit TapWriteMerger(bool vnet_hdr) : vnet_(vnet_hdr) {}

  template <typename Emit>
  void Add(const uint8_t* frame, size_t len, Emit&& emit, bool verified = false) {
    TcpSegment s;
    const bool tcp = vnet_ && ParseTcpSegment(frame, len, &s) && (verified || TcpChecksumOk(frame, s));
    if (count_ > 0 && tcp && count_ < kMaxRun &&
        Continues(first_, first_seg_, run_payload_, first_seg_.payload, closed_, frame, s)) {
      payload_[count_] = {const_cast<uint8_t*>(frame) + s.hdr_len, s.payload};
      count_++;
      run_payload_ += s.payload;
      closed_ = s.payload < first_seg_.payload || (s.flags & 0x08) != 0;
      psh_ = (s.flags & 0x08) != 0;
      return;
    }
    Flush(emit);
    if (!tcp) {
      EmitOne(frame, len, emit);
      return;
    }
    first_ = frame;
    first_len_ = len;
    first_seg_ = s;
    payload_[0] = {const_cast<uint8_t*>(frame) + s.hdr_len, s.payload};
    count_ = 1;
    run_payload_ = s.payload;
    closed_ = (s.flags & 0x08) != 0;
    psh_ = closed_;
  }

  template <typename Emit>
  void Flush(Emit&& emit) {
    if (count_ == 0) return;
    if (count_ == 1) {
      EmitOne(first_, first_len_, emit);
    } else {
      VnetHdr vh;
      WriteMergedHeader(first_, first_seg_, run_payload_, first_seg_.payload, psh_, header_, &vh);
      WriteVnetHdr(vh, vnet_out_);
      std::array<iovec, 2 + kMaxRun> iov;
      iov[0] = {vnet_out_, kVnetHdrLen};
      iov[1] = {header_, first_seg_.hdr_len};
      for (int i = 0; i < count_; i++) iov[2 + i] = payload_[i];
      emit(iov.data(), 2 + count_, count_);
    }
    count_ = 0;
  }

 private:
  template <typename Emit>
  void EmitOne(const uint8_t* frame, size_t len, Emit&& emit) {
    iovec iov[2] = {{zero_, kVnetHdrLen}, {const_cast<uint8_t*>(frame), len}};
    if (vnet_)
      emit(iov, 2, 1);
    else
      emit(iov + 1, 1, 1);
  }

  bool vnet_;
  uint8_t zero_[kVnetHdrLen] = {};
  uint8_t vnet_out_[kVnetHdrLen] = {};
  uint8_t header_[kMaxSegHeader] = {};
  const uint8_t* first_ = nullptr;
  size_t first_len_ = 0;
  TcpSegment first_seg_;
  std::array<iovec, kMaxRun> payload_{};
  int count_ = 0;
  size_t run_payload_ = 0;
  bool closed_ = false;
  bool psh_ = false;
};

}  // namespace vxr
