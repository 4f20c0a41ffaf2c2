// The forwarding engine: one TX thread per TAP (TAP → lookup → encapsulate → sendmmsg on the raw socket) and one
// RX thread (recvmmsg on the UDP socket → classify → learn → strip → TAP write). No JS runs on these threads and
// nothing is allocated per packet: each thread owns its batch buffers for its whole life.
//
// Threading: the JS thread calls Create/SetTable/Start/Stop/Learned/counters. SetTable swaps an immutable snapshot
// (std::atomic_store on shared_ptr); each thread loads it once per batch. Stop() signals an eventfd that every
// thread polls, then joins them. Counters are relaxed atomics.
//
// Batch shape (TX): read → resolve → encapsulate → send, each stage a loop over one batch of TxFrame descriptors
// ({buffer, length, VNI, destination}). A batch is up to kBatch frames in per-slot buffers the TX thread owns; each
// frame becomes one or more messages (a flood is one per peer) with its own 16-byte header and an iovec pointing at
// the shared frame; the batch is sent (sendmmsg) before the next read reuses the slots. RX: recvmmsg → classify →
// learn (one lock per batch) → TAP write. Offloads (IFF_VNET_HDR/TSO on the TAP, UDP GSO/GRO) change what a slot
// and a message hold (a vnet header, a GSO segment size), not the stages.
//
// Buffer ownership: slot buffers, headers, iovecs and sockaddrs belong to the thread that allocated them at start;
// nothing is allocated per packet. The table snapshot is held (shared_ptr) for exactly one batch.
#pragma once
#include <memory>
#include <thread>
#include <vector>

#include "counters.h"
#include "errors.h"
#include "fd.h"
#include "learn.h"
#include "table.h"

namespace vxr {

struct NetworkConfig {
  uint32_t vni = 0;
  int tap_fd = -1;  // ownership passes to the engine in Create, even when it fails
  int mtu = 0;
};

struct EngineConfig {
  Addr local;
  uint16_t port = 4789;
  int underlay_mtu = 1500;
  bool learning = true;
  int64_t aging_ms = 300000;
  std::vector<NetworkConfig> networks;
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

 private:
  struct Network {
    uint32_t vni;
    UniqueFd tap;
    int mtu;
    size_t max_frame;  // largest inner frame its TAP takes: mtu + 14 + 4 (classification's maxFrame)
  };
  explicit Engine(const EngineConfig& cfg);
  void TxLoop(Network* net);
  void RxLoop();
  const Network* NetworkFor(uint32_t vni) const;

  EngineConfig cfg_;
  std::vector<Network> nets_;
  UniqueFd rx_sock_, tx_sock_, stop_fd_;
  std::shared_ptr<const Table> table_;
  LearnTable learned_;
  Counters counters_;
  std::vector<std::thread> threads_;
  size_t max_frame_ = 0;
  bool started_ = false;
  bool stopped_ = false;
};

int64_t NowMs();

}  // namespace vxr
