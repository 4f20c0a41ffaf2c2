// SCM_RIGHTS handover of the engine's fds (see fd-passing.h), and its N-API face (RegisterFdPassing).
#include "fd-passing.h"

#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <poll.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <stddef.h>
#include <stdlib.h>
#include <unistd.h>

#include <napi.h>

#include "js-args.h"
#include "js-error.h"

namespace vxr {

namespace {

bool UnixAddress(const std::string& path, sockaddr_un* sa) {
  memset(sa, 0, sizeof(*sa));
  sa->sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(sa->sun_path)) return false;
  memcpy(sa->sun_path, path.data(), path.size());
  return true;
}

}  // namespace

SysError ListenHandover(const std::string& path, UniqueFd* out) {
  sockaddr_un sa;
  if (!UnixAddress(path, &sa)) return {ENAMETOOLONG, "handover socket path " + path};
  UniqueFd fd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return Errno("socket(AF_UNIX)");
  unlink(path.c_str());
  const mode_t mask = umask(0077);
  const int r = bind(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof(sa));
  const int err = errno;
  umask(mask);
  if (r < 0) return {err, "bind " + path};
  if (listen(fd.get(), 1) < 0) return Errno("listen " + path);
  *out = std::move(fd);
  return {};
}

SysError SendFds(const std::string& path, const std::vector<int>& fds, const std::string& header) {
  if (fds.empty() || fds.size() > kMaxPassedFds) return {EINVAL, "handover: 1-" + std::to_string(kMaxPassedFds) + " fds"};
  if (header.empty() || header.size() > kMaxHandoverHeader) return {EMSGSIZE, "handover header"};
  sockaddr_un sa;
  if (!UnixAddress(path, &sa)) return {ENAMETOOLONG, "handover socket path " + path};
  UniqueFd sock(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!sock.valid()) return Errno("socket(AF_UNIX)");
  if (connect(sock.get(), reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) < 0) return Errno("connect " + path);
  std::vector<char> control(CMSG_SPACE(sizeof(int) * fds.size()), 0);
  iovec iov{const_cast<char*>(header.data()), header.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control.data();
  msg.msg_controllen = control.size();
  cmsghdr* c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
  memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
  const ssize_t n = sendmsg(sock.get(), &msg, MSG_NOSIGNAL);
  if (n < 0) return Errno("sendmsg(SCM_RIGHTS) to " + path);
  if (static_cast<size_t>(n) != header.size()) return {EMSGSIZE, "sendmsg(SCM_RIGHTS) to " + path + ": short write"};
  return {};
}

SysError AcceptFds(int listen_fd, int timeout_ms, std::vector<UniqueFd>* fds, std::string* header) {
  pollfd p{listen_fd, POLLIN, 0};
  const int pr = poll(&p, 1, timeout_ms);
  if (pr < 0) return Errno("poll on the handover socket");
  if (pr == 0) return {ETIMEDOUT, "handover: no connection within " + std::to_string(timeout_ms) + " ms"};
  UniqueFd conn(accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC));
  if (!conn.valid()) return Errno("accept on the handover socket");
  ucred cred{};
  socklen_t cl = sizeof(cred);
  if (getsockopt(conn.get(), SOL_SOCKET, SO_PEERCRED, &cred, &cl) < 0) return Errno("SO_PEERCRED");
  if (cred.uid != 0 && cred.uid != getuid()) return {EPERM, "handover from uid " + std::to_string(cred.uid)};
  p = pollfd{conn.get(), POLLIN, 0};
  const int pr2 = poll(&p, 1, timeout_ms);
  if (pr2 < 0) return Errno("poll on the handover connection");
  if (pr2 == 0) return {ETIMEDOUT, "handover: no message within " + std::to_string(timeout_ms) + " ms"};
  std::vector<char> buf(kMaxHandoverHeader);
  std::vector<char> control(CMSG_SPACE(sizeof(int) * kMaxPassedFds), 0);
  iovec iov{buf.data(), buf.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control.data();
  msg.msg_controllen = control.size();
  const ssize_t n = recvmsg(conn.get(), &msg, MSG_CMSG_CLOEXEC);
  if (n < 0) return Errno("recvmsg on the handover connection");
  // Every fd that arrived is owned before anything can fail.
  std::vector<UniqueFd> got;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS || c->cmsg_len < CMSG_LEN(0)) continue;
    const size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < count; i++) {
      int fd;
      memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
      got.emplace_back(fd);
    }
  }
  if (msg.msg_flags & (MSG_CTRUNC | MSG_TRUNC)) return {EMSGSIZE, "handover message truncated"};
  if (got.empty()) return {EBADMSG, "handover message without fds"};
  *fds = std::move(got);
  header->assign(buf.data(), static_cast<size_t>(n));
  return {};
}

TapInfo InspectTap(int fd) {
  TapInfo t;
  ifreq ifr{};
  if (ioctl(fd, TUNGETIFF, &ifr) < 0) {
    t.error = Errno("TUNGETIFF");
    return t;
  }
  if ((ifr.ifr_flags & IFF_TAP) == 0) {
    t.error = {EINVAL, "TUNGETIFF: not a TAP"};
    return t;
  }
  t.name.assign(ifr.ifr_name, strnlen(ifr.ifr_name, IFNAMSIZ));
  t.vnet_hdr = (ifr.ifr_flags & IFF_VNET_HDR) != 0;
  return t;
}

