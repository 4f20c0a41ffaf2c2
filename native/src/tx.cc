// The TX thread of one TAP and its senders. Threading and buffer ownership: see tx.h (one thread per TAP; every
// buffer allocated once at thread start; queued messages point into the slots until Send()). Hot path: status codes
// and counters only; nothing here throws or allocates per packet.
#include "tx.h"

#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>

#include <algorithm>

#include "arp.h"
#include "engine.h"
#include "icmp.h"
#include "nd.h"

namespace vxr {

TxQueue::TxQueue(int raw_fd, uint32_t vni, const Addr& local, uint16_t port, Counters& counters, BatchTally& tally)
    : fd_(raw_fd),
      vni_(vni),
      local_(local),
      port_(port),
      counters_(counters),
      tally_(tally),
      msgs_(kMaxMsgs),
      iovs_(kMaxMsgs),
      hdrs_(kMaxMsgs),
      names_(kMaxMsgs),
      seg_hdrs_(static_cast<size_t>(kMaxMsgs) * kMaxSegHeader) {}

void TxQueue::Send() {
  int sent = 0;
  while (sent < m_) {
    const int r = sendmmsg(fd_, &msgs_[sent], static_cast<unsigned>(m_ - sent), 0);
    if (r < 0) {
      if (errno == EINTR) continue;
      counters_.drop(Drop::kTxSendError);  // skip the datagram the kernel refused, keep the rest
      sent++;
      continue;
    }
    counters_.add(Traffic::kTxDatagrams, static_cast<uint64_t>(r));
    sent += r;
  }
  m_ = 0;
}

// One datagram: our UDP + VXLAN header, then `head` (the frame, or a segment's headers) and `tail` (a segment's
// payload; empty for a whole frame). `sum` is Sum16 over head and tail.
void TxQueue::Queue(const iovec& head, const iovec& tail, uint64_t sum, uint16_t sport, const Peer& to) {
  if (m_ == kMaxMsgs) Send();
  WriteEncapHeader(hdrs_[m_].data(), vni_, sport, port_, local_, to.addr, head.iov_len + tail.iov_len, sum);
  names_[m_] = to.sa;
  tally_.Peer(to.addr, 1, head.iov_len + tail.iov_len);
  iovs_[m_][0] = {hdrs_[m_].data(), kEncapHeaderLen};
  iovs_[m_][1] = head;
  iovs_[m_][2] = tail;
  msghdr& h = msgs_[m_].msg_hdr;
  h = msghdr{};
  h.msg_name = &names_[m_];
  h.msg_namelen = to.salen;
  h.msg_iov = iovs_[m_].data();
  h.msg_iovlen = tail.iov_len > 0 ? 3 : 2;
  m_++;
}

void TxQueue::QueueFrame(const TxFrame& f, uint64_t sum, uint16_t sport, const Peer& to) {
  Queue(iovec{f.buf, f.len}, iovec{nullptr, 0}, sum, sport, to);
}

void TxQueue::QueueSegment(const TxFrame& f, size_t i, uint16_t sport, const Peer& to) {
  if (m_ == kMaxMsgs) Send();  // the segment's header goes in the buffer of the message it becomes
  uint8_t* h = &seg_hdrs_[static_cast<size_t>(m_) * kMaxSegHeader];
  WriteSegmentHeader(f.buf, f.tso, i, h);
  const iovec head{h, f.tso.hdr_len};
  const iovec tail{f.buf + f.tso.hdr_len + i * f.tso.mss, SegmentPayload(f.tso, i)};
  Queue(head, tail, Sum16(static_cast<uint8_t*>(tail.iov_base), tail.iov_len, Sum16(h, head.iov_len)), sport, to);
}

bool GsoPolicy::Allowed(const Addr& to) const {
  if (!on_.load(std::memory_order_relaxed)) return false;
  for (size_t i = 0; i < n_; i++)
    if (refused_[i] == to) return false;
  return true;
}

bool GsoPolicy::Refused(const Addr& to, int err) {
  if (err == ENOPROTOOPT || err == EOPNOTSUPP) {
    on_.store(false, std::memory_order_relaxed);
    return true;
  }
  if (err != EIO && err != EINVAL) return false;
  if (n_ == kMaxRefused) {
    on_.store(false, std::memory_order_relaxed);
    return true;
  }
  for (size_t i = 0; i < n_; i++)
    if (refused_[i] == to) return true;
  refused_[n_++] = to;
  return true;
}

GsoSender::GsoSender(FlowSockets& sockets, std::atomic<bool>& on, uint32_t vni, const Addr& local, uint16_t port,
                     Counters& counters, BatchTally& tally)
    : sockets_(sockets),
      policy_(on),
      local_(local),
      port_(port),
      counters_(counters),
      tally_(tally),
      vxlan_hdr_{kVxlanFlagI, 0, 0, 0, static_cast<uint8_t>(vni >> 16), static_cast<uint8_t>(vni >> 8),
                 static_cast<uint8_t>(vni), 0},
      seg_hdrs_(static_cast<size_t>(kMaxGsoSegments) * kMaxSegHeader) {}

size_t GsoSender::SegmentsPerSend(const TxFrame& f) {
  return std::min<size_t>(kMaxGsoSegments, kMaxBytes / (kVxlanHeaderLen + f.tso.hdr_len + f.tso.mss));
}

bool GsoSender::Send(const TxFrame& f, size_t from, size_t to, uint16_t sport, const Peer& peer) {
  FlowSockets::Miss miss;
  const FlowSockets::Socket sock = sockets_.Get(local_, sport, NowMs(), &miss);  // held until this send is done
  if (!sock) {
    if (miss == FlowSockets::Miss::kFull) counters_.add(Traffic::kGsoSocketsFull);  // FlowSockets::kMax ports held
    return false;
  }
  const int fd = sock->get();
  int n = 0;
  for (size_t i = from; i < to; i++) {
    uint8_t* h = &seg_hdrs_[(i - from) * kMaxSegHeader];
    WriteSegmentHeader(f.buf, f.tso, i, h);
    iov_[n++] = {vxlan_hdr_, kVxlanHeaderLen};
    iov_[n++] = {h, f.tso.hdr_len};
    iov_[n++] = {f.buf + f.tso.hdr_len + i * f.tso.mss, SegmentPayload(f.tso, i)};
  }
  sockaddr_storage dst = peer.sa;
  if (dst.ss_family == AF_INET)
    reinterpret_cast<sockaddr_in&>(dst).sin_port = htons(port_);
  else
    reinterpret_cast<sockaddr_in6&>(dst).sin6_port = htons(port_);
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(uint16_t))] = {};
  msghdr h{};
  h.msg_name = &dst;
  h.msg_namelen = peer.salen;
  h.msg_iov = iov_.data();
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
  if (r < 0 && policy_.Refused(peer.addr, errno)) return false;  // no UDP GSO on this path: the raw socket
  if (r < 0) {
    counters_.drop(Drop::kTxSendError, to - from);
  } else {
    counters_.add(Traffic::kTxDatagrams, to - from);
    counters_.add(Traffic::kTxGsoSends);
    tally_.Peer(peer.addr, to - from, static_cast<uint64_t>(r) - (to - from) * kVxlanHeaderLen);
  }
  return true;
}

