// Per-peer and per-VNI traffic for metrics and `status` (frames and bytes each way, when a peer was last heard),
// and the sources whose datagrams were refused (not a VTEP of that VNI: usually a peer that sends from another
// address than it advertises). Engine threads count a batch in a Tally (no lock, no allocation) and merge it
// with one lock per batch; JS reads a copy.
#pragma once
#include <array>
#include <cstdint>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "table.h"
#include "wire.h"

namespace vxr {

struct FlowCount {
  uint64_t frames = 0;
  uint64_t bytes = 0;
};

struct PeerRow {
  Addr addr;
  FlowCount rx, tx;  // rx: datagrams from the peer (inner bytes); tx: datagrams to it (inner bytes)
  int64_t last_rx_ms = -1;  // NowMs() of the last datagram accepted from it; -1: never
};

struct VniRow {
  uint32_t vni = 0;
  FlowCount rx, tx;  // rx: frames written to the TAP; tx: frames read from the TAP and forwarded
};

struct RejectRow {
  Addr addr;
  uint32_t vni = 0;  // the VNI it sent
  uint64_t count = 0;
  int64_t last_ms = 0;
};

// One thread's counts for one batch: a handful of distinct peers and VNIs, found by linear search.
class Tally {
 public:
  static constexpr int kMax = 16;  // distinct keys per batch; more and the caller merges early (Full())
  void Peer(const Addr& a, uint64_t frames, uint64_t bytes);
  void Vni(uint32_t vni, uint64_t frames, uint64_t bytes);
  bool Full() const { return np_ == kMax || nv_ == kMax; }
  bool Empty() const { return np_ == 0 && nv_ == 0; }
  void Clear() { np_ = nv_ = 0; }

 private:
  friend class TrafficStats;
  std::array<std::pair<Addr, FlowCount>, kMax> peers_{};
  std::array<std::pair<uint32_t, FlowCount>, kMax> vnis_{};
  int np_ = 0, nv_ = 0;
};

class TrafficStats {
 public:
  static constexpr size_t kMaxPeers = 65536;  // beyond this, new peers are not counted (the table caps peers too)
  static constexpr size_t kMaxRejected = 16;  // most recent refused sources kept
  enum class Dir { kRx, kTx };
  // Adds the tally (rx: `now_ms` is when its peers were heard) and clears it.
  void Merge(Tally* t, Dir dir, int64_t now_ms);
  void Rejected(const Addr& from, uint32_t vni, int64_t now_ms);
  // Forgets the peers that left the table (their series end; a returning peer starts from zero).
  void Retain(const Table& t);
  std::vector<PeerRow> Peers() const;
  std::vector<VniRow> Vnis() const;
  std::vector<RejectRow> RejectedSources() const;

 private:
  mutable std::mutex mu_;
  std::unordered_map<Addr, PeerRow, AddrHash> peers_;
  std::unordered_map<uint32_t, VniRow> vnis_;
  std::vector<RejectRow> rejected_;
};

// One data-path thread's counts for one batch: a Tally that merges itself into `stats` when it fills, and on Flush()
// (at the end of the batch). Owned by that thread; `now_ms` is when the batch's peers were heard (rx; tx passes 0).
class BatchTally {
 public:
  BatchTally(TrafficStats& stats, TrafficStats::Dir dir, int64_t now_ms = 0)
      : stats_(stats), dir_(dir), now_ms_(now_ms) {}
  void Peer(const Addr& a, uint64_t frames, uint64_t bytes) {
    MakeRoom();
    tally_.Peer(a, frames, bytes);
  }
  void Vni(uint32_t vni, uint64_t frames, uint64_t bytes) {
    MakeRoom();
    tally_.Vni(vni, frames, bytes);
  }
  void Flush() { stats_.Merge(&tally_, dir_, now_ms_); }

 private:
  void MakeRoom() {
    if (tally_.Full()) Flush();
  }
  Tally tally_;
  TrafficStats& stats_;
  const TrafficStats::Dir dir_;
  const int64_t now_ms_;
};

}  // namespace vxr
