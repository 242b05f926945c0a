#include "apps/cli/member_session.h"

#include <atomic>
#include <chrono>
#include <cinttypes>
#include <csignal>
#include <cstdio>
#include <thread>

namespace cohort::cli {
namespace {

std::atomic<bool> g_stop{false};

}  // namespace

GroupOptions member_options(const std::string& group, const std::string& shm_dir, uint32_t slots,
                            bool bootstrap) {
  GroupOptions go;
  go.name = group;
  go.shm_dir = shm_dir;
  go.slots = slots;
  go.bootstrap = bootstrap;
  go.threading = "shared";
  return go;
}

Error no_free_slot(const char* what, uint32_t slots, const std::string& group,
                   const std::string& last) {
  return Error(Errc::kUnavailable, std::string(what) + ": no free slot among " +
                                       std::to_string(slots) + " of group '" + group +
                                       "' (last: " + last + "); raise --slots on every member");
}

void stop_on_signals() {
  std::signal(SIGTERM, [](int) { g_stop.store(true); });
  std::signal(SIGINT, [](int) { g_stop.store(true); });
}

bool stop_requested() {
  return g_stop.load();
}

bool start_and_join(Group& g, const char* what, const std::string& group, uint64_t join_ms,
                    const std::string& hint) {
  if (auto st = g.start(); !st.ok()) {
    std::fprintf(stderr, "%s: %s\n", what, st.error().message().c_str());
    return false;
  }
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(join_ms);
  while (!g.in_view() && std::chrono::steady_clock::now() < until && !g_stop.load()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  if (g.in_view()) return true;
  std::fprintf(stderr, "%s: joined no view of group '%s' in %" PRIu64 " ms; %s\n", what,
               group.c_str(), join_ms, hint.c_str());
  g.stop();
  return false;
}

void leave_and_stop(Group& g) {
  g.leave();
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  while (g.in_view() && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  g.stop();
}

void serve_until_signalled(Group& g) {
  std::fflush(stdout);
  while (!g_stop.load() && g.in_view()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  leave_and_stop(g);
}

}  // namespace cohort::cli
