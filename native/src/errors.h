// errno → JS Error conversion, in one place. The hot path never throws; only the N-API surface (addon.cc) calls these.
#pragma once
#include <napi.h>

#include <string>

namespace vxr {

// A failed system call: its name, what it acted on, and errno.
struct SysError {
  int err = 0;
  std::string what;  // e.g. "TUNSETIFF vxr42"
  bool ok() const { return err == 0; }
};

// Throws a JS Error with .code = errno name (e.g. "EADDRINUSE"), .errno and .syscall, and returns undefined.
Napi::Value ThrowSys(Napi::Env env, const SysError& e);
Napi::Value ThrowType(Napi::Env env, const std::string& message);

}  // namespace vxr
