// The engine's side of peer probes (see engine.h and probe.h): sending a request (JS thread), answering requests and
// queueing replies (RX thread). Inbound probes are hostile input: only peers of the table are answered, at most
// kProbeAnswerRate a second, with a 24-byte reply never larger than the request; everything else is counted.
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>

#include <cerrno>

#include "engine.h"

namespace vxr {

namespace {

int64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

// One UDP datagram of ours (source and destination port `port`) on the raw socket; 0 or the errno.
int SendUdp(int fd, const Addr& local, const Addr& to, uint16_t port, const uint8_t* payload, size_t len, int flags) {
  if (fd < 0) return EBADF;
  if (local.len != to.len) return EAFNOSUPPORT;
  uint8_t hdr[kUdpHeaderLen];
  WriteUdpHeader(hdr, port, port, local, to, payload, len);
  sockaddr_storage sa;
  const socklen_t salen = ToSockaddr(to, 0, &sa);
  iovec iov[2] = {{hdr, kUdpHeaderLen}, {const_cast<uint8_t*>(payload), len}};
  msghdr h{};
  h.msg_name = &sa;
  h.msg_namelen = salen;
  h.msg_iov = iov;
  h.msg_iovlen = 2;
  ssize_t r;
  do r = sendmsg(fd, &h, flags);
  while (r < 0 && errno == EINTR);
  return r < 0 ? errno : 0;
}

}  // namespace

int Engine::SendProbe(const Addr& to, const uint8_t* payload, size_t len) {
  if (stopped_ || !tx_sock_.valid()) return EBADF;
  const int err = SendUdp(tx_sock_.get(), cfg_.local, to, cfg_.port, payload, len, 0);
  if (err == 0) counters_.add(Traffic::kProbesSent);
  return err;
}

std::vector<Engine::ProbeReplyRow> Engine::ProbeReplies() {
  std::vector<ProbeReplyRow> out;
  std::lock_guard<std::mutex> lock(probe_mu_);
  out.swap(probe_replies_);
  return out;
}

void Engine::HandleProbe(const uint8_t* p, size_t len, const Addr& from, const Table& table, int64_t now_ms) {
  ProbeFields f;
  if (!ParseProbe(p, len, &f) || table.any_peer.count(from) == 0) {
    counters_.drop(Drop::kRxBadProbe);
    return;
  }
  if (f.kind == kProbeRequest) {
    if (!probe_answers_.Take(now_ms)) {
      counters_.add(Traffic::kProbeAnswersLimited);
      return;
    }
    uint8_t reply[kProbeHeaderLen];
    WriteProbeReply(p, len, reply);
    if (SendUdp(tx_sock_.get(), cfg_.local, from, cfg_.port, reply, sizeof(reply), MSG_DONTWAIT) == 0)
      counters_.add(Traffic::kProbesAnswered);
    else
      counters_.drop(Drop::kTxSendError);
    return;
  }
  const int64_t rtt = NowNs() - static_cast<int64_t>(f.sent_ns);
  std::lock_guard<std::mutex> lock(probe_mu_);
  if (probe_replies_.size() >= kMaxProbeReplies) {
    counters_.drop(Drop::kRxBadProbe);  // JS has not collected them: the oldest are what it waits for
    return;
  }
  probe_replies_.push_back({from, f.id, f.length, rtt});
  counters_.add(Traffic::kProbeReplies);
}

}  // namespace vxr
