// The group on real processes, judged by the simulator's checker (tests/integration/NOTES.md).
//
// A case is a list of member command lines (the arguments of `cohort node`; the harness fills
// in {group}, {shm} and {log}) and a fault schedule: starts, SIGKILL, SIGSTOP, SIGCONT, sleeps,
// and waits for what a member prints. So a case over another transport is the same schedule
// with other `cohort node` flags. Every member writes its log; when every process has ended,
// group_check.h merges the logs and runs tests/sim's Checker over them; its verdict is
// printed, and the case fails on any violation, then asserts its own liveness facts (the
// survivors installed a view without the killed member, the rejoined member is in the final
// view, ...). Nothing is left behind: each case has its own folder under /dev/shm (logs and
// the group's files), removed at the end with every process (set COHORT_KEEP_LOGS=1 to keep
// the folder of a failed case).
//
// The path of the `cohort` binary comes as the first argument (meson passes it), and "dpdk" as
// the second when the build has DPDK.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include "apps/cli/node_log.h"
#include "cohort/stats.h"
#include "tests/integration/child_process.h"
#include "tests/integration/group_check.h"
#include "tests/sim/sim_app.h"

namespace cohort::itest {
namespace {

std::string g_cohort_binary;
bool g_have_dpdk = false;

uint64_t now_ns() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

// --- a case ----------------------------------------------------------------------------------

struct MemberSpec {
  std::string name;               // for the timeline and the log's file name
  std::vector<std::string> args;  // `cohort node` arguments; {group} {shm} {log} filled in
  // Run before the binary, e.g. {"ip", "netns", "exec", "ns0"} (it execs the binary, so the
  // pid signalled is the member's own).
  std::vector<std::string> prefix;
};

struct Step {
  enum class Kind : uint8_t {
    kStart,
    kKill,
    kStop,
    kCont,
    kSleep,
    kWaitView,
    kWaitLine,
    kWaitStat
  };
  Kind kind = Kind::kSleep;
  size_t member = 0;
  uint64_t ms = 0;       // kSleep: how long; the waits: the timeout
  uint32_t members = 0;  // kWaitView: a view of exactly this many members
  std::string line;      // kWaitLine: a stdout line that starts with this
};

Step start(size_t m) {
  return {Step::Kind::kStart, m, 0, 0, {}};
}
Step kill_hard(size_t m) {
  return {Step::Kind::kKill, m, 0, 0, {}};
}
Step stop(size_t m) {
  return {Step::Kind::kStop, m, 0, 0, {}};
}
Step cont(size_t m) {
  return {Step::Kind::kCont, m, 0, 0, {}};
}
Step sleep_ms(uint64_t ms) {
  return {Step::Kind::kSleep, 0, ms, 0, {}};
}
// Waits count only what a member printed after the last start or fault, so "a view of 2
// members" after a kill is not an earlier view of 2 from before the third member joined.
Step wait_view(size_t m, uint32_t members, uint64_t timeout_ms = 10'000) {
  return {Step::Kind::kWaitView, m, timeout_ms, members, {}};
}
Step wait_line(size_t m, std::string prefix, uint64_t timeout_ms = 10'000) {
  return {Step::Kind::kWaitLine, m, timeout_ms, 0, std::move(prefix)};
}
// Runs `cohort stat` on the case's group until its table shows `members` members, each active
// in a view of that many, having sent and delivered, none having counted a malformed record or
// control message (the pages are copied every 10 ms, so an early table may show a member still
// joining).
Step wait_stat(uint32_t members, uint64_t timeout_ms = 10'000) {
  return {Step::Kind::kWaitStat, 0, timeout_ms, members, {}};
}

struct Case {
  std::vector<MemberSpec> members;
  std::vector<Step> schedule;
  uint64_t exit_timeout_ms = 20'000;  // after the schedule, for every process to end
};

// A member of group {group} on shm, sending `rate` messages/s of `mode` for `run_ms`, then
// delivering for 1 s and leaving; all with the default backoff idle policy and timeouts
// (heartbeat 10 ms, suspect 100 ms).
MemberSpec node(uint32_t node, bool bootstrap, uint64_t rate, const char* mode, uint64_t run_ms) {
  MemberSpec m;
  m.name = "n" + std::to_string(node);
  m.args = {"--group",    "{group}",
            "--node",     std::to_string(node),
            "--slots",    "8",
            "--shm-dir",  "{shm}",
            "--log",      "{log}",
            "--rate",     std::to_string(rate),
            "--mode",     mode,
            "--size",     "64",
            "--run-ms",   std::to_string(run_ms),
            "--drain-ms", "1000"};
  if (bootstrap) m.args.push_back("--bootstrap");
  // Like an application that wants to stay in: a member the group removes (a false suspicion
  // on a loaded machine, a SIGSTOP) joins again as a new incarnation.
  m.args.push_back("--rejoin");
  return m;
}

// The members send for their run_ms from the moment their view holds `members` members, not
// from their own start: a fault scheduled a second after the full view then comes mid-stream
// even when a start took seconds on a loaded machine.
std::vector<MemberSpec> sending_once(uint32_t members, std::vector<MemberSpec> specs) {
  for (MemberSpec& m : specs)
    m.args.insert(m.args.end(), {"--wait-members", std::to_string(members)});
  return specs;
}

// --- running it ------------------------------------------------------------------------------

struct Proc {
  pid_t pid = -1;
  int out = -1;
  bool exited = false;
  int status = 0;
  std::string buffer;
  std::vector<std::string> lines;
  size_t mark = 0;  // waits look at lines from here on
  std::string log;
  uint64_t killed_ns = 0;
  uint64_t stopped_ns = 0, continued_ns = 0;
};

class CaseRun {
 public:
  explicit CaseRun(Case c) : case_(std::move(c)) {
    // Short names: the shm transport's socket paths must fit in 107 bytes.
    static int cases = 0;
    group_ = "g" + std::to_string(++cases);
    dir_ = "/dev/shm/cohort-it-" + std::to_string(getpid()) + "-" + group_;
    std::printf("  %s: folder %s\n",
                ::testing::UnitTest::GetInstance()->current_test_info()->name(), dir_.c_str());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    std::filesystem::permissions(dir_, std::filesystem::perms::owner_all);
    procs_.resize(case_.members.size());
    for (size_t i = 0; i < procs_.size(); ++i) {
      procs_[i].log = dir_ + "/" + case_.members[i].name + ".log";
    }
    t0_ = now_ns();
  }
  ~CaseRun() { cleanup(); }
  CaseRun(const CaseRun&) = delete;
  CaseRun& operator=(const CaseRun&) = delete;

