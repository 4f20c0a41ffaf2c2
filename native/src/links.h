// Links seen through rtnetlink (JS thread, except LinkMonitor's own thread): what a link is now (GetLink), link
// events as they happen (LinkMonitor), and putting a link on a bridge again (AttachLink). The router follows its
// bridge and TAP with these (src/agent/links.ts). Parsing is bounds-checked (ParseLinkMessages). Pinned by
// test/native/links.test.ts.
#pragma once
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "fd.h"
#include "sys-error.h"

namespace vxr {

// One RTM_NEWLINK / RTM_DELLINK (or a GetLink answer).
struct LinkEvent {
  bool deleted = false;
  int index = 0;
  std::string name;
  int master = 0;      // ifindex of its bridge (IFLA_MASTER), 0: none
  unsigned flags = 0;  // IFF_*
  int mtu = 0;
  std::string kind;  // IFLA_INFO_KIND: "bridge", "tun", "veth"… ("" when the kernel does not say)
};

// Appends every RTM_NEWLINK / RTM_DELLINK in `buf` to `out`; skips other messages; stops at the first malformed
// header (returns false). Never reads past `len`.
bool ParseLinkMessages(const uint8_t* buf, size_t len, std::vector<LinkEvent>* out);

// The link called `name` now; *found = false when there is none.
SysError GetLink(const std::string& name, LinkEvent* out, bool* found);

// Sets `link`'s MTU, enslaves it to `bridge` (when not already its port) and brings it up.
SysError AttachLink(const std::string& link, const std::string& bridge, int mtu);

// Reads RTMGRP_LINK on a thread of its own and hands each batch of events to `on_events` (on that thread). A lost
// batch (ENOBUFS: the socket's queue overflowed) is reported as `overflow`: the reader must look again (GetLink).
class LinkMonitor {
 public:
  using Callback = std::function<void(std::vector<LinkEvent> events, bool overflow)>;
  static SysError Open(Callback on_events, std::unique_ptr<LinkMonitor>* out);
  ~LinkMonitor();
  void Close();  // idempotent; joins the thread (no callback runs after it returns)

 private:
  LinkMonitor() = default;
  void Loop();
  Callback on_events_;
  UniqueFd sock_, stop_fd_;
  std::thread thread_;
  bool closed_ = false;
};

}  // namespace vxr
