// The N-API surface, and nothing else: argument validation (TypeErrors that name the argument), conversion between
// JS values and the C++ types, and errno → JS Error through js-error.cc. Its typed twin is src/dataplane/native.ts.
// Everything here runs on the JS thread.
#include <napi.h>

#include <ifaddrs.h>
#include <linux/if_tun.h>
#include <string.h>

#include <memory>
#include <string>
#include <vector>

#include "arp.h"
#include "bench.h"
#include "counters.h"
#include "engine.h"
#include "js-error.h"
#include "nd.h"
#include "offload.h"
#include "tap.h"
#include "wire.h"

namespace vxr {
namespace {

bool GetAddr(const Napi::Value& v, Addr* out) { return v.IsString() && ParseAddr(v.As<Napi::String>().Utf8Value().c_str(), out); }

bool GetUint(const Napi::Value& v, uint32_t max, uint32_t* out) {
  if (!v.IsNumber()) return false;
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= 0 && d <= max) || d != static_cast<double>(static_cast<uint32_t>(d))) return false;
  *out = static_cast<uint32_t>(d);
  return true;
}

bool IsBytes(const Napi::Value& v) {
  return v.IsTypedArray() && v.As<Napi::TypedArray>().TypedArrayType() == napi_uint8_array;
}

std::string Ipv4Text(uint32_t ip) {
  return std::to_string(ip >> 24) + "." + std::to_string((ip >> 16) & 0xff) + "." + std::to_string((ip >> 8) & 0xff) + "." +
         std::to_string(ip & 0xff);
}

std::string AddrText(const Addr& a) {
  char out[INET6_ADDRSTRLEN];
  AddrToText(a, out, sizeof(out));
  return out;
}

Napi::Array Strings(Napi::Env env, const char* const* names, size_t n) {
  Napi::Array a = Napi::Array::New(env, n);
  for (size_t i = 0; i < n; i++) a.Set(i, Napi::String::New(env, names[i]));
  return a;
}

// { vnis: [{ vni, peers: string[], macs: [mac, vtep][] }] } → Table. Returns an error message or "".
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
    }
    Napi::Value macs = o.Get("macs");
    if (!macs.IsArray()) return "table.vnis[].macs must be an array of [mac, vtep]";
    for (uint32_t j = 0; j < macs.As<Napi::Array>().Length(); j++) {
      Napi::Value pair = macs.As<Napi::Array>().Get(j);
      uint64_t key;
      Addr vtep;
      if (!pair.IsArray() || !pair.As<Napi::Array>().Get(0u).IsString() ||
          !ParseMac(pair.As<Napi::Array>().Get(0u).As<Napi::String>().Utf8Value().c_str(), &key) ||
          !GetAddr(pair.As<Napi::Array>().Get(1u), &vtep))
        return "table.vnis[].macs[] must be [\"aa:bb:cc:dd:ee:ff\", vtep address]";
      vt.macs[key] = t->AddPeer(vtep);
    }
    Napi::Value neighbors = o.Get("neighbors");
    if (neighbors.IsUndefined()) continue;
    if (!neighbors.IsArray()) return "table.vnis[].neighbors must be an array of [ip, mac]";
    for (uint32_t j = 0; j < neighbors.As<Napi::Array>().Length(); j++) {
      Napi::Value pair = neighbors.As<Napi::Array>().Get(j);
      uint64_t key;
      Addr ip;
      if (!pair.IsArray() || !GetAddr(pair.As<Napi::Array>().Get(0u), &ip) ||
          !pair.As<Napi::Array>().Get(1u).IsString() ||
          !ParseMac(pair.As<Napi::Array>().Get(1u).As<Napi::String>().Utf8Value().c_str(), &key))
        return "table.vnis[].neighbors[] must be [\"198.18.0.2\" or \"fd00::2\", \"aa:bb:cc:dd:ee:ff\"]";
      if (ip.len == 16)
        vt.nd[ip] = key;
      else
        vt.arp[(uint32_t{ip.bytes[0]} << 24) | (uint32_t{ip.bytes[1]} << 16) | (uint32_t{ip.bytes[2]} << 8) | ip.bytes[3]] = key;
    }
  }
  return "";
}

