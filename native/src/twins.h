// The test twins of the engine's byte-level code (twins.cc). JS thread only.
#pragma once
#include <napi.h>

namespace vxr {

// Adds encapsulate, flowPort, classifyDatagram, segmentTso, mergeSegments, senderIpv4, arpAnswer, senderIpv6,
// ndAnswer and gsoPolicy to the addon's exports (NativeTwins in src/dataplane/native.ts).
void RegisterTwins(Napi::Env env, Napi::Object exports);

}  // namespace vxr
