// What a system call and a thread wake-up cost on this machine: the two prices a userspace data path pays per packet
// that the kernel's own VXLAN path does not. Not part of the product.
//
//   g++ -O2 -std=c++17 -pthread benchmarks/wakeup-cost.cc -o /tmp/wakeup-cost && /tmp/wakeup-cost
//   taskset -c 0 /tmp/wakeup-cost      # both threads on one CPU: no cross-CPU wake-up
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <thread>

namespace {

double NsSince(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

int main() {
  constexpr int kCalls = 1'000'000;
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < kCalls; i++) syscall(SYS_getppid);
  printf("system call (getppid): %.0f ns\n", NsSince(t0) / kCalls);

  // Two threads bouncing a token through two eventfds: each round trip is two wake-ups of a sleeping thread.
  constexpr int kRounds = 20'000;
  const int ping = eventfd(0, EFD_CLOEXEC), pong = eventfd(0, EFD_CLOEXEC);
  if (ping < 0 || pong < 0) {
    perror("eventfd");
    return 1;
  }
  std::thread peer([&] {
    uint64_t v;
    for (int i = 0; i < kRounds; i++) {
      if (read(ping, &v, sizeof(v)) != sizeof(v) || write(pong, &v, sizeof(v)) != sizeof(v)) return;
    }
  });
  uint64_t v = 1;
  t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < kRounds; i++) {
    if (write(ping, &v, sizeof(v)) != sizeof(v) || read(pong, &v, sizeof(v)) != sizeof(v)) break;
  }
  const double rtt = NsSince(t0) / kRounds;
  peer.join();
  printf("thread wake-up (half an eventfd round trip, 2 system calls included): %.0f ns\n", rtt / 2);
  return 0;
}
