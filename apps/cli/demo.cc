// `cohort demo`: the main job on the embedded default. Three member processes on this host over
// shared memory send a stream of totally ordered messages; one is killed with SIGKILL halfway;
// the view change is shown as it happens; a fourth process joins with state transfer; at the
// end the delivery logs are compared view by view and a summary of latency and throughput is
// printed. Everything it creates (processes, the shared-memory folder, logs) is gone after.
#include "apps/cli/demo.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "apps/cli/lines.h"

namespace cohort::cli {
namespace {

struct Child {
  size_t index = 0;  // in children_: one per process (a restarted slot is a new child)
  uint32_t node = 0;
  bool killed = false;
  bool left = false;  // it reported leaving (the end of its run)
  std::string uid;    // "nN.I", from its first line
  pid_t pid = -1;
  int out = -1;  // its stdout
  std::string buffer;
  std::vector<std::string> lines;
  bool exited = false;
  int status = 0;
  std::string log;
};

class Demo {
 public:
  explicit Demo(const DemoOptions& o) : o_(o) {}

  int run();

 private:
  Child* spawn(uint32_t node, bool bootstrap, uint64_t run_ms);
  void pump(uint64_t for_ns);
  void on_line(Child& c, const std::string& line);
  bool wait_for(uint64_t timeout_ns, const auto& done);
  double since(uint64_t t) const { return static_cast<double>(t - t0_) / 1e9; }
  bool compare_logs();
  void kill_one(uint32_t node);
  bool report_failovers();
  void summary();
  void cleanup();

