// One member of the lock-set workload (tests/integration/NOTES.md, "The lock-set workload"):
// a process in a group over shm that, until SIGTERM, takes the exclusive lock "set", reads the
// shared file through its guard with the grant's fencing token, pauses, appends an element of
// its own, writes the file back through the guard with the same token, and releases. An element
// whose write the guard accepted is appended to this slot's ack file (one write(2), so a
// SIGKILL never takes the record of an acknowledged element).
//
// A member the group removes (a SIGSTOP past the suspect timeout, or starvation) joins again in
// the same process, in the same slot, as a new incarnation; a process killed with SIGKILL is
// restarted by the driver (a new process: a new incarnation too).
//
//   lockset_worker --node N --group G --shm-dir D --data-dir F [--bootstrap] [--slots S]
//                  [--pause-min-ms A --pause-max-ms B] [--seed X]
//
// stdout, one line per fact, flushed (the driver reads it to aim faults and to check):
//   started pid= node=
//   joined self=nN.I members=M          in a view, after create
//   view self= id= members=             each view installed (the data core)
//   event self= what=removed|cut_off|left
//   lost self= fence= why=              the lost-locks callback
//   granted self= fence=                acquire() returned kGranted
//   holding self= fence= count=         the fenced read was accepted; the pause follows
//   accepted self= fence= element=      the guard took the write (and it is acked)
//   refused self= op=read|write fence=  the guard refused the access
//   stale self= fence= explained=...    the refused holder learned it had lost the lock
//   unexplained self= fence= ...        ... or it still held the lock 3 s later: two holders
//   guard-error self= ...               the guard could not read or write its files
//   rejoin self= reason=
//   done node= ops= accepted= refused_reads= refused_writes= timeouts= incarnations=
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cinttypes>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <thread>

#include "cohort/lock.h"
#include "tests/integration/lockset_guard.h"