namespace {

// Every segment of a TSO frame to one peer: GSO sends when possible, else one raw message per segment.
void SendSegments(const TxFrame& f, uint16_t sport, const Peer& peer, TxQueue& raw, GsoSender& gso) {
  const size_t per_send = GsoSender::SegmentsPerSend(f);
  size_t i = 0;
  if (per_send > 1 && gso.on(peer)) {
    raw.Send();  // what is queued on the raw socket goes first: no reordering within a flow
    for (; i < f.tso.segments; i += per_send)
      if (!gso.Send(f, i, std::min(f.tso.segments, i + per_send), sport, peer)) break;
  }
  for (; i < f.tso.segments; i++) raw.QueueSegment(f, i, sport, peer);
}

// Read stage: up to `limit` frames from the (non-blocking) TAP into `frames`, until EAGAIN. With virtio headers
// (`vnet` bytes of them), TSO super-frames are parsed and partial checksums finished; a header that cannot be
// honoured marks the frame bad_offload. Returns how many frames were read.
int ReadBurst(int tap, size_t vnet, int limit, TxFrame* frames, Counters& counters) {
  int n = 0;
  while (n < limit) {
    TxFrame& f = frames[n];
    const ssize_t got = read(tap, f.slot, kSlot);
    if (got < 0) {
      if (errno == EINTR) continue;
      break;  // EAGAIN: the burst is over
    }
    if (static_cast<size_t>(got) >= kSlot) {
      // A read that fills the slot may have been cut short: the tun driver copies what fits and returns
      // min(length, kSlot) through read() (more than kSlot through other paths). Never parsed nor sent: the frame's
      // header would promise bytes that are not in the slot. Linux's own TSO frames stay well below this
      // (gso_max_size 64 KiB less TCP's header room); only a crafted virtio header reaches it.
      counters.drop(Drop::kTxTooBig);
      continue;
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
      if (!f.bad_offload) counters.add(Traffic::kTxTsoFrames);
    } else if (vh.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) {
      f.bad_offload = !FinishChecksum(f.buf, f.len, vh);
    }
  }
  return n;
}

// The address a frame from the bridge speaks for (IPv4 first, then IPv6); len 0 when it names none.
// Twins: senderIpv4 in src/packet/neighbor.ts, senderIpv6 in src/packet/nd.ts.
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

// This host's MACs (unicast sources of the frames read) and the addresses they use, reported to the LocalMacTable
// at most every kRefreshMs each: a few recent ones are remembered here, and a batch's fresh ones go in with one lock.
// A quarter second, the advertiser's period: a container that takes over a freed address must be seen using it after
// the owner left (local-claims.ts), and at once a second that alone could exceed the 1 s a move is followed in.
class LocalMacReporter {
 public:
  void Report(const TxFrame* frames, int n, uint32_t vni, int64_t now_ms, LocalMacTable& table, Counters& counters) {
    int nf = 0;
    for (int i = 0; i < n; i++) {
      const TxFrame& f = frames[i];
      if (f.len < kEthHeaderLen || (f.buf[6] & 1)) continue;
      const uint64_t src = MacKey(f.buf + 6);
      const Addr ip = SenderIp(f.buf, f.len);
      Recent& slot = recent_[(src ^ AddrHash()(ip)) % kRecent];
      if (slot.mac == src && slot.ip == ip && now_ms - slot.at_ms < kRefreshMs) continue;
      slot = {src, ip, now_ms};
      fresh_[nf++] = {src, ip};
    }
    if (nf == 0) return;
    const int refused = table.SeenBatch(vni, fresh_.data(), nf, now_ms);
    if (refused > 0) counters.add(Traffic::kLocalMacRefused, static_cast<uint64_t>(refused));
  }