// The JS object of one engine (NativeEngineHandle in src/dataplane/native.ts). Its finalizer destroys the Engine,
// which stops it: a forgotten engine never leaks threads. Pinned by test/native/engine.test.ts.
class EngineWrap : public Napi::ObjectWrap<EngineWrap> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "NativeEngine",
                       {InstanceMethod("setTable", &EngineWrap::SetTable), InstanceMethod("start", &EngineWrap::Start),
                        InstanceMethod("stop", &EngineWrap::Stop), InstanceMethod("counters", &EngineWrap::GetCounters),
                        InstanceMethod("learned", &EngineWrap::Learned),
                        InstanceMethod("features", &EngineWrap::GetFeatures),
                        InstanceMethod("localMacs", &EngineWrap::LocalMacs),
                        InstanceMethod("injectFrame", &EngineWrap::InjectFrame),
                        InstanceMethod("traffic", &EngineWrap::Traffic)});
  }

  // Constructed only by createEngine, with a ready engine passed through an External.
  explicit EngineWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<EngineWrap>(info) {
    if (info.Length() == 1 && info[0].IsExternal())
      engine_.reset(info[0].As<Napi::External<Engine>>().Data());
    else
      ThrowType(info.Env(), "NativeEngine is created by createEngine(options)");
  }

 private:
  Napi::Value SetTable(const Napi::CallbackInfo& info) {
    auto t = std::make_shared<Table>();
    const std::string err = BuildTable(info[0], t.get());
    if (!err.empty()) return ThrowType(info.Env(), err);
    if (engine_) engine_->SetTable(std::move(t));
    return info.Env().Undefined();
  }
  Napi::Value Start(const Napi::CallbackInfo& info) {
    if (!engine_) return ThrowType(info.Env(), "engine is not open");
    const SysError e = engine_->Start();
    return e.ok() ? info.Env().Undefined() : ThrowSys(info.Env(), e);
  }
  Napi::Value Stop(const Napi::CallbackInfo& info) {
    if (engine_) engine_->Stop();
    return info.Env().Undefined();
  }
  Napi::Value GetCounters(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Object o = Napi::Object::New(env);
    Napi::Array drops = Napi::Array::New(env, kDropNames.size());
    Napi::Array traffic = Napi::Array::New(env, kTrafficNames.size());
    for (size_t i = 0; i < kDropNames.size(); i++)
      drops.Set(i, Napi::Number::New(env, engine_ ? static_cast<double>(engine_->counters().drops[i].load()) : 0));
    for (size_t i = 0; i < kTrafficNames.size(); i++)
      traffic.Set(i, Napi::Number::New(env, engine_ ? static_cast<double>(engine_->counters().traffic[i].load()) : 0));
    o.Set("drops", drops);
    o.Set("traffic", traffic);
    return o;
  }
  // { tapVnetHdr, udpGso, udpGro }: the offloads in use now.
  Napi::Value GetFeatures(const Napi::CallbackInfo& info) {
    const Features f = engine_ ? engine_->features() : Features{};
    Napi::Object o = Napi::Object::New(info.Env());
    o.Set("tapVnetHdr", f.tap_vnet_hdr);
    o.Set("udpGso", f.udp_gso);
    o.Set("udpGro", f.udp_gro);
    return o;
  }
  // injectFrame(vni, frame): writes a frame onto that VNI's bridge (gratuitous ARP).
  Napi::Value InjectFrame(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    uint32_t vni;
    if (!GetUint(info[0], kMaxVni, &vni)) return ThrowType(env, "injectFrame: vni must be 0-16777215");
    if (!IsBytes(info[1]) || info[1].As<Napi::Uint8Array>().ByteLength() < kEthHeaderLen)
      return ThrowType(env, "injectFrame: frame must be a Uint8Array of at least 14 bytes");
    if (!engine_) return ThrowType(env, "engine is not open");
    Napi::Uint8Array f = info[1].As<Napi::Uint8Array>();
    const SysError e = engine_->InjectFrame(vni, f.Data(), f.ByteLength());
    return e.ok() ? env.Undefined() : ThrowSys(env, e);
  }
  // [{ vni, mac, ageMs, ips }]: sources of frames read from the TAPs (and the IPv4 and IPv6 addresses they used),
  // within the aging time.
  Napi::Value LocalMacs(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const std::vector<LocalMacRow> rows = engine_ ? engine_->LocalMacs() : std::vector<LocalMacRow>{};
    Napi::Array a = Napi::Array::New(env, rows.size());
    for (size_t i = 0; i < rows.size(); i++) {
      char mac[18];
      MacToText(rows[i].mac, mac);
      Napi::Object o = Napi::Object::New(env);
      o.Set("vni", rows[i].vni);
      o.Set("mac", mac);
      o.Set("ageMs", static_cast<double>(rows[i].age_ms));
      Napi::Array ips = Napi::Array::New(env, rows[i].ips.size());
      for (size_t k = 0; k < rows[i].ips.size(); k++) ips.Set(k, AddrText(rows[i].ips[k]));
      o.Set("ips", ips);
      a.Set(i, o);
    }
    return a;
  }
  // { peers: [{ address, rxFrames, rxBytes, txFrames, txBytes, lastRxAgoMs (-1: never) }],
  //   vnis: [{ vni, rxFrames, rxBytes, txFrames, txBytes }], rejected: [{ address, vni, count, agoMs }] }.
  Napi::Value Traffic(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const int64_t now = NowMs();
    auto flows = [&](Napi::Object o, const FlowCount& rx, const FlowCount& tx) {
      o.Set("rxFrames", static_cast<double>(rx.frames));
      o.Set("rxBytes", static_cast<double>(rx.bytes));
      o.Set("txFrames", static_cast<double>(tx.frames));
      o.Set("txBytes", static_cast<double>(tx.bytes));
    };
    auto text = [](const Addr& a) {
      char out[INET6_ADDRSTRLEN];
      AddrToText(a, out, sizeof(out));
      return std::string(out);
    };
    const std::vector<PeerRow> peers = engine_ ? engine_->traffic().Peers() : std::vector<PeerRow>{};
    const std::vector<VniRow> vnis = engine_ ? engine_->traffic().Vnis() : std::vector<VniRow>{};
    const std::vector<RejectRow> rejected = engine_ ? engine_->traffic().RejectedSources() : std::vector<RejectRow>{};
    Napi::Array pa = Napi::Array::New(env, peers.size());
    for (size_t i = 0; i < peers.size(); i++) {
      Napi::Object o = Napi::Object::New(env);
      o.Set("address", text(peers[i].addr));
      flows(o, peers[i].rx, peers[i].tx);
      o.Set("lastRxAgoMs", static_cast<double>(peers[i].last_rx_ms < 0 ? -1 : now - peers[i].last_rx_ms));
      pa.Set(i, o);
    }
    Napi::Array va = Napi::Array::New(env, vnis.size());
    for (size_t i = 0; i < vnis.size(); i++) {
      Napi::Object o = Napi::Object::New(env);
      o.Set("vni", vnis[i].vni);
      flows(o, vnis[i].rx, vnis[i].tx);
      va.Set(i, o);
    }
    Napi::Array ra = Napi::Array::New(env, rejected.size());
    for (size_t i = 0; i < rejected.size(); i++) {
      Napi::Object o = Napi::Object::New(env);
      o.Set("address", text(rejected[i].addr));
      o.Set("vni", rejected[i].vni);
      o.Set("count", static_cast<double>(rejected[i].count));
      o.Set("agoMs", static_cast<double>(now - rejected[i].last_ms));
      ra.Set(i, o);
    }
    Napi::Object o = Napi::Object::New(env);
    o.Set("peers", pa);
    o.Set("vnis", va);
    o.Set("rejected", ra);
    return o;
  }
  Napi::Value Learned(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const std::vector<LearnRow> rows = engine_ ? engine_->Learned() : std::vector<LearnRow>{};
    Napi::Array a = Napi::Array::New(env, rows.size());
    for (size_t i = 0; i < rows.size(); i++) {
      char mac[18], vtep[INET6_ADDRSTRLEN];
      MacToText(rows[i].mac, mac);
      AddrToText(rows[i].vtep, vtep, sizeof(vtep));
      Napi::Object o = Napi::Object::New(env);
      o.Set("vni", rows[i].vni);
      o.Set("mac", mac);
      o.Set("vtep", vtep);
      o.Set("ageMs", static_cast<double>(rows[i].age_ms));
      a.Set(i, o);
    }
    return a;
  }

  std::unique_ptr<Engine> engine_;
};

