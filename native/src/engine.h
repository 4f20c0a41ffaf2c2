// The forwarding engine: one TX thread per TAP (TAP → lookup → encapsulate → sendmmsg on the raw socket) and one
// RX thread (recvmmsg on the UDP socket → classify → learn → strip → TAP write). No JS runs on these threads and
// nothing is allocated per packet: each thread owns its batch buffers for its whole life.
//
// Threading: the JS thread calls Create/SetTable/Start/Stop/Learned/counters. SetTable swaps an immutable snapshot
// (std::atomic_store on shared_ptr); each thread loads it once per batch. Stop() sets stopping_, shuts the UDP socket
// down (the RX thread sleeps in a blocking recvmmsg) and signals an eventfd the TX threads poll, then joins them.
// Counters are relaxed atomics.
//
// Batch shape (TX): read → resolve → encapsulate → send, each stage a loop over one batch of TxFrame descriptors
// ({buffer, length, VNI, destination}). A batch is up to kBatch frames in per-slot buffers the TX thread owns; each
// frame becomes one or more messages (a flood is one per peer) with its own 16-byte header and an iovec pointing at
// the shared frame; the batch is sent (sendmmsg) before the next read reuses the slots. RX: recvmmsg → classify →
// learn (one lock per batch) → TAP write.
//
// Offloads, each probed and dropped at run time when the kernel refuses it (features() says what is on):
// - A TAP opened with IFF_VNET_HDR + TSO hands over TCP super-frames (up to 64 KiB) with a virtio header; TX cuts
//   them into segments (offload.h) and sends each destination's segments with one sendmsg and UDP_SEGMENT, from a
//   UDP socket bound to the flow's source port (so the outer port is the same as the raw path would pick). Without
//   GSO (EIO/EINVAL on the first try) the segments go through the raw socket like any frame.
// - The UDP socket receives with UDP_GRO: one recvmmsg slot may hold many datagrams of one sender (cut by the
//   segment size the kernel reports). Consecutive TCP segments of one flow are merged into one super-frame written
//   to the TAP with a virtio header (TapWriteMerger), so the bridge and the container see few, large packets.
//
// Buffer ownership: slot buffers, headers, iovecs and sockaddrs belong to the thread that allocated them at start;
// nothing is allocated per packet. The table snapshot is held (shared_ptr) for exactly one batch.
#pragma once
#include <atomic>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include "counters.h"
#include "sys-error.h"
#include "fd.h"
#include "learn.h"
#include "stats.h"
#include "table.h"
#include "udp-socket.h"

namespace vxr {

struct NetworkConfig {
  uint32_t vni = 0;
  int tap_fd = -1;  // ownership passes to the engine in Create, even when it fails
  int mtu = 0;
  bool vnet_hdr = false;  // the TAP was opened with IFF_VNET_HDR (OpenTap with offloads)
};

struct EngineConfig {
  Addr local;
  uint16_t port = 4789;
  int underlay_mtu = 1500;
  bool learning = true;
  int64_t aging_ms = 300000;
  bool udp_gso = true;  // try UDP_SEGMENT sends
  bool udp_gro = true;  // try UDP_GRO receives
  bool arp_suppression = true;  // answer ARP requests for known remote addresses on the bridge
  std::vector<NetworkConfig> networks;
};

// What is on right now (GSO can turn itself off after Start when the first GSO send fails).
struct Features {
  bool tap_vnet_hdr = false;
  bool udp_gso = false;
  bool udp_gro = false;
};

class Engine {
 public:
  // Opens and binds the sockets. On failure returns the error and closes everything, TAP fds included.
  static SysError Create(const EngineConfig& cfg, std::unique_ptr<Engine>* out);
  ~Engine();

  void SetTable(std::shared_ptr<const Table> t);
  SysError Start();
  void Stop();  // idempotent; closes sockets and TAPs
  const Counters& counters() const { return counters_; }
  std::vector<LearnRow> Learned() const;
  std::vector<LocalMacRow> LocalMacs();
  // Writes a frame onto the bridge of `vni` (gratuitous ARP from the control side). Any thread.
  SysError InjectFrame(uint32_t vni, const uint8_t* frame, size_t len);
  Features features() const;
  const TrafficStats& traffic() const { return traffic_; }

 private:
  struct Network {
    uint32_t vni;
    UniqueFd tap;
    int mtu;
    size_t max_frame;  // largest inner frame its TAP takes: mtu + 14 + 4 (classification's maxFrame)
    bool vnet_hdr;
  };
  explicit Engine(const EngineConfig& cfg);
  void TxLoop(Network* net);
  void RxLoop();
  const Network* NetworkFor(uint32_t vni) const;
  static bool WriteTap(const Network& net, const uint8_t* frame, size_t len);

  EngineConfig cfg_;
  std::vector<Network> nets_;
  UniqueFd rx_sock_, tx_sock_, stop_fd_;
  FlowSockets flow_socks_;
  std::atomic<bool> gso_ok_{false};
  bool gro_on_ = false;
  std::shared_ptr<const Table> table_;
  LearnTable learned_;
  LocalMacTable local_;
  Counters counters_;
  TrafficStats traffic_;
  std::vector<std::thread> threads_;
  size_t max_frame_ = 0;
  bool started_ = false;
  bool stopped_ = false;
  std::atomic<bool> stopping_{false};  // set by Stop() before it wakes the threads
};

int64_t NowMs();

}  // namespace vxr
