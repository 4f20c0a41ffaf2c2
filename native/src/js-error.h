// SysError → JS Error, in one place, on the N-API side (JS thread only). The hot path never throws; only the N-API
// surface (addon.cc, twins.cc, bench.cc) calls these. In TypeScript, toRouterError (src/dataplane/native.ts) maps
// the error's `code` (errno name) and `syscall` onto the product's error family.
#pragma once
#include <napi.h>

#include <string>

#include "sys-error.h"

namespace vxr {

// Throws a JS Error with .code = errno name (e.g. "EADDRINUSE"), .errno and .syscall, and returns undefined.
Napi::Value ThrowSys(Napi::Env env, const SysError& e);
// The same Error as a value, not thrown (a fault reported rather than a call that failed).
Napi::Error SysErrorValue(Napi::Env env, const SysError& e);
Napi::Value ThrowType(Napi::Env env, const std::string& message);

}  // namespace vxr
