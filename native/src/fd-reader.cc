// readTap and readUdp: the reference engine's reads (src/dataplane/js-engine.ts). The fd is watched by the JS thread's
// own event loop (a uv_poll_t, fd made O_NONBLOCK) and drained on each wake: up to kMaxBatch frames (one read() each)
// or datagrams (one recvmmsg), handed to JS in one call as one Buffer and their lengths (and, for UDP, their
// senders). The Buffer is a view of the reader's own, read into directly and reused by every batch (a fresh one per
// batch, and the copy into it, were a sixth of the engine's CPU on receive: page faults on new memory). Before these, the engine read a TAP one frame per fs.read in the thread pool (two thread wake-ups and a
// promise per frame) and the UDP socket through dgram (a callback, a 64 KiB buffer and an address object per
// datagram). bindUdp opens the socket readUdp reads (OpenRxSocket, udp-socket.h: a 4 MiB buffer).
// Typed in src/dataplane/native.ts (FdReader); pinned by test/native/fd-reader.test.ts.
#include "fd-reader.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include <initializer_list>
#include <memory>
#include <string>
#include <algorithm>
#include <cstring>
#include <vector>

#include "js-args.h"
#include "js-error.h"
#include "sys-error.h"
#include "udp-socket.h"

namespace vxr {
namespace {

// Frames per wake at most: the rest wait for the next loop turn (level-triggered), so timers, the UDP socket and
// the control socket get their turn under a flood.
constexpr size_t kMaxBatch = 64;

// readTap(fd, readSize, onFrames, onError) / readUdp(fd, readSize, onDatagrams, onError) → { close() }.
// onFrames(data, lengths) / onDatagrams(data, lengths, senders) on the JS thread for each batch: item i is the
// lengths[i] bytes after items 0..i-1 in data (senders[i]: its source address, canonical text); data is valid during
// the call only (the next batch overwrites it): copy what must outlive it; a length equal to
// readSize means it did not fit (cut short). onError(error) once when the fd fails (a TAP deleted under us: EBADFD, or
// the poll's error), and the reader stops. The fd stays the caller's: close() the reader before the fd.
class FdReaderWrap : public Napi::ObjectWrap<FdReaderWrap> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "FdReader", {InstanceMethod("close", &FdReaderWrap::CloseJs)});
  }

  explicit FdReaderWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<FdReaderWrap>(info) {
    Napi::Env env = info.Env();
    uint32_t fd;
    uint32_t size;
    udp_ = info[4].ToBoolean().Value();
    const std::string name = udp_ ? "readUdp" : "readTap";
    if (!GetUint(info[0], INT32_MAX, &fd)) {
      ThrowType(env, name + ": fd must be a non-negative integer");
      return;
    }
    if (!GetUint(info[1], 65536 + 64, &size) || size < 15) {
      ThrowType(env, name + ": readSize must be an integer 15-65600");
      return;
    }
    if (!info[2].IsFunction() || !info[3].IsFunction()) {
      ThrowType(env, name + ": the callbacks must be functions");
      return;
    }
    const int flags = fcntl(static_cast<int>(fd), F_GETFL);
    if (flags < 0 || fcntl(static_cast<int>(fd), F_SETFL, flags | O_NONBLOCK) < 0) {
      ThrowSys(env, Errno(name + ": fcntl(O_NONBLOCK)"));
      return;
    }
    uv_loop_t* loop = nullptr;
    if (napi_get_uv_event_loop(env, &loop) != napi_ok || loop == nullptr) {
      ThrowType(env, name + ": no event loop");
      return;
    }
    auto* poll = new uv_poll_t;
    if (const int r = uv_poll_init(loop, poll, static_cast<int>(fd)); r != 0) {
      delete poll;
      ThrowSys(env, SysError{-r, name + ": uv_poll_init"});
      return;
    }
    poll->data = this;
    if (const int r = uv_poll_start(poll, UV_READABLE, OnReadable); r != 0) {
      uv_close(reinterpret_cast<uv_handle_t*>(poll), FreePoll);
      ThrowSys(env, SysError{-r, name + ": uv_poll_start"});
      return;
    }
    poll_ = poll;
    fd_ = static_cast<int>(fd);
    size_ = size;
    buffer_ = Napi::Persistent(Napi::Buffer<uint8_t>::New(env, kMaxBatch * size));
    memset(sources_, 0, sizeof(sources_));
    on_frames_ = Napi::Persistent(info[2].As<Napi::Function>());
    on_error_ = Napi::Persistent(info[3].As<Napi::Function>());
    context_ = std::make_unique<Napi::AsyncContext>(env, udp_ ? "vxr-udp-read" : "vxr-tap-read");
  }
  ~FdReaderWrap() override { Close(); }

 private:
  static void FreePoll(uv_handle_t* h) { delete reinterpret_cast<uv_poll_t*>(h); }

  static void OnReadable(uv_poll_t* poll, int status, int /*events*/) {
    auto* self = static_cast<FdReaderWrap*>(poll->data);
    if (self != nullptr) self->Drain(status);
  }

  void Drain(int status) {
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    uint8_t* const base = Scratch(env);
    std::vector<uint32_t> lengths;
    SysError failed;
    if (status < 0) {
      failed = SysError{-status, udp_ ? "poll(UDP)" : "poll(TAP)"};
    } else if (base == nullptr) {
      failed = SysError{ENOMEM, udp_ ? "readUdp: buffer" : "readTap: buffer"};
    } else if (udp_) {
      failed = ReceiveUdp(base, &lengths);
    } else {
      failed = ReadTap(base, &lengths);
    }
    if (lengths.empty() && failed.ok()) return;  // woken for nothing (a spurious wake)
    if (!failed.ok()) Close();                   // before JS runs: it may close the fd
    Ref();  // alive through the calls, whatever JS drops meanwhile
    if (!lengths.empty()) {
      size_t used = 0;
      Napi::Array a = Napi::Array::New(env, lengths.size());
      for (size_t i = 0; i < lengths.size(); i++) {
        // Packed: datagram i sat in slot i (recvmmsg); moved down to follow the one before it (the slots are in
        // cache, and the move is short next to what a fresh buffer per batch cost: an allocation, page faults, a copy).
        if (udp_ && lengths[i] > 0 && used != i * size_) memmove(base + used, base + i * size_, lengths[i]);
        used += lengths[i];
        a.Set(static_cast<uint32_t>(i), lengths[i]);
      }
      // The batch as a Buffer of exactly its bytes: a view of the reader's buffer, which the next batch overwrites.
      Napi::Buffer<uint8_t> whole = buffer_.Value();
      Napi::Value data = whole.Get("subarray").As<Napi::Function>().Call(whole, {Napi::Number::New(env, 0), Napi::Number::New(env, static_cast<double>(used))});
      if (udp_) {
        Napi::Array senders = Napi::Array::New(env, lengths.size());
        Napi::String last;
        std::string last_text;
        for (size_t i = 0; i < lengths.size(); i++) {
          const std::string text = SenderText(sources_[i]);
          if (last.IsEmpty() || text != last_text) last = Napi::String::New(env, last_text = text);  // one string per run of a sender
          senders.Set(static_cast<uint32_t>(i), last);
        }
        Call(on_frames_, {data, a, senders});
      } else {
        Call(on_frames_, {data, a});
      }
    }
    if (!failed.ok()) Call(on_error_, {SysErrorValue(env, failed).Value()});
    Unref();
  }

  // Where a batch is read: the reader's own Buffer, made once (a detached one, which no caller of ours makes, is
  // replaced rather than written through); nullptr when it cannot be made.
  uint8_t* Scratch(Napi::Env env) {
    const size_t want = kMaxBatch * size_;
    Napi::Buffer<uint8_t> b = buffer_.Value();
    if (b.IsEmpty() || b.ByteLength() != want || b.ArrayBuffer().ByteLength() < want) {
      b = Napi::Buffer<uint8_t>::New(env, want);
      if (env.IsExceptionPending()) {
        env.GetAndClearPendingException();
        return nullptr;
      }
      buffer_ = Napi::Persistent(b);
    }
    return b.Data();
  }

  // TAP frames packed one after the other in base, each read given readSize bytes of room.
  SysError ReadTap(uint8_t* base, std::vector<uint32_t>* lengths) {
    size_t used = 0;
    while (lengths->size() < kMaxBatch) {
      const ssize_t n = read(fd_, base + used, size_);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno != EAGAIN) return Errno("read(TAP)");
        break;
      }
      lengths->push_back(static_cast<uint32_t>(n));
      used += static_cast<size_t>(n);
    }
    return {};
  }

  // Datagrams in readSize slots of base, senders in sources_: one recvmmsg.
  SysError ReceiveUdp(uint8_t* base, std::vector<uint32_t>* lengths) {
    mmsghdr msgs[kMaxBatch];
    iovec iov[kMaxBatch];
    for (size_t i = 0; i < kMaxBatch; i++) {
      iov[i] = {base + i * size_, size_};
      msgs[i] = {};
      msgs[i].msg_hdr.msg_iov = &iov[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
      msgs[i].msg_hdr.msg_name = &sources_[i];
      msgs[i].msg_hdr.msg_namelen = sizeof(sources_[i]);
    }
    int n;
    do n = recvmmsg(fd_, msgs, kMaxBatch, MSG_DONTWAIT, nullptr);
    while (n < 0 && errno == EINTR);
    // Only a socket that cannot be read stops the reader; anything else (a queued ICMP error, memory pressure) is this
    // wake's, and the next one tries again.
    if (n < 0) return errno == EBADF || errno == ENOTSOCK || errno == EINVAL || errno == EFAULT ? Errno("recvmmsg(UDP)") : SysError{};
    // A datagram longer than its slot comes back as the slot's length (MSG_TRUNC in msg_flags): cut short.
    for (int i = 0; i < n; i++) lengths->push_back(msgs[i].msg_len);
    return {};
  }

  static std::string SenderText(const sockaddr_storage& sa) {
    char out[INET6_ADDRSTRLEN] = "";
    if (sa.ss_family == AF_INET) inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in&>(sa).sin_addr, out, sizeof(out));
    if (sa.ss_family == AF_INET6) inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6&>(sa).sin6_addr, out, sizeof(out));
    return out;
  }

  // Through MakeCallback, so that the promise jobs and process.nextTick callbacks the JS side queues (dgram's sends
  // do) run before the loop goes on. A callback that throws is an uncaught exception, as for any event.
  void Call(const Napi::FunctionReference& fn, const std::initializer_list<napi_value>& args) {
    Napi::Env env = Env();
    fn.MakeCallback(env.Global(), args, *context_);
    if (env.IsExceptionPending()) napi_fatal_exception(env, env.GetAndClearPendingException().Value());
  }

  Napi::Value CloseJs(const Napi::CallbackInfo& info) {
    Close();
    return info.Env().Undefined();
  }

  void Close() {
    if (poll_ == nullptr) return;
    poll_->data = nullptr;
    uv_poll_stop(poll_);
    uv_close(reinterpret_cast<uv_handle_t*>(poll_), FreePoll);
    poll_ = nullptr;
  }

  uv_poll_t* poll_ = nullptr;
  int fd_ = -1;
  uint32_t size_ = 0;
  bool udp_ = false;
  sockaddr_storage sources_[kMaxBatch];
  // Every batch is read here and handed to JS as a view of it: valid during the callback only.
  Napi::Reference<Napi::Buffer<uint8_t>> buffer_;
  Napi::FunctionReference on_frames_;
  Napi::FunctionReference on_error_;
  std::unique_ptr<Napi::AsyncContext> context_;
};

