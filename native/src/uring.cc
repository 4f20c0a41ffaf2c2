// The io_uring loop (config `loop: uring`): ONE thread forwards both directions of every network. Why: on the
// threads loop every packet wakes a thread on the other CPU (issue #17: ~11 µs per cross-CPU wake-up on this VM);
// here one thread sleeps in one io_uring_enter for everything.
//
// What the ring holds: on the UDP socket a multishot poll (then recvmmsg), or with VXLAN_ROUTER_URING_RECV=multishot
// (kernel ≥ 6.0) a multishot recvmsg into a ring of provided buffers (a completion: one datagram or UDP_GRO slot
// with its sender and control messages; the completions go through RxBatch's stages, RxProcess, a batch at a time,
// and their buffers back after that batch's TAP writes; running out of buffers ends the receive: counted,
// rx_uring_no_buffers, and re-armed); a multishot poll on each TAP (opened O_NONBLOCK, so the reads are armed by
// poll and never handed to io_uring's worker threads), on the stop eventfd (Stop, Quiesce) and on the kick eventfd
// (ReplaceTap). A poll completion marks its source ready; a ready source gets one batch per round, exactly as its
// thread would run it (RxBatch, TxBatch: the same code, non-blocking), and stays ready while its batches come back
// full.
// The wait is "wait_nr completions, or at least one after min_wait_us" (IORING_ENTER_EXT_ARG, kernel ≥ 6.12), never
// longer than kPollMs (learned MACs age on RX's clock).
//
// Threading: the loop thread owns the ring (IORING_SETUP_SINGLE_ISSUER: it enables it) and every TxState/RxState;
// the rest is shared exactly as with the threads (engine.h). Stop/Quiesce end it through the stop eventfd.
// ReplaceTap (JS thread) dup2()s the new TAP over the lost one's fd and kicks: the loop polls it again.
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <pthread.h>
#include <unistd.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "engine.h"
#include "uring.h"