  // Runs the schedule, then waits for every process to end. False (with the reason in
  // failure_) when a wait timed out or a process did not end in time.
  bool execute();
  CheckReport check();
  const Proc& proc(size_t i) const { return procs_[i]; }
  // The last table `cohort stat` printed in a wait_stat step.
  const std::string& stat_output() const { return stat_output_; }
  double seconds() const { return static_cast<double>(now_ns() - t0_) / 1e9; }
  const std::string& failure() const { return failure_; }
  // Kills what still runs, removes the folder; true when nothing is left.
  bool cleanup();

 private:
  void spawn(size_t i);
  void signal(size_t i, int sig, const char* what);
  void pump(uint64_t for_ns);
  void on_line(size_t i, const std::string& line);
  bool wait_until(uint64_t timeout_ms, const auto& done);
  bool stat_shows(uint32_t members);
  double since(uint64_t t) const { return static_cast<double>(t - t0_) / 1e9; }

  Case case_;
  std::string group_, dir_;
  std::vector<Proc> procs_;
  uint64_t t0_ = 0;
  std::string failure_;
  std::string stat_output_;
  bool cleaned_ = false;
};

void CaseRun::spawn(size_t i) {
  Proc& p = procs_[i];
  std::vector<std::string> args = case_.members[i].prefix;
  args.push_back(g_cohort_binary);
  args.push_back("node");
  for (std::string a : case_.members[i].args) {
    if (a == "{group}") a = group_;
    if (a == "{shm}") a = dir_ + "/shm";
    if (a == "{log}") a = p.log;
    args.push_back(a);
  }
  int fds[2];
  ASSERT_EQ(pipe2(fds, O_CLOEXEC), 0);
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid == 0) {
    // If the test dies (a timeout), its members die with it rather than spin on.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);
    unsetenv("COHORT_KEEP_LOGS");  // the harness's own: cohort node reads COHORT_* as config
    dup2(fds[1], STDOUT_FILENO);
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execvp(argv[0], argv.data());
    _exit(127);
  }
  ASSERT_GT(pid, 0);
  close(fds[1]);
  fcntl(fds[0], F_SETFL, O_NONBLOCK);
  p.pid = pid;
  p.out = fds[0];
  std::printf("  +%6.3f s  %s started (pid %d)\n", since(now_ns()), case_.members[i].name.c_str(),
              pid);
}

void CaseRun::signal(size_t i, int sig, const char* what) {
  Proc& p = procs_[i];
  if (p.pid <= 0 || p.exited) {
    failure_ = case_.members[i].name + " is not running: cannot " + what + " it";
    return;
  }
  const uint64_t before = now_ns();  // the process runs again no earlier than this (SIGCONT)
  ::kill(p.pid, sig);
  const uint64_t t = now_ns();  // ... and nothing of its own after this (SIGKILL, SIGSTOP)
  if (sig == SIGKILL) p.killed_ns = t;
  if (sig == SIGSTOP) p.stopped_ns = t;
  if (sig == SIGCONT) p.continued_ns = before;
  std::printf("  +%6.3f s  %s: %s\n", since(t), case_.members[i].name.c_str(), what);
}

void CaseRun::on_line(size_t i, const std::string& line) {
  Proc& p = procs_[i];
  p.lines.push_back(line);
  if (line.rfind("event ", 0) == 0 || line.rfind("state ", 0) == 0) {
    std::printf("  +%6.3f s  %s %s\n", since(now_ns()), case_.members[i].name.c_str(),
                line.c_str() + (line[0] == 'e' ? 6 : 0));
  }
}

void CaseRun::pump(uint64_t for_ns) {
  const uint64_t end = now_ns() + for_ns;
  do {
    std::vector<pollfd> fds;
    for (const Proc& p : procs_) {
      if (p.out >= 0) fds.push_back(pollfd{p.out, POLLIN, 0});
    }
    const uint64_t now = now_ns();
    const int wait_ms =
        now >= end ? 0 : static_cast<int>(std::min<uint64_t>((end - now) / 1'000'000 + 1, 20));
    if (!fds.empty()) {
      ::poll(fds.data(), fds.size(), wait_ms);
    } else if (wait_ms > 0) {
      usleep(static_cast<useconds_t>(wait_ms) * 1000);
    }
    for (size_t i = 0; i < procs_.size(); ++i) {
      Proc& p = procs_[i];
      if (p.out >= 0) {
        char buf[8192];
        for (;;) {
          const ssize_t n = read(p.out, buf, sizeof buf);
          if (n > 0) {
            p.buffer.append(buf, static_cast<size_t>(n));
            size_t nl;
            while ((nl = p.buffer.find('\n')) != std::string::npos) {
              const std::string line = p.buffer.substr(0, nl);
              p.buffer.erase(0, nl + 1);
              on_line(i, line);
            }
            continue;
          }
          if (n == 0) {
            close(p.out);
            p.out = -1;
          }
          break;
        }
      }
      if (p.pid > 0 && !p.exited && waitpid(p.pid, &p.status, WNOHANG) == p.pid) p.exited = true;
    }
  } while (now_ns() < end);
}

bool CaseRun::wait_until(uint64_t timeout_ms, const auto& done) {
  const uint64_t end = now_ns() + timeout_ms * 1'000'000;
  while (now_ns() < end) {
    if (done()) return true;
    pump(10'000'000);
  }
  return done();
}

size_t members_in(const std::string& list) {
  return list.empty() || list == "-" ? 0 : 1 + std::count(list.begin(), list.end(), ',');
}

std::string field(const std::string& line, const std::string& key) {
  const std::string k = " " + key + "=";
  const size_t at = line.find(k);
  if (at == std::string::npos) return "";
  const size_t end = line.find(' ', at + k.size());
  return line.substr(at + k.size(),
                     end == std::string::npos ? std::string::npos : end - at - k.size());
}

// One `cohort stat` run: true when its table has `members` rows, each "active" in a view of
// `members` members, with sent and delivered above 0, and under each the line of drops and
// waits, with nothing malformed (a healthy group sends nothing a member cannot parse).
bool CaseRun::stat_shows(uint32_t members) {
  cohort::testing::ChildProcess stat(g_cohort_binary,
                                     {"stat", "--group", group_, "--shm-dir", dir_ + "/shm"});
  stat_output_ = stat.all_output();
  const int status = stat.wait();
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return false;
  uint32_t rows = 0, drop_lines = 0;
  std::istringstream lines(stat_output_);
  std::string line;
  while (std::getline(lines, line)) {
    std::istringstream words(line);
    std::string who, pid, state, view, list;
    uint64_t sent = 0, delivered = 0;
    words >> who;
    if (who == "drops:") {
      drop_lines += line.find("drops: records malformed 0, ") != std::string::npos &&
                    line.find("; control malformed 0, ") != std::string::npos &&
                    line.find("; waits: log backpressure ") != std::string::npos &&
                    line.find(", ticket ") != std::string::npos;
      continue;
    }
    if (who.rfind('n', 0) != 0 || !(words >> pid >> state >> view >> list >> sent >> delivered))
      continue;
    rows += state == "active" && members_in(list) == members && sent > 0 && delivered > 0;
  }
  return rows == members && drop_lines == members;
}

bool CaseRun::execute() {
  for (const Step& s : case_.schedule) {
    const std::string& who = s.member < case_.members.size() ? case_.members[s.member].name : "?";
    switch (s.kind) {
      case Step::Kind::kStart: spawn(s.member); break;
      case Step::Kind::kKill: signal(s.member, SIGKILL, "SIGKILL"); break;
      case Step::Kind::kStop: signal(s.member, SIGSTOP, "SIGSTOP"); break;
      case Step::Kind::kCont: signal(s.member, SIGCONT, "SIGCONT"); break;
      case Step::Kind::kSleep: pump(s.ms * 1'000'000); break;
      case Step::Kind::kWaitStat:
        if (!wait_until(s.ms, [&] { return stat_shows(s.members); })) {
          failure_ = "cohort stat did not show " + std::to_string(s.members) +
                     " active members, sending and delivering, with nothing malformed, within " +
                     std::to_string(s.ms) + " ms; it printed:\n" + stat_output_;
        }
        break;
      case Step::Kind::kWaitView:
      case Step::Kind::kWaitLine: {
        const Proc& p = procs_[s.member];
        const bool ok = wait_until(s.ms, [&] {
          for (size_t k = p.mark; k < p.lines.size(); ++k) {
            const std::string& l = p.lines[k];
            if (s.kind == Step::Kind::kWaitLine ? l.rfind(s.line, 0) == 0
                                                : l.rfind("event view ", 0) == 0 &&
                                                      members_in(field(l, "members")) == s.members)
              return true;
          }
          return false;
        });
        if (!ok) {
          failure_ =
              s.kind == Step::Kind::kWaitLine
                  ? who + " printed no '" + s.line + "' within " + std::to_string(s.ms) + " ms"
                  : who + " installed no view of " + std::to_string(s.members) +
                        " members within " + std::to_string(s.ms) + " ms";
        }
        break;
      }
    }
    if (!failure_.empty()) return false;
    if (s.kind == Step::Kind::kStart || s.kind == Step::Kind::kKill ||
        s.kind == Step::Kind::kStop || s.kind == Step::Kind::kCont) {
      for (Proc& p : procs_) p.mark = p.lines.size();
    }
  }
  const bool ended = wait_until(case_.exit_timeout_ms, [&] {
    for (const Proc& p : procs_) {
      if (p.pid > 0 && !p.exited) return false;
    }
    return true;
  });
  pump(0);
  if (!ended) {
    failure_ = "not every member ended within " + std::to_string(case_.exit_timeout_ms) + " ms";
    return false;
  }
  for (size_t i = 0; i < procs_.size(); ++i) {
    const Proc& p = procs_[i];
    if (p.pid > 0 && p.killed_ns == 0 && !(WIFEXITED(p.status) && WEXITSTATUS(p.status) == 0)) {
      failure_ =
          case_.members[i].name + " did not exit cleanly (status " + std::to_string(p.status) + ")";
      return false;
    }
  }
  return true;
}

CheckReport CaseRun::check() {
  std::vector<LogInput> logs;
  for (const Proc& p : procs_) logs.push_back({p.log, p.killed_ns});
  CheckReport report = check_logs(logs);
  for (const MemberFacts& m : report.members) {
    std::printf("  member n%u.%u (%s): %s, %zu views, %" PRIu64 " deliveries, %" PRIu64
                " sends%s%s\n",
                m.uid.node, m.uid.incarnation, case_.members[m.file].name.c_str(), end_name(m.end),
                m.views.size(), m.deliveries, m.sends_ok, m.restored ? ", restored" : "",
                m.cut_off ? ", was cut off" : "");
  }
  std::printf("%s\n", report.verdict().c_str());
  std::fflush(stdout);
  return report;
}

bool CaseRun::cleanup() {
  if (cleaned_) return true;
  cleaned_ = true;
  for (Proc& p : procs_) {
    if (p.pid > 0 && !p.exited) {
      ::kill(p.pid, SIGKILL);  // a stopped process dies of SIGKILL too
      waitpid(p.pid, &p.status, 0);
      p.exited = true;
    }
    if (p.out >= 0) close(p.out);
    p.out = -1;
  }
  const char* keep = std::getenv("COHORT_KEEP_LOGS");
  if (keep != nullptr && std::strcmp(keep, "1") == 0 && ::testing::Test::HasFailure()) {
    std::printf("  kept %s (COHORT_KEEP_LOGS=1)\n", dir_.c_str());
    return true;
  }
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
  return !std::filesystem::exists(dir_);
}

// Runs a case to its verdict: the schedule, the checker, and the harness's own promises (every
// process reaped, the folder gone).
CheckReport run_case(CaseRun& run) {
  const bool done = run.execute();
  EXPECT_TRUE(done) << run.failure();
  CheckReport report = run.check();
  EXPECT_TRUE(report.ok()) << report.verdict();
  EXPECT_TRUE(run.cleanup()) << "the case's folder could not be removed";
  std::printf("  case done in %.1f s\n", run.seconds());
  return report;
}

// The file's incarnations, oldest first.
std::vector<const MemberFacts*> incarnations(const CheckReport& r, size_t member) {
  return r.of_file(member);
}

// The incarnation of `member` that was running at `t_ns`, or null.
const MemberFacts* running_at(const CheckReport& r, size_t member, uint64_t t_ns) {
  for (const MemberFacts* m : r.of_file(member)) {
    if (m->start_ns <= t_ns && (m->end == MemberFacts::End::kNone || m->end_ns >= t_ns)) return m;
  }
  return nullptr;
}

bool contains(const View& v, Uid u) {
  return v.contains(u);
}

// The signature of the engine bug in tests/integration/NOTES.md ("Known engine bug"): another
// member's transport reported x's node failed (peer_failed) after that member had installed a
// view holding x, while x's process ran on; Member::peer_failed(node) then suspects x.
bool removed_by_stale_peer_failed(const CheckReport& r, const MemberFacts& x) {
  for (const MemberFacts& m : r.members) {
    if (m.uid.node == x.uid.node) continue;
    for (const auto& [t, node] : m.peer_failed) {
      if (node != x.uid.node || t < x.start_ns || (x.end_ns != 0 && t > x.end_ns)) continue;
      for (size_t k = 0; k < m.views.size(); ++k) {
        if (m.views_ns[k] < t && contains(m.views[k], x.uid)) return true;
      }
    }
  }
  return false;
}

struct Removals {
  uint32_t engine_bug = 0;  // removed_by_stale_peer_failed
  uint32_t suspected = 0;   // suspected without a fault: its process starved beyond suspect_us
};

// Every process the case did not kill or stop ends with an incarnation that left the group
// after it was in a view and delivered; an earlier incarnation can only have been removed
// (every member runs with --rejoin). Such removals had no fault behind them: each is printed,
// and counted as the engine bug's or as a plain false suspicion (a process starved beyond the
// 100 ms suspect timeout on a loaded machine, which the protocol allows).
Removals expect_clean_ends(const CheckReport& r, size_t processes,
                           std::vector<size_t> except = {}) {
  Removals out;
  for (size_t f = 0; f < processes; ++f) {
    if (std::find(except.begin(), except.end(), f) != except.end()) continue;
    const auto inc = r.of_file(f);
    EXPECT_FALSE(inc.empty()) << "process " << f << " logged no incarnation";
    if (inc.empty()) continue;
    for (size_t k = 0; k < inc.size(); ++k) {
      const MemberFacts& m = *inc[k];
      if (k + 1 < inc.size()) {
        EXPECT_EQ(m.end, MemberFacts::End::kRemoved)
            << "n" << m.uid.node << "." << m.uid.incarnation << " ended " << end_name(m.end);
        const bool bug = removed_by_stale_peer_failed(r, m);
        (bug ? out.engine_bug : out.suspected)++;
        std::printf("  note: n%u.%u was removed without a fault (%s); it rejoined\n", m.uid.node,
                    m.uid.incarnation,
                    bug ? "engine bug: a stale peer_failed for its node"
                        : "a false suspicion: not heard from for suspect_us");
        continue;
      }
      EXPECT_EQ(m.end, MemberFacts::End::kLeft)
          << "n" << m.uid.node << "." << m.uid.incarnation << " ended " << end_name(m.end);
      EXPECT_FALSE(m.views.empty()) << "n" << m.uid.node << " never installed a view";
      EXPECT_GT(m.deliveries, 0U) << "n" << m.uid.node << " delivered nothing";
    }
  }
  std::printf("  removals without a fault: %u (engine bug %u, false suspicions %u)\n",
              out.engine_bug + out.suspected, out.engine_bug, out.suspected);
  return out;
}

// One of the views installed holds exactly `n` members.
void expect_full_view(const CheckReport& r, uint32_t n) {
  bool seen = false;
  for (const auto& [id, v] : r.views) seen = seen || v.count == n;
  EXPECT_TRUE(seen) << "no view of " << n << " members was installed";
}

// --- the cases ---------------------------------------------------------------------------------

// The simulator's application state is what cohort node keeps, so the checker reads its
// snapshots as they are (apps/cli/node_log.h).
TEST(GroupCheck, node_state_is_the_simulators) {
  for (uint64_t id :
       {uint64_t{1}, uint64_t{42}, cli::message_id(3, 0x5eed1234, 17), ~uint64_t{0}}) {
    EXPECT_EQ(cli::message_hash(id), sim::message_hash(id)) << id;
  }
}

// The driver catches what it must: a delivery of bytes other than those sent, a message nobody
// sent, a delivery before any view; and it accepts a member that was killed mid-line.
TEST(GroupCheck, catches_forged_deliveries) {
  const std::string dir = "/dev/shm/cohort-itest-" + std::to_string(getpid()) + "-forged";
  std::filesystem::create_directories(dir);
  auto write = [&](const std::string& name, const std::string& text) {
    const std::string path = dir + "/" + name;
    FILE* f = std::fopen(path.c_str(), "w");
    std::fputs(text.c_str(), f);
    std::fclose(f);
    return path;
  };
  // n0.7's state when view 2 begins: its one message, as tests/sim's application counts it.
  const sim::AppState state{1, sim::message_hash(cli::message_id(0, 7, 0))};
  std::string snapshot_hex;
  for (std::byte b : sim::app_snapshot(state)) {
    char hex[3];
    std::snprintf(hex, sizeof hex, "%02x", static_cast<unsigned>(b));
    snapshot_hex += hex;
  }
  const std::string a = write("a.log",
                              "100 start self=n0.7 founder=1\n"
                              "101 view id=1 members=n0.7\n"
                              "110 send id=0.7.0 mode=total size=64 hash=00000000000000aa\n"
                              "111 sent id=0.7.0 result=ok\n"
                              "120 deliver view=1 gseq=1 from=n0.7 sseq=1 mode=total id=0.7.0 "
                              "hash=00000000000000aa\n"
                              "200 view id=2 members=n0.7,n1.9\n"
                              "300 deliver view=2 gseq=1 from=n1.9 sseq=1 mode=total id=1.9.0 "
                              "hash=00000000000000bb\n"
                              "400 leave\n410 left\n420 stop self=n0.7\n");
  const std::string b = write("b.log",
                              "150 start self=n1.9 founder=0\n"
                              "199 restore snap=" +
                                  snapshot_hex +
                                  "\n"
                                  "201 view id=2 members=n0.7,n1.9\n"
                                  "250 send id=1.9.0 mode=total size=64 hash=00000000000000cc\n"
                                  "251 sent id=1.9.0 result=ok\n"
                                  "260 deliver view=2 gseq=1 from=n1.9 sseq=1 mode=total id=1.9.1 "
                                  "hash=00000000000000cc\n"
                                  "270 deliver view=2 gs");  // torn by the SIGKILL
  const LogInput logs[] = {{a, 0}, {b, 500}};
  const CheckReport r = check_logs(logs);
  std::printf("%s\n", r.verdict().c_str());
  auto has = [&](const char* what) {
    for (const std::string& v : r.violations) {
      if (v.find(what) != std::string::npos) return true;
    }
    return false;
  };
  EXPECT_FALSE(r.ok());
  EXPECT_TRUE(has("payload bytes differ")) << r.verdict();
  EXPECT_TRUE(has("invented message")) << r.verdict();
  // ... and nothing about the torn line or the restore, which are fine.
  EXPECT_FALSE(has("not a cohort node log line")) << r.verdict();
  EXPECT_FALSE(has("state transfer")) << r.verdict();
  ASSERT_EQ(r.members.size(), 2U);
  EXPECT_EQ(r.members[1].end, MemberFacts::End::kKilled);
  std::filesystem::remove_all(dir);
}

// Three members over shm, one sending in each mode (total, safe, fifo); meanwhile `cohort stat`
// reads their stats pages and shows the three of them active in one view, sending and
// delivering.
TEST(GroupProcesses, three_members_shm) {
  CaseRun run({{node(0, true, 1000, "total", 3000), node(1, false, 1000, "safe", 3000),
                node(2, false, 1000, "fifo", 3000)},
               {start(0), wait_view(0, 1), start(1), start(2), wait_view(0, 3), wait_stat(3)}});
  const CheckReport r = run_case(run);
  std::printf("  cohort stat printed:\n%s", run.stat_output().c_str());
  expect_clean_ends(r, 3);
  expect_full_view(r, 3);
}

// A running member whose stats page is of another version (another build of cohort): `cohort
// stat` says so and what to do, rather than show no member at all without a word.
TEST(GroupProcesses, cohort_stat_names_a_page_of_another_version) {
  const std::string dir = "/dev/shm/cohort-it-" + std::to_string(getpid()) + "-pv";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir + "/pv");
  {
    StatsPage page{};
    page.magic = kStatsMagic;
    page.version = kStatsVersion - 1;
    page.pid = static_cast<int32_t>(getpid());  // alive: this test's process
    std::FILE* f = std::fopen((dir + "/pv/stats-m0.page").c_str(), "wb");
    ASSERT_NE(f, nullptr);
    std::vector<char> bytes(4096, 0);
    std::memcpy(bytes.data(), &page, sizeof page);
    ASSERT_EQ(std::fwrite(bytes.data(), 1, bytes.size(), f), bytes.size());
    std::fclose(f);
  }
  cohort::testing::ChildProcess stat(g_cohort_binary, {"stat", "--group", "pv", "--shm-dir", dir});
  const std::string out = stat.all_output();
  const int status = stat.wait();
  std::printf("%s", out.c_str());
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << out;
  const std::string expected =
      "(pid " + std::to_string(getpid()) + " writes version " + std::to_string(kStatsVersion - 1) +
      " of its stats page, and this cohort reads version " + std::to_string(kStatsVersion) +
      ": run the cohort of the members' build)";
  EXPECT_NE(out.find(expected), std::string::npos) << out;
  std::filesystem::remove_all(dir);
}

