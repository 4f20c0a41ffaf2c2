// A minimal io_uring (raw system calls; Debian's liburing is too old for the minimum-wait enter and may be absent):
// one ring, its fd and its three mappings owned by a Ring (RAII), SQEs handed out and submitted in one
// io_uring_enter that also waits. Used by the engine's io_uring loop (uring.cc, Engine::UringLoop); the flags are
// the ones the loop wants: SINGLE_ISSUER | DEFER_TASKRUN (completions are posted only when the loop thread asks for
// them, so the kernel does not interrupt it to run them) and R_DISABLED (made on the JS thread, enabled by the loop
// thread, which then is the single issuer). No SQPOLL: a spinning kernel thread on a 2-core machine.
#pragma once
#include <linux/io_uring.h>
#include <stdint.h>

#include <string>

#include "sys-error.h"

// Kernel ≥ 6.12; the C library's headers may be older.
#ifndef IORING_FEAT_MIN_TIMEOUT
#define IORING_FEAT_MIN_TIMEOUT (1U << 15)
#endif

namespace vxr {

class Ring {
 public:
  Ring() = default;
  ~Ring();
  Ring(const Ring&) = delete;
  Ring& operator=(const Ring&) = delete;

  // Sets up a ring of `entries` SQEs, disabled until Enable(). Fails with the kernel's errno (ENOSYS: no io_uring
  // or a seccomp filter; EPERM: kernel.io_uring_disabled or seccomp; EINVAL: a flag this kernel lacks) or ENOTSUP
  // when it lacks IORING_FEAT_EXT_ARG. The environment variable VXLAN_ROUTER_URING_FAIL=<errno name> makes it fail
  // as if the kernel had said so (tests of the fallback; a real seccomp filter is in test/native/uring.test.ts).
  SysError Open(unsigned entries);
  // On the thread that will submit (IORING_SETUP_SINGLE_ISSUER binds the ring to it).
  SysError Enable();
  bool min_wait() const { return (features_ & IORING_FEAT_MIN_TIMEOUT) != 0; }
  int fd() const { return fd_; }

  // A provided-buffer ring (IORING_REGISTER_PBUF_RING, kernel ≥ 5.19) of `count` buffers (a power of two) of
  // `size` bytes each, group `group`: what a multishot recvmsg fills. Owned by the Ring, freed after its fd is
  // closed.
  SysError SetupBufRing(uint16_t group, unsigned count, size_t size);
  bool has_buf_ring() const { return bufs_ != nullptr; }
  uint8_t* Buf(uint16_t bid) { return bufs_ + static_cast<size_t>(bid) * buf_size_; }
  size_t buf_size() const { return buf_size_; }
  // Hands buffer `bid` back to the kernel (published by PublishBufs).
  void ReturnBuf(uint16_t bid);
  void PublishBufs();

  // A zeroed SQE to fill, or nullptr when the submission queue is full (submit first).
  io_uring_sqe* Sqe();
  // Submits what is queued and waits for `wait_nr` completions, or (min_wait_us > 0, kernel ≥ 6.12) for at least
  // one after min_wait_us, or until timeout_ns (< 0: no limit). wait_nr 0: submits and runs what the kernel has
  // for us (DEFER_TASKRUN) without sleeping. Returns 0 or -errno (-ETIME: the timeout; -EINTR).
  int Enter(unsigned wait_nr, unsigned min_wait_us, int64_t timeout_ns);
  // Calls f(const io_uring_cqe&) for each completion posted, then frees their slots.
  template <typename F>
  void Reap(F f) {
    unsigned head = *cq_head_;
    const unsigned tail = __atomic_load_n(cq_tail_, __ATOMIC_ACQUIRE);
    for (; head != tail; head++) f(cqes_[head & *cq_mask_]);
    __atomic_store_n(cq_head_, head, __ATOMIC_RELEASE);
  }

 private:
  int fd_ = -1;
  uint32_t features_ = 0;
  void* sq_map_ = nullptr;
  size_t sq_map_len_ = 0;
  void* cq_map_ = nullptr;  // == sq_map_ with IORING_FEAT_SINGLE_MMAP
  size_t cq_map_len_ = 0;
  io_uring_sqe* sqes_ = nullptr;
  size_t sqes_len_ = 0;
  unsigned* sq_head_ = nullptr;
  unsigned* sq_tail_ = nullptr;
  unsigned* sq_mask_ = nullptr;
  unsigned* sq_array_ = nullptr;
  unsigned sq_local_tail_ = 0;  // SQEs handed out, not yet published
  unsigned sq_entries_ = 0;
  unsigned* cq_head_ = nullptr;
  unsigned* cq_tail_ = nullptr;
  unsigned* cq_mask_ = nullptr;
  io_uring_cqe* cqes_ = nullptr;
  io_uring_buf* buf_ring_ = nullptr;  // the ring of buffer descriptors (page-aligned mapping)
  size_t buf_ring_len_ = 0;
  uint8_t* bufs_ = nullptr;  // the buffers themselves (one mapping)
  size_t bufs_len_ = 0;
  size_t buf_size_ = 0;
  unsigned buf_count_ = 0;
  uint16_t buf_tail_ = 0;  // local tail, published by PublishBufs
};

}  // namespace vxr
