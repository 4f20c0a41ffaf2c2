// Counter names shared with TypeScript: the order of each list is the index of its counter and must equal
// DROP_REASONS / TRAFFIC_COUNTERS in src/dataplane/engine.ts (pinned by test/native/names.test.ts).
// Counters are relaxed atomics: written by the engine threads, read by JS at any time.
#pragma once
#include <array>
#include <atomic>
#include <cstdint>

namespace vxr {

enum class Drop : int {
  kRxShort,
  kRxBadFlags,
  kRxUnknownVni,
  kRxUnknownSource,
  kRxTruncatedInner,
  kRxOversize,
  kRxTapWriteError,
  kTxShortFrame,
  kTxTooBig,
  kTxNoDestination,
  kTxSendError,
  kTxBadOffload,
  kRxLearnFull,
  kRxSpoofedSource,
  kRxBadProbe,
  kCount
};

inline constexpr std::array<const char*, static_cast<int>(Drop::kCount)> kDropNames = {
    "rx_short",           "rx_bad_flags", "rx_unknown_vni",   "rx_unknown_source",
    "rx_truncated_inner", "rx_oversize",  "rx_tap_write_error", "tx_short_frame",
    "tx_too_big",         "tx_no_destination", "tx_send_error",      "tx_bad_offload",
    "rx_learn_full",      "rx_spoofed_source", "rx_bad_probe"};

enum class Traffic : int {
  kRxDatagrams,
  kRxBytes,
  kTxFrames,
  kTxBytes,
  kTxDatagrams,
  kTxFlooded,
  kLearned,
  kTxTsoFrames,
  kTxGsoSends,
  kRxMerged,
  kArpSuppressed,
  kNdSuppressed,
  kLocalMacRefused,
  kIcmpTooBigSent,
  kIcmpTooBigLimited,
  kTcpMssClamped,
  kTcpMssBadOptions,
  kProbesSent,
  kProbeReplies,
  kProbesAnswered,
  kProbeAnswersLimited,
  kRxUringNoBuffers,
  kGsoSocketsClosed,
  kGsoSocketsFull,
  kCount
};

inline constexpr std::array<const char*, static_cast<int>(Traffic::kCount)> kTrafficNames = {
    "rx_datagrams", "rx_bytes",       "tx_frames",     "tx_bytes", "tx_datagrams",
    "tx_flooded",   "learned",        "tx_tso_frames", "tx_gso_sends", "rx_merged",
    "arp_suppressed", "nd_suppressed", "local_mac_refused", "icmp_too_big_sent", "icmp_too_big_limited",
    "tcp_mss_clamped", "tcp_mss_bad_options",
    "probes_sent", "probe_replies", "probes_answered", "probe_answers_limited",
    "rx_uring_no_buffers",
    "gso_sockets_closed", "gso_sockets_full"};

struct Counters {
  std::array<std::atomic<uint64_t>, static_cast<int>(Drop::kCount)> drops{};
  std::array<std::atomic<uint64_t>, static_cast<int>(Traffic::kCount)> traffic{};

  void drop(Drop d, uint64_t n = 1) { drops[static_cast<int>(d)].fetch_add(n, std::memory_order_relaxed); }
  void add(Traffic t, uint64_t n = 1) { traffic[static_cast<int>(t)].fetch_add(n, std::memory_order_relaxed); }
};

}  // namespace vxr
