// Registers watchLinks, getLink and attachLink on the addon's exports (links-js.cc).
#pragma once
#include <napi.h>

namespace vxr {
void RegisterLinks(Napi::Env env, Napi::Object exports);
}  // namespace vxr
