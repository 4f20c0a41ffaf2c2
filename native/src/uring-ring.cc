// Ring (uring.h): io_uring_setup, the three mappings, io_uring_enter with IORING_ENTER_EXT_ARG.
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstring>

#include "uring.h"

namespace vxr {

namespace {

// The errno a test asks the probe to fail with (VXLAN_ROUTER_URING_FAIL), or 0.
int InjectedFailure() {
  const char* v = getenv("VXLAN_ROUTER_URING_FAIL");
  if (v == nullptr || *v == 0) return 0;
  if (strcmp(v, "EPERM") == 0) return EPERM;
  if (strcmp(v, "ENOSYS") == 0) return ENOSYS;
  if (strcmp(v, "EINVAL") == 0) return EINVAL;
  return EPERM;
}

}  // namespace

Ring::~Ring() {
  // The fd first: the kernel stops using the buffers before they are unmapped.
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
  if (bufs_ != nullptr) munmap(bufs_, bufs_len_);
  if (buf_ring_ != nullptr) munmap(buf_ring_, buf_ring_len_);
  if (sqes_ != nullptr) munmap(sqes_, sqes_len_);
  if (cq_map_ != nullptr && cq_map_ != sq_map_) munmap(cq_map_, cq_map_len_);
  if (sq_map_ != nullptr) munmap(sq_map_, sq_map_len_);
  if (fd_ >= 0) close(fd_);
}

SysError Ring::Open(unsigned entries) {
  if (const int injected = InjectedFailure(); injected != 0) return {injected, "io_uring_setup (VXLAN_ROUTER_URING_FAIL)"};
  io_uring_params p;
  memset(&p, 0, sizeof(p));
  p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_R_DISABLED;
  const long fd = syscall(__NR_io_uring_setup, entries, &p);
  if (fd < 0) return Errno("io_uring_setup");
  fd_ = static_cast<int>(fd);
  features_ = p.features;
  if (!(p.features & IORING_FEAT_EXT_ARG)) return {ENOTSUP, "io_uring without IORING_FEAT_EXT_ARG (kernel < 5.11)"};

  sq_map_len_ = p.sq_off.array + p.sq_entries * sizeof(unsigned);
  cq_map_len_ = p.cq_off.cqes + p.cq_entries * sizeof(io_uring_cqe);
  const bool single = (p.features & IORING_FEAT_SINGLE_MMAP) != 0;
  if (single) sq_map_len_ = cq_map_len_ = std::max(sq_map_len_, cq_map_len_);
  void* sq = mmap(nullptr, sq_map_len_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd_, IORING_OFF_SQ_RING);
  if (sq == MAP_FAILED) return Errno("mmap(io_uring SQ ring)");
  sq_map_ = sq;
  if (single) {
    cq_map_ = sq_map_;
  } else {
    void* cq = mmap(nullptr, cq_map_len_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd_, IORING_OFF_CQ_RING);
    if (cq == MAP_FAILED) return Errno("mmap(io_uring CQ ring)");
    cq_map_ = cq;
  }
  sqes_len_ = p.sq_entries * sizeof(io_uring_sqe);
  void* sqes = mmap(nullptr, sqes_len_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd_, IORING_OFF_SQES);
  if (sqes == MAP_FAILED) return Errno("mmap(io_uring SQEs)");
  sqes_ = static_cast<io_uring_sqe*>(sqes);

  char* s = static_cast<char*>(sq_map_);
  sq_head_ = reinterpret_cast<unsigned*>(s + p.sq_off.head);
  sq_tail_ = reinterpret_cast<unsigned*>(s + p.sq_off.tail);
  sq_mask_ = reinterpret_cast<unsigned*>(s + p.sq_off.ring_mask);
  sq_array_ = reinterpret_cast<unsigned*>(s + p.sq_off.array);
  sq_entries_ = p.sq_entries;
  sq_local_tail_ = *sq_tail_;
  char* c = static_cast<char*>(cq_map_);
  cq_head_ = reinterpret_cast<unsigned*>(c + p.cq_off.head);
  cq_tail_ = reinterpret_cast<unsigned*>(c + p.cq_off.tail);
  cq_mask_ = reinterpret_cast<unsigned*>(c + p.cq_off.ring_mask);
  cqes_ = reinterpret_cast<io_uring_cqe*>(c + p.cq_off.cqes);
  return {};
}

SysError Ring::Enable() {
  if (syscall(__NR_io_uring_register, fd_, IORING_REGISTER_ENABLE_RINGS, nullptr, 0) < 0)
    return Errno("io_uring_register(ENABLE_RINGS)");
  return {};
}

SysError Ring::SetupBufRing(uint16_t group, unsigned count, size_t size) {
  if (count == 0 || (count & (count - 1)) != 0 || count > 32768) return {EINVAL, "provided-buffer ring: bad count"};
  buf_ring_len_ = count * sizeof(io_uring_buf);
  void* r = mmap(nullptr, buf_ring_len_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (r == MAP_FAILED) {
    buf_ring_len_ = 0;
    return Errno("mmap(provided-buffer ring)");
  }
  buf_ring_ = static_cast<io_uring_buf*>(r);
  bufs_len_ = count * size;
  void* b = mmap(nullptr, bufs_len_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (b == MAP_FAILED) {
    bufs_len_ = 0;
    return Errno("mmap(provided buffers)");
  }
  bufs_ = static_cast<uint8_t*>(b);
  buf_size_ = size;
  buf_count_ = count;
  io_uring_buf_reg reg;
  memset(&reg, 0, sizeof(reg));
  reg.ring_addr = reinterpret_cast<uint64_t>(buf_ring_);
  reg.ring_entries = count;
  reg.bgid = group;
  if (syscall(__NR_io_uring_register, fd_, IORING_REGISTER_PBUF_RING, &reg, 1) < 0) {
    SysError e = Errno("io_uring_register(PBUF_RING)");
    munmap(bufs_, bufs_len_);
    bufs_ = nullptr;
    return e;
  }
  buf_tail_ = 0;
  for (unsigned i = 0; i < count; i++) ReturnBuf(static_cast<uint16_t>(i));
  PublishBufs();
  return {};
}

void Ring::ReturnBuf(uint16_t bid) {
  io_uring_buf& b = buf_ring_[buf_tail_ & (buf_count_ - 1)];
  b.addr = reinterpret_cast<uint64_t>(Buf(bid));
  b.len = static_cast<uint32_t>(buf_size_);
  b.bid = bid;
  buf_tail_++;
}

void Ring::PublishBufs() {
  // The tail shares its place with the first descriptor's `resv` (struct io_uring_buf_ring).
  auto* tail = reinterpret_cast<uint16_t*>(reinterpret_cast<char*>(buf_ring_) + offsetof(io_uring_buf, resv));
  __atomic_store_n(tail, buf_tail_, __ATOMIC_RELEASE);
}

io_uring_sqe* Ring::Sqe() {
  const unsigned head = __atomic_load_n(sq_head_, __ATOMIC_ACQUIRE);
  if (sq_local_tail_ - head >= sq_entries_) return nullptr;
  const unsigned idx = sq_local_tail_ & *sq_mask_;
  sq_array_[idx] = idx;
  sq_local_tail_++;
  io_uring_sqe* sqe = &sqes_[idx];
  memset(sqe, 0, sizeof(*sqe));
  return sqe;
}

int Ring::Enter(unsigned wait_nr, unsigned min_wait_us, int64_t timeout_ns) {
  const unsigned to_submit = sq_local_tail_ - *sq_tail_;
  __atomic_store_n(sq_tail_, sq_local_tail_, __ATOMIC_RELEASE);
  __kernel_timespec ts{timeout_ns / 1000000000, timeout_ns % 1000000000};
  io_uring_getevents_arg arg;
  memset(&arg, 0, sizeof(arg));
  arg.ts = timeout_ns >= 0 ? reinterpret_cast<uint64_t>(&ts) : 0;
  arg.pad = min_wait() ? min_wait_us : 0;  // min_wait_usec since 6.12 (older headers call the field pad)
  const long r = syscall(__NR_io_uring_enter, fd_, to_submit, wait_nr, IORING_ENTER_GETEVENTS | IORING_ENTER_EXT_ARG,
                         &arg, sizeof(arg));
  return r < 0 ? -errno : 0;
}

}  // namespace vxr
