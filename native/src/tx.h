// Transmit path: the TX thread of one TAP (Engine::TxLoop, in tx.cc) and the two senders it batches into.
// Per batch: read (non-blocking until EAGAIN or kBatch frames; checksums the sender left partial are finished, TSO
// super-frames parsed) → local MACs (the frames' sources, reported to the LocalMacTable) → resolve (drops; ARP / ND
// answered on the bridge; static, then learned lookup) → MSS clamp (--clamp-mss: TCP SYNs, in the slot) → encapsulate
// + queue (one message per destination and segment) → send (sendmmsg on the raw socket; a TSO frame's segments to one destination in UDP_SEGMENT sends).
//
// Threading: one TX thread per TAP. Its TxFrames, TxQueue and GsoSender belong to it alone. What it shares: the
// engine's Counters (relaxed atomics), its TrafficStats (through a BatchTally: one lock per batch, or when the tally
// fills), the FlowSockets (locked; a socket is held for one send, and the RX thread closes idle ones), the GSO switch
// (an atomic any TX thread may turn off), the LocalMacTable and the LearnTable (one lock per batch each), and the
// table snapshot (held for exactly one batch).
//
// Buffer ownership: the thread allocates its frame slots, message vector, headers, iovecs and addresses once, when
// it starts; nothing is allocated per packet. A queued message points into a frame slot and at the Peer it goes to
// (in the table snapshot, or in the TxFrame for a learned MAC): TxQueue::Send() must run before the next read reuses
// the slots and before the snapshot is let go; the loop sends at the end of every batch, and before any GSO send so
// that a flow is never reordered. A GsoSender's send is done when it returns; it keeps only its own headers.
#pragma once
#include <sys/socket.h>
#include <sys/uio.h>

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "counters.h"
#include "offload.h"
#include "stats.h"
#include "table.h"
#include "udp-socket.h"
#include "wire.h"

namespace vxr {

// One frame of a TX batch and where it goes. `to` points into the table snapshot (static entry) or at `learned`;
// both live until the batch is sent. Flood frames go to every peer of the VNI. A TSO super-frame (`tso.segments`
// > 0) goes out as segments.
struct TxFrame {
  uint8_t* slot = nullptr;  // the read buffer: [virtio header] frame
  uint8_t* buf = nullptr;   // the frame
  size_t len = 0;
  TsoFrame tso;
  bool bad_offload = false;  // a virtio header we cannot honour (dropped as tx_bad_offload)
  enum class Dest : uint8_t { kDrop, kUnicast, kFlood, kLookupLearned } dest = Dest::kDrop;
  const Peer* to = nullptr;
  Peer learned;
};

// Datagrams queued on the raw socket and sent in as few sendmmsg calls as the kernel allows. Each is our UDP + VXLAN
// header (WriteEncapHeader; twin: encapsulate in src/packet/vxlan.ts), then a whole frame, or a TSO segment's
// headers and payload. Queueing into a full vector sends what is queued first.
class TxQueue {
 public:
  static constexpr int kMaxMsgs = 1024;  // sendmmsg vector (UIO_MAXIOV)

  TxQueue(int raw_fd, uint32_t vni, const Addr& local, uint16_t port, Counters& counters, BatchTally& tally);
  // The whole frame to `to`; `sum` is Sum16 over it (computed once, shared by every copy of a flood).
  void QueueFrame(const TxFrame& f, uint64_t sum, uint16_t sport, const Peer& to);
  // Segment `i` of a TSO frame to `to` (headers written into this queue's own buffer; payload points into the slot).
  void QueueSegment(const TxFrame& f, size_t i, uint16_t sport, const Peer& to);
  // Sends everything queued; a datagram the kernel refuses is counted (tx_send_error) and skipped.
  void Send();

 private:
  void Queue(const iovec& head, const iovec& tail, uint64_t sum, uint16_t sport, const Peer& to);

  const int fd_;
  const uint32_t vni_;
  const Addr local_;
  const uint16_t port_;
  Counters& counters_;
  BatchTally& tally_;
  int m_ = 0;  // messages queued
  std::vector<mmsghdr> msgs_;
  std::vector<std::array<iovec, 3>> iovs_;
  std::vector<std::array<uint8_t, kEncapHeaderLen>> hdrs_;
  std::vector<sockaddr_storage> names_;
  std::vector<uint8_t> seg_hdrs_;  // headers of the TSO segments queued (one per message at most)
};

// Where UDP GSO may be used. A GSO send refused with EINVAL or EIO speaks for its path only (a segment larger than
// the route's MTU, a device without checksum offload): that destination goes to the raw socket from then on, the
// others keep GSO. ENOPROTOOPT or EOPNOTSUPP mean the kernel has no UDP GSO at all: off for the whole engine (`on`,
// shared by the TX threads). Bounded: the kMaxRefused-th refused destination turns it off everywhere too.
// One per TX thread (inside its GsoSender). Pinned by test/native/gso-policy.test.ts (the gsoPolicy twin).
class GsoPolicy {
 public:
  static constexpr size_t kMaxRefused = 64;
  explicit GsoPolicy(std::atomic<bool>& on) : on_(on) {}
  bool Allowed(const Addr& to) const;
  // The kernel refused a GSO send to `to` with `err`; true when the error is one GSO policy acts on (the caller
  // falls back to the raw socket), false for an ordinary send error.
  bool Refused(const Addr& to, int err);

 private:
  std::atomic<bool>& on_;
  std::array<Addr, kMaxRefused> refused_{};
  size_t n_ = 0;
};

// A TSO frame's segments to one peer in UDP_SEGMENT sends from the flow's own UDP socket (FlowSockets: bound to the
// flow's source port, so the outer port is the one the raw path would write; with FlowSockets::kMax open, the raw
// socket, counted as gso_sockets_full). Where GSO may be used: GsoPolicy.
// Segmentation pinned by test/native/offload.test.ts (segmentTso).
class GsoSender {
 public:
  static constexpr size_t kMaxBytes = 65507;  // one GSO send is one UDP datagram's worth of payload (IPv4 limit)

  GsoSender(FlowSockets& sockets, std::atomic<bool>& on, uint32_t vni, const Addr& local, uint16_t port,
            Counters& counters, BatchTally& tally);
  bool on(const Peer& to) const { return policy_.Allowed(to.addr); }
  // Segments per send for frames like `f` (bounded by kMaxGsoSegments and kMaxBytes).
  static size_t SegmentsPerSend(const TxFrame& f);
  // Segments [from, to) of `f` to `peer` in one send. False when GSO is not available (the caller falls back to the
  // raw socket); send errors are counted (tx_send_error) and return true.
  bool Send(const TxFrame& f, size_t from, size_t to, uint16_t sport, const Peer& peer);

 private:
  FlowSockets& sockets_;
  GsoPolicy policy_;
  const Addr local_;
  const uint16_t port_;
  Counters& counters_;
  BatchTally& tally_;
  uint8_t vxlan_hdr_[kVxlanHeaderLen];
  std::vector<uint8_t> seg_hdrs_;  // one send's segment headers
  std::array<iovec, 3 * kMaxGsoSegments> iov_{};
};

}  // namespace vxr