struct AddonData {
  Napi::FunctionReference engine_ctor;
};

// openTap(name, mtu, bridge, offloads = false) → { fd, name, vnetHdr, offloads: ('csum' | 'tso4' | 'tso6')[] }.
// Pinned by test/native/tap.test.ts.
Napi::Value OpenTapJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t mtu;
  if (!info[0].IsString()) return ThrowType(env, "openTap: name must be a string ('' lets the kernel choose)");
  if (!GetUint(info[1], 65535, &mtu) || mtu < 68) return ThrowType(env, "openTap: mtu must be an integer 68-65535");
  if (!info[2].IsString()) return ThrowType(env, "openTap: bridge must be a string");
  if (!info[3].IsUndefined() && !info[3].IsBoolean()) return ThrowType(env, "openTap: offloads must be a boolean");
  const bool offloads = info[3].IsBoolean() && info[3].As<Napi::Boolean>().Value();
  TapResult r = OpenTap(info[0].As<Napi::String>().Utf8Value(), static_cast<int>(mtu), info[2].As<Napi::String>().Utf8Value(), offloads);
  if (!r.error.ok()) return ThrowSys(env, r.error);
  Napi::Object o = Napi::Object::New(env);
  o.Set("fd", r.fd.release());
  o.Set("name", r.name);
  o.Set("vnetHdr", r.vnet_hdr);
  Napi::Array on = Napi::Array::New(env);
  const std::pair<unsigned, const char*> names[] = {{TUN_F_CSUM, "csum"}, {TUN_F_TSO4, "tso4"}, {TUN_F_TSO6, "tso6"}};
  for (const auto& [bit, name] : names)
    if (r.offloads & bit) on.Set(on.Length(), name);
  o.Set("offloads", on);
  return o;
}

