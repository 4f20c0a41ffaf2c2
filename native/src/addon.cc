// The addon's production surface, and nothing else: the engine object, TAP and link set-up, the counter names and
// the limits shared with TypeScript. Argument validation (TypeErrors that name the argument), conversion between JS
// values and the C++ types (js-args.h), and SysError → JS Error through js-error.h. The test twins (twins.cc) and
// the benchmark hook (bench.cc) are registered from Init, each through one function. Its typed face is
// src/dataplane/native.ts. Everything here runs on the JS thread.
#include <napi.h>

#include <ifaddrs.h>
#include <linux/if_tun.h>
#include <string.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "bench.h"
#include "counters.h"
#include "engine.h"
#include "fd-passing.h"
#include "js-args.h"
#include "js-error.h"
#include "learn.h"
#include "links-js.h"
#include "fd-reader.h"
#include "local-macs.h"
#include "stats.h"
#include "tap.h"
#include "twins.h"
#include "wire.h"

namespace vxr {
namespace {

Napi::Array Strings(Napi::Env env, const char* const* names, size_t n) {
  Napi::Array a = Napi::Array::New(env, n);
  for (size_t i = 0; i < n; i++) a.Set(i, Napi::String::New(env, names[i]));
  return a;
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
                        InstanceMethod("learnedCount", &EngineWrap::LearnedCount),
                        InstanceMethod("gsoSockets", &EngineWrap::GsoSockets),
                        InstanceMethod("features", &EngineWrap::GetFeatures),
                        InstanceMethod("loop", &EngineWrap::GetLoop),
                        InstanceMethod("localMacs", &EngineWrap::LocalMacs),
                        InstanceMethod("injectFrame", &EngineWrap::InjectFrame),
                        InstanceMethod("traffic", &EngineWrap::Traffic),
                        InstanceMethod("fault", &EngineWrap::GetFault),
                        InstanceMethod("quiesce", &EngineWrap::Quiesce),
                        InstanceMethod("handoverFds", &EngineWrap::HandoverFds),
                        InstanceMethod("seedLearned", &EngineWrap::SeedLearned),
                        InstanceMethod("lostTaps", &EngineWrap::LostTaps),
                        InstanceMethod("replaceTap", &EngineWrap::ReplaceTap),
                        InstanceMethod("sendProbe", &EngineWrap::SendProbe),
                        InstanceMethod("probeReplies", &EngineWrap::ProbeReplies)});
  }

  // Constructed only by createEngine, with a ready engine passed through an External.
  explicit EngineWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<EngineWrap>(info) {
    if (info.Length() == 1 && info[0].IsExternal())
      engine_.reset(info[0].As<Napi::External<Engine>>().Data());
    else
      ThrowType(info.Env(), "NativeEngine is created by createEngine(options)");
  }

 private:
  // setTable(table: NativeTable): builds a new snapshot and swaps it in (the engine threads see it from their next
  // batch). Pinned by test/native/engine.test.ts.
  Napi::Value SetTable(const Napi::CallbackInfo& info) {
    auto t = std::make_shared<Table>();
    const std::string err = BuildTable(info[0], t.get());
    if (!err.empty()) return ThrowType(info.Env(), err);
    if (engine_) engine_->SetTable(std::move(t));
    return info.Env().Undefined();
  }
  // start(), stop(): the threads (stop is idempotent and also closes the sockets and TAPs). Pinned by
  // test/native/engine.test.ts.
  Napi::Value Start(const Napi::CallbackInfo& info) {
    if (!engine_) return ThrowType(info.Env(), "engine is not open");
    const SysError e = engine_->Start();
    return e.ok() ? info.Env().Undefined() : ThrowSys(info.Env(), e);
  }
  Napi::Value Stop(const Napi::CallbackInfo& info) {
    if (engine_) engine_->Stop();
    return info.Env().Undefined();
  }
  // counters() → { drops: number[], traffic: number[] }, indexed as dropReasons and trafficCounters. Pinned by
  // test/native/engine.test.ts.
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
  // features() → { tapVnetHdr, udpGso, udpGro }: the offloads in use now. Pinned by test/lab/offloads.test.ts.
  Napi::Value GetFeatures(const Napi::CallbackInfo& info) {
    const Features f = engine_ ? engine_->features() : Features{};
    Napi::Object o = Napi::Object::New(info.Env());
    o.Set("tapVnetHdr", f.tap_vnet_hdr);
    o.Set("udpGso", f.udp_gso);
    o.Set("udpGro", f.udp_gro);
    return o;
  }
  // loop() → { loop: 'uring' | 'threads', fallback: string, receive: 'multishot' | 'poll' | '' }: the event loop
  // running since start(), why not io_uring when it was asked for ('' otherwise), and how the io_uring loop reads
  // the UDP socket ('' with threads). Pinned by test/lab/uring.test.ts.
  Napi::Value GetLoop(const Napi::CallbackInfo& info) {
    const LoopInfo l = engine_ ? engine_->loop() : LoopInfo{};
    Napi::Object o = Napi::Object::New(info.Env());
    o.Set("loop", l.uring ? "uring" : "threads");
    o.Set("fallback", l.fallback);
    o.Set("receive", !l.uring ? "" : l.recv_multishot ? "multishot" : "poll");
    return o;
  }
  // fault() → null, or the Error (code = errno name, syscall) of the first data-path thread that stopped on its own.
  // Cheap: one lock. Twin: Engine.fault in src/dataplane/engine.ts; pinned by test/lab/tap-lost.test.ts.
  Napi::Value GetFault(const Napi::CallbackInfo& info) {
    const SysError f = engine_ ? engine_->Fault() : SysError{};
    return f.ok() ? info.Env().Null() : Napi::Value(SysErrorValue(info.Env(), f).Value());
  }
  // lostTaps() → VNIs whose TAP was deleted under the engine; replaceTap(vni, fd, vnetHdr) hands it a fresh one (the
  // fd is owned from here on, also when it throws). Pinned by test/lab/tap-lost.test.ts.
  Napi::Value LostTaps(const Napi::CallbackInfo& info) {
    const std::vector<uint32_t> lost = engine_ ? engine_->LostTaps() : std::vector<uint32_t>{};
    Napi::Array a = Napi::Array::New(info.Env(), lost.size());
    for (size_t i = 0; i < lost.size(); i++) a.Set(i, lost[i]);
    return a;
  }
  Napi::Value ReplaceTap(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    uint32_t vni, fd;
    if (!GetUint(info[1], 1u << 30, &fd)) return ThrowType(env, "replaceTap: fd must be a non-negative integer");
    UniqueFd owned(static_cast<int>(fd));
    if (!GetUint(info[0], kMaxVni, &vni)) return ThrowType(env, "replaceTap: vni must be 0-16777215");
    if (!info[2].IsBoolean()) return ThrowType(env, "replaceTap: vnetHdr must be a boolean");
    if (!engine_) return ThrowType(env, "engine is not open");
    const SysError e = engine_->ReplaceTap(vni, owned.release(), info[2].As<Napi::Boolean>().Value());
    return e.ok() ? env.Undefined() : ThrowSys(env, e);
  }
  // sendProbe(to, payload) → 0, or the errno number (EMSGSIZE: larger than this host's path allows), of sending a
  // probe (src/packet/probe.ts) to `to`'s VXLAN port with DF. Pinned by test/lab/peer-health.test.ts.
  Napi::Value SendProbe(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Addr to;
    if (!GetAddr(info[0], &to)) return ThrowType(env, "sendProbe: to must be an IP address");
    if (!IsBytes(info[1]) || info[1].As<Napi::Uint8Array>().ByteLength() < kProbeHeaderLen ||
        info[1].As<Napi::Uint8Array>().ByteLength() > 65507)
      return ThrowType(env, "sendProbe: payload must be a Uint8Array of 24-65507 bytes");
    if (!engine_) return ThrowType(env, "engine is not open");
    Napi::Uint8Array p = info[1].As<Napi::Uint8Array>();
    return Napi::Number::New(env, engine_->SendProbe(to, p.Data(), p.ByteLength()));
  }
  // probeReplies() → [{ from, id, length, rttMs }]: probe replies received since the last call. Twin: the JS
  // engine's; pinned by test/lab/peer-health.test.ts.
  Napi::Value ProbeReplies(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const std::vector<Engine::ProbeReplyRow> rows = engine_ ? engine_->ProbeReplies() : std::vector<Engine::ProbeReplyRow>{};
    Napi::Array a = Napi::Array::New(env, rows.size());
    for (size_t i = 0; i < rows.size(); i++) {
      Napi::Object o = Napi::Object::New(env);
      o.Set("from", AddrText(rows[i].from));
      o.Set("id", rows[i].id);
      o.Set("length", rows[i].length);
      o.Set("rttMs", static_cast<double>(rows[i].rtt_ns) / 1e6);
      a.Set(i, o);
    }
    return a;
  }
  // injectFrame(vni, frame): writes a frame onto that VNI's bridge (gratuitous ARP). Pinned by
  // test/lab/etcd-macs.test.ts (an address re-bound to another MAC).
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
  // within the aging time. Twin: JsEngine.localMacs in src/dataplane/js-engine.ts; pinned by
  // test/lab/etcd-macs.test.ts.
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
  // Twin: TrafficStats in src/dataplane/traffic.ts; pinned by test/native/engine.test.ts.
  Napi::Value Traffic(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const int64_t now = NowMs();
    auto flows = [&](Napi::Object o, const FlowCount& rx, const FlowCount& tx) {
      o.Set("rxFrames", static_cast<double>(rx.frames));
      o.Set("rxBytes", static_cast<double>(rx.bytes));
      o.Set("txFrames", static_cast<double>(tx.frames));
      o.Set("txBytes", static_cast<double>(tx.bytes));
    };
    const std::vector<PeerRow> peers = engine_ ? engine_->traffic().Peers() : std::vector<PeerRow>{};
    const std::vector<VniRow> vnis = engine_ ? engine_->traffic().Vnis() : std::vector<VniRow>{};
    const std::vector<RejectRow> rejected = engine_ ? engine_->traffic().RejectedSources() : std::vector<RejectRow>{};
    Napi::Array pa = Napi::Array::New(env, peers.size());
    for (size_t i = 0; i < peers.size(); i++) {
      Napi::Object o = Napi::Object::New(env);
      o.Set("address", AddrText(peers[i].addr));
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
      o.Set("address", AddrText(rejected[i].addr));
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
  // learned() → [{ vni, mac, vtep, ageMs }]: MACs learned from inbound traffic, within the aging time. Twin: the
  // learning in src/fdb/fdb.ts; pinned by test/native/engine.test.ts.
  Napi::Value Learned(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const std::vector<LearnRow> rows = engine_ ? engine_->Learned() : std::vector<LearnRow>{};
    Napi::Array a = Napi::Array::New(env, rows.size());
    for (size_t i = 0; i < rows.size(); i++) {
      char mac[18];
      MacToText(rows[i].mac, mac);
      Napi::Object o = Napi::Object::New(env);
      o.Set("vni", rows[i].vni);
      o.Set("mac", mac);
      o.Set("vtep", AddrText(rows[i].vtep));
      o.Set("ageMs", static_cast<double>(rows[i].age_ms));
      a.Set(i, o);
    }
    return a;
  }

  // quiesce(): the threads stop, every fd stays open with its queue (a handover); start() runs them again.
  // handoverFds() → { rx, taps: [{ vni, fd }] }: the fds to pass (still ours). seedLearned(rows: [{ vni, mac, vtep,
  // ageMs }]) → how many were taken. Pinned by test/native/fd-passing.test.ts and test/lab/takeover.test.ts.
  Napi::Value Quiesce(const Napi::CallbackInfo& info) {
    if (engine_) engine_->Quiesce();
    return info.Env().Undefined();
  }
  Napi::Value HandoverFds(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!engine_) return ThrowType(env, "engine is not open");
    const Engine::HandoverFdSet s = engine_->HandoverFds();
    Napi::Array taps = Napi::Array::New(env, s.taps.size());
    for (size_t i = 0; i < s.taps.size(); i++) {
      Napi::Object t = Napi::Object::New(env);
      t.Set("vni", s.taps[i].first);
      t.Set("fd", s.taps[i].second);
      taps.Set(i, t);
    }
    Napi::Object o = Napi::Object::New(env);
    o.Set("rx", s.rx);
    o.Set("taps", taps);
    return o;
  }
  Napi::Value SeedLearned(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!engine_) return ThrowType(env, "engine is not open");
    if (!info[0].IsArray()) return ThrowType(env, "seedLearned: rows must be an array");
    Napi::Array a = info[0].As<Napi::Array>();
    std::vector<LearnRow> rows;
    for (uint32_t i = 0; i < a.Length(); i++) {
      Napi::Value v = a.Get(i);
      LearnRow r{};
      uint32_t age;
      if (!v.IsObject() || !GetUint(v.As<Napi::Object>().Get("vni"), kMaxVni, &r.vni) ||
          !GetMac(v.As<Napi::Object>().Get("mac"), &r.mac) || !GetAddr(v.As<Napi::Object>().Get("vtep"), &r.vtep) ||
          !GetUint(v.As<Napi::Object>().Get("ageMs"), 0x7fffffffu, &age))
        return ThrowType(env, "seedLearned: rows[" + std::to_string(i) + "] must be { vni, mac, vtep, ageMs }");
      r.age_ms = age;
      rows.push_back(r);
    }
    return Napi::Number::New(env, engine_->SeedLearned(rows));
  }

  // learnedCount() → learned entries held (what the bounds count): O(1), so that a metrics scrape never copies the
  // table. Twin: ForwardingTable.learnedCount in src/fdb/fdb.ts; pinned by test/native/learn.test.ts.
  Napi::Value LearnedCount(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), engine_ ? static_cast<double>(engine_->LearnedCount()) : 0.0);
  }

  // gsoSockets() → GSO flow sockets open now (FlowSockets: one per outer source port in use, closed when idle), O(1)
  // for metrics. Pinned by test/native/tx-hostile.test.ts.
  Napi::Value GsoSockets(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), engine_ ? static_cast<double>(engine_->GsoSockets()) : 0.0);
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

