// What the tests of members in one process over shm share (apps/lock/lock_service_test,
// apps/cache/cache_service_test, tests/integration/p2p_test): a private group folder that is
// removed afterwards, waiting for a condition, and the options of such a member.
#pragma once

#include <stdlib.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>
#include <thread>

#include "cohort/group.h"

namespace cohort::test_support {

// A fresh folder /dev/shm/cohort-<what>-test-XXXXXX, removed with everything in it at the end;
// `path` is empty if it could not be made.
struct ShmFolder {
  std::string path;
  explicit ShmFolder(const std::string& what) {
    std::string t = "/dev/shm/cohort-" + what + "-test-XXXXXX";
    const char* p = mkdtemp(t.data());
    path = p != nullptr ? p : "";
  }
  ~ShmFolder() {
    std::error_code ec;
    if (!path.empty()) std::filesystem::remove_all(path, ec);
  }
  ShmFolder(const ShmFolder&) = delete;
  ShmFolder& operator=(const ShmFolder&) = delete;
};

// Polls `done` every millisecond until it holds (true) or `limit` passes (false).
template <typename F>
bool eventually(F done, std::chrono::milliseconds limit = std::chrono::milliseconds(10'000)) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() > end) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

// A member of `group` in slot `node` of 4, its logs 1 MiB, in `folder`.
inline GroupOptions shm_member_options(const ShmFolder& folder, const std::string& group,
                                       uint32_t node, bool bootstrap) {
  GroupOptions o;
  o.name = group;
  o.shm_dir = folder.path;
  o.node = node;
  o.slots = 4;
  o.bootstrap = bootstrap;
  o.log_bytes = 1 << 20;
  return o;
}

}  // namespace cohort::test_support
