// The engine's UDP sockets: creating and configuring them, and probing what the kernel offers (UDP_GRO on receive;
// UDP_SEGMENT is probed by the first GSO send, in tx.cc). Set-up only: the data path (tx.cc, rx.cc) sends and
// receives on these fds and never changes their options.
//
// Threading: OpenRxSocket and OpenTxSocket run on the JS thread (Engine::Create). FlowSockets is shared by the TX
// threads, which open a socket per flow on first use, and the RX thread, which closes idle ones; one mutex guards it.
// Ownership: every fd is held by a UniqueFd from the moment it exists; a failure closes what was opened.
#pragma once
#include <linux/udp.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <unordered_map>

#include "fd.h"
#include "sys-error.h"
#include "wire.h"

namespace vxr {

#ifndef UDP_SEGMENT
inline constexpr int UDP_SEGMENT = 103;
#endif
#ifndef UDP_GRO
inline constexpr int UDP_GRO = 104;
#endif
// Datagrams per UDP_SEGMENT send (and at most per UDP_GRO read): UDP_MAX_SEGMENTS on older kernels.
inline constexpr int kMaxGsoSegments = 64;

// The receiving socket: UDP bound to local:port with a large buffer. Blocking, so that the RX thread sleeps in
// recvmmsg itself (one system call per wake-up, not poll + recvmmsg); the receive timeout `tick_ms` wakes it to age
// learned MACs, and Engine::Stop() wakes it with shutdown(). With `try_gro`, UDP_GRO when the kernel takes it
// (absent before 5.0): `*gro_on` says.
SysError OpenRxSocket(const Addr& local, uint16_t port, int tick_ms, bool try_gro, UniqueFd* out, bool* gro_on);

// The receiving socket handed over by another router (fd-passing.h): already bound, with its queue. Checked to be a
// UDP socket; the receive timeout and UDP_GRO are set as OpenRxSocket sets them (GRO switched off when not wanted).
SysError AdoptRxSocket(UniqueFd fd, int tick_ms, bool try_gro, UniqueFd* out, bool* gro_on);

// The sending socket: raw IPPROTO_UDP bound to `local`, so that we pick the outer source port per flow and write the
// UDP header ourselves (the kernel adds the IP header). DF always: VXLAN is never fragmented. Receives nothing.
SysError OpenTxSocket(const Addr& local, UniqueFd* out);

// A UDP socket that only sends, bound to local:port (the reference engine's source ports, fd-reader.cc sendUdp):
// blocking, DF always, a filter that takes nothing in (no queue anyone can fill), a 4 MiB send buffer.
SysError OpenSendSocket(const Addr& local, uint16_t port, UniqueFd* out);

// UDP sockets bound to local:<flow source port> for GSO sends, opened on first use (at most `max`, kMax in the engine;
// beyond that, or when the port is taken, the flow uses the raw socket; a taken port is tried again every kRetryMs,
// so that a router that took over gets its predecessor's ports once that one has exited). A port not asked for in
// `idle_ms` is forgotten and its socket closed by CloseIdle (the RX thread's aging tick, once a second): a host that
// once had many flows does not keep their fds and socket memory. Shared by the TX threads (Get) and the RX thread
// (CloseIdle); one mutex. A socket is handed out as a shared_ptr for one send, so that one closed as idle meanwhile
// is closed after that send, never while its fd number could be reused under it.
class FlowSockets {
 public:
  static constexpr size_t kMax = 1024;
  static constexpr int64_t kDefaultIdleMs = 60000;
  using Socket = std::shared_ptr<const UniqueFd>;
  enum class Miss { kNone, kTaken, kFull };  // why Get gave no socket: the port is taken, or `max` ports are held

  explicit FlowSockets(int64_t idle_ms = kDefaultIdleMs, size_t max = kMax) : idle_ms_(idle_ms), max_(max) {}
  // The socket for `port` (now_ms: NowMs()), or null: use the raw socket (`*miss` says why).
  Socket Get(const Addr& local, uint16_t port, int64_t now_ms, Miss* miss);
  // Forgets every port not asked for since now_ms - idle_ms; returns how many open sockets that closed. The fds
  // close after the lock is let go (or after the send that still holds one).
  size_t CloseIdle(int64_t now_ms);
  void CloseAll();  // Engine::Stop (not counted as idle)
  size_t open() const { return open_.load(std::memory_order_relaxed); }  // sockets open now (any thread)

 private:
  struct Slot {
    Socket fd;                 // null: the port could not be bound
    int64_t retry_at_ms = 0;   // when to try binding it again (a router that handed over may still hold it)
    int64_t used_ms = 0;       // last Get
  };
  static constexpr int64_t kRetryMs = 2000;
  const int64_t idle_ms_;
  const size_t max_;
  std::mutex mu_;
  std::unordered_map<uint16_t, Slot> fds_;
  std::atomic<size_t> open_{0};  // slots with a socket; written under mu_
};

}  // namespace vxr
