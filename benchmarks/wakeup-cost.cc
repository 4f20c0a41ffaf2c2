// What a system call and a thread wake-up cost on this machine: the two prices a userspace data path pays per packet
// that the kernel's own VXLAN path does not. Not part of the product.
//
//   g++ -O2 -std=c++17 -pthread benchmarks/wakeup-cost.cc -o /tmp/wakeup-cost && /tmp/wakeup-cost
//   taskset -c 0 /tmp/wakeup-cost      # both threads on one CPU: no cross-CPU wake-up
//   /tmp/wakeup-cost 0 100 200         # also: waking a process of 0, 100, 200 MiB resident after 1 s asleep
// The last one is what the kernel's DAMON costs where it runs (docs/benchmarks.md, "Idle pings and DAMON").
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <vector>

namespace {

double NsSince(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count();
}

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// A child holding `mib` MiB resident sleeps in read() on a pipe; once a second the parent writes the time into it.
// Prints the median delay from the write to the child running again.
void IdleWake(size_t mib) {
  constexpr int kRounds = 8;
  fflush(stdout);  // or the child prints what the parent buffered too
  int fds[2];
  if (pipe(fds) < 0) {
    perror("pipe");
    return;
  }
  const pid_t child = fork();
  if (child == 0) {
    close(fds[1]);
    auto* ballast = static_cast<volatile uint8_t*>(malloc(std::max<size_t>(mib << 20, 1)));
    for (size_t i = 0; i < (mib << 20); i += 4096) ballast[i] = 1;
    std::vector<double> us;
    int64_t sent;
    while (read(fds[0], &sent, sizeof(sent)) == sizeof(sent)) us.push_back((NowNs() - sent) / 1000.0);
    std::sort(us.begin(), us.end());
    if (!us.empty()) printf("waking a process of %zu MiB after 1 s asleep: %.0f us (median of %zu)\n", mib, us[us.size() / 2], us.size());
    fflush(stdout);
    _exit(0);
  }
  close(fds[0]);
  for (int i = 0; i < kRounds; i++) {
    std::this_thread::sleep_for(std::chrono::seconds(1));
    const int64_t t = NowNs();
    if (write(fds[1], &t, sizeof(t)) != sizeof(t)) break;
  }
  close(fds[1]);
  waitpid(child, nullptr, 0);
}

}  // namespace

int main(int argc, char** argv) {
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
  for (int i = 1; i < argc; i++) IdleWake(strtoul(argv[i], nullptr, 10));
  return 0;
}