SysError NotifySystemd(const std::string& message, bool* sent) {
  *sent = false;
  const char* env = getenv("NOTIFY_SOCKET");
  if (env == nullptr || env[0] == '\0') return {};
  std::string path(env);
  sockaddr_un sa;
  if (!UnixAddress(path, &sa)) return {ENAMETOOLONG, "NOTIFY_SOCKET " + path};
  socklen_t len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size());
  if (path[0] == '@') sa.sun_path[0] = '\0';  // abstract: no trailing NUL counted
  else len += 1;
  UniqueFd s(socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!s.valid()) return Errno("socket(AF_UNIX, SOCK_DGRAM)");
  if (sendto(s.get(), message.data(), message.size(), MSG_NOSIGNAL, reinterpret_cast<sockaddr*>(&sa), len) < 0)
    return Errno("sendto NOTIFY_SOCKET " + path);
  *sent = true;
  return {};
}

namespace {

// notifySystemd(message) → true when sent, false when NOTIFY_SOCKET is unset. Pinned by test/native/fd-passing.test.ts.
Napi::Value NotifySystemdJs(const Napi::CallbackInfo& info) {
  if (!info[0].IsString()) return ThrowType(info.Env(), "notifySystemd: message must be a string");
  bool sent = false;
  const SysError e = NotifySystemd(info[0].As<Napi::String>().Utf8Value(), &sent);
  if (!e.ok()) return ThrowSys(info.Env(), e);
  return Napi::Boolean::New(info.Env(), sent);
}

bool GetPath(const Napi::Value& v, std::string* out) {
  if (!v.IsString()) return false;
  *out = v.As<Napi::String>().Utf8Value();
  return !out->empty() && out->size() < sizeof(sockaddr_un::sun_path);
}

// listenHandover(path) → fd. Pinned by test/native/fd-passing.test.ts.
Napi::Value ListenHandoverJs(const Napi::CallbackInfo& info) {
  std::string path;
  if (!GetPath(info[0], &path)) return ThrowType(info.Env(), "listenHandover: path must be a string of 1-107 bytes");
  UniqueFd fd;
  const SysError e = ListenHandover(path, &fd);
  if (!e.ok()) return ThrowSys(info.Env(), e);
  return Napi::Number::New(info.Env(), fd.release());
}

// sendFds(path, fds: number[], header: string). Ours stay open. Pinned by test/native/fd-passing.test.ts.
Napi::Value SendFdsJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path;
  if (!GetPath(info[0], &path)) return ThrowType(env, "sendFds: path must be a string of 1-107 bytes");
  if (!info[1].IsArray()) return ThrowType(env, "sendFds: fds must be an array");
  Napi::Array a = info[1].As<Napi::Array>();
  if (a.Length() == 0 || a.Length() > kMaxPassedFds) return ThrowType(env, "sendFds: 1-" + std::to_string(kMaxPassedFds) + " fds");
  std::vector<int> fds;
  for (uint32_t i = 0; i < a.Length(); i++) {
    uint32_t fd;
    if (!GetUint(a.Get(i), 1u << 30, &fd)) return ThrowType(env, "sendFds: each fd must be a non-negative integer");
    fds.push_back(static_cast<int>(fd));
  }
  if (!info[2].IsString()) return ThrowType(env, "sendFds: header must be a string");
  const std::string header = info[2].As<Napi::String>().Utf8Value();
  if (header.empty() || header.size() > kMaxHandoverHeader) return ThrowType(env, "sendFds: header must be 1-4096 bytes");
  const SysError e = SendFds(path, fds, header);
  return e.ok() ? env.Undefined() : ThrowSys(env, e);
}

// acceptFds(listenFd, timeoutMs) → { fds: number[], header: string } (the caller owns the fds). Pinned by
// test/native/fd-passing.test.ts.
Napi::Value AcceptFdsJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t fd, timeout;
  if (!GetUint(info[0], 1u << 30, &fd)) return ThrowType(env, "acceptFds: listenFd must be a non-negative integer");
  if (!GetUint(info[1], 60000, &timeout)) return ThrowType(env, "acceptFds: timeoutMs must be 0-60000");
  std::vector<UniqueFd> fds;
  std::string header;
  const SysError e = AcceptFds(static_cast<int>(fd), static_cast<int>(timeout), &fds, &header);
  if (!e.ok()) return ThrowSys(env, e);
  Napi::Array a = Napi::Array::New(env, fds.size());
  for (size_t i = 0; i < fds.size(); i++) a.Set(i, Napi::Number::New(env, fds[i].release()));
  Napi::Object o = Napi::Object::New(env);
  o.Set("fds", a);
  o.Set("header", header);
  return o;
}

// inspectTap(fd) → { name, vnetHdr }. Pinned by test/native/fd-passing.test.ts.
Napi::Value InspectTapJs(const Napi::CallbackInfo& info) {
  uint32_t fd;
  if (!GetUint(info[0], 1u << 30, &fd)) return ThrowType(info.Env(), "inspectTap: fd must be a non-negative integer");
  const TapInfo t = InspectTap(static_cast<int>(fd));
  if (!t.error.ok()) return ThrowSys(info.Env(), t.error);
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("name", t.name);
  o.Set("vnetHdr", t.vnet_hdr);
  return o;
}

}  // namespace

void RegisterFdPassing(Napi::Env env, Napi::Object exports) {
  exports.Set("listenHandover", Napi::Function::New(env, ListenHandoverJs, "listenHandover"));
  exports.Set("sendFds", Napi::Function::New(env, SendFdsJs, "sendFds"));
  exports.Set("acceptFds", Napi::Function::New(env, AcceptFdsJs, "acceptFds"));
  exports.Set("inspectTap", Napi::Function::New(env, InspectTapJs, "inspectTap"));
  exports.Set("notifySystemd", Napi::Function::New(env, NotifySystemdJs, "notifySystemd"));
}

}  // namespace vxr
