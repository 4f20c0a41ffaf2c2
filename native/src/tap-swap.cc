// A TAP deleted under the running engine, and its replacement (engine.h: LostTaps, ReplaceTap). The per-packet
// paths are unchanged: the RX thread and InjectFrame keep writing to the same fd number, which dup2() points at the
// new TAP atomically; only the lost VNI's TX thread (already ended) is joined and started again.
#include <fcntl.h>
#include <pthread.h>
#include <unistd.h>

#include <string>

#include "engine.h"

namespace vxr {

void Engine::ReportTapLost(const Network* net) {
  std::lock_guard<std::mutex> lock(fault_mu_);
  if (tap_lost_.size() != nets_.size()) tap_lost_.assign(nets_.size(), false);
  tap_lost_[static_cast<size_t>(net - nets_.data())] = true;
}

std::vector<uint32_t> Engine::LostTaps() const {
  std::lock_guard<std::mutex> lock(fault_mu_);
  std::vector<uint32_t> out;
  for (size_t i = 0; i < tap_lost_.size(); i++)
    if (tap_lost_[i]) out.push_back(nets_[i].vni);
  return out;
}

SysError Engine::ReplaceTap(uint32_t vni, int fd_in, bool vnet_hdr) {
  UniqueFd fd(fd_in);
  size_t i = 0;
  while (i < nets_.size() && nets_[i].vni != vni) i++;
  const std::string what = "replace the TAP of VNI " + std::to_string(vni);
  if (i == nets_.size()) return {ENOENT, what + ": not served"};
  if (!started_ || stopped_) return {EINVAL, what + ": engine not running"};
  if (vnet_hdr != nets_[i].vnet_hdr) return {EINVAL, what + ": the new TAP must have the same virtio header setting"};
  {
    std::lock_guard<std::mutex> lock(fault_mu_);
    if (i >= tap_lost_.size() || !tap_lost_[i]) return {EBUSY, what + ": the current one still forwards"};
  }
  const int flags = fcntl(fd.get(), F_GETFL);
  if (flags < 0 || fcntl(fd.get(), F_SETFL, flags | O_NONBLOCK) < 0) return Errno("fcntl(TAP, O_NONBLOCK)");
  if (uring_on_) {
    // One loop thread polls every TAP: the new one takes the old fd number, and the loop is told to poll it.
    if (dup2(fd.get(), nets_[i].tap.get()) < 0) return Errno(what + ": dup2");
    {
      std::lock_guard<std::mutex> lock(fault_mu_);
      tap_lost_[i] = false;
    }
    const uint64_t one = 1;
    ssize_t ignored = write(kick_fd_.get(), &one, sizeof(one));
    (void)ignored;
    return {};
  }
  // Start() placed the RX thread first, then one TX thread per network in nets_ order. This one has returned (it
  // reported the loss just before): the join does not wait.
  std::thread& tx = threads_[1 + i];
  if (tx.joinable()) tx.join();
  if (dup2(fd.get(), nets_[i].tap.get()) < 0) {
    const SysError err = Errno(what + ": dup2");
    tx = std::thread([this, net = &nets_[i]] { TxLoop(net); });  // the lost TAP: it reports itself lost again
    return err;
  }
  {
    std::lock_guard<std::mutex> lock(fault_mu_);
    tap_lost_[i] = false;
  }
  tx = std::thread([this, net = &nets_[i]] { TxLoop(net); });
  pthread_setname_np(tx.native_handle(), ("vxr-tx-" + std::to_string(vni)).substr(0, 15).c_str());
  return {};
}

}  // namespace vxr
