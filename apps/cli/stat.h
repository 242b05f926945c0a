// `cohort stat`: the live counters and the current view of the running members of a group,
// read from their stats pages (include/cohort/stats.h), like aeron-stat.
#pragma once

#include <cstdint>
#include <string>

namespace cohort::cli {

struct StatOptions {
  std::string group = "cohort";
  std::string shm_dir;    // empty: /dev/shm/cohort-<uid>
  uint64_t watch_ms = 0;  // 0: print once; else every watch_ms until interrupted
};

int run_stat(const StatOptions& options);

}  // namespace cohort::cli