// deleteLink(name). Pinned by test/native/tap.test.ts.
Napi::Value DeleteLinkJs(const Napi::CallbackInfo& info) {
  if (!info[0].IsString()) return ThrowType(info.Env(), "deleteLink: name must be a string");
  const SysError e = DeleteLink(info[0].As<Napi::String>().Utf8Value());
  return e.ok() ? info.Env().Undefined() : ThrowSys(info.Env(), e);
}

// closeFd(fd): closes a TAP fd the engine never took (removing the TAP). Pinned by test/native/tap.test.ts.
Napi::Value CloseFdJs(const Napi::CallbackInfo& info) {
  uint32_t fd;
  if (!GetUint(info[0], 1u << 30, &fd)) return ThrowType(info.Env(), "closeFd: fd must be a non-negative integer");
  UniqueFd closing(static_cast<int>(fd));
  return info.Env().Undefined();
}

// createEngine({ local, port, underlayMtu, learning, agingMs, udpGso?, udpGro?, arpSuppression?,
//                networks: [{ vni, tapFd, mtu, vnetHdr? }] }).
// Takes ownership of every tapFd, also when it throws. Pinned by test/native/engine.test.ts (the TS face is
// NativeEngine in src/dataplane/native-engine.ts).
Napi::Value CreateEngineJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsObject()) return ThrowType(env, "createEngine: options must be an object");
  Napi::Object o = info[0].As<Napi::Object>();
  EngineConfig cfg;
  std::vector<UniqueFd> taps;  // closes the fds if validation fails before the engine owns them
  if (o.Get("networks").IsArray()) {
    Napi::Array nets = o.Get("networks").As<Napi::Array>();
    for (uint32_t i = 0; i < nets.Length(); i++) {
      NetworkConfig n;
      uint32_t vni, fd, mtu;
      Napi::Value v = nets.Get(i);
      if (!v.IsObject() || !GetUint(v.As<Napi::Object>().Get("vni"), kMaxVni, &vni) ||
          !GetUint(v.As<Napi::Object>().Get("tapFd"), 1u << 30, &fd) ||
          !GetUint(v.As<Napi::Object>().Get("mtu"), 65535, &mtu))
        return ThrowType(env, "createEngine: networks[] must be { vni, tapFd, mtu }");
      taps.emplace_back(static_cast<int>(fd));
      const Napi::Value vnet = v.As<Napi::Object>().Get("vnetHdr");
      if (!vnet.IsUndefined() && !vnet.IsBoolean()) return ThrowType(env, "createEngine: networks[].vnetHdr must be a boolean");
      const bool vnet_hdr = vnet.IsBoolean() && vnet.As<Napi::Boolean>().Value();
      cfg.networks.push_back(NetworkConfig{vni, static_cast<int>(fd), static_cast<int>(mtu), vnet_hdr});
    }
  }
  uint32_t port, umtu, aging;
  if (!GetAddr(o.Get("local"), &cfg.local)) return ThrowType(env, "createEngine: local must be an IP address");
  if (!GetUint(o.Get("port"), 65535, &port) || port == 0) return ThrowType(env, "createEngine: port must be 1-65535");
  if (!GetUint(o.Get("underlayMtu"), 65535, &umtu) || umtu < 68) return ThrowType(env, "createEngine: underlayMtu must be 68-65535");
  if (!GetUint(o.Get("agingMs"), 0xffffffffu, &aging)) return ThrowType(env, "createEngine: agingMs must be a non-negative integer");
  if (!o.Get("learning").IsBoolean()) return ThrowType(env, "createEngine: learning must be a boolean");
  if (cfg.networks.empty()) return ThrowType(env, "createEngine: networks must hold at least one { vni, tapFd, mtu }");
  for (const auto& [key, field] : {std::pair{"udpGso", &cfg.udp_gso}, std::pair{"udpGro", &cfg.udp_gro},
                                   std::pair{"arpSuppression", &cfg.arp_suppression}}) {
    const Napi::Value v = o.Get(key);
    if (!v.IsUndefined() && !v.IsBoolean()) return ThrowType(env, std::string("createEngine: ") + key + " must be a boolean");
    *field = !v.IsBoolean() || v.As<Napi::Boolean>().Value();
  }
  cfg.port = static_cast<uint16_t>(port);
  cfg.underlay_mtu = static_cast<int>(umtu);
  cfg.aging_ms = aging;
  cfg.learning = o.Get("learning").As<Napi::Boolean>().Value();
  for (auto& t : taps) t.release();  // Engine::Create owns them now
  std::unique_ptr<Engine> engine;
  const SysError e = Engine::Create(cfg, &engine);
  if (!e.ok()) return ThrowSys(env, e);
  AddonData* data = env.GetInstanceData<AddonData>();
  return data->engine_ctor.New({Napi::External<Engine>::New(env, engine.release())});
}

