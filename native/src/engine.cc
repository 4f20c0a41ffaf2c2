// Engine lifecycle: create (sockets, TAPs non-blocking), table swaps, start and stop of the threads, and what the JS
// thread reads. The threads' loops are in tx.cc and rx.cc (see engine.h for the threading rules). Status codes only;
// nothing here throws.
#include "engine.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <string.h>

#include <algorithm>
#include <string>

#include "offload.h"

namespace vxr {

int64_t NowMs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

Engine::Engine(const EngineConfig& cfg)
    : cfg_(cfg),
      flow_socks_(cfg.gso_idle_ms),
      table_(std::make_shared<Table>()),
      learned_(cfg.aging_ms, cfg.learn_max_per_peer, cfg.learn_max),
      local_(cfg.aging_ms, cfg.max_local_macs) {
  for (const auto& n : cfg.networks) {
    const size_t max_frame = static_cast<size_t>(n.mtu) + kEthHeaderLen + 4;
    nets_.push_back(Network{n.vni, UniqueFd(n.tap_fd), n.mtu, max_frame, n.vnet_hdr});
    max_frame_ = std::max(max_frame_, max_frame);
  }
}

Engine::~Engine() { Stop(); }

SysError Engine::Create(const EngineConfig& cfg, std::unique_ptr<Engine>* out) {
  std::unique_ptr<Engine> e(new Engine(cfg));  // owns the TAP fds from here on
  UniqueFd inherited(cfg.rx_fd);  // owned from here on, like the TAP fds
  if (SysError err = inherited.valid() ? AdoptRxSocket(std::move(inherited), kPollMs, cfg.udp_gro, &e->rx_sock_, &e->gro_on_)
                                       : OpenRxSocket(cfg.local, cfg.port, kPollMs, cfg.udp_gro, &e->rx_sock_, &e->gro_on_);
      !err.ok())
    return err;
  e->gso_ok_ = cfg.udp_gso;  // turned off by the first GSO send the kernel refuses
  if (SysError err = OpenTxSocket(cfg.local, &e->tx_sock_); !err.ok()) return err;

  e->stop_fd_.reset(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!e->stop_fd_.valid()) return Errno("eventfd");
  e->kick_fd_.reset(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!e->kick_fd_.valid()) return Errno("eventfd");
  for (auto& n : e->nets_) {
    const int flags = fcntl(n.tap.get(), F_GETFL);
    if (flags < 0 || fcntl(n.tap.get(), F_SETFL, flags | O_NONBLOCK) < 0) return Errno("fcntl(TAP, O_NONBLOCK)");
  }
  *out = std::move(e);
  return {};
}

void Engine::SetTable(std::shared_ptr<const Table> t) {
  learned_.RetainPeers(*t);
  traffic_.Retain(*t);
  std::atomic_store(&table_, std::move(t));
}

SysError Engine::Start() {
  if (started_ || stopped_) return {};
  started_ = true;
  quiesced_ = false;  // started again after a handover that failed: the socket is ours alone again
  uring_on_ = false;
  uring_fallback_.clear();
  if (cfg_.loop != EngineConfig::Loop::kThreads) {
    const SysError e = StartUring();
    if (e.ok()) return {};
    // Forbidden or missing (a container's seccomp profile, kernel.io_uring_disabled, an old kernel): the threads.
    const char* name = strerrorname_np(e.err);
    uring_fallback_ = e.what + ": " + (name != nullptr ? name : std::to_string(e.err)) + " (" + strerror(e.err) + ")";
  }
  // Named so that `top -H` / `ps -L` tell the data path's threads apart (15 characters at most). Named here, not by
  // the thread itself, so that the names are set when Start() returns.
  threads_.emplace_back([this] { RxLoop(); });
  pthread_setname_np(threads_.back().native_handle(), "vxr-rx");
  for (auto& n : nets_) {
    threads_.emplace_back([this, net = &n] { TxLoop(net); });
    pthread_setname_np(threads_.back().native_handle(), ("vxr-tx-" + std::to_string(n.vni)).substr(0, 15).c_str());
  }
  return {};
}

void Engine::Stop() {
  if (stopped_) return;
  stopped_ = true;
  stopping_.store(true, std::memory_order_relaxed);
  // Wakes the RX thread out of recvmmsg (an unconnected UDP socket says ENOTCONN but still marks and wakes it).
  // Not after a handover: the socket is shared with the router that took over.
  if (rx_sock_.valid() && !quiesced_) shutdown(rx_sock_.get(), SHUT_RD);
  if (stop_fd_.valid()) {
    const uint64_t one = 1;
    ssize_t ignored = write(stop_fd_.get(), &one, sizeof(one));
    (void)ignored;
  }
  for (auto& t : threads_) t.join();
  threads_.clear();
  rx_sock_.reset();
  tx_sock_.reset();
  flow_socks_.CloseAll();
  for (auto& n : nets_) n.tap.reset();  // removes the TAPs
  stop_fd_.reset();
}

void Engine::ReportFault(SysError err) {
  std::lock_guard<std::mutex> lock(fault_mu_);
  if (fault_.ok()) fault_ = std::move(err);
}

SysError Engine::Fault() const {
  std::lock_guard<std::mutex> lock(fault_mu_);
  return fault_;
}

std::vector<LearnRow> Engine::Learned() const { return learned_.Dump(NowMs()); }

std::vector<LocalMacRow> Engine::LocalMacs() { return local_.Dump(NowMs()); }

bool Engine::WriteTap(const Network& net, const uint8_t* frame, size_t len) {
  uint8_t zero[kVnetHdrLen] = {};
  iovec iov[2] = {{zero, kVnetHdrLen}, {const_cast<uint8_t*>(frame), len}};
  return net.vnet_hdr ? writev(net.tap.get(), iov, 2) >= 0 : write(net.tap.get(), frame, len) >= 0;
}

SysError Engine::InjectFrame(uint32_t vni, const uint8_t* frame, size_t len) {
  const Network* net = NetworkFor(vni);
  if (net == nullptr || stopped_) return SysError{ENOENT, "no TAP for VNI " + std::to_string(vni)};
  if (!WriteTap(*net, frame, len)) return Errno("write to the TAP of VNI " + std::to_string(vni));
  return {};
}

LoopInfo Engine::loop() const { return LoopInfo{uring_on_, uring_fallback_, uring_recv_ms_.load(std::memory_order_relaxed)}; }

Features Engine::features() const {
  Features f;
  for (const auto& n : nets_) f.tap_vnet_hdr |= n.vnet_hdr;
  f.udp_gso = gso_ok_.load(std::memory_order_relaxed);
  f.udp_gro = gro_on_;
  return f;
}

const Engine::Network* Engine::NetworkFor(uint32_t vni) const {
  for (const auto& n : nets_)
    if (n.vni == vni) return &n;
  return nullptr;
}

}  // namespace vxr