// createEngine({ local, port, underlayMtu, learning, agingMs, learnMaxPerPeer, learnMax, maxLocalMacs?, udpGso?,
//                udpGro?, arpSuppression?, sourceCheck?, clampMss?: { ipv4, ipv6 }, networks: [{ vni, tapFd, mtu, vnetHdr? }] }).
//                udpGro?, arpSuppression?, sourceCheck?, loop?: 'threads' | 'uring' | 'auto', uringWaitNr?,
//                uringMinWaitUs?, gsoSocketIdleMs? (tests: how long an unused GSO flow socket stays open),
//                networks: [{ vni, tapFd, mtu, vnetHdr? }] }).
// Takes ownership of every tapFd, also when it throws. Pinned by test/native/engine.test.ts (the TS face is
// NativeEngine in src/dataplane/native-engine.ts).
Napi::Value CreateEngineJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsObject()) return ThrowType(env, "createEngine: options must be an object");
  Napi::Object o = info[0].As<Napi::Object>();
  EngineConfig cfg;
  std::vector<UniqueFd> taps;  // closes the fds if validation fails before the engine owns them
  UniqueFd rx_owned;           // the handed-over UDP socket (rxFd), likewise
  const Napi::Value rx = o.Get("rxFd");
  uint32_t rx_fd = 0;
  if (!rx.IsUndefined() && !GetUint(rx, 1u << 30, &rx_fd)) return ThrowType(env, "createEngine: rxFd must be a non-negative integer");
  if (!rx.IsUndefined()) rx_owned.reset(static_cast<int>(rx_fd));
  if (o.Get("networks").IsArray()) {
    Napi::Array nets = o.Get("networks").As<Napi::Array>();
    for (uint32_t i = 0; i < nets.Length(); i++) {
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
  uint32_t port, umtu, aging, per_peer, learn_max, max_local = 1024;
  if (!GetAddr(o.Get("local"), &cfg.local)) return ThrowType(env, "createEngine: local must be an IP address");
  if (!GetUint(o.Get("port"), 65535, &port) || port == 0) return ThrowType(env, "createEngine: port must be 1-65535");
  if (!GetUint(o.Get("underlayMtu"), 65535, &umtu) || umtu < 68) return ThrowType(env, "createEngine: underlayMtu must be 68-65535");
  if (!GetUint(o.Get("agingMs"), 0xffffffffu, &aging)) return ThrowType(env, "createEngine: agingMs must be a non-negative integer");
  // Bounded here too (config validates them with the key's name): the table reserves learnMax buckets up front.
  if (!GetUint(o.Get("learnMaxPerPeer"), kMaxLearned, &per_peer)) return ThrowType(env, "createEngine: learnMaxPerPeer must be an integer 0-" + std::to_string(kMaxLearned));
  if (!GetUint(o.Get("learnMax"), kMaxLearned, &learn_max)) return ThrowType(env, "createEngine: learnMax must be an integer 0-" + std::to_string(kMaxLearned));
  if (!o.Get("maxLocalMacs").IsUndefined() && (!GetUint(o.Get("maxLocalMacs"), 1u << 20, &max_local) || max_local == 0))
    return ThrowType(env, "createEngine: maxLocalMacs must be 1-1048576");
  if (!o.Get("learning").IsBoolean()) return ThrowType(env, "createEngine: learning must be a boolean");
  if (cfg.networks.empty()) return ThrowType(env, "createEngine: networks must hold at least one { vni, tapFd, mtu }");
  for (const auto& [key, field] : {std::pair{"udpGso", &cfg.udp_gso}, std::pair{"udpGro", &cfg.udp_gro},
                                   std::pair{"arpSuppression", &cfg.arp_suppression}, std::pair{"sourceCheck", &cfg.source_check}}) {
    const Napi::Value v = o.Get(key);
    if (!v.IsUndefined() && !v.IsBoolean()) return ThrowType(env, std::string("createEngine: ") + key + " must be a boolean");
    *field = !v.IsBoolean() || v.As<Napi::Boolean>().Value();
  }
  const Napi::Value clamp = o.Get("clampMss");
  if (!clamp.IsUndefined()) {
    uint32_t v4, v6;
    if (!clamp.IsObject() || !GetUint(clamp.As<Napi::Object>().Get("ipv4"), 65535, &v4) ||
        !GetUint(clamp.As<Napi::Object>().Get("ipv6"), 65535, &v6))
      return ThrowType(env, "createEngine: clampMss must be { ipv4, ipv6 } (0-65535 each, 0 = off)");
    cfg.clamp_mss = MssClamp{static_cast<uint16_t>(v4), static_cast<uint16_t>(v6)};
  }
  const Napi::Value loop = o.Get("loop");
  if (!loop.IsUndefined()) {
    const std::string l = loop.IsString() ? loop.As<Napi::String>().Utf8Value() : "";
    if (l == "threads") cfg.loop = EngineConfig::Loop::kThreads;
    else if (l == "uring") cfg.loop = EngineConfig::Loop::kUring;
    else if (l == "auto") cfg.loop = EngineConfig::Loop::kAuto;
    else return ThrowType(env, "createEngine: loop must be 'threads', 'uring' or 'auto'");
  }
  uint32_t wait_nr = cfg.uring_wait_nr, min_wait = cfg.uring_min_wait_us;
  if (!o.Get("uringWaitNr").IsUndefined() && (!GetUint(o.Get("uringWaitNr"), 64, &wait_nr) || wait_nr == 0))
    return ThrowType(env, "createEngine: uringWaitNr must be 1-64");
  if (!o.Get("uringMinWaitUs").IsUndefined() && !GetUint(o.Get("uringMinWaitUs"), 1000000, &min_wait))
    return ThrowType(env, "createEngine: uringMinWaitUs must be 0-1000000");
  uint32_t gso_idle = static_cast<uint32_t>(cfg.gso_idle_ms);
  if (!o.Get("gsoSocketIdleMs").IsUndefined() && !GetUint(o.Get("gsoSocketIdleMs"), 0x7fffffffu, &gso_idle))
    return ThrowType(env, "createEngine: gsoSocketIdleMs must be a non-negative integer");
  cfg.gso_idle_ms = gso_idle;
  cfg.uring_wait_nr = wait_nr;
  cfg.uring_min_wait_us = min_wait;
  cfg.port = static_cast<uint16_t>(port);
  cfg.underlay_mtu = static_cast<int>(umtu);
  cfg.aging_ms = aging;
  cfg.learn_max_per_peer = static_cast<int>(per_peer);
  cfg.learn_max = static_cast<int>(learn_max);
  cfg.max_local_macs = max_local;
  cfg.learning = o.Get("learning").As<Napi::Boolean>().Value();
  for (auto& t : taps) t.release();  // Engine::Create owns them now
  cfg.rx_fd = rx_owned.release();
  std::unique_ptr<Engine> engine;
  const SysError e = Engine::Create(cfg, &engine);
  if (!e.ok()) return ThrowSys(env, e);
  AddonData* data = env.GetInstanceData<AddonData>();
  return data->engine_ctor.New({Napi::External<Engine>::New(env, engine.release())});
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

// limits: the bounds of the engine's tables that TypeScript must share (frozen). Pinned by
// test/native/limits.test.ts, each to its TypeScript constant (NativeLimits in src/dataplane/native.ts).
Napi::Object Limits(Napi::Env env) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("maxRejected", static_cast<double>(TrafficStats::kMaxRejected));  // MAX_REJECTED, src/dataplane/traffic.ts
  o.Set("maxPeers", static_cast<double>(TrafficStats::kMaxPeers));        // MAX_PEERS, src/dataplane/traffic.ts
  o.Set("maxIps", static_cast<double>(LocalMacTable::kMaxIps));           // MAX_IPS, src/dataplane/engine.ts
  o.Set("maxVni", static_cast<double>(kMaxVni));                          // MAX_VNI, src/packet/vxlan.ts
  o.Set("maxLearned", static_cast<double>(kMaxLearned));                  // MAX_LEARNED, src/fdb/fdb.ts
  o.Freeze();
  return o;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  auto* data = new AddonData();
  data->engine_ctor = Napi::Persistent(EngineWrap::Define(env));
  env.SetInstanceData(data);
  // dropReasons, trafficCounters: the counters' names by index. Pinned by test/native/names.test.ts (DROP_REASONS
  // and TRAFFIC_COUNTERS in src/dataplane/engine.ts).
  exports.Set("dropReasons", Strings(env, kDropNames.data(), kDropNames.size()));
  exports.Set("trafficCounters", Strings(env, kTrafficNames.data(), kTrafficNames.size()));
  exports.Set("limits", Limits(env));
  exports.Set("openTap", Napi::Function::New(env, OpenTapJs, "openTap"));
  exports.Set("interfaceOf", Napi::Function::New(env, InterfaceOfJs, "interfaceOf"));
  exports.Set("deleteLink", Napi::Function::New(env, DeleteLinkJs, "deleteLink"));
  exports.Set("closeFd", Napi::Function::New(env, CloseFdJs, "closeFd"));
  exports.Set("createEngine", Napi::Function::New(env, CreateEngineJs, "createEngine"));
  RegisterFdPassing(env, exports);
  RegisterTwins(env, exports);
  RegisterLinks(env, exports);
  RegisterFdReaders(env, exports);
  RegisterBench(env, exports);
  return exports;
}

}  // namespace
}  // namespace vxr

static Napi::Object InitVxlanNative(Napi::Env env, Napi::Object exports) { return vxr::Init(env, exports); }
NODE_API_MODULE(vxlan_native, InitVxlanNative)