  DemoOptions o_;
  std::string exe_;
  std::string dir_;
  uint64_t t0_ = 0;
  std::vector<Child> children_;
  uint64_t kill_ns_ = 0;
  uint32_t killed_ = ~0U;
  uint64_t detect_ns_ = 0;
  uint64_t install_ns_ = 0;
  uint64_t views_seen_ = 0;
  std::map<uint64_t, std::map<size_t, std::string>> view_states_;  // view -> child -> state
  std::map<size_t, std::string> restored_;                         // child -> restored state
  std::vector<double> failover_ms_;  // kill -> first survivor's install without the victim
  std::map<uint64_t, std::string> departures_;        // view -> departed list (first report)
  std::vector<std::pair<uint32_t, uint64_t>> kills_;  // (node, time)
  std::map<uint64_t, uint64_t> view_time_;            // view -> first install time
  uint64_t sending_ends_ns_ = 0;
  uint64_t joiner_view_ = 0;
  bool failed_ = false;
};

Child* Demo::spawn(uint32_t node, bool bootstrap, uint64_t run_ms) {
  int pipe_fds[2];
  if (pipe(pipe_fds) != 0) return nullptr;
  Child c;
  c.node = node;
  c.index = children_.size();
  c.log = dir_ + "/deliveries-" + std::to_string(c.index) + "-n" + std::to_string(node) + ".log";
  std::vector<std::string> args = {exe_,         "node",
                                   "--group",    "demo",
                                   "--node",     std::to_string(node),
                                   "--slots",    "8",
                                   "--shm-dir",  dir_ + "/shm",
                                   "--rate",     std::to_string(o_.rate),
                                   "--run-ms",   std::to_string(run_ms),
                                   "--drain-ms", "1000",
                                   "--log",      c.log};
  if (bootstrap) args.push_back("--bootstrap");
  const pid_t pid = fork();
  if (pid == 0) {
    dup2(pipe_fds[1], STDOUT_FILENO);
    close(pipe_fds[0]);
    close(pipe_fds[1]);
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(exe_.c_str(), argv.data());
    _exit(127);
  }
  close(pipe_fds[1]);
  fcntl(pipe_fds[0], F_SETFL, O_NONBLOCK);
  c.pid = pid;
  c.out = pipe_fds[0];
  children_.push_back(std::move(c));
  std::printf("  +%6.3f s  started n%u (pid %d)%s\n", since(steady_ns()), node, pid,
              bootstrap ? ", founding the group" : ", joining");
  return &children_.back();
}

void Demo::on_line(Child& c, const std::string& line) {
  c.lines.push_back(line);
  if (line.rfind("event started ", 0) == 0) c.uid = field(line, "self");
  if (line.rfind("event left", 0) == 0) c.left = true;
  if (line.rfind("event view ", 0) == 0) {
    const uint64_t id = std::strtoull(line.c_str() + 11, nullptr, 10);
    const uint64_t t = field_u64(line, "t");
    view_states_[id][c.index] = field(line, "count") + "/" + field(line, "hash");
    if (departures_.count(id) == 0) {
      departures_[id] = field(line, "departed");
      view_time_[id] = t;
    }
    std::printf("  +%6.3f s  n%u installs view %" PRIu64 " {%s}", since(t), c.node, id,
                field(line, "members").c_str());
    if (field(line, "departed") != "-")
      std::printf(" departed %s", field(line, "departed").c_str());
    if (field(line, "joined") != "-") std::printf(" joined %s", field(line, "joined").c_str());
    const std::string departed = "," + field(line, "departed");
    if (kill_ns_ != 0 && install_ns_ == 0 &&
        departed.find(",n" + std::to_string(killed_) + ".") != std::string::npos) {
      install_ns_ = t;
      std::printf("  <- %.1f ms after the kill", static_cast<double>(t - kill_ns_) / 1e6);
    }
    std::printf("\n");
  } else if (line.rfind("event peer_failed ", 0) == 0) {
    const uint64_t t = field_u64(line, "t");
    const std::string who = line.substr(18, line.find(' ', 18) - 18);
    const bool the_killed = kill_ns_ != 0 && who == "n" + std::to_string(killed_);
    if (the_killed && detect_ns_ == 0) detect_ns_ = t;
    std::printf("  +%6.3f s  n%u sees the process of %s end", since(t), c.node, who.c_str());
    if (the_killed)
      std::printf(" (%.1f ms after the kill)", static_cast<double>(t - kill_ns_) / 1e6);
    std::printf("\n");
  } else if (line.rfind("event restored ", 0) == 0) {
    restored_[c.index] = field(line, "count") + "/" + field(line, "hash");
    std::printf(
        "  +%6.3f s  n%u restores the group's state by state transfer: %s messages, hash %s\n",
        since(field_u64(line, "t")), c.node, field(line, "count").c_str(),
        field(line, "hash").c_str());
  } else if (line.rfind("event left", 0) == 0 || line.rfind("event removed", 0) == 0 ||
             line.rfind("event cut_off", 0) == 0) {
    std::printf("  +%6.3f s  n%u %s\n", since(field_u64(line, "t")), c.node, line.c_str() + 6);
  }
}

void Demo::pump(uint64_t for_ns) {
  const uint64_t end = steady_ns() + for_ns;
  do {
    std::vector<pollfd> fds;
    for (Child& c : children_) {
      if (c.out >= 0) fds.push_back(pollfd{c.out, POLLIN, 0});
    }
    const uint64_t now = steady_ns();
    const int wait_ms =
        now >= end ? 0 : static_cast<int>(std::min<uint64_t>((end - now) / 1'000'000 + 1, 50));
    if (!fds.empty()) ::poll(fds.data(), fds.size(), wait_ms);
    for (Child& c : children_) {
      if (!c.exited && waitpid(c.pid, &c.status, WNOHANG) == c.pid) c.exited = true;
      if (c.out < 0) continue;
      char buf[4096];
      for (;;) {
        const ssize_t n = read(c.out, buf, sizeof buf);
        if (n > 0) {
          c.buffer.append(buf, static_cast<size_t>(n));
          size_t nl;
          while ((nl = c.buffer.find('\n')) != std::string::npos) {
            const std::string line = c.buffer.substr(0, nl);
            c.buffer.erase(0, nl + 1);
            on_line(c, line);
          }
          continue;
        }
        if (n == 0) {
          close(c.out);
          c.out = -1;
        }
        break;
      }
    }
    std::fflush(stdout);
  } while (steady_ns() < end);
}

bool Demo::wait_for(uint64_t timeout_ns, const auto& done) {
  const uint64_t end = steady_ns() + timeout_ns;
  while (steady_ns() < end) {
    if (done()) return true;
    pump(20'000'000);
  }
  return done();
}

// Two members that both installed view v and the next view delivered the same messages in v,
// in the same order (DESIGN.md, invariants 2 and 3): compare the logs view by view.
bool Demo::compare_logs() {
  std::map<size_t, std::map<uint64_t, std::vector<std::string>>> logs;
  std::map<size_t, std::vector<uint64_t>> order;
  for (const Child& c : children_) {
    // `cohort node --log` lines (apps/cli/node_log.h): `<t_ns> <kind> key=value ...`; a
    // delivery is compared without its time.
    std::ifstream in(c.log);
    std::string line;
    uint64_t view = 0;
    while (std::getline(in, line)) {
      const size_t kind = line.find(' ');
      if (kind == std::string::npos) continue;
      if (line.compare(kind + 1, 5, "view ") == 0) {
        view = field_u64(line, "id");
        order[c.index].push_back(view);
        logs[c.index][view];
      } else if (line.compare(kind + 1, 8, "deliver ") == 0) {
        logs[c.index][view].push_back(line.substr(kind + 1));
      }
    }
  }
  uint64_t views_compared = 0, lines_compared = 0, mismatches = 0;
  for (auto& [a, la] : logs) {
    for (auto& [b, lb] : logs) {
      if (b <= a) continue;
      for (size_t i = 0; i + 1 < order[a].size(); ++i) {
        const uint64_t v = order[a][i];
        const uint64_t next = order[a][i + 1];
        const auto& ob = order[b];
        const auto it = std::find(ob.begin(), ob.end(), v);
        if (it == ob.end() || it + 1 == ob.end() || *(it + 1) != next) continue;
        ++views_compared;
        lines_compared += la[v].size();
        if (la[v] != lb[v]) {
          ++mismatches;
          std::printf("  MISMATCH: n%u and n%u delivered different messages in view %" PRIu64
                      " (%zu vs %zu)\n",
                      children_[a].node, children_[b].node, v, la[v].size(), lb[v].size());
        }
      }
    }
  }
  std::printf("  delivery logs: %" PRIu64 " (member pair, view) compared, %" PRIu64
              " deliveries each side, %" PRIu64 " different: %s\n",
              views_compared, lines_compared, mismatches,
              mismatches == 0 ? "identical" : "DIFFERENT");
  // State transfer: the joiner restored exactly the old members' state at its first view.
  bool transfer_ok = !restored_.empty();
  for (const auto& [node, state] : restored_) {
    for (const auto& [view, states] : view_states_) {
      const auto it = states.find(node);
      if (it == states.end()) continue;
      // The joiner's first view: compare with every old member's state at that boundary.
      for (const auto& [other, s] : states) {
        if (other == node) continue;
        if (s != state) {
          transfer_ok = false;
          std::printf("  MISMATCH: n%u restored %s, n%u entered view %" PRIu64 " with %s\n",
                      children_[node].node, state.c_str(), children_[other].node, view, s.c_str());
        }
      }
      break;
    }
  }
  std::printf(
      "  state transfer: %s\n",
      transfer_ok ? "the joiner restored exactly the members' state at its first view" : "FAILED");
  return mismatches == 0 && views_compared > 0 && transfer_ok;
}

// SIGKILLs the live process in slot `node` and waits (up to 5 s) for a survivor to install a
// view without it; install_ns_ stays 0 if none did.
void Demo::kill_one(uint32_t node) {
  for (Child& c : children_) {
    if (c.node != node || c.exited || c.killed) continue;
    killed_ = node;
    install_ns_ = 0;
    detect_ns_ = 0;
    c.killed = true;
    kill(c.pid, SIGKILL);
    kill_ns_ = steady_ns();
    kills_.emplace_back(node, kill_ns_);
    std::printf("  +%6.3f s  n%u killed with SIGKILL\n", since(kill_ns_), node);
    wait_for(5'000'000'000ULL, [&] { return install_ns_ != 0; });
    if (install_ns_ != 0) failover_ms_.push_back(static_cast<double>(install_ns_ - kill_ns_) / 1e6);
    return;
  }
}

// Detection plus view change over every kill, and any member that left a view without being
// killed or leaving at the end: a false suspicion.
bool Demo::report_failovers() {
  std::vector<double> v = failover_ms_;
  std::sort(v.begin(), v.end());
  auto pct = [&](double p) {
    return v.empty() ? 0.0
                     : v[std::min(v.size() - 1,
                                  static_cast<size_t>(p / 100.0 * static_cast<double>(v.size())))];
  };
  std::printf(
      "  failover (SIGKILL to the first survivor's install without it), %zu kills: "
      "p50 %.1f ms, p90 %.1f ms, max %.1f ms\n",
      v.size(), pct(50), pct(90), v.empty() ? 0.0 : v.back());
  uint64_t unexplained = 0;
  for (const auto& [view, departed] : departures_) {
    if (departed == "-") continue;
    size_t at = 0;
    while (at < departed.size()) {
      const size_t end = departed.find(',', at);
      const std::string who =
          departed.substr(at, end == std::string::npos ? std::string::npos : end - at);
      at = end == std::string::npos ? departed.size() : end + 1;
      bool explained = false;
      for (const Child& c : children_)
        explained = explained || (c.uid == who && (c.killed || c.left));
      if (!explained) {
        ++unexplained;
        std::printf("  FALSE SUSPICION: %s left view %" PRIu64 " without being killed\n",
                    who.c_str(), view);
      }
    }
  }
  std::printf("  false suspicions: %" PRIu64 "\n", unexplained);
  return unexplained == 0 && v.size() == kills_.size();
}

void Demo::summary() {
  std::printf("\n  %-6s %8s %10s %8s %9s %9s %9s %12s\n", "member", "sent", "delivered", "views",
              "p50 us", "p99 us", "p999 us", "deliver/s");
  for (const Child& c : children_) {
    std::string stats;
    for (const std::string& l : c.lines) {
      if (l.rfind("stats ", 0) == 0) stats = l;
    }
    if (stats.empty()) {
      if (c.killed) continue;  // counted below
      std::printf("  n%-5u %8s %10s %8s %9s %9s %9s %12s\n", c.node, "-", "-", "-", "-", "-", "-",
                  "(no stats)");
      continue;
    }
    const double secs = static_cast<double>(field_u64(stats, "elapsed_ms")) / 1e3;
    std::printf("  n%-5u %8" PRIu64 " %10" PRIu64 " %8" PRIu64 " %9.1f %9.1f %9.1f %12.0f\n",
                c.node, field_u64(stats, "sent"), field_u64(stats, "delivered"),
                field_u64(stats, "views"), field_f(stats, "p50_us"), field_f(stats, "p99_us"),
                field_f(stats, "p999_us"),
                secs > 0 ? static_cast<double>(field_u64(stats, "delivered")) / secs : 0.0);
  }
  size_t killed = 0;
  for (const Child& c : children_) killed += c.killed ? 1 : 0;
  std::printf("  (and %zu processes killed with SIGKILL, without stats)\n", killed);
  std::printf(
      "  (latency: a member's own total-order messages, send to delivery at the sender; "
      "idle policy backoff, shared machine, not a benchmark: see scripts/bench)\n");
}

void Demo::cleanup() {
  for (Child& c : children_) {
    if (!c.exited) {
      kill(c.pid, SIGKILL);
      waitpid(c.pid, &c.status, 0);
      c.exited = true;
    }
    if (c.out >= 0) close(c.out);
    c.out = -1;
  }
  std::error_code ec;
  if (!o_.keep) std::filesystem::remove_all(dir_, ec);
}

int Demo::run() {
  char exe[4096];
  const ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n <= 0) {
    std::fprintf(stderr, "cohort demo: cannot find its own executable (/proc/self/exe)\n");
    return 1;
  }
  exe_.assign(exe, static_cast<size_t>(n));
  dir_ = "/dev/shm/cohort-demo-" + std::to_string(getpid());
  // The members create dir_/shm themselves (mode 0700, shm transport); the logs go beside it.
  if (mkdir(dir_.c_str(), 0700) != 0) {
    std::fprintf(stderr, "cohort demo: cannot create %s: %s\n", dir_.c_str(), std::strerror(errno));
    return 1;
  }
  t0_ = steady_ns();
  std::printf("cohort demo: 3 members over shm (%s), %" PRIu64 " total-order messages/s each\n",
              dir_.c_str(), o_.rate);

  // With more kills the members send for longer: each round is a kill, a view change, a
  // restart and a join, about 0.7 s.
  const uint64_t extra_ms = (o_.kills - 1) * 700ULL;
  children_.reserve(8 + o_.kills);
  spawn(0, true, 9000 + extra_ms);
  pump(200'000'000);
  spawn(1, false, 8800 + extra_ms);
  spawn(2, false, 8800 + extra_ms);
  sending_ends_ns_ = steady_ns() + (8800 + extra_ms) * 1'000'000ULL;
  auto count_with = [&](uint32_t members) {
    uint32_t k = 0;
    for (const Child& c : children_) {
      for (const std::string& l : c.lines) {
        const std::string list = field(l, "members");
        if (l.rfind("event view ", 0) == 0 &&
            static_cast<uint32_t>(std::count(list.begin(), list.end(), ',')) + 1 == members) {
          ++k;
          break;
        }
      }
    }
    return k;
  };
  if (!wait_for(10'000'000'000ULL, [&] { return count_with(3) >= 3; })) {
    std::printf("cohort demo: FAILED: the three members did not form a view within 10 s\n");
    cleanup();
    return 1;
  }
  pump(3'000'000'000ULL);
  kill_one(2);
  if (install_ns_ == 0) {
    std::printf("cohort demo: FAILED: no view without n2 within 5 s of the kill\n");
    failed_ = true;
  } else {
    std::printf(
        "  view change: detection %.2f ms (the dead process's lock, seen by the "
        "survivors' engine), then the flush and install %.2f ms: %.2f ms in all\n",
        detect_ns_ != 0 ? static_cast<double>(detect_ns_ - kill_ns_) / 1e6 : 0.0,
        static_cast<double>(install_ns_ - (detect_ns_ != 0 ? detect_ns_ : kill_ns_)) / 1e6,
        static_cast<double>(install_ns_ - kill_ns_) / 1e6);
  }
  pump(1'000'000'000ULL);
  spawn(3, false, 3000 + extra_ms);
  // Further rounds: kill a member (rotating over the slots, the sequencer included), then start
  // a new process in its slot and wait until it is in the view.
  for (uint32_t round = 1; round < o_.kills && !failed_; ++round) {
    pump(300'000'000);
    static constexpr uint32_t kVictims[] = {0, 1, 3};  // n2's slot stays empty after the first
    const uint32_t victim = kVictims[round % 3];
    kill_one(victim);
    if (install_ns_ == 0) {
      std::printf("cohort demo: FAILED: no view without n%u within 5 s of the kill\n", victim);
      failed_ = true;
      break;
    }
    const size_t restarted = children_.size();
    spawn(victim, false, 1500 + (o_.kills - 1 - round) * 700ULL);
    if (!wait_for(5'000'000'000ULL, [&] {
          for (const std::string& l : children_[restarted].lines) {
            if (l.rfind("event view ", 0) == 0) return true;
          }
          return false;
        })) {
      std::printf("cohort demo: FAILED: the new n%u did not join within 5 s\n", victim);
      failed_ = true;
    }
  }
  wait_for(30'000'000'000ULL, [&] {
    for (const Child& c : children_) {
      if (!c.exited) return false;
    }
    return true;
  });
  pump(100'000'000);
  std::printf("\ncohort demo: checks\n");
  const bool logs_ok = compare_logs();
  const bool failover_ok = report_failovers();
  summary();
  bool exits_ok = true;
  for (const Child& c : children_) {
    if (!c.killed && (!c.exited || !WIFEXITED(c.status) || WEXITSTATUS(c.status) != 0)) {
      exits_ok = false;
      std::printf("  n%u did not exit cleanly (%s %d)\n", c.node,
                  !c.exited               ? "still running"
                  : WIFSIGNALED(c.status) ? "signal"
                                          : "exit status",
                  !c.exited               ? 0
                  : WIFSIGNALED(c.status) ? WTERMSIG(c.status)
                                          : WEXITSTATUS(c.status));
    }
  }
  cleanup();
  const bool clean = !std::filesystem::exists(dir_) || o_.keep;
  std::printf("  leftovers: %s\n",
              clean ? "no process and no shared-memory file left" : dir_.c_str());
  const bool ok = !failed_ && logs_ok && failover_ok && exits_ok && clean;
  std::printf("cohort demo: %s in %.1f s\n", ok ? "ok" : "FAILED", since(steady_ns()));
  return ok ? 0 : 1;
}

}  // namespace

int run_demo(const DemoOptions& options) {
  Demo demo(options);
  return demo.run();
}

}  // namespace cohort::cli