namespace {

using cohort::GroupEvent;
using cohort::LockGrant;
using cohort::LockMode;
using cohort::LockResult;
using cohort::LockService;
using cohort::LockStatus;
using cohort::MemberUid;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

constexpr const char* kLock = "set";
constexpr auto kAcquireTimeout = milliseconds(1000);
constexpr auto kJoinTimeout = milliseconds(5000);
constexpr auto kCutOffPatience = milliseconds(2000);
constexpr auto kStaleWait = milliseconds(3000);

std::atomic<bool> g_stop{false};
std::mutex g_out_mu;

// One line to stdout, flushed: from the worker's thread and from the data core's callbacks.
void say(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
void say(const char* fmt, ...) {
  std::lock_guard<std::mutex> g(g_out_mu);
  va_list ap;
  va_start(ap, fmt);
  std::vprintf(fmt, ap);
  va_end(ap);
  std::fputc('\n', stdout);
  std::fflush(stdout);
}

std::string uid_text(MemberUid u) {
  return "n" + std::to_string(u.node) + "." + std::to_string(u.incarnation);
}

struct Options {
  uint32_t node = 0;
  uint32_t slots = 8;
  bool bootstrap = false;
  std::string group, shm_dir, data_dir;
  uint32_t pause_min_ms = 3, pause_max_ms = 12;
  uint64_t seed = 0;
};

// One incarnation: the service and what its callbacks saw. The listener is declared first, so
// it outlives the service (whose destructor stops the group and with it the callbacks).
struct Incarnation : cohort::GroupListener {
  std::string self = "n?";
  std::atomic<bool> removed{false};  // removed or left: final for this incarnation
  std::atomic<bool> cut_off{false};
  std::mutex mu;
  std::set<uint64_t> lost;  // fences reported by the lost-locks callback
  GroupEvent lost_why = GroupEvent::kRemoved;
  std::unique_ptr<LockService> svc;

  void on_deliver(const cohort::Message&) override {}  // every message is a lock op
  void on_view(const cohort::ViewInfo& v) override {
    cut_off.store(false);
    say("view self=%s id=%" PRIu64 " members=%zu", self.c_str(), v.id, v.members.size());
  }
  void on_event(GroupEvent e) override {
    if (e == GroupEvent::kCutOff) {
      cut_off.store(true);
    } else {
      removed.store(true);
    }
    say("event self=%s what=%s", self.c_str(), cohort::group_event_name(e));
  }
  void on_lost(std::span<const LockGrant> grants, GroupEvent why) {
    std::lock_guard<std::mutex> g(mu);
    for (const LockGrant& l : grants) {
      lost.insert(l.fence);
      say("lost self=%s fence=%" PRIu64 " why=%s", self.c_str(), l.fence,
          cohort::group_event_name(why));
    }
    lost_why = why;
  }
  bool was_lost(uint64_t fence) {
    std::lock_guard<std::mutex> g(mu);
    return lost.count(fence) != 0;
  }
};

std::unique_ptr<Incarnation> open_member(const Options& o, bool bootstrap) {
  auto inc = std::make_unique<Incarnation>();
  cohort::GroupOptions go;
  go.name = o.group;
  go.node = o.node;
  go.slots = o.slots;
  go.bootstrap = bootstrap;
  go.shm_dir = o.shm_dir;
  go.log_bytes = 1 << 20;
  go.threading = "shared";
  cohort::LockServiceOptions lo;
  Incarnation* raw = inc.get();
  lo.on_lost = [raw](std::span<const LockGrant> grants, GroupEvent why) {
    raw->on_lost(grants, why);
  };
  lo.listener = raw;
  auto s = LockService::create(go, std::move(lo));
  if (!s.ok()) {
    say("open-error node=%u %s", o.node, s.error().message().c_str());
    return nullptr;
  }
  inc->svc = std::move(*s);
  inc->self = uid_text(inc->svc->group().self());
  if (auto st = inc->svc->group().start(); !st.ok()) {
    say("open-error node=%u %s", o.node, st.error().message().c_str());
    return nullptr;
  }
  const auto until = Clock::now() + kJoinTimeout;
  while (!inc->svc->group().in_view() && !inc->removed.load() && Clock::now() < until &&
         !g_stop.load()) {
    std::this_thread::sleep_for(milliseconds(1));
  }
  if (!inc->svc->group().in_view()) {
    say("join-failed self=%s", inc->self.c_str());
    return nullptr;  // the service's destructor stops the group
  }
  say("joined self=%s members=%u", inc->self.c_str(), inc->svc->group().stats().view_members);
  return inc;
}

struct Counts {
  uint64_t ops = 0, accepted = 0, refused_reads = 0, refused_writes = 0, timeouts = 0;
  uint64_t incarnations = 0;
};

class Worker {
 public:
  explicit Worker(const Options& o)
      : o_(o),
        guard_(o.data_dir),
        rng_(o.seed != 0 ? o.seed : std::random_device{}()),
        ack_path_(o.data_dir + "/ack-n" + std::to_string(o.node)) {}

  int run();

 private:
  void op(Incarnation& inc, const LockGrant& grant);
  void refused(Incarnation& inc, const LockGrant& grant, const char* what);
  void guard_error(const Incarnation& inc, const std::string& error) {
    say("guard-error self=%s %s", inc.self.c_str(), error.c_str());
    failed_ = true;
  }

  Options o_;
  cohort::lockset::Guard guard_;
  std::mt19937_64 rng_;
  std::string ack_path_;
  uint64_t next_element_ = 0;
  Counts n_;
  bool failed_ = false;
};

// Under the lock: the fenced read, the pause (the window in which a SIGSTOP makes this holder
// stale), the append, the fenced write.
void Worker::op(Incarnation& inc, const LockGrant& grant) {
  ++n_.ops;
  std::vector<std::string> elements;
  std::string error;
  switch (guard_.read(grant.fence, inc.self, &elements, &error)) {
    case cohort::lockset::Access::kAccepted: break;
    case cohort::lockset::Access::kRefused: return refused(inc, grant, "read");
    case cohort::lockset::Access::kError: return guard_error(inc, error);
  }
  say("holding self=%s fence=%" PRIu64 " count=%zu", inc.self.c_str(), grant.fence,
      elements.size());
  std::uniform_int_distribution<uint32_t> pause(o_.pause_min_ms, o_.pause_max_ms);
  std::this_thread::sleep_for(milliseconds(pause(rng_)));
  const std::string element = inc.self + "." + std::to_string(++next_element_);
  elements.push_back(element);
  switch (guard_.write(grant.fence, inc.self, element, std::move(elements), &error)) {
    case cohort::lockset::Access::kAccepted: break;
    case cohort::lockset::Access::kRefused: return refused(inc, grant, "write");
    case cohort::lockset::Access::kError: return guard_error(inc, error);
  }
  ++n_.accepted;
  if (!cohort::lockset::append_line(ack_path_,
                                    element + " fence=" + std::to_string(grant.fence) + "\n")) {
    say("ack-error self=%s cannot append to %s", inc.self.c_str(), ack_path_.c_str());
    failed_ = true;
  }
  say("accepted self=%s fence=%" PRIu64 " element=%s", inc.self.c_str(), grant.fence,
      element.c_str());
}

// The guard refused this holder's token: some later grant's holder presented a higher one. That
// is right only if this member lost the lock (it was removed, or cut off) and has not heard yet;
// it must hear within a few seconds. If it still holds the grant then, the service granted the
// lock to two members at once.
void Worker::refused(Incarnation& inc, const LockGrant& grant, const char* what) {
  (what[0] == 'r' ? n_.refused_reads : n_.refused_writes)++;
  say("refused self=%s op=%s fence=%" PRIu64, inc.self.c_str(), what, grant.fence);
  const auto until = Clock::now() + kStaleWait;
  while (inc.svc->holds(grant) && Clock::now() < until) {
    std::this_thread::sleep_for(milliseconds(1));
  }
  if (!inc.svc->holds(grant)) {
    // The lost-locks callback runs just after the core dropped the grant: give it a moment.
    const auto reported = Clock::now() + milliseconds(200);
    while (!inc.was_lost(grant.fence) && Clock::now() < reported) {
      std::this_thread::sleep_for(milliseconds(1));
    }
    const char* why =
        inc.was_lost(grant.fence) ? (inc.removed.load() ? "removed" : "cut_off") : "unreported";
    say("stale self=%s fence=%" PRIu64 " explained=%s", inc.self.c_str(), grant.fence, why);
    return;
  }
  const cohort::LockInfo info = inc.svc->query(kLock);
  say("unexplained self=%s fence=%" PRIu64 " holds=1 in_view=%d table_fence=%" PRIu64
      " holders=%zu",
      inc.self.c_str(), grant.fence, inc.svc->group().in_view() ? 1 : 0, info.fence,
      info.holders.size());
}

int Worker::run() {
  say("started pid=%d node=%u", getpid(), o_.node);
  std::unique_ptr<Incarnation> inc = open_member(o_, o_.bootstrap);
  if (inc != nullptr) ++n_.incarnations;
  auto cut_since = Clock::now();
  while (!g_stop.load()) {
    if (inc == nullptr || inc->removed.load() ||
        (inc->cut_off.load() && Clock::now() - cut_since > kCutOffPatience)) {
      if (inc != nullptr) {
        say("rejoin self=%s reason=%s", inc->self.c_str(),
            inc->removed.load() ? "removed" : "cut_off");
      }
      inc.reset();  // stops the old group first: one incarnation runs at a time
      std::this_thread::sleep_for(milliseconds(2));  // a new incarnation number (ms clock)
      inc = open_member(o_, false);
      if (inc != nullptr) ++n_.incarnations;
      if (inc == nullptr) std::this_thread::sleep_for(milliseconds(50));
      continue;
    }
    if (!inc->cut_off.load()) cut_since = Clock::now();
    if (!inc->svc->group().in_view()) {
      std::this_thread::sleep_for(milliseconds(1));
      continue;
    }
    const LockResult r = inc->svc->acquire(kLock, LockMode::kExclusive, kAcquireTimeout);
    switch (r.status) {
      case LockStatus::kGranted:
        say("granted self=%s fence=%" PRIu64, inc->self.c_str(), r.grant.fence);
        op(*inc, r.grant);
        if (inc->svc->holds(r.grant)) (void)inc->svc->release(r.grant);
        break;
      case LockStatus::kTimedOut: ++n_.timeouts; break;
      case LockStatus::kNotMember:  // joining, cut off or removed: the loop's head decides
      case LockStatus::kLost:
      case LockStatus::kFull: std::this_thread::sleep_for(milliseconds(1)); break;
      default:
        say("acquire-error self=%s status=%s", inc->self.c_str(),
            cohort::lock_status_name(r.status));
        std::this_thread::sleep_for(milliseconds(10));
        break;
    }
    if (failed_) break;
  }
  if (inc != nullptr && inc->svc->group().in_view()) {
    inc->svc->group().leave();
    const auto until = Clock::now() + milliseconds(2000);
    while (!inc->removed.load() && Clock::now() < until) {
      std::this_thread::sleep_for(milliseconds(1));
    }
  }
  inc.reset();
  say("done node=%u ops=%" PRIu64 " accepted=%" PRIu64 " refused_reads=%" PRIu64
      " refused_writes=%" PRIu64 " timeouts=%" PRIu64 " incarnations=%" PRIu64,
      o_.node, n_.ops, n_.accepted, n_.refused_reads, n_.refused_writes, n_.timeouts,
      n_.incarnations);
  return failed_ ? 1 : 0;
}

bool parse_args(int argc, char** argv, Options* o) {
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const bool has_value = i + 1 < argc;
    auto u32 = [&](uint32_t* out) {
      *out = static_cast<uint32_t>(std::strtoul(argv[++i], nullptr, 10));
    };
    if (a == "--bootstrap") {
      o->bootstrap = true;
    } else if (!has_value) {
      return false;
    } else if (a == "--node") {
      u32(&o->node);
    } else if (a == "--slots") {
      u32(&o->slots);
    } else if (a == "--group") {
      o->group = argv[++i];
    } else if (a == "--shm-dir") {
      o->shm_dir = argv[++i];
    } else if (a == "--data-dir") {
      o->data_dir = argv[++i];
    } else if (a == "--pause-min-ms") {
      u32(&o->pause_min_ms);
    } else if (a == "--pause-max-ms") {
      u32(&o->pause_max_ms);
    } else if (a == "--seed") {
      o->seed = std::strtoull(argv[++i], nullptr, 10);
    } else {
      return false;
    }
  }
  return !o->group.empty() && !o->shm_dir.empty() && !o->data_dir.empty() &&
         o->pause_min_ms <= o->pause_max_ms;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  if (!parse_args(argc, argv, &o)) {
    std::fprintf(stderr,
                 "usage: lockset_worker --node N --group G --shm-dir D --data-dir F "
                 "[--bootstrap] [--slots S] [--pause-min-ms A --pause-max-ms B] [--seed X]\n");
    return 2;
  }
  struct sigaction sa {};
  sa.sa_handler = [](int) { g_stop.store(true); };
  sa.sa_flags = SA_RESTART;
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  return Worker(o).run();
}
