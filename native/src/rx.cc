// Receive path: the RX thread (Engine::RxLoop), one for the whole engine. Per batch: recvmmsg (kBatch slots of
// kSlot bytes; with UDP_GRO a slot may hold several datagrams of one sender, cut by the segment size the kernel
// reports) → classify (contract order; twin: classifyDatagram in src/dataplane/classify.ts) → per-network size
// check → source check (inner source MAC one of ours, or a control-plane MAC of another VTEP: rx_spoofed_source;
// one LocalMacTable lock per batch) → learn (one LearnBatch call per batch, before any write: a new MAC over the
// table's bounds is dropped as rx_learn_full) → MSS clamping of TCP SYNs (--clamp-mss, in place) → TAP write (consecutive TCP segments of one flow merged into one
// super-frame with a virtio header by a TapWriteMerger, when the TAP takes virtio headers; a segment's TCP checksum is
// summed before it joins a run unless the kernel verified the outer UDP checksum, which covers the inner frame:
// OuterChecksumVerified in offload.h — a GRO super-datagram or an IPv6 sender, never a lone IPv4 one, whose checksum
// may be 0).
//
// Threading: the only thread that reads the UDP socket and writes the LearnTable (LearnBatch, Expire); it shares the
// engine's Counters (relaxed atomics), its TrafficStats (a BatchTally, one lock per batch or when it fills, and
// Rejected() for refused sources) and the TAP fds (each write is one writev; TX threads write ARP / ND answers to the
// same TAPs). It sleeps in a blocking recvmmsg: the socket's receive timeout (kPollMs) wakes it to age learned MACs
// and close idle GSO flow sockets (FlowSockets, shared with the TX threads under its own lock), and Engine::Stop()
// wakes it with shutdown() after setting stopping_.
//
// Buffer ownership: the datagram buffers, message headers, addresses and control buffers are allocated once when
// the thread starts and reused for every batch; nothing is allocated per packet (sightings has room reserved for a
// full batch of GRO slots: kBatch × kMaxGsoSegments, as have the accepted datagrams and the verdicts). The mergers hold pointers into this batch's buffers, so
// everything is written to the TAPs before the next recvmmsg. The table snapshot is held for exactly one batch.
// The io_uring loop receives on its own (a multishot recvmsg into provided buffers, uring.cc): RxSlot points a slot
// at a completion's buffer and RxProcess runs the stages; the buffers go back to the kernel after RxProcess returns.
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <algorithm>
#include <array>
#include <vector>

#include "engine.h"
#include "offload.h"

