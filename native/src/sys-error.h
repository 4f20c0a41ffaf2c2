// A failed system call as a value: what the engine, the TAP set-up and the sockets return instead of throwing.
// Plain C++ (no N-API): everything below the addon's surface depends on this header only. The N-API side turns a
// SysError into a JS Error in one place (ThrowSys in js-error.h).
#pragma once
#include <errno.h>

#include <string>

namespace vxr {

// A failed system call: its name, what it acted on, and errno. err == 0 is success.
struct SysError {
  int err = 0;
  std::string what;  // e.g. "TUNSETIFF vxr42"
  bool ok() const { return err == 0; }
};

// The SysError of the call that just failed (reads errno).
inline SysError Errno(const std::string& what) { return SysError{errno, what}; }

}  // namespace vxr
