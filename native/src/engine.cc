// Engine threads (see engine.h for the threading, batch and buffer-ownership rules). Hot path: status codes and
// counters only; nothing here throws or allocates per packet.
#include "engine.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/udp.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <array>
#include <atomic>

#include "arp.h"
#include "nd.h"
#include "offload.h"

namespace vxr {

namespace {

constexpr int kBatch = 64;           // frames per TAP read burst / datagrams per recvmmsg
constexpr size_t kSlot = 65536;      // one buffer per frame/datagram: never truncates
constexpr int kMaxMsgs = 1024;       // sendmmsg vector (UIO_MAXIOV)
constexpr int kPollMs = 1000;        // RX wakes at least this often to age learned MACs
constexpr size_t kMaxGsoBytes = 65507;  // one GSO send is one UDP datagram's worth of payload (IPv4 limit)

// The address a frame from the bridge speaks for (IPv4 first, then IPv6); len 0 when it names none.
Addr SenderIp(const uint8_t* f, size_t len) {
  Addr a;
  uint32_t v4;
  if (SenderIpv4(f, len, &v4)) {
    a.len = 4;
    for (int i = 0; i < 4; i++) a.bytes[i] = static_cast<uint8_t>(v4 >> (24 - 8 * i));
  } else if (SenderIpv6(f, len, a.bytes)) {
    a.len = 16;
  } else {
    a = Addr{};
  }
  return a;
}

}  // namespace

int64_t NowMs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

Engine::Engine(const EngineConfig& cfg)
    : cfg_(cfg), table_(std::make_shared<Table>()), learned_(cfg.aging_ms), local_(cfg.aging_ms) {
  for (const auto& n : cfg.networks) {
    const size_t max_frame = static_cast<size_t>(n.mtu) + kEthHeaderLen + 4;
    nets_.push_back(Network{n.vni, UniqueFd(n.tap_fd), n.mtu, max_frame, n.vnet_hdr});
    max_frame_ = std::max(max_frame_, max_frame);
  }
}

Engine::~Engine() { Stop(); }

SysError Engine::Create(const EngineConfig& cfg, std::unique_ptr<Engine>* out) {
  std::unique_ptr<Engine> e(new Engine(cfg));  // owns the TAP fds from here on
  if (SysError err = OpenRxSocket(cfg.local, cfg.port, kPollMs, cfg.udp_gro, &e->rx_sock_, &e->gro_on_); !err.ok())
    return err;
  e->gso_ok_ = cfg.udp_gso;  // turned off by the first GSO send the kernel refuses
  if (SysError err = OpenTxSocket(cfg.local, &e->tx_sock_); !err.ok()) return err;

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
  traffic_.Retain(*t);
  std::atomic_store(&table_, std::move(t));
}

SysError Engine::Start() {
  if (started_ || stopped_) return {};
  started_ = true;
  // Named so that `top -H` / `ps -L` tell the data path's threads apart (15 characters at most).
  threads_.emplace_back([this] {
    pthread_setname_np(pthread_self(), "vxr-rx");
    RxLoop();
  });
  for (auto& n : nets_) {
    threads_.emplace_back([this, net = &n] {
      pthread_setname_np(pthread_self(), ("vxr-tx-" + std::to_string(net->vni)).substr(0, 15).c_str());
      TxLoop(net);
    });
  }
  return {};
}

void Engine::Stop() {
  if (stopped_) return;
  stopped_ = true;
  stopping_.store(true, std::memory_order_relaxed);
  // Wakes the RX thread out of recvmmsg (an unconnected UDP socket says ENOTCONN but still marks and wakes it).
  if (rx_sock_.valid()) shutdown(rx_sock_.get(), SHUT_RD);
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

namespace {

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

}  // namespace

// TX thread of one TAP. Stages per batch: read (non-blocking until EAGAIN or kBatch; checksums the sender left
// partial are finished here), resolve (drops, static then learned lookup), encapsulate + queue (one message per
// destination and segment), send (sendmmsg on the raw socket; TSO segments to one destination in UDP_SEGMENT
// sends). Twins: flowPort and encapsulate in src/packet (byte layout); forwarding rules as in
// src/dataplane/js-engine.ts; segmentation pinned by test/native/offload.test.ts.
void Engine::TxLoop(Network* net) {
  std::vector<uint8_t> slots(static_cast<size_t>(kBatch) * kSlot);
  std::array<TxFrame, kBatch> frames{};
  for (int i = 0; i < kBatch; i++) frames[i].slot = &slots[static_cast<size_t>(i) * kSlot];
  std::vector<mmsghdr> msgs(kMaxMsgs);
  std::vector<std::array<iovec, 3>> iovs(kMaxMsgs);
  std::vector<std::array<uint8_t, kEncapHeaderLen>> hdrs(kMaxMsgs);
  std::vector<sockaddr_storage> names(kMaxMsgs);
  // Headers of the TSO segments queued on the raw socket (one per message at most) and of one GSO send.
  std::vector<uint8_t> seg_hdrs(static_cast<size_t>(kMaxMsgs) * kMaxSegHeader);
  std::vector<uint8_t> gso_hdrs(static_cast<size_t>(kMaxGsoSegments) * kMaxSegHeader);
  std::array<iovec, 3 * kMaxGsoSegments> gso_iov{};
  uint8_t vxlan_hdr[kVxlanHeaderLen] = {kVxlanFlagI, 0, 0, 0, static_cast<uint8_t>(net->vni >> 16),
                                        static_cast<uint8_t>(net->vni >> 8), static_cast<uint8_t>(net->vni), 0};
  const size_t ip_header = cfg_.local.len == 4 ? 20 : 40;
  const size_t max_frame_out = static_cast<size_t>(cfg_.underlay_mtu) - ip_header - kEncapHeaderLen;
  const size_t vnet = net->vnet_hdr ? kVnetHdrLen : 0;
  pollfd pfd[2] = {{net->tap.get(), POLLIN, 0}, {stop_fd_.get(), POLLIN, 0}};
  int m = 0;
  // Local MACs (frame sources), reported to local_ at most once a second each: a few recent ones remembered here.
  constexpr int kRecent = 16;
  struct Recent {
    uint64_t mac;
    Addr ip;
    int64_t at_ms;
  };
  std::array<Recent, kRecent> recent{};
  std::array<LocalMacTable::Sighting, kBatch> fresh{};
  uint8_t arp_reply[kMinFrame];
  uint8_t nd_advert[kNaFrameLen];
  Tally tally;  // this batch's datagrams per peer and frames of the VNI
  auto count_peer = [&](const Addr& a, uint64_t datagrams, uint64_t bytes) {
    if (tally.Full()) traffic_.Merge(&tally, TrafficStats::Dir::kTx, 0);
    tally.Peer(a, datagrams, bytes);
  };

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
  // Queues one datagram on the raw socket: our UDP + VXLAN header, then `head` (the frame, or a segment's
  // headers) and `tail` (a segment's payload; empty for a whole frame). `sum` is Sum16 over head and tail.
  auto queue = [&](const iovec& head, const iovec& tail, uint64_t sum, uint16_t sport, const Peer& to) {
    if (m == kMaxMsgs) send();
    WriteEncapHeader(hdrs[m].data(), net->vni, sport, cfg_.port, cfg_.local, to.addr, head.iov_len + tail.iov_len, sum);
    names[m] = to.sa;
    count_peer(to.addr, 1, head.iov_len + tail.iov_len);
    iovs[m][0] = {hdrs[m].data(), kEncapHeaderLen};
    iovs[m][1] = head;
    iovs[m][2] = tail;
    msghdr& h = msgs[m].msg_hdr;
    h = msghdr{};
    h.msg_name = &names[m];
    h.msg_namelen = to.salen;
    h.msg_iov = iovs[m].data();
    h.msg_iovlen = tail.iov_len > 0 ? 3 : 2;
    m++;
  };
  // Segments [from, to) of a TSO frame to one peer in one UDP_SEGMENT send from the flow's own UDP socket.
  // Returns false when GSO is not available (the caller falls back to the raw socket); send errors are counted.
  auto send_gso = [&](const TxFrame& f, size_t from, size_t to, uint16_t sport, const Peer& peer) {
    const int fd = flow_socks_.Get(cfg_.local, sport);
    if (fd < 0) return false;
    int n = 0;
    for (size_t i = from; i < to; i++) {
      uint8_t* h = &gso_hdrs[(i - from) * kMaxSegHeader];
      WriteSegmentHeader(f.buf, f.tso, i, h);
      gso_iov[n++] = {vxlan_hdr, kVxlanHeaderLen};
      gso_iov[n++] = {h, f.tso.hdr_len};
      gso_iov[n++] = {f.buf + f.tso.hdr_len + i * f.tso.mss, SegmentPayload(f.tso, i)};
    }
    sockaddr_storage dst = peer.sa;
    if (dst.ss_family == AF_INET)
      reinterpret_cast<sockaddr_in&>(dst).sin_port = htons(cfg_.port);
    else
      reinterpret_cast<sockaddr_in6&>(dst).sin6_port = htons(cfg_.port);
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(uint16_t))] = {};
    msghdr h{};
    h.msg_name = &dst;
    h.msg_namelen = peer.salen;
    h.msg_iov = gso_iov.data();
    h.msg_iovlen = static_cast<size_t>(n);
    h.msg_control = control;
    h.msg_controllen = sizeof(control);
    cmsghdr* c = CMSG_FIRSTHDR(&h);
    c->cmsg_level = IPPROTO_UDP;
    c->cmsg_type = UDP_SEGMENT;
    c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
    const uint16_t seg = static_cast<uint16_t>(kVxlanHeaderLen + f.tso.hdr_len + f.tso.mss);
    memcpy(CMSG_DATA(c), &seg, sizeof(seg));
    ssize_t r;
    do r = sendmsg(fd, &h, 0);
    while (r < 0 && errno == EINTR);
    if (r < 0 && (errno == EIO || errno == EINVAL || errno == ENOPROTOOPT || errno == EOPNOTSUPP)) {
      gso_ok_.store(false, std::memory_order_relaxed);  // no UDP GSO on this path: the raw socket from now on
      return false;
    }
    if (r < 0) {
      counters_.drop(Drop::kTxSendError, to - from);
    } else {
      counters_.add(Traffic::kTxDatagrams, to - from);
      counters_.add(Traffic::kTxGsoSends);
      count_peer(peer.addr, to - from, static_cast<uint64_t>(r) - (to - from) * kVxlanHeaderLen);
    }
    return true;
  };
  // Every segment of a TSO frame to one peer: GSO sends when possible, else one raw message per segment.
  auto send_segments = [&](const TxFrame& f, uint16_t sport, const Peer& peer) {
    const size_t per_send = std::min<size_t>(kMaxGsoSegments, kMaxGsoBytes / (kVxlanHeaderLen + f.tso.hdr_len + f.tso.mss));
    size_t i = 0;
    if (gso_ok_.load(std::memory_order_relaxed) && per_send > 1) {
      send();  // what is queued on the raw socket goes first: no reordering within a flow
      for (; i < f.tso.segments; i += per_send)
        if (!send_gso(f, i, std::min(f.tso.segments, i + per_send), sport, peer)) break;
    }
    for (; i < f.tso.segments; i++) {
      if (m == kMaxMsgs) send();
      uint8_t* h = &seg_hdrs[static_cast<size_t>(m) * kMaxSegHeader];
      WriteSegmentHeader(f.buf, f.tso, i, h);
      const iovec head{h, f.tso.hdr_len};
      const iovec tail{f.buf + f.tso.hdr_len + i * f.tso.mss, SegmentPayload(f.tso, i)};
      queue(head, tail, Sum16(static_cast<uint8_t*>(tail.iov_base), tail.iov_len, Sum16(h, head.iov_len)), sport, peer);
    }
  };

