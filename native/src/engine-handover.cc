// The engine's side of a handover to another router process (hitless restart and upgrade): stop the threads with
// every fd and its kernel queue intact, name the fds to pass, and take the learned MACs the old engine had. The fds
// themselves travel through fd-passing.h. JS thread only.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "engine.h"

namespace vxr {

namespace {

// One empty datagram to our own UDP port: wakes the RX thread out of recvmmsg without shutting the socket down
// (shutdown would end it for the next router too). Should it not arrive, the receive timeout (kPollMs) wakes it.
void WakeReceiver(const Addr& local, uint16_t port) {
  UniqueFd s(socket(local.len == 4 ? AF_INET : AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!s.valid()) return;
  sockaddr_storage sa;
  const socklen_t len = ToSockaddr(local, port, &sa);
  ssize_t ignored = sendto(s.get(), "", 0, MSG_DONTWAIT, reinterpret_cast<sockaddr*>(&sa), len);
  (void)ignored;
}

}  // namespace

void Engine::Quiesce() {
  if (!started_ || stopped_) return;
  stopping_.store(true, std::memory_order_relaxed);
  quiesced_ = true;
  WakeReceiver(cfg_.local, cfg_.port);
  const uint64_t one = 1;
  ssize_t ignored = write(stop_fd_.get(), &one, sizeof(one));
  (void)ignored;
  for (auto& t : threads_) t.join();
  threads_.clear();
  // Ready for Start() again, should the handover fail: the eventfd drained, the flag down.
  uint64_t drained;
  ignored = read(stop_fd_.get(), &drained, sizeof(drained));
  stopping_.store(false, std::memory_order_relaxed);
  started_ = false;
}

Engine::HandoverFdSet Engine::HandoverFds() const {
  HandoverFdSet s;
  s.rx = rx_sock_.get();
  for (const auto& n : nets_) s.taps.emplace_back(n.vni, n.tap.get());
  return s;
}

int Engine::SeedLearned(const std::vector<LearnRow>& rows) {
  const int64_t now = NowMs();
  int learned = 0;
  for (const LearnRow& r : rows) {
    LearnTable::Sighting s{r.vni, r.mac, r.vtep};
    LearnTable::Verdict v;
    learned += learned_.LearnBatch(&s, 1, now - r.age_ms, &v);
  }
  return learned;
}

}  // namespace vxr
