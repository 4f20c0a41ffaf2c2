// TAP device set-up (JS thread only): open, name, MTU, enslave to a bridge, up. Pinned by test/native/tap.test.ts.
#pragma once
#include <string>

#include "errors.h"
#include "fd.h"

namespace vxr {

struct TapResult {
  UniqueFd fd;       // blocking, close-on-exec; closing it removes the TAP
  std::string name;  // the name the kernel gave it
  SysError error;
};

// On failure nothing is left behind: the fd is closed, which removes the TAP.
TapResult OpenTap(const std::string& name, int mtu, const std::string& bridge);

// Deletes a link by name (rtnetlink RTM_DELLINK). Deleting a TAP wakes a read() blocked on it (the tun driver shuts
// its queue down), which a close() from another thread does not. Pinned by test/native/tap.test.ts.
SysError DeleteLink(const std::string& name);

}  // namespace vxr