// encapsulate(frame, vni, src, dst, dstPort) → UDP + VXLAN + frame. Twin: encapsulate in src/packet/vxlan.ts.
Napi::Value EncapsulateJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t vni, port;
  Addr src, dst;
  if (!info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array)
    return ThrowType(env, "encapsulate: frame must be a Uint8Array");
  if (!GetUint(info[1], kMaxVni, &vni)) return ThrowType(env, "encapsulate: vni must be 0-16777215");
  if (!GetAddr(info[2], &src) || !GetAddr(info[3], &dst) || src.len != dst.len)
    return ThrowType(env, "encapsulate: src and dst must be IP addresses of one family");
  if (!GetUint(info[4], 65535, &port)) return ThrowType(env, "encapsulate: dstPort must be 0-65535");
  Napi::Uint8Array frame = info[0].As<Napi::Uint8Array>();
  Napi::Buffer<uint8_t> out = Napi::Buffer<uint8_t>::New(env, kEncapHeaderLen + frame.ByteLength());
  WriteEncapHeader(out.Data(), vni, FlowPort(frame.Data(), frame.ByteLength()), static_cast<uint16_t>(port), src, dst,
                   frame.ByteLength(), Sum16(frame.Data(), frame.ByteLength()));
  if (frame.ByteLength()) memcpy(out.Data() + kEncapHeaderLen, frame.Data(), frame.ByteLength());
  return out;
}

// flowPort(frame). Twin: flowPort in src/packet/flow.ts.
Napi::Value FlowPortJs(const Napi::CallbackInfo& info) {
  if (!info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array)
    return ThrowType(info.Env(), "flowPort: frame must be a Uint8Array");
  Napi::Uint8Array f = info[0].As<Napi::Uint8Array>();
  return Napi::Number::New(info.Env(), FlowPort(f.Data(), f.ByteLength()));
}