// Five members over shm, all sending total-order messages.
TEST(GroupProcesses, five_members_shm) {
  Case c;
  for (uint32_t n = 0; n < 5; ++n) c.members.push_back(node(n, n == 0, 400, "total", 3000));
  c.schedule = {start(0), wait_view(0, 1),        start(1), start(2), start(3),
                start(4), wait_view(0, 5, 15'000)};
  CaseRun run(std::move(c));
  const CheckReport r = run_case(run);
  expect_clean_ends(r, 5);
  expect_full_view(r, 5);
}

// The survivors of a SIGKILL installed, after the kill, a view without the victim, and
// delivered in it or later (the stream went on). Returns the first such view.
View expect_failover(const CheckReport& r, const Proc& victim_proc, Uid victim,
                     std::vector<size_t> survivors) {
  View first_without;
  for (size_t s : survivors) {
    const MemberFacts* m = running_at(r, s, victim_proc.killed_ns);
    EXPECT_NE(m, nullptr) << "survivor " << s << " was not running at the kill";
    if (m == nullptr) continue;
    bool found = false;
    for (size_t k = 0; k < m->views.size(); ++k) {
      const View& v = m->views[k];
      if (contains(v, victim) || m->views_ns[k] < victim_proc.killed_ns) continue;
      found = true;
      std::printf("  n%u installed view %" PRIu64 " without n%u.%u %.1f ms after the SIGKILL\n",
                  m->uid.node, v.id, victim.node, victim.incarnation,
                  static_cast<double>(m->views_ns[k] - victim_proc.killed_ns) / 1e6);
      if (first_without.id == 0 || v.id < first_without.id) first_without = v;
      break;
    }
    EXPECT_TRUE(found) << "n" << m->uid.node << " installed no view without the killed n"
                       << victim.node << " after the kill";
    EXPECT_GE(m->last_delivery_view, first_without.id) << "no delivery after the failover";
  }
  return first_without;
}

// The member killed mid-stream is not the sequencer (n2 joined after the founder n0).
TEST(GroupProcesses, sigkill_member_midstream) {
  CaseRun run(
      {sending_once(3, {node(0, true, 1000, "total", 3500), node(1, false, 1000, "total", 3500),
                        node(2, false, 1000, "total", 3500)}),
       {start(0), wait_view(0, 1), start(1), start(2), wait_view(0, 3), wait_view(1, 3),
        wait_view(2, 3), sleep_ms(1000), kill_hard(2), wait_view(0, 2, 5000),
        wait_view(1, 2, 5000)}});
  const CheckReport r = run_case(run);
  const MemberFacts* victim = running_at(r, 2, run.proc(2).killed_ns);
  ASSERT_NE(victim, nullptr);
  EXPECT_EQ(victim->end, MemberFacts::End::kKilled);
  EXPECT_GT(victim->deliveries, 0U) << "the victim was not killed mid-stream";
  EXPECT_GT(victim->sends_ok, 0U) << "the victim was not killed mid-stream";
  expect_failover(r, run.proc(2), victim->uid, {0, 1});
  expect_clean_ends(r, 3, {2});
}

// The sequencer (rank 0 of the view: the oldest member, the founder n0) killed mid-stream, with
// every member ordering by `order` (tickets: the counter was in the dead sequencer's file).
void sequencer_killed_midstream(const char* order) {
  std::vector<MemberSpec> members =
      sending_once(3, {node(0, true, 1000, "total", 3500), node(1, false, 1000, "total", 3500),
                       node(2, false, 1000, "total", 3500)});
  for (MemberSpec& m : members) m.args.insert(m.args.end(), {"--order", order});
  CaseRun run({std::move(members),
               {start(0), wait_view(0, 1), start(1), start(2), wait_view(0, 3), wait_view(1, 3),
                wait_view(2, 3), sleep_ms(1000), kill_hard(0), wait_view(1, 2, 5000),
                wait_view(2, 2, 5000)}});
  const CheckReport r = run_case(run);
  const MemberFacts* seq = running_at(r, 0, run.proc(0).killed_ns);
  ASSERT_NE(seq, nullptr);
  EXPECT_EQ(seq->end, MemberFacts::End::kKilled);
  EXPECT_GT(seq->deliveries, 0U) << "the sequencer was not killed mid-stream";
  // It was the sequencer: rank 0 of the last view it installed, a view of all three.
  ASSERT_FALSE(seq->views.empty());
  const View& last = seq->views.back();
  EXPECT_EQ(last.count, 3U);
  EXPECT_TRUE(last.members[0] == seq->uid) << "the killed member was not rank 0";
  const View after = expect_failover(r, run.proc(0), seq->uid, {1, 2});
  // The new sequencer is the oldest survivor: rank 1 of the view the sequencer died in (n1 and
  // n2 start together, so either may be older).
  EXPECT_TRUE(after.count == 2 && after.members[0] == last.members[1])
      << "view " << after.id << " does not have the oldest survivor at rank 0";
  expect_clean_ends(r, 3, {0});
}

TEST(GroupProcesses, sigkill_sequencer_midstream) {
  sequencer_killed_midstream("auto");
}

// The same with the two-hop order (the sequencer orders the others' messages; the default on
// udp, dpdk and rdma), so that path keeps a real-process case over shm too.
TEST(GroupProcesses, sigkill_sequencer_midstream_sequencer_order) {
  sequencer_killed_midstream("sequencer");
}

// A member stopped (SIGSTOP) for ten suspect timeouts is removed; on SIGCONT it finds itself
// removed and, with --rejoin, joins again as a new incarnation that restores the group's state.
TEST(GroupProcesses, sigstop_beyond_timeout_then_sigcont) {
  CaseRun run(
      {sending_once(3, {node(0, true, 1000, "total", 5000), node(1, false, 1000, "total", 5000),
                        node(2, false, 1000, "total", 5000)}),
       {start(0), wait_view(0, 1), start(1), start(2), wait_view(0, 3), wait_view(1, 3),
        wait_view(2, 3), sleep_ms(800), stop(2), wait_view(0, 2, 5000), sleep_ms(1000), cont(2),
        wait_line(2, "event removed", 5000), wait_line(2, "event restored", 5000),
        wait_view(0, 3, 5000)}});
  const CheckReport r = run_case(run);
  const Proc& p = run.proc(2);
  const MemberFacts* stopped = running_at(r, 2, p.stopped_ns);
  ASSERT_NE(stopped, nullptr);
  const MemberFacts& old_inc = *stopped;
  EXPECT_EQ(old_inc.end, MemberFacts::End::kRemoved);
  EXPECT_GT(old_inc.end_ns, p.continued_ns) << "it learned of its removal only once running";
  // It never delivered in a view it was removed from: every delivery of the old incarnation is
  // in a view before the first view without it (the checker also holds it to its installs).
  ViewId removed_in = 0;
  for (const auto& [id, v] : r.views) {
    if (id > old_inc.views.front().id && !contains(v, old_inc.uid)) {
      removed_in = id;
      break;
    }
  }
  ASSERT_NE(removed_in, 0U) << "no view removed the stopped member";
  EXPECT_LT(old_inc.last_delivery_view, removed_in);
  for (const View& v : old_inc.views) EXPECT_LT(v.id, removed_in);
  // It came back: later incarnations of node 2, joiners with higher incarnations; the last one
  // restored the state, was in a view of all three, delivered and left like the others.
  const auto inc = incarnations(r, 2);
  ASSERT_FALSE(inc.empty());
  ASSERT_NE(inc.back(), stopped) << "the stopped member did not come back as a new incarnation";
  const MemberFacts& new_inc = *inc.back();
  uint32_t extra_bug = 0, extra_suspected = 0;
  bool after_stop = false;
  for (size_t k = 0; k < inc.size(); ++k) {
    if (inc[k] == stopped) {
      after_stop = true;
      continue;
    }
    if (!after_stop) continue;
    EXPECT_EQ(inc[k]->uid.node, old_inc.uid.node);
    EXPECT_GT(inc[k]->uid.incarnation, old_inc.uid.incarnation);
    EXPECT_FALSE(inc[k]->founder);
    if (inc[k] != &new_inc) {
      EXPECT_EQ(inc[k]->end, MemberFacts::End::kRemoved);
      (removed_by_stale_peer_failed(r, *inc[k]) ? extra_bug : extra_suspected)++;
    }
  }
  EXPECT_TRUE(new_inc.restored);
  for (size_t s : {0, 1}) {
    bool held = false;
    for (const MemberFacts* o : incarnations(r, s)) {
      for (const View& v : o->views) held = held || contains(v, new_inc.uid);
    }
    EXPECT_TRUE(held) << "n" << s << " never installed a view with the rejoined member";
  }
  ASSERT_FALSE(new_inc.views.empty());
  EXPECT_EQ(new_inc.views.front().count, 3U);
  EXPECT_GT(new_inc.deliveries, 0U);
  EXPECT_EQ(new_inc.end, MemberFacts::End::kLeft);
  expect_clean_ends(r, 3, {2});
  std::printf(
      "  the stopped member came back after %u more removals (engine bug %u, false "
      "suspicions %u)\n",
      extra_bug + extra_suspected, extra_bug, extra_suspected);
  // The engine once reported a slot failed after its new incarnation was installed, removing
  // the healthy rejoiner again (tests/integration/NOTES.md); the shm adapter now resyncs its
  // liveness scan at each install, so this must not happen.
  EXPECT_EQ(extra_bug, 0U) << "the rejoined member was removed again by a stale peer_failed";
}

// A fourth member joins while three send: it restores the state the others had at its first
// view (the checker compares) and then delivers with them.
TEST(GroupProcesses, joiner_under_load) {
  std::vector<MemberSpec> members =
      sending_once(3, {node(0, true, 1000, "total", 4000), node(1, false, 1000, "safe", 4000),
                       node(2, false, 1000, "total", 4000)});
  members.push_back(node(3, false, 1000, "total", 2000));
  CaseRun run({std::move(members),
               {start(0), wait_view(0, 1), start(1), start(2), wait_view(0, 3), sleep_ms(1000),
                start(3), wait_line(3, "event restored", 5000), wait_view(0, 4, 5000)}});
  const CheckReport r = run_case(run);
  const auto joiner = incarnations(r, 3);
  ASSERT_FALSE(joiner.empty());
  const MemberFacts& j = *joiner.front();
  EXPECT_TRUE(j.restored);
  ASSERT_FALSE(j.views.empty());
  EXPECT_EQ(j.views.front().count, 4U);
  EXPECT_GT(j.views.front().id, 2U);
  // Under load: every old member sent before and after the joiner restored, and delivered in
  // the joiner's first view or later.
  for (size_t s : {0, 1, 2}) {
    const MemberFacts* m = running_at(r, s, j.restore_ns);
    ASSERT_NE(m, nullptr) << "n" << s << " was not running when the joiner restored";
    EXPECT_LT(m->first_send_ns, j.restore_ns) << "n" << s;
    EXPECT_GT(m->last_send_ns, j.restore_ns) << "n" << s;
    EXPECT_GE(m->last_delivery_view, j.views.front().id) << "n" << s;
  }
  expect_clean_ends(r, 4);
}

// --- other transports ---------------------------------------------------------------------

// A member over a datagram transport: the shm member's flags (the stats page still goes to
// {shm}) plus the transport, every member's address, and no --rejoin (a new incarnation on
// udp/dpdk is not supported: membership/NOTES.md).
MemberSpec dgram_node(uint32_t n, bool bootstrap, uint64_t rate, uint64_t run_ms,
                      const std::string& transport, const std::string& peers,
                      std::vector<std::string> extra = {}) {
  MemberSpec m = node(n, bootstrap, rate, "total", run_ms);
  m.args.pop_back();  // --rejoin
  m.args.insert(m.args.end(), {"--transport", transport, "--peers", peers});
  // Without a new incarnation, a false suspicion (a member stalled past the timeout on a loaded
  // 2-core machine) would leave it out for good and fail the case: 300 ms rather than the
  // default 100 ms, unless the case sets its own. (The kill cases detect by this timeout here:
  // no transport signal on udp or dpdk.)
  if (std::find(extra.begin(), extra.end(), "--suspect-us") == extra.end()) {
    m.args.insert(m.args.end(), {"--suspect-us", "300000"});
  }
  m.args.insert(m.args.end(), extra.begin(), extra.end());
  return m;
}

// Loopback ports for a case: two per member (data, control), apart per test process.
std::string loopback_peers(uint32_t members, uint32_t case_no) {
  const uint32_t base = 20000 + (static_cast<uint32_t>(getpid()) % 2000) * 16 + case_no * 6;
  std::string peers;
  for (uint32_t n = 0; n < members; ++n) {
    if (n != 0) peers.push_back(',');
    peers.append("127.0.0.1:");
    peers.append(std::to_string(base + 2 * n));
  }
  return peers;
}

// Three members over udp on loopback, each dropping 2% of its datagrams (data and control
// alike) on purpose: NACK repair below the log, the protocol's repeats above it.
TEST(GroupProcesses, three_members_udp_with_loss) {
  const std::string peers = loopback_peers(3, 0);
  const std::vector<std::string> loss = {"--drop-rate", "0.02"};
  CaseRun run({{dgram_node(0, true, 1000, 3000, "udp", peers, loss),
                dgram_node(1, false, 1000, 3000, "udp", peers, loss),
                dgram_node(2, false, 1000, 3000, "udp", peers, loss)},
               {start(0), wait_view(0, 1), start(1), start(2), wait_view(0, 3)}});
  const CheckReport r = run_case(run);
  expect_clean_ends(r, 3);
  expect_full_view(r, 3);
}

// A minority partition: n2 is cut off from n0 and n1 (the fault decorator drops every datagram
// to and from them, data and control) 1.5 s in, for good. The majority installs a view
// without it and goes on; n2 reports that it is cut off and never installs a view of its own.
TEST(GroupProcesses, minority_partition_stops) {
  const std::string peers = loopback_peers(3, 1);
  CaseRun run(
      {{dgram_node(0, true, 1000, 4000, "udp", peers),
        dgram_node(1, false, 1000, 4000, "udp", peers),
        dgram_node(2, false, 1000, 4000, "udp", peers,
                   {"--cut-off", "0,1", "--cut-after-ms", "1500"})},
       {start(0), wait_view(0, 1), start(1), start(2), wait_view(0, 3), wait_view(2, 3),
        wait_view(0, 2, 5000), wait_view(1, 2, 5000), wait_line(2, "event cut_off", 5000)}});
  const CheckReport r = run_case(run);
  const auto minority = incarnations(r, 2);
  ASSERT_EQ(minority.size(), 1U);
  const MemberFacts& m = *minority.front();
  EXPECT_TRUE(m.cut_off) << "n2 did not report that it was cut off";
  ASSERT_FALSE(m.views.empty());
  // Every view n2 installed (the join's too) holds a member of the majority it was later cut
  // off from: it never formed a view of its own.
  const Uid founder = incarnations(r, 0).front()->uid;
  for (const View& v : m.views) {
    EXPECT_TRUE(contains(v, founder)) << "n2 installed view " << v.id << " without n0";
  }
  // The majority went on without it: the first view after n2's last, without n2, and with
  // deliveries in it or later.
  ViewId majority_view = 0;
  for (const auto& [id, v] : r.views) {
    if (majority_view == 0 && id > m.views.back().id && !contains(v, m.uid)) majority_view = id;
  }
  EXPECT_NE(majority_view, 0U) << "n0 and n1 installed no view without n2";
  for (size_t s : {0, 1}) {
    const auto inc = incarnations(r, s);
    ASSERT_FALSE(inc.empty());
    EXPECT_GE(inc.back()->last_delivery_view, majority_view) << "n" << s << " stopped delivering";
  }
  expect_clean_ends(r, 2);
}

// Network namespaces ns0..ns2, each with one end of a veth pair whose other end is on a bridge
// in a fourth namespace: three hosts on one Ethernet, for DPDK's net_af_packet. Created by the
// test, deleted (with the veths) in the destructor.
class BridgedNamespaces {
 public:
  explicit BridgedNamespaces(uint32_t hosts) {
    const std::string id = std::to_string(getpid() % 100000);
    bridge_ns_ = "cgb" + id;
    ok_ = sh("ip netns add " + bridge_ns_) &&
          sh("ip -n " + bridge_ns_ + " link add br0 type bridge") &&
          sh("ip -n " + bridge_ns_ + " link set br0 up");
    for (uint32_t i = 0; ok_ && i < hosts; ++i) {
      const std::string ns = "cgn" + std::to_string(i) + "x" + id;
      std::string a = "cga", b = "cgb";
      for (std::string* x : {&a, &b}) x->append(std::to_string(i) + "x" + id);
      namespaces_.push_back(ns);
      ifaces_.push_back(a);
      ok_ = sh("ip netns add " + ns) && sh("ip link add " + a + " type veth peer name " + b) &&
            sh("ip link set " + a + " netns " + ns) &&
            sh("ip link set " + b + " netns " + bridge_ns_) &&
            sh("ip -n " + ns + " link set " + a + " up") &&
            sh("ip -n " + bridge_ns_ + " link set " + b + " master br0") &&
            sh("ip -n " + bridge_ns_ + " link set " + b + " up");
    }
  }
  ~BridgedNamespaces() {
    for (const std::string& ns : namespaces_) sh("ip netns del " + ns + " 2>/dev/null");
    sh("ip netns del " + bridge_ns_ + " 2>/dev/null");
  }
  BridgedNamespaces(const BridgedNamespaces&) = delete;
  BridgedNamespaces& operator=(const BridgedNamespaces&) = delete;

  bool ok() const { return ok_; }
  const std::string& ns(size_t i) const { return namespaces_[i]; }
  const std::string& iface(size_t i) const { return ifaces_[i]; }

 private:
  static bool sh(const std::string& cmd) { return std::system(cmd.c_str()) == 0; }
  bool ok_ = false;
  std::string bridge_ns_;
  std::vector<std::string> namespaces_, ifaces_;
};

// Three members over dpdk: DPDK's net_af_packet on a veth in each member's own namespace,
// the veths bridged; addresses 10.77.0.1-3 exist only in DPDK (it answers ARP itself). One
// member is killed with SIGKILL mid-stream; the other two go on.
TEST(GroupProcesses, three_members_dpdk_af_packet) {
  if (!g_have_dpdk) GTEST_SKIP() << "this build has no DPDK (meson -Ddpdk=enabled)";
  if (geteuid() != 0) GTEST_SKIP() << "not root: DPDK's EAL and `ip netns` need root here";
  if (std::system("ip netns list >/dev/null 2>&1") != 0) {
    GTEST_SKIP() << "`ip netns` is not available (iproute2 missing or no namespace support)";
  }
  BridgedNamespaces net(3);
  ASSERT_TRUE(net.ok()) << "could not create the namespaces, veths and bridge";
  const std::string peers = "10.77.0.1:47100,10.77.0.2:47100,10.77.0.3:47100";
  Case c;
  for (uint32_t n = 0; n < 3; ++n) {
    const std::string prefix = "cg" + std::to_string(getpid()) + "n" + std::to_string(n);
    MemberSpec m =
        dgram_node(n, n == 0, 500, 3500, "dpdk", peers,
                   {"--dpdk-eal", "--no-huge --no-pci -m 256 --no-shconf --file-prefix " + prefix +
                                      " --vdev=net_af_packet0,iface=" + net.iface(n)});
    m.prefix = {"ip", "netns", "exec", net.ns(n)};
    c.members.push_back(m);
  }
  c.schedule = {start(0),
                wait_view(0, 1),
                start(1),
                start(2),
                wait_view(0, 3, 15'000),
                wait_view(1, 3),
                wait_view(2, 3),
                sleep_ms(1000),
                kill_hard(2),
                wait_view(0, 2, 5000),
                wait_view(1, 2, 5000)};
  CaseRun run(std::move(c));
  const CheckReport r = run_case(run);
  const MemberFacts* victim = running_at(r, 2, run.proc(2).killed_ns);
  ASSERT_NE(victim, nullptr);
  EXPECT_GT(victim->deliveries, 0U) << "the victim was not killed mid-stream";
  expect_failover(r, run.proc(2), victim->uid, {0, 1});
  expect_clean_ends(r, 3, {2});
}

// Three members over rdma, one SIGKILLed mid-stream. It runs inside the Soft-RoCE guest of
// scripts/rdma-vm (the rdma_guest test starts this binary there, filtered to this case); on the
// host there is no verbs device, so it skips.
TEST(GroupProcesses, three_members_rdma_in_guest) {
  const char* ip = std::getenv("RDMAVM_IP");
  if (std::getenv("RDMAVM") == nullptr || ip == nullptr) {
    GTEST_SKIP() << "runs inside the Soft-RoCE guest (the rdma_guest test), not on the host";
  }
  std::string peers;
  for (uint32_t n = 0; n < 3; ++n) {
    if (n != 0) peers.push_back(',');
    peers.append(ip);
    peers.append(":" + std::to_string(47100 + 2 * n));
  }
  // A 500 ms suspect timeout: the guest's vCPUs stall now and then (qemu on the host's 2
  // cpus), and a CI run once saw the survivors suspect the sequencer falsely with the default
  // 100 ms. The kill itself is seen at once through the peer's closed TCP connection
  // (transport/rdma/NOTES.md), so the failover this case checks does not wait for the timeout.
  // Each member sends for its 3.5 s once the view holds all three: a member's start in the
  // guest once took 3 s under load, and the founder, counting from its own start, finished and
  // left before the kill's view change (CI at 8310656).
  const std::vector<std::string> slow{"--suspect-us", "500000", "--wait-members", "3"};
  CaseRun run({{dgram_node(0, true, 300, 3500, "rdma", peers, slow),
                dgram_node(1, false, 300, 3500, "rdma", peers, slow),
                dgram_node(2, false, 300, 3500, "rdma", peers, slow)},
               {start(0), wait_view(0, 1), start(1), start(2), wait_view(0, 3, 15'000),
                wait_view(1, 3), wait_view(2, 3), sleep_ms(1000), kill_hard(2),
                wait_view(0, 2, 5000), wait_view(1, 2, 5000)}});
  const CheckReport r = run_case(run);
  const MemberFacts* victim = running_at(r, 2, run.proc(2).killed_ns);
  ASSERT_NE(victim, nullptr);
  EXPECT_GT(victim->deliveries, 0U) << "the victim was not killed mid-stream";
  expect_failover(r, run.proc(2), victim->uid, {0, 1});
  expect_clean_ends(r, 3, {2});
}

}  // namespace
}  // namespace cohort::itest

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s <path of the cohort binary> [gtest flags]\n", argv[0]);
    return 2;
  }
  cohort::itest::g_cohort_binary = argv[1];
  cohort::itest::g_have_dpdk = argc > 2 && std::strcmp(argv[2], "dpdk") == 0;
  return RUN_ALL_TESTS();
}
