// SysError → JS Error, JS thread only (see js-error.h). The one place native failures become JS exceptions.
#include "js-error.h"

#include <string.h>

namespace vxr {

Napi::Error SysErrorValue(Napi::Env env, const SysError& e) {
  const char* name = strerrorname_np(e.err);
  Napi::Error error = Napi::Error::New(env, e.what + ": " + strerror(e.err));
  error.Set("code", Napi::String::New(env, name ? name : "EUNKNOWN"));
  error.Set("errno", Napi::Number::New(env, e.err));
  error.Set("syscall", Napi::String::New(env, e.what));
  return error;
}

Napi::Value ThrowSys(Napi::Env env, const SysError& e) {
  SysErrorValue(env, e).ThrowAsJavaScriptException();
  return env.Undefined();
}

Napi::Value ThrowType(Napi::Env env, const std::string& message) {
  Napi::TypeError::New(env, message).ThrowAsJavaScriptException();
  return env.Undefined();
}

}  // namespace vxr