Napi::FunctionReference* reader_ctor = nullptr;

Napi::Value ReadTapJs(const Napi::CallbackInfo& info) {
  return reader_ctor->New({info[0], info[1], info[2], info[3], Napi::Boolean::New(info.Env(), false)});
}

Napi::Value ReadUdpJs(const Napi::CallbackInfo& info) {
  return reader_ctor->New({info[0], info[1], info[2], info[3], Napi::Boolean::New(info.Env(), true)});
}

// bindUdp(address, port) → fd: the UDP socket readUdp reads, bound, with a 4 MiB receive buffer.
Napi::Value BindUdpJs(const Napi::CallbackInfo& info) {
  Addr local;
  uint32_t port;
  if (!GetAddr(info[0], &local)) return ThrowType(info.Env(), "bindUdp: address must be an IPv4 or IPv6 address");
  if (!GetUint(info[1], 65535, &port)) return ThrowType(info.Env(), "bindUdp: port must be an integer 0-65535");
  UniqueFd fd;
  bool gro = false;
  const SysError e = OpenRxSocket(local, static_cast<uint16_t>(port), 1000, false, &fd, &gro);
  if (!e.ok()) return ThrowSys(info.Env(), e);
  return Napi::Number::New(info.Env(), fd.release());
}

// bindUdpSender(address, port) → fd: a socket sendUdp sends on (OpenSendSocket: DF, takes nothing in, 4 MiB).
Napi::Value BindUdpSenderJs(const Napi::CallbackInfo& info) {
  Addr local;
  uint32_t port;
  if (!GetAddr(info[0], &local)) return ThrowType(info.Env(), "bindUdpSender: address must be an IPv4 or IPv6 address");
  if (!GetUint(info[1], 65535, &port)) return ThrowType(info.Env(), "bindUdpSender: port must be an integer 0-65535");
  UniqueFd fd;
  const SysError e = OpenSendSocket(local, static_cast<uint16_t>(port), &fd);
  if (!e.ok()) return ThrowSys(info.Env(), e);
  return Napi::Number::New(info.Env(), fd.release());
}

