#include "apps/cli/lock_cmd.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <thread>

#include "apps/cli/member_session.h"
#include "cohort/lock.h"

namespace cohort::cli {
namespace {

const char* mode_name(LockMode m) {
  return m == LockMode::kShared ? "shared" : "exclusive";
}

// Creates the service in `o.node`, or in the first free slot from the top when it is -1 (a
// slot whose member runs is refused by the transport, so the next one is tried).
Result<std::unique_ptr<LockService>> open_service(const LockCmdOptions& o) {
  GroupOptions go = member_options(o.group, o.shm_dir, o.slots, o.bootstrap);
  if (o.node >= 0) {
    go.node = static_cast<uint32_t>(o.node);
    return LockService::create(go);
  }
  std::string last;
  for (int n = static_cast<int>(o.slots) - 1; n >= 0; --n) {
    go.node = static_cast<uint32_t>(n);
    auto s = LockService::create(go);
    if (s.ok()) return s;
    last = s.error().message();
  }
  return no_free_slot("cohort lock", o.slots, o.group, last);
}

// Runs the command with the grant in its environment; returns its exit status.
int run_command(const std::vector<std::string>& command, const LockGrant& grant) {
  const pid_t pid = fork();
  if (pid < 0) {
    std::fprintf(stderr, "cohort lock: fork: %s\n", std::strerror(errno));
    return 1;
  }
  if (pid == 0) {
    setenv("COHORT_LOCK_FENCE", std::to_string(grant.fence).c_str(), 1);
    setenv("COHORT_LOCK_NAME", grant.name.c_str(), 1);
    std::vector<char*> argv;
    for (const std::string& a : command) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execvp(argv[0], argv.data());
    std::fprintf(stderr, "cohort lock: cannot run '%s': %s\n", argv[0], std::strerror(errno));
    _exit(127);
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

}  // namespace

int run_lock_cmd(const LockCmdOptions& o) {
  stop_on_signals();
  if (o.action == "serve" && o.node < 0) {
    std::fprintf(stderr, "cohort lock serve: give the member's slot with --node N\n");
    return 2;
  }
  if (o.action != "serve" && (o.name.empty() || o.name.size() > kMaxLockNameBytes)) {
    std::fprintf(stderr, "cohort lock %s: give the lock with --name (1..%zu bytes)\n",
                 o.action.c_str(), kMaxLockNameBytes);
    return 2;
  }
  auto svc = open_service(o);
  if (!svc.ok()) {
    std::fprintf(stderr, "cohort lock: %s\n", svc.error().message().c_str());
    return 1;
  }
  LockService& s = **svc;
  if (!start_and_join(s.group(), "cohort lock", o.group, o.bootstrap ? 1000 : o.join_ms,
                      "is a lock server running? (cohort lock serve --group " + o.group +
                          " --node 0 --bootstrap)")) {
    return 1;
  }
  const MemberUid self = s.group().self();
  if (o.action == "serve") {
    std::printf("serving locks of group '%s' as n%u.%u\n", o.group.c_str(), self.node,
                self.incarnation);
    serve_until_signalled(s.group());
    return 0;
  }
  if (o.action == "query") {
    const LockInfo info = s.query(o.name);
    std::printf("lock %s fence=%" PRIu64 " holders=%zu waiting=%u\n", o.name.c_str(), info.fence,
                info.holders.size(), info.waiting);
    for (const LockHolder& h : info.holders) {
      std::printf("  holder n%u.%u %s fence=%" PRIu64 "\n", h.member.node, h.member.incarnation,
                  mode_name(h.mode), h.fence);
    }
    leave_and_stop(s.group());
    return 0;
  }
  // hold
  const LockMode mode = o.shared ? LockMode::kShared : LockMode::kExclusive;
  const LockResult r = s.acquire(o.name, mode, std::chrono::milliseconds(o.timeout_ms));
  if (r.status != LockStatus::kGranted) {
    std::fprintf(stderr, "cohort lock hold: %s: %s\n", o.name.c_str(), lock_status_name(r.status));
    leave_and_stop(s.group());
    return r.status == LockStatus::kTimedOut ? 3 : 1;
  }
  std::printf("granted lock=%s fence=%" PRIu64 " mode=%s holder=n%u.%u\n", o.name.c_str(),
              r.grant.fence, mode_name(mode), self.node, self.incarnation);
  std::fflush(stdout);
  int status = 0;
  if (!o.command.empty()) {
    status = run_command(o.command, r.grant);
  } else {
    const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(o.hold_ms);
    while (!stop_requested() && std::chrono::steady_clock::now() < until && s.holds(r.grant)) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
  if (!s.holds(r.grant)) {
    std::fprintf(stderr, "cohort lock hold: lost %s while holding it (removed from the view)\n",
                 o.name.c_str());
    s.group().stop();
    return 1;
  }
  (void)s.release(r.grant);
  // The release goes out in order; wait until it is applied here, so the next holder can go.
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  while (std::chrono::steady_clock::now() < until) {
    bool held = false;
    for (const LockHolder& h : s.query(o.name).holders) {
      held = held || (h.request == r.grant.request && h.member.node == self.node &&
                      h.member.incarnation == self.incarnation);
    }
    if (!held) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  std::printf("released lock=%s fence=%" PRIu64 "\n", o.name.c_str(), r.grant.fence);
  std::fflush(stdout);
  leave_and_stop(s.group());
  return status;
}

}  // namespace cohort::cli
