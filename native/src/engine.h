// The forwarding engine: its lifecycle (Create, Start, Stop) and its threads. One TX thread per TAP (TAP → lookup
// → encapsulate → sendmmsg on the raw socket: tx.h, tx.cc) and one RX thread (recvmmsg on the UDP socket → classify
// → learn → strip → TAP write: rx.cc). The sockets are set up by udp-socket.h. No JS runs on these threads and
// nothing is allocated per packet: each thread owns its batch buffers for its whole life (the opening comments of
// tx.h and rx.cc state each thread's ownership rules).
//
// Threading: the JS thread calls Create/SetTable/Start/Stop/Learned/LocalMacs/InjectFrame/Fault/counters/
// traffic.
// SetTable swaps an immutable snapshot (std::atomic_store on shared_ptr); each thread loads it once per batch.
// Stop() sets stopping_, shuts the UDP socket down (the RX thread sleeps in a blocking recvmmsg) and signals an
// eventfd the TX threads poll, then joins them; only then are the sockets and TAPs closed. Counters are relaxed
// atomics.
//
// Offloads, each probed and dropped at run time when the kernel refuses it (features() says what is on): TAPs
// opened with IFF_VNET_HDR hand over TCP super-frames that TX cuts into segments and sends with UDP_SEGMENT (tx.h);
// the UDP socket receives with UDP_GRO and RX merges TCP runs into super-frames for the TAP (rx.cc).
#pragma once
#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "counters.h"
#include "mss.h"
#include "sys-error.h"
#include "fd.h"
#include "learn.h"
#include "icmp.h"
#include "local-macs.h"
#include "probe.h"
#include "stats.h"
#include "table.h"
#include "udp-socket.h"

namespace vxr {

class Ring;  // uring.h

// Batch shape of the data path, shared by TX and RX.
inline constexpr int kBatch = 64;        // frames per TAP read burst / datagrams per recvmmsg
inline constexpr size_t kSlot = 65536;   // one buffer per frame/datagram: never truncates
inline constexpr int kPollMs = 1000;     // RX wakes at least this often to age learned MACs (and idle GSO sockets)

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
  int learn_max_per_peer = 4096;  // learned MACs per (VNI, VTEP) (config learnMaxPerPeer)
  int learn_max = 65536;          // learned MACs in all (config learnMax)
  bool source_check = true;       // drop datagrams whose inner source is ours or another VTEP's (config sourceCheck)
  size_t max_local_macs = 1024;  // per VNI (LocalMacTable)
  bool udp_gso = true;  // try UDP_SEGMENT sends
  bool udp_gro = true;  // try UDP_GRO receives
  bool arp_suppression = true;  // answer ARP requests for known remote addresses on the bridge
  MssClamp clamp_mss;           // TCP SYNs' MSS clamped both ways (config clampMss); off by default
  std::vector<NetworkConfig> networks;
  // The UDP socket handed over by the router this one takes over (fd-passing.h), or -1: open and bind a new one.
  // Ownership passes to the engine in Create, like the TAP fds.
  int rx_fd = -1;
  // Event loop (config `loop`): threads (one RX thread, one TX thread per TAP), uring (one thread, one io_uring for
  // every socket and TAP: uring.cc) or auto (uring where the kernel allows it). uring and auto fall back to threads
  // when the probe at Start() fails (no io_uring, kernel.io_uring_disabled, a seccomp filter): LoopInfo says why.
  enum class Loop { kThreads, kUring, kAuto } loop = Loop::kThreads;
  // io_uring loop waits: for this many completions, or at least one after this many µs (kernel ≥ 6.12).
  unsigned uring_wait_nr = 1;
  unsigned uring_min_wait_us = 0;
  // A GSO flow socket (FlowSockets) not used for this long is closed. Tests shorten it (createEngine gsoSocketIdleMs).
  int64_t gso_idle_ms = FlowSockets::kDefaultIdleMs;
};

// Which loop runs, and why not io_uring when it was asked for (empty otherwise).
struct LoopInfo {
  bool uring = false;
  std::string fallback;  // e.g. "io_uring_setup: EPERM (Operation not permitted)"
  // io_uring loop: the UDP socket is read by a multishot recvmsg into provided buffers (VXLAN_ROUTER_URING_RECV=
  // multishot, while the kernel takes it), else by a multishot poll and recvmmsg.
  bool recv_multishot = false;
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
  size_t LearnedCount() const { return learned_.Size(); }
  std::vector<LocalMacRow> LocalMacs();
  // Writes a frame onto the bridge of `vni` (gratuitous ARP from the control side). Any thread.
  SysError InjectFrame(uint32_t vni, const uint8_t* frame, size_t len);
  Features features() const;
  LoopInfo loop() const;
  const TrafficStats& traffic() const { return traffic_; }
  size_t GsoSockets() const { return flow_socks_.open(); }  // GSO flow sockets open now (any thread)
  // Why a data-path thread stopped on its own (its TAP deleted, poll failing): the first such error, or ok() while
  // every thread runs. Any thread reports (ReportFault); JS polls (NativeEngineHandle.fault in
  // src/dataplane/native.ts; Engine.fault in engine.ts). Pinned by test/lab/tap-lost.test.ts.
  SysError Fault() const;
  // VNIs whose TAP was deleted under the engine (their TX thread has ended; RX counts rx_tap_write_error for them),
  // waiting for ReplaceTap. JS thread; one lock. tap-swap.cc.
  std::vector<uint32_t> LostTaps() const;
  // Takes `fd` (a fresh TAP for `vni`, owned from here on, also on failure) in place of a lost one: the ended TX
  // thread is joined, the new TAP is dup2()ed onto the old fd number (so the RX thread's writes go to the old or the
  // new TAP, never to a closed fd), and a TX thread starts on it. EBUSY while the old TAP still forwards. JS thread.
  SysError ReplaceTap(uint32_t vni, int fd, bool vnet_hdr);

