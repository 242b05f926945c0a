// The shm transport between real processes: several shm_member processes share a group,
// one may be slow, one may be killed with SIGKILL; and shm_dynamic_member processes join
// late, die and are replaced while the group runs. The paths of the shm_member and
// shm_dynamic_member binaries come as the first two arguments (meson passes them).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/child_process.h"
#include "transport/shm/shm_transport.h"

namespace cohort::transport::shm {
namespace {

std::string g_member_binary;
std::string g_dynamic_member_binary;
using Clock = std::chrono::steady_clock;

// A fresh runtime directory per test, removed at the end.
struct TempDir {
  std::string path = "/dev/shm/cohort-test-" + std::to_string(getpid()) + "-" +
                     ::testing::UnitTest::GetInstance()->current_test_info()->name();
  ~TempDir() { std::filesystem::remove_all(path); }
};

using testing::exited_ok;

struct Member : testing::ChildProcess {
  explicit Member(const std::vector<std::string>& args) : ChildProcess(g_member_binary, args) {}
};

std::vector<std::string> member_args(const TempDir& dir, int self, int members, uint64_t records,
                                     uint64_t log_bytes, uint64_t slow_ns = 0, int writers = 32) {
  return {"--dir",       dir.path,
          "--writers",   std::to_string(writers),
          "--group",     "g",
          "--self",      std::to_string(self),
          "--members",   std::to_string(members),
          "--records",   std::to_string(records),
          "--log-bytes", std::to_string(log_bytes),
          "--slow-ns",   std::to_string(slow_ns)};
}

// Three processes; every member writes a million records and reads both others', member 2
// slowly, through 256 KiB logs so that the writers meet back pressure all the time.
TEST(ShmProcesses, ThreeMembersEveryRecordOnceInOrderWithASlowReader) {
  TempDir dir;
  constexpr uint64_t kRecords = 1'000'000;
  const auto t0 = Clock::now();
  Member m0(member_args(dir, 0, 3, kRecords, 256 << 10));
  Member m1(member_args(dir, 1, 3, kRecords, 256 << 10));
  Member m2(member_args(dir, 2, 3, kRecords, 256 << 10, /*slow_ns=*/300));
  Member* all[] = {&m0, &m1, &m2};
  for (Member* m : all) {
    const std::string out = m->all_output();
    std::printf("%s", out.c_str());
    EXPECT_TRUE(exited_ok(m->wait())) << out;
    EXPECT_NE(out.find("done wrote 1000000 errors 0"), std::string::npos) << out;
    EXPECT_EQ(out.find("gone"), std::string::npos) << out;
  }
  std::printf("3 members x %lu records in %.2f s\n", static_cast<unsigned long>(kRecords),
              std::chrono::duration<double>(Clock::now() - t0).count());
  EXPECT_FALSE(std::filesystem::exists(dir.path + "/g")) << "members left files behind";
}

// A reader killed with SIGKILL must not hold the writer back forever: once it is declared
// gone, its read position stops counting.
TEST(ShmProcesses, KilledReaderDoesNotBlockTheWriter) {
  TempDir dir;
  constexpr uint64_t kRecords = 300'000;
  // Only member 0 writes. Member 1 reads very slowly: it holds the writer back until killed.
  Member writer(member_args(dir, 0, 3, kRecords, 64 << 10, 0, /*writers=*/1));
  Member victim(member_args(dir, 1, 3, kRecords, 64 << 10, /*slow_ns=*/200'000, 1));
  Member reader(member_args(dir, 2, 3, kRecords, 64 << 10, 0, 1));
  ASSERT_NE(victim.read_until("attached"), "");
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  victim.kill_hard();
  EXPECT_TRUE(WIFSIGNALED(victim.wait()));

  const std::string w = writer.all_output();
  const std::string r = reader.all_output();
  std::printf("%s%s", w.c_str(), r.c_str());
  EXPECT_TRUE(exited_ok(writer.wait())) << w;
  EXPECT_TRUE(exited_ok(reader.wait())) << r;
  EXPECT_NE(w.find("declared member 1 gone"), std::string::npos) << w;
  EXPECT_NE(w.find("done wrote 300000 errors 0"), std::string::npos) << w;
  EXPECT_NE(r.find("read 300000 records from 0"), std::string::npos) << r;
  // The killed member's file stays until someone cleans it up; the next member to start in
  // this group removes it (see StaleFileOfAKilledMemberIsRemovedAtStart).
}

TEST(ShmProcesses, StaleFileOfAKilledMemberIsRemovedAtStart) {
  TempDir dir;
  {
    auto args = member_args(dir, 1, 2, 0, 64 << 10);
    args.push_back("--hold");
    Member holder(args);
    ASSERT_NE(holder.read_until("started"), "");
    // While its owner runs, the member id is taken.
    ShmOptions o{dir.path, "g", 1, 2, 64 << 10};
    auto dup = ShmTransport::create(o);
    ASSERT_FALSE(dup.ok());
    EXPECT_NE(dup.error().message().find("already running (pid " + std::to_string(holder.pid())),
              std::string::npos)
        << dup.error().message();
    holder.kill_hard();
    holder.wait();
  }
  ASSERT_TRUE(std::filesystem::exists(dir.path + "/g/m1.log"));  // left behind by SIGKILL
  ShmOptions o{dir.path, "g", 0, 2, 64 << 10};
  auto t = ShmTransport::create(o);
  ASSERT_TRUE(t.ok()) << t.error().message();
  EXPECT_FALSE(std::filesystem::exists(dir.path + "/g/m1.log"));
  EXPECT_FALSE(std::filesystem::exists(dir.path + "/g/m1.sock"));
}

// Members of a group whose membership changes (shm_dynamic_member), run until SIGTERM.
struct DynamicMember : testing::ChildProcess {
  DynamicMember(const TempDir& dir, int self, std::vector<std::string> extra = {})
      : ChildProcess(g_dynamic_member_binary, args(dir, self, std::move(extra))) {}
  static std::vector<std::string> args(const TempDir& dir, int self,
                                       std::vector<std::string> extra) {
    std::vector<std::string> a = {"--dir",       dir.path,
                                  "--group",     "g",
                                  "--self",      std::to_string(self),
                                  "--members",   "3",
                                  "--log-bytes", std::to_string(64 << 10)};
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  }
  // Waits for a line starting with `prefix` among those printed since `mark`.
  std::string await(size_t mark, const std::string& prefix) {
    return read_until_from(mark, prefix);
  }
  int stop() {
    kill(pid(), SIGTERM);
    return wait();
  }
};

// Kills every process it was given if the test has not finished in time, so a line that never
// comes ends the wait (read_until returns "") instead of hanging the suite.
class Watchdog {
 public:
  explicit Watchdog(std::chrono::seconds limit)
      : thread_([this, limit] {
          std::unique_lock lock(mu_);
          if (!cv_.wait_for(lock, limit, [this] { return done_; })) {
            std::fprintf(stderr, "watchdog: the test ran over %ld s; killing its members\n",
                         static_cast<long>(limit.count()));
            for (pid_t p : pids_) kill(p, SIGKILL);
          }
        }) {}
  ~Watchdog() {
    {
      std::lock_guard lock(mu_);
      done_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  void watch(pid_t pid) {
    std::lock_guard lock(mu_);
    pids_.push_back(pid);
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  std::vector<pid_t> pids_;
  std::thread thread_;
};

uint64_t number_after(const std::string& line, const std::string& word) {
  const size_t at = line.find(word);
  return at == std::string::npos ? ~uint64_t{0} : std::stoull(line.substr(at + word.size()));
}

// The membership of a group changes while it runs: members 0 and 1 run with slot 2 empty;
// member 2 starts late and both attach it; it is killed with SIGKILL; a new process takes slot
// 2 (removing the dead one's files, which 0 and 1 still have mapped); 0 and 1 re-attach to its
// new log and read its records from its beginning, it reads theirs, and control datagrams flow
// both ways again. Member 0 declares the dead one gone first; member 1 never declares anyone
// gone and notices the new process by its new file alone.
TEST(ShmProcesses, AMemberJoinsLateDiesAndIsReplacedWhileTheGroupRuns) {
  TempDir dir;
  DynamicMember m0(dir, 0);
  DynamicMember m1(dir, 1, {"--no-liveness"});
  Watchdog watchdog(std::chrono::seconds(120));
  watchdog.watch(m0.pid());
  watchdog.watch(m1.pid());
  ASSERT_NE(m0.await(0, "attached 1 gen 1"), "") << m0.all_output();
  ASSERT_NE(m1.await(0, "attached 0 gen 1"), "") << m1.all_output();
  // Slot 2 is empty: nobody listens there, and the others run regardless, past many laps of
  // their 64 KiB logs (1000 records of 16..255 bytes are more than two).
  ASSERT_NE(m0.await(0, "control to 2 no-peer"), "") << m0.all_output();
  ASSERT_NE(m0.await(0, "read 1000 records from 1 gen 1"), "") << m0.all_output();
  ASSERT_NE(m1.await(0, "read 1000 records from 0 gen 1"), "") << m1.all_output();

  size_t mark0 = m0.lines_read();
  size_t mark1 = m1.lines_read();
  std::string first_incarnation;
  {
    DynamicMember m2(dir, 2);
    watchdog.watch(m2.pid());
    const std::string started = m2.await(0, "started member 2");
    ASSERT_NE(started, "") << m2.all_output();
    first_incarnation = std::to_string(number_after(started, "incarnation "));
    // Both attach the late member, and it attaches both; everyone reads everyone.
    for (DynamicMember* m : {&m0, &m1}) {
      const size_t mark = m == &m0 ? mark0 : mark1;
      EXPECT_NE(m->await(mark, "attached 2 gen 1 incarnation " + first_incarnation), "");
      EXPECT_NE(m->await(mark, "read 1000 records from 2 gen 1"), "");
      EXPECT_NE(m->await(mark, "control from 2 incarnation " + first_incarnation), "");
    }
    ASSERT_NE(m0.await(mark0, "control to 2 ok"), "");
    for (int peer : {0, 1}) {
      const std::string p = std::to_string(peer);
      EXPECT_NE(m2.await(0, "attached " + p + " gen 1"), "") << m2.all_output();
      // It joined late: it reads each log from where that writer was when it attached it,
      // not from the beginning, which the writers have long overwritten.
      const std::string first = m2.await(0, "first record from " + p + " gen 1 is ");
      EXPECT_GT(number_after(first, " is "), 0u) << first;
      EXPECT_NE(m2.await(0, "read 1000 records from " + p + " gen 1"), "") << m2.all_output();
      EXPECT_NE(m2.await(0, "control from " + p), "") << m2.all_output();
    }
    mark0 = m0.lines_read();
    mark1 = m1.lines_read();
    m2.kill_hard();
    EXPECT_TRUE(WIFSIGNALED(m2.wait()));
    std::printf("%s", m2.all_output().c_str());
  }
  // Member 0 notices the death and declares it gone; nobody listens at slot 2 any more.
  ASSERT_NE(m0.await(mark0, "declared 2 gone"), "") << m0.all_output();
  ASSERT_NE(m0.await(mark0, "control to 2 no-peer"), "") << m0.all_output();
  ASSERT_TRUE(std::filesystem::exists(dir.path + "/g/m2.log"));  // left behind by SIGKILL

  // A new process takes slot 2: it removes the dead one's files (still mapped by 0 and 1) and
  // creates its own, a new inode with a new incarnation.
  mark0 = m0.lines_read();
  mark1 = m1.lines_read();
  DynamicMember m2b(dir, 2);
  watchdog.watch(m2b.pid());
  const std::string started = m2b.await(0, "started member 2");
  ASSERT_NE(started, "") << m2b.all_output();
  const std::string second_incarnation = std::to_string(number_after(started, "incarnation "));
  EXPECT_NE(second_incarnation, first_incarnation);
  for (DynamicMember* m : {&m0, &m1}) {
    const size_t mark = m == &m0 ? mark0 : mark1;
    EXPECT_NE(m->await(mark, "attached 2 gen 2 incarnation " + second_incarnation), "");
    // The new log is read from its beginning: the new process attached its peers before it
    // wrote anything.
    EXPECT_NE(m->await(mark, "first record from 2 gen 2 is 0"), "");
    EXPECT_NE(m->await(mark, "read 1000 records from 2 gen 2"), "");
    EXPECT_NE(m->await(mark, "control from 2 incarnation " + second_incarnation), "");
  }
  EXPECT_NE(m0.await(mark0, "control to 2 ok"), "");
  for (int peer : {0, 1}) {
    const std::string p = std::to_string(peer);
    EXPECT_NE(m2b.await(0, "attached " + p + " gen 1"), "");
    EXPECT_NE(m2b.await(0, "read 1000 records from " + p + " gen 1"), "");
    EXPECT_NE(m2b.await(0, "control from " + p), "");
  }
  // Member 1 kept counting the dead process as a reader until the new file replaced it: it
  // must be writing again, and member 2's new process reads it (checked above).

  for (DynamicMember* m : {&m0, &m1, &m2b}) {
    const int status = m->stop();
    const std::string out = m->all_output();
    std::printf("%s", out.c_str());
    EXPECT_TRUE(testing::exited_ok(status)) << out;
    EXPECT_NE(out.find("done errors 0"), std::string::npos) << out;
    EXPECT_EQ(out.find("error"), out.find("done errors 0") + 5) << out;  // no other error line
  }
  EXPECT_FALSE(std::filesystem::exists(dir.path + "/g")) << "members left files behind";
}

}  // namespace
}  // namespace cohort::transport::shm

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s PATH_TO_shm_member PATH_TO_shm_dynamic_member [gtest flags]\n",
                 argv[0]);
    return 2;
  }
  cohort::transport::shm::g_member_binary = argv[1];
  cohort::transport::shm::g_dynamic_member_binary = argv[2];
  return RUN_ALL_TESTS();
}
