// The `floor` path of the benchmark: the least work a userspace VXLAN relay can do per packet, to tell what any
// userspace design gets on this machine from what our engine costs on top. One thread per direction, blocking I/O,
// one frame per syscall: TAP read → sendto (VXLAN header in front), recv → TAP write. No offloads, no batching, no
// table (one peer), no counters. Not part of the product; built by benchmarks/bench.ts when the path is asked for.
// With `spin` both threads busy-poll (non-blocking I/O in a loop) instead of sleeping: the `floor-spin` path, which
// shows what polling costs when the relays, the containers and the kernel share 2 cores.
//
// VXR_FLOOR_RSS_MB=N makes the relay hold N MiB of resident memory it never touches again, as a Node process does:
// with the kernel's DAMON sampling memory (this lab's VM), a sleeping relay pays on waking in proportion to its
// resident size, and that is how idle pings through our router come to be slower than through this relay (docs/benchmarks.md).
//
//   floor-relay <tap> <local IPv4> <peer IPv4> <vni> [spin]
#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>

namespace {

constexpr uint16_t kPort = 4789;
constexpr size_t kHeader = 8;  // VXLAN header (RFC 7348): flags, reserved, VNI, reserved

[[noreturn]] void Die(const char* what) {
  perror(what);
  exit(1);
}

sockaddr_in Ipv4(const char* text) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(kPort);
  if (inet_pton(AF_INET, text, &a.sin_addr) != 1) {
    fprintf(stderr, "floor-relay: not an IPv4 address: %s\n", text);
    exit(2);
  }
  return a;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 5 && !(argc == 6 && strcmp(argv[5], "spin") == 0)) {
    fprintf(stderr, "usage: floor-relay <tap> <local IPv4> <peer IPv4> <vni> [spin]\n");
    return 2;
  }
  const bool spin = argc == 6;
  if (const char* mb = getenv("VXR_FLOOR_RSS_MB")) {
    const size_t bytes = static_cast<size_t>(strtoul(mb, nullptr, 10)) << 20;
    auto* ballast = static_cast<volatile uint8_t*>(malloc(bytes));
    if (ballast == nullptr) Die("malloc");
    for (size_t i = 0; i < bytes; i += 4096) ballast[i] = 1;  // resident from here on; never freed
  }
  const int tap = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
  if (tap < 0) Die("/dev/net/tun");
  ifreq ifr{};
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
  strncpy(ifr.ifr_name, argv[1], IFNAMSIZ - 1);
  if (ioctl(tap, TUNSETIFF, &ifr) < 0) Die("TUNSETIFF");
  if (spin && fcntl(tap, F_SETFL, O_NONBLOCK) < 0) Die("O_NONBLOCK");
  const int sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (sock < 0) Die("socket");
  const sockaddr_in local = Ipv4(argv[2]);
  const sockaddr_in peer = Ipv4(argv[3]);
  if (bind(sock, reinterpret_cast<const sockaddr*>(&local), sizeof(local)) < 0) Die("bind");
  // The buffers our engine asks for (4 MiB): with the default ~208 KiB a burst of a TCP window overflows the receive
  // queue, and the floor would measure retransmits rather than the cost of a frame per system call.
  const int big = 4 << 20;
  setsockopt(sock, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof(big));
  setsockopt(sock, SOL_SOCKET, SO_SNDBUFFORCE, &big, sizeof(big));
  const uint32_t vni = static_cast<uint32_t>(strtoul(argv[4], nullptr, 10));
  const uint8_t header[kHeader] = {0x08, 0, 0, 0, static_cast<uint8_t>(vni >> 16), static_cast<uint8_t>(vni >> 8),
                                   static_cast<uint8_t>(vni), 0};

  std::thread rx([&] {
    static uint8_t buf[65536];
    for (;;) {
      const ssize_t n = recv(sock, buf, sizeof(buf), spin ? MSG_DONTWAIT : 0);
      if (n < 0 && errno != EINTR && errno != EAGAIN) Die("recv");
      if (n <= static_cast<ssize_t>(kHeader) || memcmp(buf, header, kHeader) != 0) continue;  // short or other VNI
      if (write(tap, buf + kHeader, static_cast<size_t>(n) - kHeader) < 0) continue;
    }
  });
  static uint8_t buf[65536];
  memcpy(buf, header, kHeader);
  for (;;) {
    const ssize_t n = read(tap, buf + kHeader, sizeof(buf) - kHeader);
    if (n < 0 && errno != EINTR && errno != EAGAIN) Die("TAP read");  // the TAP is gone: stop rather than spin
    if (n <= 0) continue;
    sendto(sock, buf, static_cast<size_t>(n) + kHeader, 0, reinterpret_cast<const sockaddr*>(&peer), sizeof(peer));
  }
}