 private:
  static constexpr int kRecent = 16;
  static constexpr int64_t kRefreshMs = 250;
  struct Recent {
    uint64_t mac;
    Addr ip;
    int64_t at_ms;
  };
  std::array<Recent, kRecent> recent_{};
  std::array<LocalMacTable::Sighting, kBatch> fresh_{};
};

}  // namespace

// What one TAP's transmit side owns for its whole life (buffers, queues, senders): made once by the thread or loop
// that serves the TAP (TxLoop, or the io_uring loop in uring.cc), used by TxBatch.
struct Engine::TxState {
  TxState(Engine& e, Network* n)
      : net(n),
        slots(static_cast<size_t>(kBatch) * kSlot),
        tally(e.traffic_, TrafficStats::Dir::kTx),
        raw(e.tx_sock_.get(), n->vni, e.cfg_.local, e.cfg_.port, e.counters_, tally),
        gso(e.flow_socks_, e.gso_ok_, n->vni, e.cfg_.local, e.cfg_.port, e.counters_, tally),
        max_frame_out(static_cast<size_t>(e.cfg_.underlay_mtu) - (e.cfg_.local.len == 4 ? 20 : 40) - kEncapHeaderLen),
        path_mtu(max_frame_out - kEthHeaderLen),
        too_big(kMaxTooBigFrame),
        too_big_limit(kTooBigRate, kTooBigBurst),
        vnet(n->vnet_hdr ? kVnetHdrLen : 0) {
    for (int i = 0; i < kBatch; i++) frames[i].slot = &slots[static_cast<size_t>(i) * kSlot];
  }
  TxState(const TxState&) = delete;  // raw and gso hold a reference to tally
  TxState& operator=(const TxState&) = delete;

