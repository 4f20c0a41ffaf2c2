// The N-API face of links.h: watchLinks (events from LinkMonitor's thread, posted to JS through a
// ThreadSafeFunction with a bounded queue), getLink and attachLink; and routeMtu (the kernel's path MTU toward an
// address). Typed in src/dataplane/native.ts (LinkWatch,
// LinkInfo); pinned by test/native/links.test.ts.
#include "links-js.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "js-args.h"
#include "js-error.h"
#include "fd.h"
#include "links.h"

namespace vxr {
namespace {

// Batches waiting for the JS thread. Past it a batch is dropped and the next one says overflow (look again).
constexpr size_t kMaxQueued = 256;

Napi::Object LinkValue(Napi::Env env, const LinkEvent& e) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("type", e.deleted ? "del" : "new");
  o.Set("index", e.index);
  o.Set("name", e.name);
  o.Set("master", e.master);
  o.Set("up", (e.flags & 1u /* IFF_UP */) != 0);
  o.Set("mtu", e.mtu);
  o.Set("kind", e.kind);
  return o;
}

struct Batch {
  std::vector<LinkEvent> events;
  bool overflow;
};

// watchLinks(callback) → { close() }. callback(events, overflow) runs on the JS thread; it must not throw. The watch
// does not hold the event loop open.
class LinkWatchWrap : public Napi::ObjectWrap<LinkWatchWrap> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "LinkWatch", {InstanceMethod("close", &LinkWatchWrap::CloseJs)});
  }

  explicit LinkWatchWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<LinkWatchWrap>(info) {
    Napi::Env env = info.Env();
    if (!info[0].IsFunction()) {
      released_ = true;  // no ThreadSafeFunction to release
      ThrowType(env, "watchLinks: callback must be a function");
      return;
    }
    tsfn_ = Napi::ThreadSafeFunction::New(env, info[0].As<Napi::Function>(), "vxr-links", kMaxQueued, 1);
    tsfn_.Unref(env);
    auto missed = missed_;
    auto tsfn = tsfn_;
    const SysError e = LinkMonitor::Open(
        [tsfn, missed](std::vector<LinkEvent> events, bool overflow) mutable {
          auto* b = new Batch{std::move(events), overflow || missed->exchange(false)};
          const napi_status s = tsfn.NonBlockingCall(b, [](Napi::Env env, Napi::Function cb, Batch* b) {
            std::unique_ptr<Batch> owned(b);
            if (env == nullptr || cb.IsEmpty()) return;
            Napi::Array a = Napi::Array::New(env, owned->events.size());
            for (size_t i = 0; i < owned->events.size(); i++) a.Set(i, LinkValue(env, owned->events[i]));
            cb.Call({a, Napi::Boolean::New(env, owned->overflow)});
          });
          if (s != napi_ok) {
            delete b;
            missed->store(true);
          }
        },
        &monitor_);
    if (!e.ok()) {
      tsfn_.Release();
      released_ = true;
      ThrowSys(env, e);
    }
  }
  ~LinkWatchWrap() override { Close(); }

 private:
  Napi::Value CloseJs(const Napi::CallbackInfo& info) {
    Close();
    return info.Env().Undefined();
  }
  void Close() {
    if (monitor_) monitor_->Close();  // no callback is queued after this
    monitor_.reset();
    if (!released_) tsfn_.Release();
    released_ = true;
  }

  Napi::ThreadSafeFunction tsfn_;
  std::shared_ptr<std::atomic<bool>> missed_ = std::make_shared<std::atomic<bool>>(false);
  std::unique_ptr<LinkMonitor> monitor_;
  bool released_ = false;
};

Napi::FunctionReference* watch_ctor = nullptr;

Napi::Value WatchLinksJs(const Napi::CallbackInfo& info) {
  return watch_ctor->New({info[0]});
}

// getLink(name) → { index, name, master, up, mtu, kind, type: 'new' } or null.
Napi::Value GetLinkJs(const Napi::CallbackInfo& info) {
  if (!info[0].IsString()) return ThrowType(info.Env(), "getLink: name must be a string");
  LinkEvent e;
  bool found = false;
  const SysError err = GetLink(info[0].As<Napi::String>().Utf8Value(), &e, &found);
  if (!err.ok()) return ThrowSys(info.Env(), err);
  return found ? Napi::Value(LinkValue(info.Env(), e)) : info.Env().Null();
}

// attachLink(link, bridge, mtu): MTU, bridge port (when not already), up.
Napi::Value AttachLinkJs(const Napi::CallbackInfo& info) {
  uint32_t mtu;
  if (!info[0].IsString() || !info[1].IsString()) return ThrowType(info.Env(), "attachLink: link and bridge must be strings");
  if (!GetUint(info[2], 65535, &mtu) || mtu < 68) return ThrowType(info.Env(), "attachLink: mtu must be an integer 68-65535");
  const SysError e = AttachLink(info[0].As<Napi::String>().Utf8Value(), info[1].As<Napi::String>().Utf8Value(), static_cast<int>(mtu));
  return e.ok() ? info.Env().Undefined() : ThrowSys(info.Env(), e);
}

// routeMtu(local, to) → the kernel's path MTU from local toward `to` (the route's or device's MTU, lowered by an ICMP
// "fragmentation needed" it has had from the underlay), or 0 when it cannot tell (no route, a bad address). A UDP
// socket connected (no datagram sent) and IP_MTU / IPV6_MTU asked: what a kernel VTEP peer's path does accept.
Napi::Value RouteMtuJs(const Napi::CallbackInfo& info) {
  Addr local, to;
  if (!GetAddr(info[0], &local) || !GetAddr(info[1], &to) || local.len != to.len)
    return ThrowType(info.Env(), "routeMtu: local and to must be IP addresses of one family");
  const bool v4 = local.len == 4;
  UniqueFd fd(socket(v4 ? AF_INET : AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  sockaddr_storage a, b;
  const socklen_t alen = ToSockaddr(local, 0, &a);
  const socklen_t blen = ToSockaddr(to, 4789, &b);
  int mtu = 0;
  socklen_t len = sizeof(mtu);
  if (!fd.valid() || bind(fd.get(), reinterpret_cast<sockaddr*>(&a), alen) < 0 ||
      connect(fd.get(), reinterpret_cast<sockaddr*>(&b), blen) < 0 ||
      getsockopt(fd.get(), v4 ? IPPROTO_IP : IPPROTO_IPV6, v4 ? IP_MTU : IPV6_MTU, &mtu, &len) < 0)
    mtu = 0;
  return Napi::Number::New(info.Env(), mtu);
}

}  // namespace

void RegisterLinks(Napi::Env env, Napi::Object exports) {
  // One addon instance per process (the router's main thread); kept for the life of the process.
  watch_ctor = new Napi::FunctionReference(Napi::Persistent(LinkWatchWrap::Define(env)));
  exports.Set("watchLinks", Napi::Function::New(env, WatchLinksJs, "watchLinks"));
  exports.Set("getLink", Napi::Function::New(env, GetLinkJs, "getLink"));
  exports.Set("attachLink", Napi::Function::New(env, AttachLinkJs, "attachLink"));
  exports.Set("routeMtu", Napi::Function::New(env, RouteMtuJs, "routeMtu"));
}

}  // namespace vxr
