// The engine's UDP sockets: creating and configuring them, and probing what the kernel offers (UDP_GRO on receive;
// UDP_SEGMENT is probed by the first GSO send, in tx.cc). Set-up only: the data path (tx.cc, rx.cc) sends and
// receives on these fds and never changes their options.
//
// Threading: OpenRxSocket and OpenTxSocket run on the JS thread (Engine::Create). FlowSockets is shared by the TX
// threads, which open a socket per flow on first use; one mutex guards it.
// Ownership: every fd is held by a UniqueFd from the moment it exists; a failure closes what was opened.
#pragma once
#include <linux/udp.h>

#include <cstddef>
#include <cstdint>
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

// UDP sockets bound to local:<flow source port> for GSO sends, opened on first use and kept (at most kMax; beyond
// that, or when the port is taken, the flow uses the raw socket; a taken port is tried again every kRetryMs, so that
// a router that took over gets its predecessor's ports once that one has exited). Shared by the TX threads.
class FlowSockets {
 public:
  static constexpr size_t kMax = 1024;
  int Get(const Addr& local, uint16_t port);  // -1: use the raw socket

 private:
  std::mutex mu_;
  struct Slot {
    UniqueFd fd;               // invalid: the port could not be bound
    int64_t retry_at_ms = 0;   // when to try binding it again (a router that handed over may still hold it)
  };
  static constexpr int64_t kRetryMs = 2000;
  std::unordered_map<uint16_t, Slot> fds_;
};

}  // namespace vxr
