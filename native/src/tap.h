// TAP device set-up (JS thread only): open, name, MTU, enslave to a bridge, up. Pinned by test/native/tap.test.ts.
#pragma once
#include <string>

#include "sys-error.h"
#include "fd.h"

namespace vxr {

struct TapResult {
  UniqueFd fd;       // blocking, close-on-exec; closing it removes the TAP
  std::string name;  // the name the kernel gave it
  bool vnet_hdr = false;  // every read and write starts with a virtio_net_hdr (offload.h)
  unsigned offloads = 0;  // TUN_F_* the kernel accepted: it may hand us partial checksums (CSUM) and super-frames (TSO)
  SysError error;
};

// On failure nothing is left behind: the fd is closed, which removes the TAP. With `offloads`, the TAP gets
// IFF_VNET_HDR and as many of checksum, TSO4 and TSO6 offload as the kernel takes (probed: none is an error).
// An empty `bridge` leaves the TAP on no bridge (AttachLink in links.h puts it on one later).
TapResult OpenTap(const std::string& name, int mtu, const std::string& bridge, bool offloads);

// Deletes a link by name (rtnetlink RTM_DELLINK). Deleting a TAP wakes a read() blocked on it (the tun driver shuts
// its queue down), which a close() from another thread does not. Pinned by test/native/tap.test.ts.
SysError DeleteLink(const std::string& name);

}  // namespace vxr