  // Handover (engine-handover.cc). Quiesce stops the threads and keeps every fd open, with whatever the kernel has
  // queued on them: a frame is either forwarded by this engine before it returns, or left queued for the next one.
  // Start() runs the threads again (a handover that failed). HandoverFds: the UDP socket and the TAPs, in network
  // order. SeedLearned: learned MACs handed over (each as old as it was there); call after SetTable.
  void Quiesce();
  struct HandoverFdSet {
    int rx = -1;
    std::vector<std::pair<uint32_t, int>> taps;  // (VNI, fd)
  };
  HandoverFdSet HandoverFds() const;
  int SeedLearned(const std::vector<LearnRow>& rows);

  // Peer probes (probe.h; the schedule is src/dataplane/peer-health.ts). SendProbe: `payload` to `to`'s VXLAN port,
  // from ours, on the raw socket (DF): 0 or the errno (EMSGSIZE: larger than this host's path allows). JS thread.
  // ProbeReplies: the replies the RX thread took since the last call (at most kMaxProbeReplies).
  struct ProbeReplyRow {
    Addr from;
    uint32_t id;
    uint32_t length;
    int64_t rtt_ns;  // arrival minus the send time the probe carried (CLOCK_MONOTONIC, as process.hrtime)
  };
  int SendProbe(const Addr& to, const uint8_t* payload, size_t len);
  std::vector<ProbeReplyRow> ProbeReplies();

 private:
  struct Network {
    uint32_t vni;
    UniqueFd tap;
    int mtu;
    size_t max_frame;  // largest inner frame its TAP takes: mtu + 14 + 4 (classification's maxFrame)
    bool vnet_hdr;
  };
  explicit Engine(const EngineConfig& cfg);
  // What one TAP's transmit side and the receive side own (tx.cc, rx.cc); a batch of each. The threads loop runs
  // them in TxLoop / RxLoop, the io_uring loop all of them in one thread (uring.cc).
  struct TxState;
  struct RxState;
  std::shared_ptr<TxState> MakeTxState(Network* net);
  std::shared_ptr<RxState> MakeRxState();
  int TxBatch(TxState& s, int limit);  // frames read (≤ limit); tx.cc
  int RxBatch(RxState& s, bool wait);  // datagrams received, or -1 (stopping); rx.cc
  // RxBatch's two halves, for the io_uring receive: slot i of the next batch (a received datagram: payload, its
  // MSG_ flags, sender, control messages), then the stages for slots 0..n-1 (n 0: the aging tick only). rx.cc
  void RxSlot(RxState& s, int i, uint8_t* data, size_t len, int flags, const void* name, size_t namelen,
              void* control, size_t controllen);
  void RxProcess(RxState& s, int n);
  void TxLoop(Network* net);  // tx.cc
  void RxLoop();              // rx.cc
  void UringLoop(std::shared_ptr<Ring> ring);  // uring.cc
  SysError StartUring();  // uring.cc: probes, and starts the loop thread when io_uring is there
  const Network* NetworkFor(uint32_t vni) const;
  static bool WriteTap(const Network& net, const uint8_t* frame, size_t len);
  void ReportFault(SysError err);  // the first one is kept
  void ReportTapLost(const Network* net);  // TX thread: its TAP went away (tap-swap.cc)
  // RX thread: a datagram that IsProbe: a request from a peer is answered (rate-limited), a reply queued for JS,
  // anything else counted as rx_bad_probe. probe-engine.cc.
  void HandleProbe(const uint8_t* p, size_t len, const Addr& from, const Table& table, int64_t now_ms);

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
  bool quiesced_ = false;  // Stop() must not shut the UDP socket down: another process reads it now
  std::atomic<bool> stopping_{false};  // set by Stop() before it wakes the threads
  mutable std::mutex fault_mu_;
  SysError fault_;
  std::vector<bool> tap_lost_;  // by index in nets_, guarded by fault_mu_ (sized on first use)
  bool uring_on_ = false;       // the running loop is io_uring's (set by Start on the JS thread)
  std::string uring_fallback_;  // why not, when it was asked for (JS thread)
  // The io_uring loop's receive: what was asked for (StartUring), then what the loop thread got (uring.cc).
  std::atomic<bool> uring_recv_ms_{false};
  UniqueFd kick_fd_;            // io_uring loop: ReplaceTap signals a new TAP to poll
  TooBigLimiter probe_answers_{kProbeAnswerRate, kProbeAnswerBurst};  // RX thread only
  std::mutex probe_mu_;
  std::vector<ProbeReplyRow> probe_replies_;  // guarded by probe_mu_; at most kMaxProbeReplies
};

int64_t NowMs();

}  // namespace vxr