// sendUdp(fd, data, lengths, to, port) → { failed, errno }: datagram i is the lengths[i] bytes of data after those
// before it, sent to to[i]:port, all in sendmmsg calls of up to kMaxSend (a blocking socket: a full send buffer waits,
// as dgram's queue would). A datagram the kernel refuses (EMSGSIZE past the path, no route) is skipped and counted
// in `failed`; `errno` is the last refusal's (0 when none). Lengths must add up to at most data's length.
constexpr size_t kMaxSend = 256;

Napi::Value SendUdpJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t fd;
  uint32_t port;
  if (!GetUint(info[0], INT32_MAX, &fd)) return ThrowType(env, "sendUdp: fd must be a non-negative integer");
  if (!IsBytes(info[1])) return ThrowType(env, "sendUdp: data must be a Uint8Array");
  if (!info[2].IsArray() || !info[3].IsArray()) return ThrowType(env, "sendUdp: lengths and to must be arrays");
  if (!GetUint(info[4], 65535, &port)) return ThrowType(env, "sendUdp: port must be an integer 0-65535");
  const auto data = info[1].As<Napi::Uint8Array>();
  const auto lengths = info[2].As<Napi::Array>();
  const auto to = info[3].As<Napi::Array>();
  const uint32_t n = lengths.Length();
  if (to.Length() != n) return ThrowType(env, "sendUdp: lengths and to must have the same length");
  std::vector<mmsghdr> msgs(std::min<size_t>(n, kMaxSend));
  std::vector<iovec> iovs(msgs.size());
  std::vector<sockaddr_storage> addrs(msgs.size());
  uint32_t failed = 0;
  int last_errno = 0;
  size_t at = 0;
  for (uint32_t first = 0; first < n;) {
    const uint32_t count = std::min<uint32_t>(n - first, static_cast<uint32_t>(kMaxSend));
    for (uint32_t i = 0; i < count; i++) {
      uint32_t len;
      Addr addr;
      if (!GetUint(lengths[first + i], 65535, &len) || len > data.ByteLength() - at)
        return ThrowType(env, "sendUdp: lengths must be integers that add up to at most data's length");
      if (!GetAddr(to[first + i], &addr)) return ThrowType(env, "sendUdp: to must hold IPv4 or IPv6 addresses");
      iovs[i].iov_base = const_cast<uint8_t*>(data.Data()) + at;  // sendmmsg only reads it
      iovs[i].iov_len = len;
      at += len;
      msgs[i] = {};
      msgs[i].msg_hdr.msg_iov = &iovs[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
      msgs[i].msg_hdr.msg_name = &addrs[i];
      msgs[i].msg_hdr.msg_namelen = ToSockaddr(addr, static_cast<uint16_t>(port), &addrs[i]);
    }
    for (uint32_t done = 0; done < count;) {
      const int r = sendmmsg(static_cast<int>(fd), msgs.data() + done, count - done, 0);
      if (r > 0) {
        done += static_cast<uint32_t>(r);
      } else if (r < 0 && errno == EINTR) {
        continue;
      } else {
        // The first datagram left was refused (sendmmsg reports only that one): count it and go on with the next.
        last_errno = r < 0 ? errno : EIO;
        failed++;
        done++;
      }
    }
    first += count;
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("failed", failed);
  out.Set("errno", last_errno);
  return out;
}

// writeTap(fd, data, offsets, lengths) → refused: frame i is the lengths[i] bytes of data at offsets[i], written to
// the TAP in order, one write() each (a TAP takes one frame per write); returns the indices of the frames the kernel
// refused (a TAP down or deleted, a frame it will not take), usually none. One call per received batch instead of a
// fs.writeSync per frame (whose own cost beside the system call was a tenth of the engine's on receive).
Napi::Value WriteTapJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t fd;
  if (!GetUint(info[0], INT32_MAX, &fd)) return ThrowType(env, "writeTap: fd must be a non-negative integer");
  if (!IsBytes(info[1])) return ThrowType(env, "writeTap: data must be a Uint8Array");
  if (!info[2].IsArray() || !info[3].IsArray()) return ThrowType(env, "writeTap: offsets and lengths must be arrays");
  const auto data = info[1].As<Napi::Uint8Array>();
  const auto offsets = info[2].As<Napi::Array>();
  const auto lengths = info[3].As<Napi::Array>();
  const uint32_t n = lengths.Length();
  if (offsets.Length() != n) return ThrowType(env, "writeTap: offsets and lengths must have the same length");
  // Checked whole before anything is written: a bad argument writes nothing.
  std::vector<std::pair<uint32_t, uint32_t>> frames(n);
  for (uint32_t i = 0; i < n; i++) {
    uint32_t at;
    uint32_t len;
    if (!GetUint(offsets[i], UINT32_MAX, &at) || !GetUint(lengths[i], 65535, &len) || at > data.ByteLength() || len > data.ByteLength() - at)
      return ThrowType(env, "writeTap: each offset and length must be integers inside data");
    frames[i] = {at, len};
  }
  Napi::Array refused = Napi::Array::New(env);
  for (uint32_t i = 0; i < n; i++) {
    ssize_t r;
    do r = write(static_cast<int>(fd), data.Data() + frames[i].first, frames[i].second);
    while (r < 0 && errno == EINTR);
    if (r < 0) refused.Set(refused.Length(), i);
  }
  return refused;
}

}  // namespace

void RegisterFdReaders(Napi::Env env, Napi::Object exports) {
  // One addon instance per process (the router's main thread); kept for the life of the process.
  reader_ctor = new Napi::FunctionReference(Napi::Persistent(FdReaderWrap::Define(env)));
  exports.Set("readTap", Napi::Function::New(env, ReadTapJs, "readTap"));
  exports.Set("readUdp", Napi::Function::New(env, ReadUdpJs, "readUdp"));
  exports.Set("bindUdp", Napi::Function::New(env, BindUdpJs, "bindUdp"));
  exports.Set("bindUdpSender", Napi::Function::New(env, BindUdpSenderJs, "bindUdpSender"));
  exports.Set("sendUdp", Napi::Function::New(env, SendUdpJs, "sendUdp"));
  exports.Set("writeTap", Napi::Function::New(env, WriteTapJs, "writeTap"));
}

}  // namespace vxr
