// What copying a byte costs on this machine: the CPU time of a userspace memcpy of 1 GiB in 64 KiB chunks (the
// engine's super-frames), within a span that stays in cache and across one that does not. Not part of the product:
// it bounds what removing the data path's copies could save (docs/benchmarks.md, "Why TCP ≥ 0.65× …").
//
//   g++ -O2 -std=c++17 benchmarks/copy-cost.cc -o /tmp/copy-cost && /tmp/copy-cost 4 64     # spans in MiB
#include <time.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace {

double ThreadCpuS() {
  timespec t;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) / 1e9;
}

}  // namespace

int main(int argc, char** argv) {
  constexpr size_t kChunk = 64 * 1024, kTotal = size_t{1} << 30;
  for (int i = 1; i < argc; i++) {
    const long mib = strtol(argv[i], nullptr, 10);
    if (mib < 1 || mib > 4096) {
      fprintf(stderr, "copy-cost: a span is 1-4096 MiB, not %s\n", argv[i]);
      return 2;
    }
    const size_t span = static_cast<size_t>(mib) << 20;
    std::vector<char> from(span, 1), to(span, 2);
    const double t0 = ThreadCpuS();
    for (size_t done = 0, off = 0; done < kTotal; done += kChunk, off = (off + kChunk) % span)
      memcpy(to.data() + off, from.data() + off, kChunk);
    const double s = ThreadCpuS() - t0;
    printf("span %4ld MiB: %.3f CPU-s per GB copied (%.1f GB/s), check %d\n", mib, s * 1e9 / kTotal, kTotal / s / 1e9, to[span / 2]);
  }
  return 0;
}