namespace vxr {

namespace {

constexpr unsigned kRingEntries = 128;  // CQ 256: room for every provided buffer's completion and the polls
// A deleted TAP wakes a poll(2) sleeper but not an io_uring poll (seen on 6.18): the loop looks at the TAPs itself
// this often (one poll(2) with no wait), so a lost TAP is reported within this, plus the agent's 250 ms.
constexpr int64_t kTapCheckMs = 250;
// user_data: the source in the low 32 bits, its poll's generation above (a re-armed poll's old completions are
// recognised as stale).
constexpr uint32_t kStopTag = 0, kKickTag = 1, kUdpTag = 2, kTapTag0 = 3, kIgnoreTag = 0xffffffffu;

// The multishot receive's provided buffers: each holds io_uring_recvmsg_out, the sender (kNameSpace), the control
// messages (kCtlSpace: UDP_GRO's int) and a whole UDP_GRO slot (kSlot). kRecvBufs in flight: 2 batches (~8.4 MiB).
constexpr uint16_t kBufGroup = 0;
constexpr unsigned kRecvBufs = 2 * kBatch;
constexpr size_t kNameSpace = sizeof(sockaddr_storage);
constexpr size_t kCtlSpace = 64;
constexpr size_t kRecvHead = sizeof(io_uring_recvmsg_out) + kNameSpace + kCtlSpace;

bool MultishotWanted() {
  const char* v = getenv("VXLAN_ROUTER_URING_RECV");
  return v != nullptr && strcmp(v, "multishot") == 0;
}

// VXLAN_ROUTER_URING_BUFS=N (a power of two, 1–kRecvBufs): fewer buffers, for tests of running out.
unsigned RecvBufCount() {
  const char* v = getenv("VXLAN_ROUTER_URING_BUFS");
  if (v == nullptr || *v == 0) return kRecvBufs;
  const long n = strtol(v, nullptr, 10);
  return n >= 1 && n <= static_cast<long>(kRecvBufs) && (n & (n - 1)) == 0 ? static_cast<unsigned>(n) : kRecvBufs;
}

uint64_t UserData(uint32_t tag, uint32_t gen) { return (static_cast<uint64_t>(gen) << 32) | tag; }

}  // namespace

SysError Engine::StartUring() {
  auto ring = std::make_shared<Ring>();
  if (SysError e = ring->Open(kRingEntries); !e.ok()) return e;
  uring_on_ = true;
  uring_recv_ms_.store(MultishotWanted(), std::memory_order_relaxed);  // until the loop thread knows (status at once)
  threads_.emplace_back([this, ring] { UringLoop(ring); });
  pthread_setname_np(threads_.back().native_handle(), "vxr-uring");
  return {};
}

void Engine::UringLoop(std::shared_ptr<Ring> ring) {
  if (SysError e = ring->Enable(); !e.ok()) {
    ReportFault(e);
    return;
  }
  const size_t n_src = kTapTag0 + nets_.size();
  std::vector<int> fds(n_src);
  fds[kStopTag] = stop_fd_.get();
  fds[kKickTag] = kick_fd_.get();
  fds[kUdpTag] = rx_sock_.get();
  for (size_t i = 0; i < nets_.size(); i++) fds[kTapTag0 + i] = nets_[i].tap.get();
  std::vector<uint32_t> gen(n_src, 0);
  std::vector<char> armed(n_src, 0), ready(n_src, 1), dead(n_src, 0);
  std::shared_ptr<RxState> rx = MakeRxState();
  std::vector<std::shared_ptr<TxState>> tx;
  for (auto& n : nets_) tx.push_back(MakeTxState(&n));
  {
    std::lock_guard<std::mutex> lock(fault_mu_);
    for (size_t i = 0; i < tap_lost_.size(); i++) dead[kTapTag0 + i] = tap_lost_[i] ? 1 : 0;
  }

  // The UDP socket: a poll and recvmmsg (RxBatch), or with VXLAN_ROUTER_URING_RECV=multishot a multishot recvmsg
  // into provided buffers where the kernel has them (≥ 6.0). Not the default: measured, it costs the router more CPU
  // per GB than recvmmsg and moves no more (docs/benchmarks.md). recv_ms falls back for good if the first receive is
  // refused.
  bool recv_ms = MultishotWanted() && ring->SetupBufRing(kBufGroup, RecvBufCount(), kRecvHead + kSlot).ok();
  uring_recv_ms_.store(recv_ms, std::memory_order_relaxed);
  if (recv_ms) ready[kUdpTag] = 0;  // its completions carry the data: never "ready" for a recvmmsg
  bool recv_seen = false;  // a receive completed with data: the kernel takes the op
  msghdr recv_hdr{};
  recv_hdr.msg_namelen = kNameSpace;
  recv_hdr.msg_controllen = kCtlSpace;
  struct Pending {
    uint16_t bid;
    int res;
  };
  std::vector<Pending> pending;
  pending.reserve(kRecvBufs);

  auto arm = [&](uint32_t tag) {
    io_uring_sqe* sqe = ring->Sqe();
    if (sqe == nullptr) return;  // full: retried next round (armed stays 0)
    if (tag == kUdpTag && recv_ms) {
      sqe->opcode = IORING_OP_RECVMSG;
      sqe->fd = fds[tag];
      sqe->addr = reinterpret_cast<uint64_t>(&recv_hdr);
      sqe->len = 1;
      sqe->ioprio = IORING_RECV_MULTISHOT;
      sqe->flags = IOSQE_BUFFER_SELECT;
      sqe->buf_group = kBufGroup;
      sqe->user_data = UserData(tag, ++gen[tag]);
      armed[tag] = 1;
      return;
    }
    sqe->opcode = IORING_OP_POLL_ADD;
    sqe->fd = fds[tag];
    sqe->poll32_events = POLLIN;
    sqe->len = IORING_POLL_ADD_MULTI;
    sqe->user_data = UserData(tag, ++gen[tag]);
    armed[tag] = 1;
  };
  auto lose = [&](uint32_t tag) {
    // The TAP is gone (deleted under us): that VNI stops forwarding until ReplaceTap, as with the threads.
    dead[tag] = 1;
    ready[tag] = 0;
    ReportTapLost(&nets_[tag - kTapTag0]);
  };
  std::vector<pollfd> tap_pfds(nets_.size());
  auto disarm = [&](uint32_t tag) {
    io_uring_sqe* sqe = ring->Sqe();
    if (sqe == nullptr) return;
    sqe->opcode = IORING_OP_POLL_REMOVE;
    sqe->addr = UserData(tag, gen[tag]);
    sqe->user_data = UserData(kIgnoreTag, 0);
    gen[tag]++;  // whatever the old poll still posts is stale
    armed[tag] = 0;
  };

  // A receive completion: its buffer joins the pending batch (or goes straight back: an error).
  auto on_recv = [&](const io_uring_cqe& c) {
    if (!(c.flags & IORING_CQE_F_MORE)) armed[kUdpTag] = 0;  // ended (ENOBUFS, a full CQ, cancel): re-armed
    const bool has_buf = (c.flags & IORING_CQE_F_BUFFER) != 0;
    const uint16_t bid = static_cast<uint16_t>(c.flags >> IORING_CQE_BUFFER_SHIFT);
    if (c.res >= 0 && has_buf) {
      recv_seen = true;
      pending.push_back({bid, c.res});
      return;
    }
    if (has_buf) {
      ring->ReturnBuf(bid);
      ring->PublishBufs();
    }
    if (c.res == -ENOBUFS) {
      counters_.add(Traffic::kRxUringNoBuffers);
    } else if (!recv_seen && (c.res == -EINVAL || c.res == -EOPNOTSUPP)) {
      recv_ms = false;  // no multishot recvmsg on this kernel: poll + recvmmsg from the next round
      uring_recv_ms_.store(false, std::memory_order_relaxed);
      ready[kUdpTag] = 1;
    }
  };
  // The pending receives through RxBatch's stages, a batch at a time; each batch's buffers go back once its TAP
  // writes are done.
  auto process_recv = [&] {
    size_t i = 0;
    while (i < pending.size()) {
      const size_t first = i;
      int n = 0;
      for (; n < kBatch && i < pending.size(); i++) {
        uint8_t* b = ring->Buf(pending[i].bid);
        const auto* out = reinterpret_cast<const io_uring_recvmsg_out*>(b);
        const size_t res = static_cast<size_t>(pending[i].res);
        if (res < kRecvHead) continue;  // never: the kernel lays the head out before any payload
        const size_t room = res - kRecvHead;
        int flags = static_cast<int>(out->flags);
        if (out->payloadlen > room) flags |= MSG_TRUNC;
        RxSlot(*rx, n++, b + kRecvHead, std::min<size_t>(out->payloadlen, room), flags,
               b + sizeof(io_uring_recvmsg_out), std::min<size_t>(out->namelen, kNameSpace),
               b + sizeof(io_uring_recvmsg_out) + kNameSpace, std::min<size_t>(out->controllen, kCtlSpace));
      }
      RxProcess(*rx, n);
      for (size_t j = first; j < i; j++) ring->ReturnBuf(pending[j].bid);
      ring->PublishBufs();
    }
    pending.clear();
  };

  // Waiting for more than one completion needs the minimum wait (kernel ≥ 6.12): without it a lone packet would
  // wait for the aging tick.
  const bool batch_wait = ring->min_wait() && cfg_.uring_min_wait_us > 0;
  const unsigned wait_nr = batch_wait ? cfg_.uring_wait_nr : 1;
  const unsigned min_wait_us = batch_wait ? cfg_.uring_min_wait_us : 0;
  int64_t last_expire = NowMs();
  int64_t last_tap_check = last_expire;
  for (;;) {
    if (stopping_.load(std::memory_order_relaxed)) break;
    bool busy = false;
    for (uint32_t t = 0; t < n_src; t++) {
      if (!armed[t] && !dead[t]) arm(t);
      busy |= t >= kUdpTag && ready[t] && !dead[t];
    }
    // Something still queued: collect completions without sleeping. Otherwise sleep until work or the aging tick.
    const int64_t t = NowMs();
    const int64_t to_tick_ms = std::min(kPollMs - (t - last_expire), kTapCheckMs - (t - last_tap_check));
    const int r = busy ? ring->Enter(0, 0, -1)
                       : ring->Enter(wait_nr, min_wait_us, (to_tick_ms > 0 ? to_tick_ms : 0) * 1000000);
    if (r < 0 && r != -ETIME && r != -EINTR && r != -EBUSY && r != -EAGAIN) {
      ReportFault(SysError{-r, "io_uring_enter"});
      break;
    }
    bool stop = false, kicked = false;
    ring->Reap([&](const io_uring_cqe& c) {
      const uint32_t tag = static_cast<uint32_t>(c.user_data);
      if (tag == kUdpTag && recv_ms) return on_recv(c);
      if (tag >= n_src || static_cast<uint32_t>(c.user_data >> 32) != gen[tag]) return;  // stale, or a remove's
      if (!(c.flags & IORING_CQE_F_MORE)) armed[tag] = 0;  // the multishot ended (re-armed next round)
      if (c.res < 0) return;  // -ECANCELED and the like: re-armed
      if (tag == kStopTag) stop = true;
      if (tag == kKickTag) kicked = true;
      ready[tag] = 1;
      if (tag >= kTapTag0 && (c.res & (POLLERR | POLLHUP | POLLNVAL))) {
        lose(tag);
        disarm(tag);
      }
    });
    if (stop) break;  // what the receive took is forwarded below
    if (kicked) {
      uint64_t drained;
      ssize_t ignored = read(kick_fd_.get(), &drained, sizeof(drained));
      (void)ignored;
      std::lock_guard<std::mutex> lock(fault_mu_);
      for (size_t i = 0; i < nets_.size(); i++) {
        const uint32_t t = kTapTag0 + static_cast<uint32_t>(i);
        if (dead[t] && (i >= tap_lost_.size() || !tap_lost_[i])) {
          dead[t] = 0;  // a new TAP on the old fd number: polled from the next round
          ready[t] = 1;
          armed[t] = 0;
        }
      }
    }

    const int64_t now = NowMs();
    if (now - last_tap_check >= kTapCheckMs) {
      last_tap_check = now;
      int n = 0;
      for (size_t i = 0; i < nets_.size(); i++)
        if (!dead[kTapTag0 + i]) tap_pfds[static_cast<size_t>(n++)] = {nets_[i].tap.get(), POLLIN, 0};
      if (n > 0 && poll(tap_pfds.data(), static_cast<nfds_t>(n), 0) > 0) {
        for (int j = 0; j < n; j++) {
          if (!(tap_pfds[static_cast<size_t>(j)].revents & (POLLERR | POLLHUP | POLLNVAL))) continue;
          for (size_t i = 0; i < nets_.size(); i++) {
            const uint32_t tag = kTapTag0 + static_cast<uint32_t>(i);
            if (nets_[i].tap.get() == tap_pfds[static_cast<size_t>(j)].fd && !dead[tag]) {
              lose(tag);
              disarm(tag);
            }
          }
        }
      }
    }
    if (recv_ms) {
      process_recv();
      if (now - last_expire >= kPollMs) {
        last_expire = now;
        RxProcess(*rx, 0);  // ages the learned MACs
      }
    } else if (ready[kUdpTag] || now - last_expire >= kPollMs) {
      if (now - last_expire >= kPollMs) last_expire = now;  // RxBatch ages the learned MACs on the same clock
      const int got = RxBatch(*rx, false);
      ready[kUdpTag] = got == kBatch;  // a full batch: more may be queued
    }
    for (size_t i = 0; i < nets_.size(); i++) {
      const uint32_t t = kTapTag0 + static_cast<uint32_t>(i);
      if (!ready[t] || dead[t]) continue;
      ready[t] = TxBatch(*tx[i], kBatch) == kBatch;
    }
  }
  // Stop or Quiesce: the armed receive is cancelled, and what it took off the socket is forwarded (a handover
  // then leaves the rest in the socket for the next router). The cancel's own completion is not awaited; the
  // receive's last one (no IORING_CQE_F_MORE) is.
  if (recv_ms && armed[kUdpTag]) {
    io_uring_sqe* sqe = ring->Sqe();
    if (sqe == nullptr) {
      ring->Enter(0, 0, -1);
      sqe = ring->Sqe();
    }
    if (sqe != nullptr) {
      sqe->opcode = IORING_OP_ASYNC_CANCEL;
      sqe->addr = UserData(kUdpTag, gen[kUdpTag]);
      sqe->user_data = UserData(kIgnoreTag, 0);
      const int64_t deadline = NowMs() + 1000;
      while (armed[kUdpTag] && NowMs() < deadline) {
        const int r = ring->Enter(1, 0, 50 * 1000000);
        if (r < 0 && r != -ETIME && r != -EINTR && r != -EBUSY && r != -EAGAIN) break;
        ring->Reap([&](const io_uring_cqe& c) {
          if (static_cast<uint32_t>(c.user_data) == kUdpTag) on_recv(c);
        });
      }
    }
  }
  if (recv_ms) process_recv();
}

}  // namespace vxr