// classify(payload, from, vnis: [{ vni, peers }], maxFrame). Twin: classifyDatagram in src/dataplane/classify.ts.
Napi::Value ClassifyJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Addr from;
  uint32_t max_frame;
  if (!info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array)
    return ThrowType(env, "classify: payload must be a Uint8Array");
  if (!GetAddr(info[1], &from)) return ThrowType(env, "classify: from must be an IP address");
  if (!GetUint(info[3], 0xffffffffu, &max_frame)) return ThrowType(env, "classify: maxFrame must be an integer");
  if (!info[2].IsArray()) return ThrowType(env, "classify: vnis must be an array");
  // Copies of { vni, peers } with no static MACs, so BuildTable can read them without touching the caller's objects.
  Napi::Array in = info[2].As<Napi::Array>();
  Napi::Array vnis = Napi::Array::New(env, in.Length());
  for (uint32_t i = 0; i < in.Length(); i++) {
    if (!in.Get(i).IsObject()) return ThrowType(env, "classify: vnis[] must be { vni, peers }");
    Napi::Object copy = Napi::Object::New(env);
    copy.Set("vni", in.Get(i).As<Napi::Object>().Get("vni"));
    copy.Set("peers", in.Get(i).As<Napi::Object>().Get("peers"));
    copy.Set("macs", Napi::Array::New(env));
    vnis.Set(i, copy);
  }
  Napi::Object wrapper = Napi::Object::New(env);
  wrapper.Set("vnis", vnis);
  Table t;
  const std::string err = BuildTable(wrapper, &t);
  if (!err.empty()) return ThrowType(env, "classify: " + err);
  Napi::Uint8Array p = info[0].As<Napi::Uint8Array>();
  const ClassifyResult c = Classify(p.Data(), p.ByteLength(), max_frame, [&](uint32_t vni) { return t.PeerState(vni, from); });
  Napi::Object o = Napi::Object::New(env);
  if (c.ok) {
    o.Set("vni", c.vni);
    o.Set("offset", static_cast<double>(kVxlanHeaderLen));
  } else {
    o.Set("reason", kDropNames[static_cast<int>(c.reason)]);
    if (c.reason == Drop::kRxUnknownSource) o.Set("vni", c.vni);  // reported among the refused sources
  }
  return o;
}

// segmentTso(packet): `packet` is what a TAP with IFF_VNET_HDR hands the TX thread (virtio header + frame). Returns
// the frames the engine would encapsulate (segments of a TSO super-frame, or the frame with its partial checksum
// finished), or null where the engine drops it as tx_bad_offload. Pinned by test/native/offload.test.ts.
Napi::Value SegmentTsoJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!IsBytes(info[0])) return ThrowType(env, "segmentTso: packet must be a Uint8Array");
  Napi::Uint8Array in = info[0].As<Napi::Uint8Array>();
  if (in.ByteLength() < kVnetHdrLen) return env.Null();
  const VnetHdr vh = ReadVnetHdr(in.Data());
  std::vector<uint8_t> frame(in.Data() + kVnetHdrLen, in.Data() + in.ByteLength());
  Napi::Array out = Napi::Array::New(env);
  if (vh.gso_type == VIRTIO_NET_HDR_GSO_NONE) {
    if ((vh.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) && !FinishChecksum(frame.data(), frame.size(), vh)) return env.Null();
    out.Set(0u, Napi::Buffer<uint8_t>::Copy(env, frame.data(), frame.size()));
    return out;
  }
  TsoFrame t;
  if (!ParseTso(frame.data(), frame.size(), vh, &t)) return env.Null();
  uint8_t hdr[kMaxSegHeader];
  for (size_t i = 0; i < t.segments; i++) {
    WriteSegmentHeader(frame.data(), t, i, hdr);
    const size_t payload = SegmentPayload(t, i);
    Napi::Buffer<uint8_t> seg = Napi::Buffer<uint8_t>::New(env, t.hdr_len + payload);
    memcpy(seg.Data(), hdr, t.hdr_len);
    memcpy(seg.Data() + t.hdr_len, frame.data() + t.hdr_len + i * t.mss, payload);
    out.Set(static_cast<uint32_t>(i), seg);
  }
  return out;
}

