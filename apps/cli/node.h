// `cohort node`: one member of a group, with an optional message stream of its own. It prints
// one event line per view change and failure (`event ...`), keeps a delivery log, and ends with
// `stats ...` and `state ...` lines that `cohort demo` reads.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "runtime/result.h"

namespace cohort::cli {

struct NodeOptions {
  std::string group = "cohort";
  uint32_t node = 0;
  uint32_t slots = 8;
  bool bootstrap = false;
  std::string shm_dir;
  std::string idle = "backoff";
  int32_t idle_spins = -1;     // GroupOptions::idle_spins
  uint64_t rate = 1000;        // messages per second this member sends (0: none)
  uint32_t size = 64;          // payload bytes, at least 24
  std::string mode = "total";  // fifo | total | safe
  uint64_t run_ms = 10'000;    // how long to send
  uint64_t drain_ms = 1'000;   // then how long to keep delivering before leaving
  std::string log;             // the run's log (apps/cli/node_log.h; empty: none)
  // Transport (GroupOptions): shm, or udp/dpdk with every member's "a.b.c.d:port" in peers;
  // shared, dedicated or auto threading; dpdk's EAL arguments, space-separated.
  std::string transport = "shm";
  std::vector<std::string> peers;
  std::string threading = "auto";
  std::string order = "auto";  // tickets | sequencer | auto (GroupOptions::order)
  std::string dpdk_eal;
  std::string rdma_device;
  // Faults injected below udp/dpdk logs (tests): loss, and a partition from `cut_off` members
  // cut_after_ms after start, for cut_for_ms (0: for ever).
  double drop_rate = 0;
  std::vector<uint32_t> cut_off;
  uint64_t cut_after_ms = 0;
  uint64_t cut_for_ms = 0;
  uint64_t heartbeat_us = 10'000;
  uint64_t suspect_us = 100'000;
  // Benchmark knobs (cohort bench): run the member on the main thread (poll() and send in one
  // loop: one thread per process), pinned to `pin`; send as fast as backpressure allows;
  // record the latency of every delivery (send time in the payload, CLOCK_MONOTONIC) rather
  // than of this member's own messages only; wait for a view of `wait_members` before sending.
  bool inline_loop = false;
  int pin = -1;
  bool flood = false;
  bool all_latency = false;
  uint32_t sample = 1;  // time one timestamped delivery in `sample`
  uint32_t wait_members = 1;
  // Once the view has wait_members, this thread runs SCHED_FIFO at this priority (0: no).
  // For comparing builds on a busy machine: other work cannot take the cpu from the member
  // (the join runs before, at normal priority, so the kernel's network work is not starved).
  int rt_priority = 0;
  // When the group removes this member (kRemoved), join again as a new incarnation in this
  // process (a fresh Group; the state comes by transfer), logging under the new uid.
  bool rejoin = false;
};

int run_node(const NodeOptions& options);

// The schema of `cohort node`'s TOML config: every flag has a key (--rate is node.rate,
// --group is group.name, --idle is runtime.idle_policy, ...; `cohort node --print-config`).
// Resolves defaults < file < COHORT_* environment < `sets` ("key=value", --set and the flags
// given explicitly, in that order) into NodeOptions.
Result<NodeOptions> load_node_options(const std::string& file, const std::vector<std::string>& sets,
                                      bool print_config);

}  // namespace cohort::cli
