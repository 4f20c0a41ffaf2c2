// JS value checks and conversion, JS thread only (see js-args.h).
#include "js-args.h"

namespace vxr {

bool GetAddr(const Napi::Value& v, Addr* out) { return v.IsString() && ParseAddr(v.As<Napi::String>().Utf8Value().c_str(), out); }

bool GetUint(const Napi::Value& v, uint32_t max, uint32_t* out) {
  if (!v.IsNumber()) return false;
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= 0 && d <= max) || d != static_cast<double>(static_cast<uint32_t>(d))) return false;
  *out = static_cast<uint32_t>(d);
  return true;
}

bool GetMac(const Napi::Value& v, uint64_t* key) { return v.IsString() && ParseMac(v.As<Napi::String>().Utf8Value().c_str(), key); }

bool IsBytes(const Napi::Value& v) {
  return v.IsTypedArray() && v.As<Napi::TypedArray>().TypedArrayType() == napi_uint8_array;
}

std::string AddrText(const Addr& a) {
  char out[INET6_ADDRSTRLEN];
  AddrToText(a, out, sizeof(out));
  return out;
}

namespace {

// Calls `each(first, second)` for every [first, second] element of `pairs`, in order; false at the first element
// that is not an array or that `each` refuses.
template <typename Each>
bool EachPair(const Napi::Array& pairs, Each&& each) {
  for (uint32_t j = 0; j < pairs.Length(); j++) {
    const Napi::Value pair = pairs.Get(j);
    if (!pair.IsArray() || !each(pair.As<Napi::Array>().Get(0u), pair.As<Napi::Array>().Get(1u))) return false;
  }
  return true;
}

}  // namespace

std::string BuildTable(const Napi::Value& v, Table* t) {
  if (!v.IsObject() || !v.As<Napi::Object>().Get("vnis").IsArray()) return "table.vnis must be an array";
  Napi::Array vnis = v.As<Napi::Object>().Get("vnis").As<Napi::Array>();
  for (uint32_t i = 0; i < vnis.Length(); i++) {
    if (!vnis.Get(i).IsObject()) return "table.vnis[] must be objects";
    Napi::Object o = vnis.Get(i).As<Napi::Object>();
    uint32_t vni;
    if (!GetUint(o.Get("vni"), kMaxVni, &vni)) return "table.vnis[].vni must be an integer 0-16777215";
    VniTable& vt = t->vnis[vni];
    if (!o.Get("peers").IsArray()) return "table.vnis[].peers must be an array";
    Napi::Array peers = o.Get("peers").As<Napi::Array>();
    for (uint32_t j = 0; j < peers.Length(); j++) {
      Addr a;
      if (!GetAddr(peers.Get(j), &a)) return "table.vnis[].peers[] must be IP addresses";
      vt.flood.push_back(t->AddPeer(a));
      vt.sources.insert(a);
      t->any_peer.insert(a);
    }
    Napi::Value macs = o.Get("macs");
    if (!macs.IsArray()) return "table.vnis[].macs must be an array of [mac, vtep]";
    const bool macs_ok = EachPair(macs.As<Napi::Array>(), [&](const Napi::Value& mac, const Napi::Value& vtep) {
      uint64_t key;
      Addr a;
      if (!GetMac(mac, &key) || !GetAddr(vtep, &a)) return false;
      vt.macs[key] = t->AddPeer(a);
      return true;
    });
    if (!macs_ok) return "table.vnis[].macs[] must be [\"aa:bb:cc:dd:ee:ff\", vtep address]";
    Napi::Value neighbors = o.Get("neighbors");
    if (neighbors.IsUndefined()) continue;
    if (!neighbors.IsArray()) return "table.vnis[].neighbors must be an array of [ip, mac]";
    const bool neighbors_ok = EachPair(neighbors.As<Napi::Array>(), [&](const Napi::Value& ip, const Napi::Value& mac) {
      uint64_t key;
      Addr a;
      if (!GetAddr(ip, &a) || !GetMac(mac, &key)) return false;
      if (a.len == 16)
        vt.nd[a] = key;
      else
        vt.arp[(uint32_t{a.bytes[0]} << 24) | (uint32_t{a.bytes[1]} << 16) | (uint32_t{a.bytes[2]} << 8) | a.bytes[3]] = key;
      return true;
    });
    if (!neighbors_ok) return "table.vnis[].neighbors[] must be [\"198.18.0.2\" or \"fd00::2\", \"aa:bb:cc:dd:ee:ff\"]";
  }
  Napi::Value mtus = v.As<Napi::Object>().Get("pathMtus");
  if (mtus.IsUndefined()) return "";
  if (!mtus.IsArray()) return "table.pathMtus must be an array of [vtep, mtu]";
  const bool mtus_ok = EachPair(mtus.As<Napi::Array>(), [&](const Napi::Value& vtep, const Napi::Value& mtu) {
    Addr a;
    uint32_t m;
    if (!GetAddr(vtep, &a) || !GetUint(mtu, 65535, &m) || m < 68) return false;
    t->path_mtus[a] = static_cast<int>(m);
    return true;
  });
  if (!mtus_ok) return "table.pathMtus[] must be [vtep address, mtu 68-65535]";
  return "";
}

}  // namespace vxr
