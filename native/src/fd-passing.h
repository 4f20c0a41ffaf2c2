// Handing a running engine's file descriptors to another process (hitless restart and upgrade): a one-shot Unix
// stream socket that the new router listens on, and one SCM_RIGHTS message from the old router carrying the UDP
// socket and the TAP fds (and a short header). The kernel queues belong to the open files, not to a process: frames
// queued while the handover runs are read by the new router. JS thread only; status codes only, nothing throws.
// Pinned by test/native/fd-passing.test.ts; the N-API face is RegisterFdPassing (listenHandover, sendFds,
// acceptFds, inspectTap in src/dataplane/native.ts).
#pragma once
#include <string>
#include <vector>

#include "fd.h"
#include "sys-error.h"

namespace vxr {

// At most this many fds and header bytes in one handover message (one UDP socket and a TAP per network).
inline constexpr size_t kMaxPassedFds = 64;
inline constexpr size_t kMaxHandoverHeader = 4096;

// A listening Unix stream socket at `path` (removed first if a stale one is there), mode 0600 through the umask.
SysError ListenHandover(const std::string& path, UniqueFd* out);

// Connects to `path` and sends `fds` with `header` in one message. The receiver gets duplicates; ours stay open.
SysError SendFds(const std::string& path, const std::vector<int>& fds, const std::string& header);

// Accepts one connection on `listen_fd` within `timeout_ms`, checks that the peer runs as our user (or root), and
// receives one message: its fds (each owned by a UniqueFd) and header. A truncated message is an error, and every
// fd that did arrive is closed.
SysError AcceptFds(int listen_fd, int timeout_ms, std::vector<UniqueFd>* fds, std::string* header);

// What the kernel says of a TAP fd (TUNGETIFF): its interface name and whether it carries virtio headers.
struct TapInfo {
  std::string name;
  bool vnet_hdr = false;
  SysError error;
};
TapInfo InspectTap(int fd);

// One datagram to systemd's $NOTIFY_SOCKET (sd_notify(3): "READY=1", "MAINPID=<pid>"; a leading '@' is the abstract
// namespace). False, and nothing sent, when the variable is unset (not run by systemd with Type=notify).
SysError NotifySystemd(const std::string& message, bool* sent);

}  // namespace vxr

#include <napi.h>
namespace vxr {
// listenHandover, sendFds, acceptFds, inspectTap on the addon's exports (addon.cc calls this from Init).
void RegisterFdPassing(Napi::Env env, Napi::Object exports);
}  // namespace vxr
