// The shm transport between real processes: several shm_member processes share a group,
// one may be slow, one may be killed with SIGKILL. The path of the shm_member binary comes
// as the first argument (meson passes it).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/child_process.h"
#include "transport/shm/shm_transport.h"

namespace cohort::transport::shm {
namespace {

std::string g_member_binary;
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

}  // namespace
}  // namespace cohort::transport::shm

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s PATH_TO_shm_member [gtest flags]\n", argv[0]);
    return 2;
  }
  cohort::transport::shm::g_member_binary = argv[1];
  return RUN_ALL_TESTS();
}
