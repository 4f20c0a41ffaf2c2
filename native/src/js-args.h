// Argument checks and JS value → C++ conversion shared by the N-API files (addon.cc, twins.cc, bench.cc). JS thread
// only. Each returns false (or an error message) instead of throwing: the caller throws a TypeError that names the
// argument (ThrowType in js-error.h).
#pragma once
#include <napi.h>

#include <cstdint>
#include <string>

#include "table.h"
#include "wire.h"

namespace vxr {

bool GetAddr(const Napi::Value& v, Addr* out);                    // an IPv4 or IPv6 address string
bool GetUint(const Napi::Value& v, uint32_t max, uint32_t* out);  // an integer 0..max
bool GetMac(const Napi::Value& v, uint64_t* key);                 // "aa:bb:cc:dd:ee:ff"
bool IsBytes(const Napi::Value& v);                               // a Uint8Array (a Buffer is one)
std::string AddrText(const Addr& a);                              // canonical text (inet_ntop)

// { vnis: [{ vni, peers: string[], macs: [mac, vtep][], neighbors?: [ip, mac][] }] } → Table (NativeTable in
// src/dataplane/native.ts). Returns an error message naming the field, or "".
std::string BuildTable(const Napi::Value& v, Table* t);

}  // namespace vxr