// mergeSegments(frames): the TAP writes the RX thread makes of these inner frames, in order, each as one Buffer
// (virtio header + frame; merged runs as one super-frame). Pinned by test/native/offload.test.ts.
Napi::Value MergeSegmentsJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsArray()) return ThrowType(env, "mergeSegments: frames must be an array of Uint8Array");
  Napi::Array in = info[0].As<Napi::Array>();
  std::vector<std::vector<uint8_t>> frames;
  for (uint32_t i = 0; i < in.Length(); i++) {
    if (!IsBytes(in.Get(i))) return ThrowType(env, "mergeSegments: frames must be an array of Uint8Array");
    Napi::Uint8Array f = in.Get(i).As<Napi::Uint8Array>();
    frames.emplace_back(f.Data(), f.Data() + f.ByteLength());
  }
  Napi::Array out = Napi::Array::New(env);
  auto emit = [&](const iovec* v, int cnt, int) {
    std::vector<uint8_t> w;
    for (int i = 0; i < cnt; i++) w.insert(w.end(), static_cast<uint8_t*>(v[i].iov_base), static_cast<uint8_t*>(v[i].iov_base) + v[i].iov_len);
    out.Set(out.Length(), Napi::Buffer<uint8_t>::Copy(env, w.data(), w.size()));
  };
  TapWriteMerger merger(true);
  for (const auto& f : frames) merger.Add(f.data(), f.size(), emit);
  merger.Flush(emit);
  return out;
}

// senderIpv4(frame) → the address the sender uses, or null. Twin: senderIpv4 in src/packet/neighbor.ts.
Napi::Value SenderIpv4Js(const Napi::CallbackInfo& info) {
  if (!IsBytes(info[0])) return ThrowType(info.Env(), "senderIpv4: frame must be a Uint8Array");
  Napi::Uint8Array f = info[0].As<Napi::Uint8Array>();
  uint32_t ip;
  return SenderIpv4(f.Data(), f.ByteLength(), &ip) ? Napi::String::New(info.Env(), Ipv4Text(ip)) : info.Env().Null();
}

// arpAnswer(frame, mac) → the reply the TX thread writes for an ARP request (60 bytes), or null when the frame is
// not one, with the address asked about as `target`. Twins: arpRequestTarget and arpReply in src/packet/neighbor.ts.
Napi::Value ArpAnswerJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint64_t mac;
  if (!IsBytes(info[0])) return ThrowType(env, "arpAnswer: frame must be a Uint8Array");
  if (!info[1].IsString() || !ParseMac(info[1].As<Napi::String>().Utf8Value().c_str(), &mac)) return ThrowType(env, "arpAnswer: mac must be aa:bb:cc:dd:ee:ff");
  Napi::Uint8Array f = info[0].As<Napi::Uint8Array>();
  uint32_t target;
  if (!ArpRequestTarget(f.Data(), f.ByteLength(), &target)) return env.Null();
  Napi::Buffer<uint8_t> out = Napi::Buffer<uint8_t>::New(env, kMinFrame);
  WriteArpReply(f.Data(), mac, out.Data());
  Napi::Object o = Napi::Object::New(env);
  o.Set("target", Ipv4Text(target));
  o.Set("reply", out);
  return o;
}

// senderIpv6(frame) → the IPv6 address the sender uses, or null. Twin: senderIpv6 in src/packet/nd.ts.
Napi::Value SenderIpv6Js(const Napi::CallbackInfo& info) {
  if (!IsBytes(info[0])) return ThrowType(info.Env(), "senderIpv6: frame must be a Uint8Array");
  Napi::Uint8Array f = info[0].As<Napi::Uint8Array>();
  Addr a;
  a.len = 16;
  return SenderIpv6(f.Data(), f.ByteLength(), a.bytes) ? Napi::String::New(info.Env(), AddrText(a)) : info.Env().Null();
}

// ndAnswer(frame, mac) → the Neighbor Advertisement the TX thread writes for a Neighbor Solicitation (86 bytes), or
// null when the frame is not one it answers, with the address asked about as `target`. Twins: ndSolicitTarget and
// ndAdvertReply in src/packet/nd.ts.
Napi::Value NdAnswerJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint64_t mac;
  if (!IsBytes(info[0])) return ThrowType(env, "ndAnswer: frame must be a Uint8Array");
  if (!info[1].IsString() || !ParseMac(info[1].As<Napi::String>().Utf8Value().c_str(), &mac)) return ThrowType(env, "ndAnswer: mac must be aa:bb:cc:dd:ee:ff");
  Napi::Uint8Array f = info[0].As<Napi::Uint8Array>();
  Addr target;
  target.len = 16;
  if (!NdSolicitTarget(f.Data(), f.ByteLength(), target.bytes)) return env.Null();
  Napi::Buffer<uint8_t> out = Napi::Buffer<uint8_t>::New(env, kNaFrameLen);
  WriteNdAdvert(f.Data(), mac, out.Data());
  Napi::Object o = Napi::Object::New(env);
  o.Set("target", AddrText(target));
  o.Set("reply", out);
  return o;
}

