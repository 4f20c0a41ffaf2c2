// The sender of the fuzz run (src/lab/fuzz-run.ts): reads items (32-bit little-endian length + bytes, as
// src/lab/fuzz.ts's encodeStream writes them) from a file and sends each, paced to `pps`, either as one UDP datagram
// from <bind IPv4> to <dst IPv4>:<port>, or as one raw Ethernet frame on <ifname> (AF_PACKET). Node has no raw
// sockets and its dgram socket costs a callback per datagram; this keeps the rate high and the pacing even. Not part
// of the product; compiled at run time. Prints "sent N failed M" (M: the kernel refused the item, e.g. a runt on
// AF_PACKET or a datagram over 65 507 bytes) and exits 0, or exits 2 on a usage or set-up error.
//
//   fuzz-send udp <file> <pps> <bind IPv4> <dst IPv4> <port>
//   fuzz-send eth <file> <pps> <ifname>
#include <arpa/inet.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

namespace {

int Fail(const char* what) {
  std::fprintf(stderr, "fuzz-send: %s: %s\n", what, std::strerror(errno));
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 5) {
    std::fprintf(stderr, "usage: fuzz-send udp <file> <pps> <bind> <dst> <port> | eth <file> <pps> <ifname>\n");
    return 2;
  }
  const bool udp = std::strcmp(argv[1], "udp") == 0;
  if (udp && argc < 7) return Fail("udp needs <bind> <dst> <port>");
  FILE* f = std::fopen(argv[2], "rb");
  if (f == nullptr) return Fail(argv[2]);
  std::vector<uint8_t> data;
  uint8_t chunk[1 << 16];
  size_t n;
  while ((n = std::fread(chunk, 1, sizeof(chunk), f)) > 0) data.insert(data.end(), chunk, chunk + n);
  std::fclose(f);
  const double pps = std::atof(argv[3]);

  int fd;
  sockaddr_storage to{};
  socklen_t to_len;
  if (udp) {
    fd = socket(AF_INET, SOCK_DGRAM, 0);
    if (fd < 0) return Fail("socket");
    int buf = 4 << 20;
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof(buf));
    sockaddr_in b{};
    b.sin_family = AF_INET;
    if (inet_pton(AF_INET, argv[4], &b.sin_addr) != 1) return Fail("bind address");
    if (bind(fd, reinterpret_cast<sockaddr*>(&b), sizeof(b)) < 0) return Fail("bind");
    auto* d = reinterpret_cast<sockaddr_in*>(&to);
    d->sin_family = AF_INET;
    d->sin_port = htons(static_cast<uint16_t>(std::atoi(argv[6])));
    if (inet_pton(AF_INET, argv[5], &d->sin_addr) != 1) return Fail("destination address");
    to_len = sizeof(sockaddr_in);
  } else {
    fd = socket(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL));
    if (fd < 0) return Fail("socket(AF_PACKET)");
    auto* ll = reinterpret_cast<sockaddr_ll*>(&to);
    ll->sll_family = AF_PACKET;
    ll->sll_ifindex = static_cast<int>(if_nametoindex(argv[4]));
    ll->sll_halen = 6;
    if (ll->sll_ifindex == 0) return Fail(argv[4]);
    to_len = sizeof(sockaddr_ll);
  }

  uint64_t sent = 0, failed = 0;
  const auto start = std::chrono::steady_clock::now();
  for (size_t off = 0; off + 4 <= data.size();) {
    uint32_t len;
    std::memcpy(&len, &data[off], 4);  // little-endian host (x86-64, arm64)
    off += 4;
    if (off + len > data.size()) break;
    ssize_t r;
    do {
      r = sendto(fd, &data[off], len, 0, reinterpret_cast<sockaddr*>(&to), to_len);
    } while (r < 0 && (errno == ENOBUFS || errno == EAGAIN));  // a full queue: wait for it, do not lose the item
    if (r < 0) failed++;
    else sent++;
    off += len;
    // Paced: item k leaves no earlier than k / pps seconds after the start (sleeping in 1 ms steps at most).
    if (pps > 0) {
      const auto due = start + std::chrono::duration<double>(static_cast<double>(sent + failed) / pps);
      const auto now = std::chrono::steady_clock::now();
      if (due > now + std::chrono::microseconds(200)) std::this_thread::sleep_until(due);
    }
  }
  close(fd);
  std::printf("sent %llu failed %llu\n", static_cast<unsigned long long>(sent), static_cast<unsigned long long>(failed));
  return 0;
}