  for (;;) {
    // What was queued while the last batch was being sent is read at once; only an empty queue puts the thread to
    // sleep. After a sleep the first frame goes out alone, before the read that would find the queue empty: a lone
    // packet (a ping, a request) does not wait for that system call.
    int pr = poll(pfd, 2, 0);
    const bool woke = pr == 0;
    if (woke) pr = poll(pfd, 2, -1);
    if (pr < 0 && errno != EINTR) break;
    if (pfd[1].revents) break;
    if (pfd[0].revents & (POLLERR | POLLHUP | POLLNVAL)) break;  // TAP gone

    // Read stage.
    const int limit = woke ? 1 : kBatch;
    int n = 0;
    while (n < limit) {
      TxFrame& f = frames[n];
      const ssize_t got = read(net->tap.get(), f.slot, kSlot);
      if (got < 0) {
        if (errno == EINTR) continue;
        break;  // EAGAIN: the burst is over
      }
      f.tso.segments = 0;
      f.bad_offload = false;
      f.buf = f.slot + vnet;
      f.len = static_cast<size_t>(got) > vnet ? static_cast<size_t>(got) - vnet : 0;
      n++;
      if (vnet == 0 || f.len == 0) continue;
      const VnetHdr vh = ReadVnetHdr(f.slot);
      if (vh.gso_type != VIRTIO_NET_HDR_GSO_NONE) {
        f.bad_offload = !ParseTso(f.buf, f.len, vh, &f.tso);
        if (!f.bad_offload) counters_.add(Traffic::kTxTsoFrames);
      } else if (vh.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) {
        f.bad_offload = !FinishChecksum(f.buf, f.len, vh);
      }
    }
    if (n == 0) continue;

    // Local MACs: unicast sources not reported in the last second, then one lock for the batch.
    const int64_t now_ms = NowMs();
    int nf = 0;
    for (int i = 0; i < n; i++) {
      const TxFrame& f = frames[i];
      if (f.len < kEthHeaderLen || (f.buf[6] & 1)) continue;
      const uint64_t src = MacKey(f.buf + 6);
      const Addr ip = SenderIp(f.buf, f.len);
      Recent& slot = recent[(src ^ AddrHash()(ip)) % kRecent];
      if (slot.mac == src && slot.ip == ip && now_ms - slot.at_ms < 1000) continue;
      slot = {src, ip, now_ms};
      fresh[nf++] = {src, ip};
    }
    if (nf > 0) local_.SeenBatch(net->vni, fresh.data(), nf, now_ms);

    // Resolve stage: one table snapshot and at most one learned-table lock for the whole batch.
    const std::shared_ptr<const Table> table = std::atomic_load(&table_);
    const auto vt = table->vnis.find(net->vni);
    const bool has_peers = vt != table->vnis.end() && !vt->second.flood.empty();
    bool need_learned = false;
    for (int i = 0; i < n; i++) {
      TxFrame& f = frames[i];
      f.dest = TxFrame::Dest::kDrop;
      if (f.bad_offload) {
        counters_.drop(Drop::kTxBadOffload);
      } else if (f.len < kEthHeaderLen) {
        counters_.drop(Drop::kTxShortFrame);
      } else if (f.tso.segments > 0 ? f.tso.hdr_len + f.tso.mss > max_frame_out : f.len > max_frame_out) {
        counters_.drop(Drop::kTxTooBig);
      } else if (!has_peers) {
        counters_.drop(Drop::kTxNoDestination);
      } else if (f.buf[0] & 1) {
        // Broadcast / multicast floods, except an ARP request or a Neighbor Solicitation for a known remote
        // address: answered here.
        uint32_t target;
        Addr target6;
        target6.len = 16;
        const VniTable& v = vt->second;
        const auto known = cfg_.arp_suppression && ArpRequestTarget(f.buf, f.len, &target) ? v.arp.find(target) : v.arp.end();
        const auto known6 = cfg_.arp_suppression && !v.nd.empty() && NdSolicitTarget(f.buf, f.len, target6.bytes) ? v.nd.find(target6) : v.nd.end();
        if (known != v.arp.end()) {
          WriteArpReply(f.buf, known->second, arp_reply);
          if (WriteTap(*net, arp_reply, kMinFrame)) counters_.add(Traffic::kArpSuppressed);
          else counters_.drop(Drop::kRxTapWriteError);
        } else if (known6 != v.nd.end()) {
          WriteNdAdvert(f.buf, known6->second, nd_advert);
          if (WriteTap(*net, nd_advert, kNaFrameLen)) counters_.add(Traffic::kNdSuppressed);
          else counters_.drop(Drop::kRxTapWriteError);
        } else {
          f.dest = TxFrame::Dest::kFlood;
        }
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

    // Encapsulate stage (TSO frames: segment, and send each destination's segments together).
    for (int i = 0; i < n; i++) {
      const TxFrame& f = frames[i];
      if (f.dest == TxFrame::Dest::kDrop) continue;
      const uint16_t sport = FlowPort(f.buf, f.len);
      if (f.tso.segments > 0) {
        if (f.dest == TxFrame::Dest::kUnicast) {
          send_segments(f, sport, *f.to);
        } else {
          for (const int p : vt->second.flood) send_segments(f, sport, table->peers[static_cast<size_t>(p)]);
        }
      } else {
        const uint64_t sum = Sum16(f.buf, f.len);  // once per frame, shared by every copy of a flood
        const iovec whole{f.buf, f.len}, none{nullptr, 0};
        if (f.dest == TxFrame::Dest::kUnicast) {
          queue(whole, none, sum, sport, *f.to);
        } else {
          for (const int p : vt->second.flood) queue(whole, none, sum, sport, table->peers[static_cast<size_t>(p)]);
        }
      }
      if (f.dest == TxFrame::Dest::kFlood) counters_.add(Traffic::kTxFlooded);
      counters_.add(Traffic::kTxFrames);
      counters_.add(Traffic::kTxBytes, f.len);
      if (tally.Full()) traffic_.Merge(&tally, TrafficStats::Dir::kTx, 0);
      tally.Vni(net->vni, 1, f.len);
    }

    // Send stage: frames point into the slots, so send before the next read reuses them.
    send();
    traffic_.Merge(&tally, TrafficStats::Dir::kTx, 0);
  }
}

// The RX thread. Stages per batch: recvmmsg (kBatch × 64 KiB, preallocated; with UDP_GRO a slot may hold several
// datagrams of one sender, each gso_size long but the last) → classify (contract order; twin: classifyDatagram in
// src/dataplane/classify.ts) → per-network size check → TAP write (merging TCP runs when the TAP takes virtio
// headers) → learn (one call per batch).
void Engine::RxLoop() {
  std::vector<uint8_t> bufs(static_cast<size_t>(kBatch) * kSlot);
  std::array<mmsghdr, kBatch> msgs{};
  std::array<iovec, kBatch> iov{};
  std::array<sockaddr_storage, kBatch> names{};
  constexpr size_t kControl = CMSG_SPACE(sizeof(int));
  std::vector<char> controls(kBatch * kControl);
  std::vector<LearnTable::Sighting> sightings;
  sightings.reserve(static_cast<size_t>(kBatch) * kMaxGsoSegments);
  std::vector<TapWriteMerger> mergers;
  mergers.reserve(nets_.size());
  for (const auto& n : nets_) mergers.emplace_back(n.vnet_hdr);
  // A TAP write: one frame, or a merged run of `frames` segments.
  auto writer = [this](int tap) {
    return [this, tap](const iovec* v, int cnt, int frames) {
      if (writev(tap, v, cnt) < 0)
        counters_.drop(Drop::kRxTapWriteError, static_cast<uint64_t>(frames));
      else if (frames > 1)
        counters_.add(Traffic::kRxMerged, static_cast<uint64_t>(frames));
    };
  };
  int64_t last_expire = NowMs();

  for (;;) {
    for (int i = 0; i < kBatch; i++) {
      iov[i] = {&bufs[static_cast<size_t>(i) * kSlot], kSlot};
      msgs[i].msg_hdr = msghdr{};
      msgs[i].msg_hdr.msg_name = &names[i];
      msgs[i].msg_hdr.msg_namelen = sizeof(names[i]);
      msgs[i].msg_hdr.msg_iov = &iov[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
      msgs[i].msg_hdr.msg_control = &controls[static_cast<size_t>(i) * kControl];
      msgs[i].msg_hdr.msg_controllen = kControl;
    }
    // Sleeps until the first datagram, then takes what else is queued without waiting.
    const int r = recvmmsg(rx_sock_.get(), msgs.data(), kBatch, MSG_WAITFORONE, nullptr);
    if (stopping_.load(std::memory_order_relaxed)) break;
    const int64_t now = NowMs();
    if (now - last_expire >= kPollMs) {
      learned_.Expire(now);
      last_expire = now;
    }
    if (r <= 0) continue;  // the aging tick (EAGAIN), or EINTR
    const std::shared_ptr<const Table> table = std::atomic_load(&table_);
    sightings.clear();
    Tally tally;  // this batch's datagrams per peer and per VNI

    // One datagram: classify, then hand its inner frame to its TAP's merger.
    auto deliver = [&](const uint8_t* p, size_t len, const Addr& from) {
      const ClassifyResult c = Classify(p, len, max_frame_, [&](uint32_t vni) { return table->PeerState(vni, from); });
      if (!c.ok) {
        counters_.drop(c.reason);
        if (c.reason == Drop::kRxUnknownSource) traffic_.Rejected(from, c.vni, now);
        return;
      }
      const uint8_t* inner = p + kVxlanHeaderLen;
      const size_t inner_len = len - kVxlanHeaderLen;
      const Network* net = NetworkFor(c.vni);
      if (net == nullptr) {  // in the table but not served by a TAP of this engine
        counters_.drop(Drop::kRxUnknownVni);
        return;
      }
      if (inner_len > net->max_frame) {  // Classify checked the largest TAP; this one may be smaller
        counters_.drop(Drop::kRxOversize);
        return;
      }
      if (cfg_.learning && (inner[6] & 1) == 0) {
        const uint64_t src = MacKey(inner + 6);
        const auto vt = table->vnis.find(c.vni);  // present: Classify accepted the VNI
        if (vt != table->vnis.end() && !vt->second.macs.count(src)) sightings.push_back({c.vni, src, from});
      }
      mergers[static_cast<size_t>(net - nets_.data())].Add(inner, inner_len, writer(net->tap.get()));
      counters_.add(Traffic::kRxDatagrams);
      counters_.add(Traffic::kRxBytes, inner_len);
      if (tally.Full()) traffic_.Merge(&tally, TrafficStats::Dir::kRx, now);
      tally.Peer(from, 1, inner_len);
      tally.Vni(c.vni, 1, inner_len);
    };

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
      size_t seg = len;  // without GRO (or a lone datagram): the whole slot is one datagram
      for (cmsghdr* c = CMSG_FIRSTHDR(&msgs[i].msg_hdr); c != nullptr; c = CMSG_NXTHDR(&msgs[i].msg_hdr, c)) {
        if (c->cmsg_level == IPPROTO_UDP && c->cmsg_type == UDP_GRO && c->cmsg_len >= CMSG_LEN(sizeof(int))) {
          int gso = 0;
          memcpy(&gso, CMSG_DATA(c), sizeof(gso));
          if (gso > 0) seg = static_cast<size_t>(gso);
        }
      }
      for (size_t off = 0; off < len; off += seg) deliver(p + off, std::min(seg, len - off), from);
    }
    // The mergers hold pointers into this batch's buffers: write everything before the next recvmmsg.
    for (size_t k = 0; k < mergers.size(); k++) mergers[k].Flush(writer(nets_[k].tap.get()));
    traffic_.Merge(&tally, TrafficStats::Dir::kRx, now);
    if (!sightings.empty()) {
      const int learned = learned_.LearnBatch(sightings.data(), static_cast<int>(sightings.size()), now);
      if (learned > 0) counters_.add(Traffic::kLearned, static_cast<uint64_t>(learned));
    }
  }
}

}  // namespace vxr
