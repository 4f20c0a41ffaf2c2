// Socket set-up (see udp-socket.h for threading and ownership). Status codes only; nothing here throws.
#include "udp-socket.h"

#include <linux/filter.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <string>
#include <vector>

namespace vxr {

namespace {

constexpr int kSocketBuffer = 4 << 20;

void BigBuffer(int fd, int force_opt, int opt) {
  if (setsockopt(fd, SOL_SOCKET, force_opt, &kSocketBuffer, sizeof(kSocketBuffer)) < 0)
    setsockopt(fd, SOL_SOCKET, opt, &kSocketBuffer, sizeof(kSocketBuffer));
}

// A socket that only sends: a filter that accepts nothing, and nothing left from before the filter.
bool RejectAll(int fd) {
  sock_filter reject_all[] = {{BPF_RET | BPF_K, 0, 0, 0}};
  sock_fprog prog{1, reject_all};
  if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof(prog)) < 0) return false;
  alignas(8) uint8_t junk[64];
  while (recv(fd, junk, sizeof(junk), MSG_DONTWAIT | MSG_TRUNC) >= 0) {
  }
  return true;
}

bool DontFragment(int fd, int family) {
  const int pmtu = family == AF_INET ? IP_PMTUDISC_DO : IPV6_PMTUDISC_DO;
  return setsockopt(fd, family == AF_INET ? IPPROTO_IP : IPPROTO_IPV6,
                    family == AF_INET ? IP_MTU_DISCOVER : IPV6_MTU_DISCOVER, &pmtu, sizeof(pmtu)) == 0;
}

int FamilyOf(const Addr& a) { return a.len == 4 ? AF_INET : AF_INET6; }

std::string Text(const Addr& a) {
  char out[INET6_ADDRSTRLEN];
  AddrToText(a, out, sizeof(out));
  return out;
}

}  // namespace

SysError OpenRxSocket(const Addr& local, uint16_t port, int tick_ms, bool try_gro, UniqueFd* out, bool* gro_on) {
  UniqueFd fd(socket(FamilyOf(local), SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return Errno("socket(UDP)");
  const timeval tick{tick_ms / 1000, (tick_ms % 1000) * 1000};
  if (setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tick, sizeof(tick)) < 0) return Errno("setsockopt(SO_RCVTIMEO)");
  sockaddr_storage sa;
  const socklen_t salen = ToSockaddr(local, port, &sa);
  if (bind(fd.get(), reinterpret_cast<sockaddr*>(&sa), salen) < 0) {
    const int err = errno;  // before Text() makes library calls of its own
    return SysError{err, "bind UDP " + Text(local) + " port " + std::to_string(port)};
  }
  BigBuffer(fd.get(), SO_RCVBUFFORCE, SO_RCVBUF);
  *gro_on = false;
  if (try_gro) {
    const int on = 1;
    *gro_on = setsockopt(fd.get(), IPPROTO_UDP, UDP_GRO, &on, sizeof(on)) == 0;
  }
  *out = std::move(fd);
  return {};
}

SysError AdoptRxSocket(UniqueFd fd, int tick_ms, bool try_gro, UniqueFd* out, bool* gro_on) {
  int type = 0;
  socklen_t len = sizeof(type);
  if (getsockopt(fd.get(), SOL_SOCKET, SO_TYPE, &type, &len) < 0) return Errno("handed-over UDP socket: SO_TYPE");
  if (type != SOCK_DGRAM) return SysError{ENOTSOCK, "handed-over UDP socket: not a datagram socket"};
  const timeval tick{tick_ms / 1000, (tick_ms % 1000) * 1000};
  if (setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tick, sizeof(tick)) < 0) return Errno("setsockopt(SO_RCVTIMEO)");
  const int on = try_gro ? 1 : 0;
  *gro_on = setsockopt(fd.get(), IPPROTO_UDP, UDP_GRO, &on, sizeof(on)) == 0 && try_gro;
  *out = std::move(fd);
  return {};
}

