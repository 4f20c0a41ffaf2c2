// Registers readTap, readUdp and bindUdp on the addon's exports (fd-reader.cc): the reference engine's batched reads.
#pragma once
#include <napi.h>

namespace vxr {
void RegisterFdReaders(Napi::Env env, Napi::Object exports);
}  // namespace vxr