// interfaceOf(address) → name of the interface holding it, or null. getifaddrs sees addresses on links that are
// down or without carrier (os.networkInterfaces() hides those). Pinned by test/cli/errors.test.ts (E_ADDRESS).
Napi::Value InterfaceOfJs(const Napi::CallbackInfo& info) {
  Addr want;
  if (!GetAddr(info[0], &want)) return ThrowType(info.Env(), "interfaceOf: address must be an IP address");
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) < 0) return ThrowSys(info.Env(), SysError{errno, "getifaddrs"});
  std::string found;
  for (ifaddrs* i = list; i != nullptr && found.empty(); i = i->ifa_next) {
    Addr a;
    if (i->ifa_addr == nullptr || (i->ifa_addr->sa_family != AF_INET && i->ifa_addr->sa_family != AF_INET6)) continue;
    sockaddr_storage ss{};
    memcpy(&ss, i->ifa_addr, i->ifa_addr->sa_family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6));
    if (AddrFromSockaddr(ss, &a) && a == want) found = i->ifa_name;
  }
  freeifaddrs(list);
  return found.empty() ? info.Env().Null() : Napi::String::New(info.Env(), found);
}

// benchLookup(entries, lookups) → mean ns per lookup. Pinned by test/bench/quick.test.ts.
Napi::Value BenchLookupJs(const Napi::CallbackInfo& info) {
  uint32_t entries, lookups;
  if (!GetUint(info[0], 10000000, &entries) || !GetUint(info[1], 1000000000, &lookups) || entries == 0 || lookups == 0)
    return ThrowType(info.Env(), "benchLookup: entries (1-10000000) and lookups (1-1000000000) must be integers");
  return Napi::Number::New(info.Env(), BenchLookup(entries, lookups));
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  auto* data = new AddonData();
  data->engine_ctor = Napi::Persistent(EngineWrap::Define(env));
  env.SetInstanceData(data);
  exports.Set("dropReasons", Strings(env, kDropNames.data(), kDropNames.size()));
  exports.Set("trafficCounters", Strings(env, kTrafficNames.data(), kTrafficNames.size()));
  exports.Set("openTap", Napi::Function::New(env, OpenTapJs, "openTap"));
  exports.Set("interfaceOf", Napi::Function::New(env, InterfaceOfJs, "interfaceOf"));
  exports.Set("deleteLink", Napi::Function::New(env, DeleteLinkJs, "deleteLink"));
  exports.Set("benchLookup", Napi::Function::New(env, BenchLookupJs, "benchLookup"));
  exports.Set("closeFd", Napi::Function::New(env, CloseFdJs, "closeFd"));
  exports.Set("createEngine", Napi::Function::New(env, CreateEngineJs, "createEngine"));
  exports.Set("encapsulate", Napi::Function::New(env, EncapsulateJs, "encapsulate"));
  exports.Set("flowPort", Napi::Function::New(env, FlowPortJs, "flowPort"));
  exports.Set("classify", Napi::Function::New(env, ClassifyJs, "classify"));
  exports.Set("segmentTso", Napi::Function::New(env, SegmentTsoJs, "segmentTso"));
  exports.Set("mergeSegments", Napi::Function::New(env, MergeSegmentsJs, "mergeSegments"));
  exports.Set("senderIpv4", Napi::Function::New(env, SenderIpv4Js, "senderIpv4"));
  exports.Set("arpAnswer", Napi::Function::New(env, ArpAnswerJs, "arpAnswer"));
  exports.Set("senderIpv6", Napi::Function::New(env, SenderIpv6Js, "senderIpv6"));
  exports.Set("ndAnswer", Napi::Function::New(env, NdAnswerJs, "ndAnswer"));
  return exports;
}

}  // namespace
}  // namespace vxr

static Napi::Object InitVxlanNative(Napi::Env env, Napi::Object exports) { return vxr::Init(env, exports); }
NODE_API_MODULE(vxlan_native, InitVxlanNative)
