// `cohort bench`: the group's latency and throughput over shm on this host, with the raw
// cache-line baseline measured in the same run (scripts/bench group runs it and takes medians).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace cohort::cli {

struct BenchOptions {
  uint64_t run_ms = 2000;         // per scenario
  uint64_t rate = 20000;          // messages/s of the latency runs (2 members)
  std::vector<std::string> only;  // scenario names; empty: all
  bool rt = false;                // pinned members: SCHED_FIFO once the group formed
};

int run_bench(const BenchOptions& options);

}  // namespace cohort::cli
