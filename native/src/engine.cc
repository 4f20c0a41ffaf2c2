// Engine threads (see engine.h for the threading, batch and buffer-ownership rules). Hot path: status codes and
// counters only; nothing here throws or allocates per packet.
#include "engine.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <netinet/in.h>
#include <poll.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <array>
#include <atomic>

namespace vxr {

namespace {

constexpr int kBatch = 64;           // frames per TAP read burst / datagrams per recvmmsg
constexpr size_t kSlot = 65536;      // one buffer per frame/datagram: never truncates
constexpr int kMaxMsgs = 1024;       // sendmmsg vector (UIO_MAXIOV)
constexpr int kSocketBuffer = 4 << 20;
constexpr int kPollMs = 1000;        // RX wakes at least this often to age learned MACs

SysError Errno(const std::string& what) { return SysError{errno, what}; }

void BigBuffer(int fd, int force_opt, int opt) {
  if (setsockopt(fd, SOL_SOCKET, force_opt, &kSocketBuffer, sizeof(kSocketBuffer)) < 0)
    setsockopt(fd, SOL_SOCKET, opt, &kSocketBuffer, sizeof(kSocketBuffer));
}

}  // namespace

int64_t NowMs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

Engine::Engine(const EngineConfig& cfg) : cfg_(cfg), table_(std::make_shared<Table>()), learned_(cfg.aging_ms) {
  for (const auto& n : cfg.networks) {
    const size_t max_frame = static_cast<size_t>(n.mtu) + kEthHeaderLen + 4;
    nets_.push_back(Network{n.vni, UniqueFd(n.tap_fd), n.mtu, max_frame});
    max_frame_ = std::max(max_frame_, max_frame);
  }
}

Engine::~Engine() { Stop(); }

SysError Engine::Create(const EngineConfig& cfg, std::unique_ptr<Engine>* out) {
  std::unique_ptr<Engine> e(new Engine(cfg));  // owns the TAP fds from here on
  const int family = cfg.local.len == 4 ? AF_INET : AF_INET6;
  char local_text[INET6_ADDRSTRLEN];
  AddrToText(cfg.local, local_text, sizeof(local_text));

  e->rx_sock_.reset(socket(family, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!e->rx_sock_.valid()) return Errno("socket(UDP)");
  sockaddr_storage sa;
  socklen_t salen = ToSockaddr(cfg.local, cfg.port, &sa);
  if (bind(e->rx_sock_.get(), reinterpret_cast<sockaddr*>(&sa), salen) < 0)
    return Errno(std::string("bind UDP ") + local_text + " port " + std::to_string(cfg.port));
  BigBuffer(e->rx_sock_.get(), SO_RCVBUFFORCE, SO_RCVBUF);

  // Raw UDP socket for sending: we pick the outer source port per flow and write the UDP header ourselves; the
  // kernel adds the IP header. DF always: VXLAN is never fragmented.
  e->tx_sock_.reset(socket(family, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_UDP));
  if (!e->tx_sock_.valid()) return Errno("socket(SOCK_RAW, IPPROTO_UDP)");
  salen = ToSockaddr(cfg.local, 0, &sa);
  if (bind(e->tx_sock_.get(), reinterpret_cast<sockaddr*>(&sa), salen) < 0)
    return Errno(std::string("bind raw ") + local_text);
  const int pmtu = family == AF_INET ? IP_PMTUDISC_DO : IPV6_PMTUDISC_DO;
  if (setsockopt(e->tx_sock_.get(), family == AF_INET ? IPPROTO_IP : IPPROTO_IPV6,
                 family == AF_INET ? IP_MTU_DISCOVER : IPV6_MTU_DISCOVER, &pmtu, sizeof(pmtu)) < 0)
    return Errno("setsockopt(MTU_DISCOVER)");
  // A raw IPPROTO_UDP socket would get a copy of every inbound UDP datagram: a filter that accepts nothing.
  sock_filter reject_all[] = {{BPF_RET | BPF_K, 0, 0, 0}};
  sock_fprog prog{1, reject_all};
  if (setsockopt(e->tx_sock_.get(), SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof(prog)) < 0)
    return Errno("setsockopt(SO_ATTACH_FILTER)");
  // Datagrams queued between socket() and the filter would sit in the receive queue forever: drain them once.
  alignas(8) uint8_t junk[64];
  while (recv(e->tx_sock_.get(), junk, sizeof(junk), MSG_DONTWAIT | MSG_TRUNC) >= 0) {
  }
  BigBuffer(e->tx_sock_.get(), SO_SNDBUFFORCE, SO_SNDBUF);

  e->stop_fd_.reset(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!e->stop_fd_.valid()) return Errno("eventfd");
  for (auto& n : e->nets_) {
    const int flags = fcntl(n.tap.get(), F_GETFL);
    if (flags < 0 || fcntl(n.tap.get(), F_SETFL, flags | O_NONBLOCK) < 0) return Errno("fcntl(TAP, O_NONBLOCK)");
  }
  *out = std::move(e);
  return {};
}

void Engine::SetTable(std::shared_ptr<const Table> t) {
  learned_.RetainPeers(*t);
  std::atomic_store(&table_, std::move(t));
}

SysError Engine::Start() {
  if (started_ || stopped_) return {};
  started_ = true;
  threads_.emplace_back([this] { RxLoop(); });
  for (auto& n : nets_) threads_.emplace_back([this, net = &n] { TxLoop(net); });
  return {};
}

void Engine::Stop() {
  if (stopped_) return;
  stopped_ = true;
  if (stop_fd_.valid()) {
    const uint64_t one = 1;
    ssize_t ignored = write(stop_fd_.get(), &one, sizeof(one));
    (void)ignored;
  }
  for (auto& t : threads_) t.join();
  threads_.clear();
  rx_sock_.reset();
  tx_sock_.reset();
  for (auto& n : nets_) n.tap.reset();  // removes the TAPs
  stop_fd_.reset();
}

std::vector<LearnRow> Engine::Learned() const { return learned_.Dump(NowMs()); }

const Engine::Network* Engine::NetworkFor(uint32_t vni) const {
  for (const auto& n : nets_)
    if (n.vni == vni) return &n;
  return nullptr;
}

namespace {

// One frame of a TX batch and where it goes. `to` points into the table snapshot (static entry) or at `learned`;
// both live until the batch is sent. Flood frames go to every peer of the VNI.
struct TxFrame {
  uint8_t* buf = nullptr;
  size_t len = 0;
  enum class Dest : uint8_t { kDrop, kUnicast, kFlood, kLookupLearned } dest = Dest::kDrop;
  const Peer* to = nullptr;
  Peer learned;
};

}  // namespace

// TX thread of one TAP. Stages per batch: read (non-blocking until EAGAIN or kBatch), resolve (drops, static then
// learned lookup), encapsulate + queue (one message per destination), send (sendmmsg). Twins: flowPort and
// encapsulate in src/packet (byte layout); forwarding rules as in src/dataplane/js-engine.ts.
void Engine::TxLoop(Network* net) {
  std::vector<uint8_t> slots(static_cast<size_t>(kBatch) * kSlot);
  std::array<TxFrame, kBatch> frames{};
  for (int i = 0; i < kBatch; i++) frames[i].buf = &slots[static_cast<size_t>(i) * kSlot];
  std::vector<mmsghdr> msgs(kMaxMsgs);
  std::vector<std::array<iovec, 2>> iovs(kMaxMsgs);
  std::vector<std::array<uint8_t, kEncapHeaderLen>> hdrs(kMaxMsgs);
  std::vector<sockaddr_storage> names(kMaxMsgs);
  const size_t ip_header = cfg_.local.len == 4 ? 20 : 40;
  const size_t max_frame_out = static_cast<size_t>(cfg_.underlay_mtu) - ip_header - kEncapHeaderLen;
  pollfd pfd[2] = {{net->tap.get(), POLLIN, 0}, {stop_fd_.get(), POLLIN, 0}};
  int m = 0;

  // Send stage: everything queued, in as few sendmmsg calls as the kernel allows.
  auto send = [&] {
    int sent = 0;
    while (sent < m) {
      const int r = sendmmsg(tx_sock_.get(), &msgs[sent], static_cast<unsigned>(m - sent), 0);
      if (r < 0) {
        if (errno == EINTR) continue;
        counters_.drop(Drop::kTxSendError);  // skip the datagram the kernel refused, keep the rest
        sent++;
        continue;
      }
      counters_.add(Traffic::kTxDatagrams, static_cast<uint64_t>(r));
      sent += r;
    }
    m = 0;
  };
  auto queue = [&](const TxFrame& f, uint64_t frame_sum, uint16_t sport, const Peer& to) {
    if (m == kMaxMsgs) send();
    WriteEncapHeader(hdrs[m].data(), net->vni, sport, cfg_.port, cfg_.local, to.addr, f.len, frame_sum);
    names[m] = to.sa;
    iovs[m][0] = {hdrs[m].data(), kEncapHeaderLen};
    iovs[m][1] = {f.buf, f.len};
    msghdr& h = msgs[m].msg_hdr;
    h = msghdr{};
    h.msg_name = &names[m];
    h.msg_namelen = to.salen;
    h.msg_iov = iovs[m].data();
    h.msg_iovlen = 2;
    m++;
  };

  for (;;) {
    if (poll(pfd, 2, -1) < 0 && errno != EINTR) break;
    if (pfd[1].revents) break;
    if (pfd[0].revents & (POLLERR | POLLHUP | POLLNVAL)) break;  // TAP gone

    // Read stage.
    int n = 0;
    while (n < kBatch) {
      const ssize_t got = read(net->tap.get(), frames[n].buf, kSlot);
      if (got < 0) {
        if (errno == EINTR) continue;
        break;  // EAGAIN: the burst is over
      }
      frames[n++].len = static_cast<size_t>(got);
    }
    if (n == 0) continue;

    // Resolve stage: one table snapshot and at most one learned-table lock for the whole batch.
    const std::shared_ptr<const Table> table = std::atomic_load(&table_);
    const auto vt = table->vnis.find(net->vni);
    const bool has_peers = vt != table->vnis.end() && !vt->second.flood.empty();
    bool need_learned = false;
    for (int i = 0; i < n; i++) {
      TxFrame& f = frames[i];
      f.dest = TxFrame::Dest::kDrop;
      if (f.len < kEthHeaderLen) {
        counters_.drop(Drop::kTxShortFrame);
      } else if (f.len > max_frame_out) {
        counters_.drop(Drop::kTxTooBig);
      } else if (!has_peers) {
        counters_.drop(Drop::kTxNoDestination);
      } else if (f.buf[0] & 1) {
        f.dest = TxFrame::Dest::kFlood;  // broadcast / multicast
      } else if (const auto st = vt->second.macs.find(MacKey(f.buf)); st != vt->second.macs.end()) {
        f.dest = TxFrame::Dest::kUnicast;  // static entries win over learned ones
        f.to = &table->peers[static_cast<size_t>(st->second)];
      } else {
        f.dest = cfg_.learning ? TxFrame::Dest::kLookupLearned : TxFrame::Dest::kFlood;
        need_learned |= cfg_.learning;
      }
    }
    if (need_learned) {
      const int64_t now = NowMs();
      const LearnTable::Reader reader(learned_);
      for (int i = 0; i < n; i++) {
        TxFrame& f = frames[i];
        if (f.dest != TxFrame::Dest::kLookupLearned) continue;
        const bool known = reader.Lookup(net->vni, MacKey(f.buf), now, &f.learned);
        f.dest = known ? TxFrame::Dest::kUnicast : TxFrame::Dest::kFlood;  // unknown unicast floods
        f.to = &f.learned;
      }
    }

    // Encapsulate stage.
    for (int i = 0; i < n; i++) {
      const TxFrame& f = frames[i];
      if (f.dest == TxFrame::Dest::kDrop) continue;
      const uint64_t sum = Sum16(f.buf, f.len);  // once per frame, shared by every copy of a flood
      const uint16_t sport = FlowPort(f.buf, f.len);
      if (f.dest == TxFrame::Dest::kUnicast) {
        queue(f, sum, sport, *f.to);
      } else {
        for (const int p : vt->second.flood) queue(f, sum, sport, table->peers[static_cast<size_t>(p)]);
        counters_.add(Traffic::kTxFlooded);
      }
      counters_.add(Traffic::kTxFrames);
      counters_.add(Traffic::kTxBytes, f.len);
    }

    // Send stage: frames point into the slots, so send before the next read reuses them.
    send();
  }
}

// The RX thread. Stages per batch: recvmmsg (kBatch × 64 KiB, preallocated) → classify (contract order; twin:
// classifyDatagram in src/dataplane/classify.ts) → per-network size check → TAP write → learn (one call per batch).
void Engine::RxLoop() {
  std::vector<uint8_t> bufs(static_cast<size_t>(kBatch) * kSlot);
  std::array<mmsghdr, kBatch> msgs{};
  std::array<iovec, kBatch> iov{};
  std::array<sockaddr_storage, kBatch> names{};
  std::array<LearnTable::Sighting, kBatch> sightings{};
  pollfd pfd[2] = {{rx_sock_.get(), POLLIN, 0}, {stop_fd_.get(), POLLIN, 0}};
  int64_t last_expire = NowMs();

  for (;;) {
    const int pr = poll(pfd, 2, kPollMs);
    if (pr < 0 && errno != EINTR) break;
    if (pfd[1].revents) break;
    const int64_t now = NowMs();
    if (now - last_expire >= kPollMs) {
      learned_.Expire(now);
      last_expire = now;
    }
    if (pr <= 0 || !(pfd[0].revents & POLLIN)) continue;
    for (int i = 0; i < kBatch; i++) {
      iov[i] = {&bufs[static_cast<size_t>(i) * kSlot], kSlot};
      msgs[i].msg_hdr = msghdr{};
      msgs[i].msg_hdr.msg_name = &names[i];
      msgs[i].msg_hdr.msg_namelen = sizeof(names[i]);
      msgs[i].msg_hdr.msg_iov = &iov[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
    }
    const int r = recvmmsg(rx_sock_.get(), msgs.data(), kBatch, MSG_DONTWAIT, nullptr);
    if (r <= 0) continue;
    const std::shared_ptr<const Table> table = std::atomic_load(&table_);
    int ns = 0;
    for (int i = 0; i < r; i++) {
      const uint8_t* p = &bufs[static_cast<size_t>(i) * kSlot];
      const size_t len = msgs[i].msg_len;
      if (msgs[i].msg_hdr.msg_flags & MSG_TRUNC) {
        counters_.drop(Drop::kRxOversize);
        continue;
      }
      Addr from;
      if (!AddrFromSockaddr(names[i], &from)) {
        counters_.drop(Drop::kRxUnknownSource);
        continue;
      }
      const ClassifyResult c = Classify(p, len, max_frame_, [&](uint32_t vni) { return table->PeerState(vni, from); });
      if (!c.ok) {
        counters_.drop(c.reason);
        continue;
      }
      const uint8_t* inner = p + kVxlanHeaderLen;
      const size_t inner_len = len - kVxlanHeaderLen;
      const Network* net = NetworkFor(c.vni);
      if (net == nullptr) {  // in the table but not served by a TAP of this engine
        counters_.drop(Drop::kRxUnknownVni);
        continue;
      }
      if (inner_len > net->max_frame) {  // Classify checked the largest TAP; this one may be smaller
        counters_.drop(Drop::kRxOversize);
        continue;
      }
      if (cfg_.learning && (inner[6] & 1) == 0) {
        const uint64_t src = MacKey(inner + 6);
        const auto vt = table->vnis.find(c.vni);  // present: Classify accepted the VNI
        if (vt != table->vnis.end() && !vt->second.macs.count(src)) sightings[ns++] = {c.vni, src, from};
      }
      if (write(net->tap.get(), inner, inner_len) < 0) {
        counters_.drop(Drop::kRxTapWriteError);
        continue;
      }
      counters_.add(Traffic::kRxDatagrams);
      counters_.add(Traffic::kRxBytes, inner_len);
    }
    if (ns > 0) {
      const int learned = learned_.LearnBatch(sightings.data(), ns, now);
      if (learned > 0) counters_.add(Traffic::kLearned, static_cast<uint64_t>(learned));
    }
  }
}

}  // namespace vxr
