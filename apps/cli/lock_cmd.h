// `cohort lock`: the lock service (include/cohort/lock.h) from the shell.
//   cohort lock serve  a member that keeps the lock table (run one or more, one --bootstrap)
//   cohort lock hold   joins the group in a free slot, acquires a lock, prints its fencing
//                      token, holds it for --hold-ms or while a command runs (the command gets
//                      COHORT_LOCK_FENCE and COHORT_LOCK_NAME), releases it and leaves
//   cohort lock query  joins, prints a lock's holders, waiters and latest token, leaves
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace cohort::cli {

struct LockCmdOptions {
  std::string action;  // serve | hold | query
  std::string group = "locks";
  std::string shm_dir;
  uint32_t slots = 8;
  int node = -1;  // serve: required; hold/query: -1 picks a free slot
  bool bootstrap = false;
  std::string name;                  // the lock
  bool shared = false;               // shared mode instead of exclusive
  uint64_t hold_ms = 0;              // hold this long when no command is given
  uint64_t timeout_ms = 10'000;      // give up waiting for the grant after this long
  uint64_t join_ms = 5'000;          // give up joining the group after this long
  std::vector<std::string> command;  // run while holding
};

int run_lock_cmd(const LockCmdOptions& options);

}  // namespace cohort::cli