  Network* net;
  std::vector<uint8_t> slots;
  std::array<TxFrame, kBatch> frames{};
  BatchTally tally;  // this batch's datagrams per peer and frames of the VNI
  TxQueue raw;
  GsoSender gso;
  LocalMacReporter local_macs;
  const size_t max_frame_out;
  const size_t path_mtu;  // what an IP packet may be: underlay MTU − 50 (IPv6: − 70)
  std::vector<uint8_t> too_big;
  TooBigLimiter too_big_limit;
  const size_t vnet;
  uint8_t arp_reply[kMinFrame];
  uint8_t nd_advert[kNaFrameLen];
};

std::shared_ptr<Engine::TxState> Engine::MakeTxState(Network* net) { return std::make_shared<TxState>(*this, net); }

// TX thread of one TAP: sleeps in poll() on the TAP and the stop eventfd, forwards a batch per wake (TxBatch).
void Engine::TxLoop(Network* net) {
  TxState s(*this, net);
  pollfd pfd[2] = {{net->tap.get(), POLLIN, 0}, {stop_fd_.get(), POLLIN, 0}};
  for (;;) {
    // What was queued while the last batch was being sent is read at once; only an empty queue puts the thread to
    // sleep. After a sleep the first frame goes out alone, before the read that would find the queue empty: a lone
    // packet (a ping, a request) does not wait for that system call.
    int pr = poll(pfd, 2, 0);
    const bool woke = pr == 0;
    if (woke) pr = poll(pfd, 2, -1);
    if (pr < 0 && errno != EINTR) {
      ReportFault(Errno("poll on the TAP of VNI " + std::to_string(net->vni)));
      break;
    }
    if (pfd[1].revents) break;
    if (pfd[0].revents & (POLLERR | POLLHUP | POLLNVAL)) {
      // The TAP is gone (deleted under us): this VNI no longer forwards until the agent hands the engine a new TAP
      // (ReplaceTap, which joins this thread and starts another). Reported, never a silent end.
      ReportTapLost(net);
      break;
    }

    TxBatch(s, woke ? 1 : kBatch);
  }
}