SysError OpenTxSocket(const Addr& local, UniqueFd* out) {
  const int family = FamilyOf(local);
  UniqueFd fd(socket(family, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_UDP));
  if (!fd.valid()) return Errno("socket(SOCK_RAW, IPPROTO_UDP)");
  sockaddr_storage sa;
  const socklen_t salen = ToSockaddr(local, 0, &sa);
  if (bind(fd.get(), reinterpret_cast<sockaddr*>(&sa), salen) < 0) {
    const int err = errno;
    return SysError{err, "bind raw " + Text(local)};
  }
  if (!DontFragment(fd.get(), family)) return Errno("setsockopt(MTU_DISCOVER)");
  // A raw IPPROTO_UDP socket would get a copy of every inbound UDP datagram.
  if (!RejectAll(fd.get())) return Errno("setsockopt(SO_ATTACH_FILTER)");
  BigBuffer(fd.get(), SO_SNDBUFFORCE, SO_SNDBUF);
  *out = std::move(fd);
  return {};
}

SysError OpenSendSocket(const Addr& local, uint16_t port, UniqueFd* out) {
  const int family = FamilyOf(local);
  UniqueFd fd(socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return Errno("socket(UDP)");
  sockaddr_storage sa;
  const socklen_t salen = ToSockaddr(local, port, &sa);
  if (bind(fd.get(), reinterpret_cast<sockaddr*>(&sa), salen) < 0) {
    const int err = errno;
    return SysError{err, "bind UDP " + Text(local) + " port " + std::to_string(port)};
  }
  if (!DontFragment(fd.get(), family)) return Errno("setsockopt(MTU_DISCOVER)");
  if (!RejectAll(fd.get())) return Errno("setsockopt(SO_ATTACH_FILTER)");
  BigBuffer(fd.get(), SO_SNDBUFFORCE, SO_SNDBUF);
  *out = std::move(fd);
  return {};
}

FlowSockets::Socket FlowSockets::Get(const Addr& local, uint16_t port, int64_t now_ms, Miss* miss) {
  std::lock_guard<std::mutex> lock(mu_);
  const auto it = fds_.find(port);
  if (it != fds_.end()) {
    it->second.used_ms = now_ms;
    if (it->second.fd || now_ms < it->second.retry_at_ms) {
      *miss = it->second.fd ? Miss::kNone : Miss::kTaken;
      return it->second.fd;
    }
  } else if (fds_.size() >= max_) {
    *miss = Miss::kFull;
    return nullptr;
  }
  const int family = FamilyOf(local);
  UniqueFd fd(socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  sockaddr_storage sa;
  const socklen_t salen = ToSockaddr(local, port, &sa);
  if (fd.valid() && (bind(fd.get(), reinterpret_cast<sockaddr*>(&sa), salen) < 0 || !DontFragment(fd.get(), family) ||
                     !RejectAll(fd.get())))
    fd.reset();  // port taken (or the socket unusable): this flow stays on the raw socket, and binding is tried again later
  if (fd.valid()) BigBuffer(fd.get(), SO_SNDBUFFORCE, SO_SNDBUF);
  Slot& slot = fds_[port];  // a new slot, or one whose port could not be bound (no socket to replace)
  if (fd.valid()) {
    slot.fd = std::make_shared<UniqueFd>(std::move(fd));
    open_.fetch_add(1, std::memory_order_relaxed);
  }
  slot.retry_at_ms = now_ms + kRetryMs;
  slot.used_ms = now_ms;
  *miss = slot.fd ? Miss::kNone : Miss::kTaken;
  return slot.fd;
}

size_t FlowSockets::CloseIdle(int64_t now_ms) {
  std::vector<Socket> closing;  // released after the lock: close() never holds up a TX thread's Get
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto it = fds_.begin(); it != fds_.end();) {
      if (now_ms - it->second.used_ms < idle_ms_) {
        ++it;
        continue;
      }
      if (it->second.fd) closing.push_back(std::move(it->second.fd));
      it = fds_.erase(it);
    }
    open_.fetch_sub(closing.size(), std::memory_order_relaxed);
  }
  return closing.size();
}

void FlowSockets::CloseAll() {
  std::unordered_map<uint16_t, Slot> closing;
  {
    std::lock_guard<std::mutex> lock(mu_);
    closing.swap(fds_);
    open_.store(0, std::memory_order_relaxed);
  }
}

}  // namespace vxr