namespace vxr {

namespace {
constexpr size_t kControl = CMSG_SPACE(sizeof(int));
constexpr size_t kMost = static_cast<size_t>(kBatch) * kMaxGsoSegments;
}  // namespace

// What the receive side owns for its whole life: made once by the RX thread (RxLoop) or the io_uring loop
// (uring.cc), used by RxBatch.
struct Engine::RxState {
  explicit RxState(const std::vector<Network>& nets)
      : bufs(static_cast<size_t>(kBatch) * kSlot), controls(kBatch * kControl), verdicts(kMost), last_expire(NowMs()) {
    accepted.reserve(kMost);
    sightings.reserve(kMost);
    mergers.reserve(nets.size());
    for (const auto& n : nets) mergers.emplace_back(n.vnet_hdr);
  }
  // A datagram that passed classification, waiting for the source check and learning before its TAP write.
  struct Accepted {
    uint8_t* inner;  // in this batch's receive buffer: clamping (--clamp-mss) edits it in place
    size_t len;
    const Network* net;
    Addr from;
    uint32_t vni;
    int sighting;  // index into sightings, or -1 (not learned: learning off, multicast or control-plane source)
    bool vouched;  // the control plane places its source MAC on this sender: no local check (a genuine move)
    bool drop;
    bool verified;  // the kernel verified the outer UDP checksum (OuterChecksumVerified): no TCP checksum pass
  };
  std::vector<uint8_t> bufs;
  std::array<uint8_t*, kBatch> data{};  // slot i's payload: in bufs (recvmmsg) or in a provided buffer (io_uring)
  std::array<mmsghdr, kBatch> msgs{};
  std::array<iovec, kBatch> iov{};
  std::array<sockaddr_storage, kBatch> names{};
  std::vector<char> controls;
  std::vector<Accepted> accepted;
  std::vector<LearnTable::Sighting> sightings;
  std::vector<LearnTable::Verdict> verdicts;
  std::vector<TapWriteMerger> mergers;
  int64_t last_expire;
};

std::shared_ptr<Engine::RxState> Engine::MakeRxState() { return std::make_shared<RxState>(nets_); }

// The RX thread: the stages above, one batch at a time, until Stop().
void Engine::RxLoop() {
  RxState s(nets_);
  for (;;) {
    // Checked before sleeping and after waking with nothing: a batch already received is always forwarded, so that
    // a quiesce (handover) loses nothing it took off the socket.
    if (stopping_.load(std::memory_order_relaxed)) break;
    if (RxBatch(s, true) < 0) break;
  }
}

// One batch: recvmmsg (sleeping until the first datagram when `wait`, else not at all), then the stages above.
// Returns the datagrams (slots) received, or -1 when woken by Stop() with nothing.
int Engine::RxBatch(RxState& s, bool wait) {
  auto& bufs = s.bufs;
  auto& msgs = s.msgs;
  auto& iov = s.iov;
  auto& names = s.names;
  auto& controls = s.controls;
  {
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
    const int r = recvmmsg(rx_sock_.get(), msgs.data(), kBatch, MSG_WAITFORONE | (wait ? 0 : MSG_DONTWAIT), nullptr);
    if (r <= 0 && stopping_.load(std::memory_order_relaxed)) return -1;
    for (int i = 0; i < r; i++) s.data[static_cast<size_t>(i)] = &bufs[static_cast<size_t>(i) * kSlot];
    RxProcess(s, r > 0 ? r : 0);
    return r > 0 ? r : 0;  // 0: the aging tick (EAGAIN), or EINTR
  }
}

void Engine::RxSlot(RxState& s, int i, uint8_t* data, size_t len, int flags, const void* name, size_t namelen,
                    void* control, size_t controllen) {
  const size_t k = static_cast<size_t>(i);
  s.data[k] = data;
  s.msgs[k].msg_len = static_cast<unsigned>(len);
  msghdr& h = s.msgs[k].msg_hdr;
  h = msghdr{};
  memset(&s.names[k], 0, sizeof(s.names[k]));
  memcpy(&s.names[k], name, std::min(namelen, sizeof(s.names[k])));
  h.msg_name = &s.names[k];
  h.msg_namelen = static_cast<socklen_t>(std::min(namelen, sizeof(s.names[k])));
  h.msg_control = controllen > 0 ? control : nullptr;
  h.msg_controllen = controllen;
  h.msg_flags = flags;
}

// The stages after the receive, for slots 0..r-1 (data, msgs, names): also ages the learned MACs on the
// kPollMs clock, so r == 0 is the aging tick. Everything is written to the TAPs before it returns (the slots'
// buffers may then be reused).
void Engine::RxProcess(RxState& s, int r) {
  auto& msgs = s.msgs;
  auto& names = s.names;
  auto& accepted = s.accepted;
  auto& sightings = s.sightings;
  auto& verdicts = s.verdicts;
  auto& mergers = s.mergers;
  using Accepted = RxState::Accepted;
  auto writer = [this](int tap) {
    return [this, tap](const iovec* v, int cnt, int frames) {
      if (writev(tap, v, cnt) < 0)
        counters_.drop(Drop::kRxTapWriteError, static_cast<uint64_t>(frames));
      else if (frames > 1)
        counters_.add(Traffic::kRxMerged, static_cast<uint64_t>(frames));
    };
  };
  int64_t& last_expire = s.last_expire;
  {
    const int64_t now = NowMs();
    if (now - last_expire >= kPollMs) {
      learned_.Expire(now);
      // GSO flow sockets unused for their idle time close here too: no thread or wake-up of their own.
      if (const size_t closed = flow_socks_.CloseIdle(now)) counters_.add(Traffic::kGsoSocketsClosed, closed);
      last_expire = now;
    }
    if (r <= 0) return;
    const std::shared_ptr<const Table> table = std::atomic_load(&table_);
    sightings.clear();
    BatchTally tally(traffic_, TrafficStats::Dir::kRx, now);  // this batch's datagrams per peer and per VNI

    accepted.clear();
    // --clamp-mss for a SYN(-ACK) from `from`: no higher than what fits our measured path to that peer (the TX
    // thread's rule, tx.cc), so our container never sends it segments the path drops. The batch's table snapshot.
    auto clamp_from = [&](const Addr& from) -> MssClamp {
      if (table->path_mtus.empty()) return cfg_.clamp_mss;
      const auto it = table->path_mtus.find(from);
      const size_t outer = (cfg_.local.len == 4 ? 20 : 40) + kEncapHeaderLen + kEthHeaderLen;
      // Not measured below the underlay's (or nonsense): the configured clamp, as the TX thread does.
      if (it == table->path_mtus.end() || static_cast<size_t>(it->second) <= outer || it->second >= cfg_.underlay_mtu) return cfg_.clamp_mss;
      return ClampForPath(cfg_.clamp_mss, static_cast<size_t>(it->second) - outer);
    };
    // One datagram: classify, check its inner source against the control plane's MACs, queue it.
    auto classify = [&](uint8_t* p, size_t len, const Addr& from, bool verified) {
      if (IsProbe(p, len)) {  // a peer probe (probe.h): never a frame for the bridge
        HandleProbe(p, len, from, *table, now);
        return;
      }
      const ClassifyResult c = Classify(p, len, max_frame_, [&](uint32_t vni) { return table->PeerState(vni, from); });
      if (!c.ok) {
        counters_.drop(c.reason);
        if (c.reason == Drop::kRxUnknownSource) traffic_.Rejected(from, c.vni, now);
        return;
      }
      uint8_t* inner = p + kVxlanHeaderLen;
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
      Accepted a{inner, inner_len, net, from, c.vni, -1, false, false, verified};
      if ((inner[6] & 1) == 0) {
        const uint64_t src = MacKey(inner + 6);
        const auto vt = table->vnis.find(c.vni);  // present: Classify accepted the VNI
        const auto known = vt->second.macs.find(src);
        if (known != vt->second.macs.end()) {
          // A MAC the control plane places: never learned, and only its own VTEP may send from it.
          // Its word outranks our own sighting: a container that moved away still looks local here for a while.
          a.vouched = table->peers[static_cast<size_t>(known->second)].addr == from;
          if (cfg_.source_check && !a.vouched) {
            counters_.drop(Drop::kRxSpoofedSource);
            return;
          }
        } else if (cfg_.learning) {
          a.sighting = static_cast<int>(sightings.size());
          sightings.push_back({c.vni, src, from});
        }
      }
      accepted.push_back(a);
    };

    for (int i = 0; i < r; i++) {
      uint8_t* p = s.data[static_cast<size_t>(i)];
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
      if (len == 0) {  // an empty datagram is one too (rx_short): the segment loop below would never see it
        classify(p, 0, from, false);
        continue;
      }
      size_t seg = len;  // without GRO (or a lone datagram): the whole slot is one datagram
      bool gro = false;  // the kernel reports UDP_GRO only for a merged (SKB_GSO_UDP_L4) datagram
      for (cmsghdr* c = CMSG_FIRSTHDR(&msgs[i].msg_hdr); c != nullptr; c = CMSG_NXTHDR(&msgs[i].msg_hdr, c)) {
        if (c->cmsg_level == IPPROTO_UDP && c->cmsg_type == UDP_GRO && c->cmsg_len >= CMSG_LEN(sizeof(int))) {
          int gso = 0;
          memcpy(&gso, CMSG_DATA(c), sizeof(gso));
          if (gso > 0) {
            seg = static_cast<size_t>(gso);
            gro = true;
          }
        }
      }
      const bool verified = OuterChecksumVerified(from.bytes, from.len, gro);
      for (size_t off = 0; off < len; off += seg) classify(p + off, std::min(seg, len - off), from, verified);
    }

    // Our own MACs (seen on our TAPs) coming back from a peer: a spoof that would move them to the TAP port on the
    // bridge. One lock for the batch; a run of one source (a TCP flow) is looked up once.
    if (cfg_.source_check && !accepted.empty()) {
      const LocalMacTable::Reader local(local_);
      uint64_t last_mac = ~0ull;
      uint32_t last_vni = 0;
      bool last_local = false;
      for (Accepted& a : accepted) {
        if ((a.inner[6] & 1) || a.vouched) continue;
        const uint64_t src = MacKey(a.inner + 6);
        if (src != last_mac || a.vni != last_vni) {
          last_mac = src;
          last_vni = a.vni;
          last_local = local.IsLocal(a.vni, src, now);
        }
        a.drop = last_local;
      }
    }
    // Learning, before any write: a source the table has no room for is not delivered either. The sightings of the
    // datagrams still accepted are compacted in place (in order), so verdicts[k] belongs to the k-th of them.
    int learn_n = 0;
    for (const Accepted& a : accepted)
      if (!a.drop && a.sighting >= 0) sightings[static_cast<size_t>(learn_n++)] = sightings[static_cast<size_t>(a.sighting)];
    if (static_cast<size_t>(learn_n) > verdicts.size()) verdicts.resize(static_cast<size_t>(learn_n));  // never: GRO caps segments
    if (learn_n > 0) {
      const int learned = learned_.LearnBatch(sightings.data(), learn_n, now, verdicts.data());
      if (learned > 0) counters_.add(Traffic::kLearned, static_cast<uint64_t>(learned));
    }

    int k = 0;
    for (const Accepted& a : accepted) {
      if (a.drop) {
        counters_.drop(Drop::kRxSpoofedSource);
        continue;
      }
      if (a.sighting >= 0 && verdicts[static_cast<size_t>(k++)] == LearnTable::kFull) {
        counters_.drop(Drop::kRxLearnFull);
        continue;
      }
      if (cfg_.clamp_mss.on()) CountClamp(ClampMss(a.inner, a.len, clamp_from(a.from)), counters_);
      mergers[static_cast<size_t>(a.net - nets_.data())].Add(a.inner, a.len, writer(a.net->tap.get()), a.verified);
      counters_.add(Traffic::kRxDatagrams);
      counters_.add(Traffic::kRxBytes, a.len);
      tally.Peer(a.from, 1, a.len);
      tally.Vni(a.vni, 1, a.len);
    }
    // The mergers hold pointers into this batch's buffers: write everything before the next recvmmsg.
    for (size_t k = 0; k < mergers.size(); k++) mergers[k].Flush(writer(nets_[k].tap.get()));
    tally.Flush();
  }
}

}  // namespace vxr