// One batch of one TAP: the stages of tx.h. Reads at most `limit` frames (non-blocking); returns how many it read.
// Twins: flowPort and encapsulate in src/packet (byte layout); forwarding rules as in src/dataplane/js-engine.ts;
// segmentation pinned by test/native/offload.test.ts.
int Engine::TxBatch(TxState& s, int limit) {
  Network* const net = s.net;
  auto& frames = s.frames;
  auto& tally = s.tally;
  auto& raw = s.raw;
  auto& gso = s.gso;
  auto& local_macs = s.local_macs;
  const size_t ip_header = cfg_.local.len == 4 ? 20 : 40;
  const size_t max_frame_out = s.max_frame_out;
  const size_t path_mtu = s.path_mtu;
  auto& too_big = s.too_big;
  auto& too_big_limit = s.too_big_limit;
  uint8_t* const arp_reply = s.arp_reply;
  uint8_t* const nd_advert = s.nd_advert;
  // A frame's largest datagram's inner bytes: the frame, or a TSO frame's segment (gso_size).
  auto wire_size = [](const TxFrame& f) { return f.tso.segments > 0 ? f.tso.hdr_len + f.tso.mss : f.len; };
  // Dropped as too big for a path that carries IP packets of `mtu` bytes, and answered (rate-limited) on the bridge.
  auto too_big_answer = [&](const TxFrame& f, size_t mtu) {
    counters_.drop(Drop::kTxTooBig);
    const size_t answer = WriteTooBig(f.buf, f.len, static_cast<uint32_t>(mtu), too_big.data());
    if (answer > 0 && !too_big_limit.Take(NowMs()))
      counters_.add(Traffic::kIcmpTooBigLimited);
    else if (answer > 0 && WriteTap(*net, too_big.data(), answer))
      counters_.add(Traffic::kIcmpTooBigSent);
    else if (answer > 0)
      counters_.drop(Drop::kRxTapWriteError);
  };
  // The largest inner frame the path to `to` carries: the underlay's, or less where probing measured less.
  auto max_frame_to = [&](const Table& t, const Addr& to) -> size_t {
    if (t.path_mtus.empty()) return max_frame_out;
    const auto it = t.path_mtus.find(to);
    if (it == t.path_mtus.end() || static_cast<size_t>(it->second) < ip_header + kEncapHeaderLen + kEthHeaderLen) return max_frame_out;
    return std::min(max_frame_out, static_cast<size_t>(it->second) - ip_header - kEncapHeaderLen);
  };
  {
    const int n = ReadBurst(net->tap.get(), s.vnet, limit, frames.data(), counters_);
    if (n == 0) return 0;

    local_macs.Report(frames.data(), n, net->vni, NowMs(), local_, counters_);

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
      } else if (wire_size(f) > max_frame_out) {
        // Never fragmented: dropped, and (IPv4 with DF, IPv6) answered on the bridge with the MTU that fits, so the
        // sender's path MTU discovery adapts instead of losing every large packet. A TSO frame is judged by its
        // segments (gso_size), not by the super-frame.
        too_big_answer(f, path_mtu);
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

    // Path MTU stage: a unicast frame larger than its peer's measured path is dropped and answered with that MTU.
    if (!table->path_mtus.empty()) {
      for (int i = 0; i < n; i++) {
        TxFrame& f = frames[i];
        if (f.dest != TxFrame::Dest::kUnicast) continue;
        const size_t max = max_frame_to(*table, f.to->addr);
        if (wire_size(f) <= max) continue;
        too_big_answer(f, max - kEthHeaderLen);
        f.dest = TxFrame::Dest::kDrop;
      }
    }

    // Encapsulate stage (TSO frames: segment, and send each destination's segments together).
    for (int i = 0; i < n; i++) {
      const TxFrame& f = frames[i];
      if (f.dest == TxFrame::Dest::kDrop) continue;
      if (cfg_.clamp_mss.on() && f.tso.segments == 0) {
        // --clamp-mss: no higher than what fits the peer's measured path (a flood: the smallest of its peers'), so
        // the far end never sends segments that path drops; the configured clamp stays the ceiling.
        size_t max = max_frame_out;
        if (!table->path_mtus.empty()) {
          if (f.dest == TxFrame::Dest::kUnicast) max = max_frame_to(*table, f.to->addr);
          else
            for (const int p : vt->second.flood) max = std::min(max, max_frame_to(*table, table->peers[static_cast<size_t>(p)].addr));
        }
        CountClamp(ClampMss(f.buf, f.len, max == max_frame_out ? cfg_.clamp_mss : ClampForPath(cfg_.clamp_mss, max - kEthHeaderLen)), counters_);
      }
      // A flooded copy too big for one peer's measured path is dropped for that peer only (counted, unanswered).
      auto fits = [&](const Peer& to) {
        if (table->path_mtus.empty() || wire_size(f) <= max_frame_to(*table, to.addr)) return true;
        counters_.drop(Drop::kTxTooBig);
        return false;
      };
      const uint16_t sport = FlowPort(f.buf, f.len);
      if (f.tso.segments > 0) {
        if (f.dest == TxFrame::Dest::kUnicast) {
          SendSegments(f, sport, *f.to, raw, gso);
        } else {
          for (const int p : vt->second.flood)
            if (fits(table->peers[static_cast<size_t>(p)])) SendSegments(f, sport, table->peers[static_cast<size_t>(p)], raw, gso);
        }
      } else {
        const uint64_t sum = Sum16(f.buf, f.len);  // once per frame, shared by every copy of a flood
        if (f.dest == TxFrame::Dest::kUnicast) {
          raw.QueueFrame(f, sum, sport, *f.to);
        } else {
          for (const int p : vt->second.flood)
            if (fits(table->peers[static_cast<size_t>(p)])) raw.QueueFrame(f, sum, sport, table->peers[static_cast<size_t>(p)]);
        }
      }
      if (f.dest == TxFrame::Dest::kFlood) counters_.add(Traffic::kTxFlooded);
      counters_.add(Traffic::kTxFrames);
      counters_.add(Traffic::kTxBytes, f.len);
      tally.Vni(net->vni, 1, f.len);
    }

    // Send stage: frames point into the slots, so send before the next read reuses them.
    raw.Send();
    tally.Flush();
    return n;
  }
}

}  // namespace vxr
