// The rdma transport over a real RDMA device: Soft-RoCE (rxe0) inside the guest that
// scripts/rdma-vm boots (tests/integration/rdma_guest_test.sh runs this binary there). Real
// processes (rdma_member) connected by RC queue pairs, one killed with SIGKILL; then the
// transport in process: two members in one thread, and the errors that name the fix. Without
// an RDMA device every case skips, saying so. The path of rdma_member is the first argument.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <linux/capability.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/child_process.h"
#include "transport/rdma/rdma_transport.h"

namespace cohort::transport::rdma {
namespace {

std::string g_member_binary;
using Clock = std::chrono::steady_clock;
using testing::exited_ok;

bool have_device() {
  std::error_code ec;
  return std::filesystem::exists("/sys/class/infiniband", ec) &&
         !std::filesystem::is_empty("/sys/class/infiniband", ec);
}

#define REQUIRE_DEVICE()                                                                   \
  do {                                                                                     \
    if (!have_device()) {                                                                  \
      GTEST_SKIP() << "no RDMA device here (/sys/class/infiniband is empty); run through " \
                      "scripts/rdma-vm, which meson test rdma_guest does";                 \
    }                                                                                      \
  } while (0)

// True when TCP port and UDP port + 1 are free on 127.0.0.1 (a member needs both).
bool ports_free(int port) {
  const int types[2] = {SOCK_STREAM, SOCK_DGRAM};
  for (int k = 0; k < 2; ++k) {
    const int fd = socket(AF_INET, types[k] | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(static_cast<uint16_t>(port + k));
    const bool ok = bind(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a) == 0;
    close(fd);
    if (!ok) return false;
  }
  return true;
}

std::vector<std::string> free_addresses(int n) {
  static int next = 0;
  std::vector<std::string> out;
  int port = 30000 + static_cast<int>((getpid() * 97) % 10000) * 2 % 20000 + next;
  while (static_cast<int>(out.size()) < n && port < 65000) {
    if (ports_free(port)) out.push_back("127.0.0.1:" + std::to_string(port));
    port += 2;
  }
  next += 2 * n + 2;
  EXPECT_EQ(static_cast<int>(out.size()), n) << "no free ports on 127.0.0.1";
  return out;
}

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ",") + x;
  return s;
}

struct Member : testing::ChildProcess {
  explicit Member(const std::vector<std::string>& args) : ChildProcess(g_member_binary, args) {}
};

std::vector<std::string> member_args(const std::vector<std::string>& addrs, int self,
                                     uint64_t records, const std::string& group, int writers) {
  return {"--members",    join(addrs),
          "--self",       std::to_string(self),
          "--group",      group,
          "--records",    std::to_string(records),
          "--writers",    std::to_string(writers),
          "--log-bytes",  std::to_string(256 << 10),
          "--deadline-s", "240"};
}

// Three processes, each writing 20k records (one in 50 up to 20 KB) into its log and reading
// both others' replicas, with control datagrams both ways: every record arrives once, in
// order, intact; 256 KiB logs wrap many times, so flow control through the read positions
// written back is exercised.
TEST(RdmaProcesses, ThreeMembersEveryRecordOnceInOrder) {
  REQUIRE_DEVICE();
  constexpr uint64_t kRecords = 20'000;
  const auto addrs = free_addresses(3);
  ASSERT_EQ(addrs.size(), 3u);
  const auto t0 = Clock::now();
  std::vector<std::unique_ptr<Member>> m;
  for (int i = 0; i < 3; ++i) {
    auto args = member_args(addrs, i, kRecords, "r3", 3);
    args.insert(args.end(), {"--control", "200"});
    m.push_back(std::make_unique<Member>(args));
  }
  for (auto& member : m) {
    const std::string out = member->all_output();
    std::printf("%s", out.c_str());
    EXPECT_TRUE(exited_ok(member->wait())) << out;
    EXPECT_NE(out.find("done wrote 20000 errors 0"), std::string::npos) << out;
    EXPECT_NE(out.find("read 20000 records from"), std::string::npos) << out;
    EXPECT_EQ(out.find("gone"), std::string::npos) << out;
    EXPECT_NE(out.find("received 200 of 200 bad 0 duplicate 0"), std::string::npos) << out;
  }
  std::printf("rdma summary: 3 members x %lu records in %.2f s\n",
              static_cast<unsigned long>(kRecords),
              std::chrono::duration<double>(Clock::now() - t0).count());
}

// Members that start one after the other, the highest id first: its connection attempts are
// refused until the lower ones listen, and it retries; the logs written before a peer came are
// held for it and read from the start.
TEST(RdmaProcesses, MembersStartInAnyOrder) {
  REQUIRE_DEVICE();
  const auto addrs = free_addresses(3);
  ASSERT_EQ(addrs.size(), 3u);
  std::vector<std::unique_ptr<Member>> m(3);
  for (int i = 2; i >= 0; --i) {
    m[static_cast<size_t>(i)] = std::make_unique<Member>(member_args(addrs, i, 2000, "ro", 3));
    ASSERT_NE(m[static_cast<size_t>(i)]->read_until("started"), "");
    if (i > 0) std::this_thread::sleep_for(std::chrono::milliseconds(700));
  }
  for (auto& member : m) {
    const std::string out = member->all_output();
    std::printf("%s", out.c_str());
    EXPECT_TRUE(exited_ok(member->wait())) << out;
    EXPECT_NE(out.find("done wrote 2000 errors 0"), std::string::npos) << out;
    EXPECT_NE(out.find("connects 2"), std::string::npos) << out;
  }
}

// A reader killed with SIGKILL: its TCP connection closes, its heartbeat stops, the writer
// declares it gone after the silence, and it stops holding the writer back; the other reader
// still gets everything.
TEST(RdmaProcesses, KilledReaderIsDeclaredGoneAndStopsHoldingTheWriter) {
  REQUIRE_DEVICE();
  constexpr uint64_t kRecords = 20'000;
  const auto addrs = free_addresses(3);
  ASSERT_EQ(addrs.size(), 3u);
  auto writer_args = member_args(addrs, 0, kRecords, "rk", 1);
  // Long enough that a busy guest never stalls this long: the TCP connection's end comes first.
  writer_args.insert(writer_args.end(), {"--silence-gone-ms", "3000"});
  Member writer(writer_args);
  // Member 1 reads very slowly (2 ms a record): it holds the writer back until killed.
  auto victim_args = member_args(addrs, 1, kRecords, "rk", 1);
  victim_args.insert(victim_args.end(), {"--slow-ns", "2000000"});
  Member victim(victim_args);
  Member reader(member_args(addrs, 2, kRecords, "rk", 1));
  ASSERT_NE(victim.read_until("started"), "");
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  victim.kill_hard();
  EXPECT_TRUE(WIFSIGNALED(victim.wait()));
  const std::string w = writer.all_output();
  const std::string r = reader.all_output();
  std::printf("%s%s", w.c_str(), r.c_str());
  EXPECT_TRUE(exited_ok(writer.wait())) << w;
  EXPECT_TRUE(exited_ok(reader.wait())) << r;
  EXPECT_NE(w.find("declared member 1 gone"), std::string::npos) << w;
  EXPECT_NE(w.find("done wrote 20000 errors 0"), std::string::npos) << w;
  // The TCP liveness signal saw the victim's end. (Not a count of disconnects: the other
  // reader may finish and close its connection before the writer prints its summary.)
  EXPECT_NE(w.find("member 1: its TCP connection closed"), std::string::npos) << w;
  EXPECT_NE(r.find("read 20000 records from 0"), std::string::npos) << r;
}

// A writer killed with SIGKILL mid-stream: the readers keep an intact, in-order prefix, see
// its connection end, declare it gone after the silence and finish.
TEST(RdmaProcesses, KilledWriterLeavesAnIntactPrefix) {
  REQUIRE_DEVICE();
  const auto addrs = free_addresses(3);
  ASSERT_EQ(addrs.size(), 3u);
  Member writer(member_args(addrs, 0, 10'000'000, "rw", 1));
  std::vector<std::unique_ptr<Member>> readers;
  for (int i = 1; i < 3; ++i) {
    auto args = member_args(addrs, i, 10'000'000, "rw", 1);
    args.insert(args.end(), {"--silence-gone-ms", "2000"});
    readers.push_back(std::make_unique<Member>(args));
  }
  ASSERT_NE(writer.read_until("started"), "");
  std::this_thread::sleep_for(std::chrono::milliseconds(3000));
  writer.kill_hard();
  EXPECT_TRUE(WIFSIGNALED(writer.wait()));
  for (auto& r : readers) {
    const std::string out = r->all_output();
    std::printf("%s", out.c_str());
    EXPECT_TRUE(exited_ok(r->wait())) << out;
    EXPECT_NE(out.find("declared member 0 gone"), std::string::npos) << out;
    EXPECT_NE(out.find("errors 0"), std::string::npos) << out;  // every record read was intact
    EXPECT_NE(out.find("peer 0 not alive at the end"), std::string::npos) << out;
    // It read some of the writer's records before the kill.
    EXPECT_EQ(out.find("declared member 0 gone after 0 of"), std::string::npos) << out;
  }
}

// ---- The transport in process.

RdmaOptions options_for(const std::vector<std::string>& addrs, MemberId self) {
  RdmaOptions o;
  o.members = addrs;
  o.self = self;
  o.group = "unit";
  o.log_bytes = 64 << 10;
  return o;
}

uint64_t now_ns() {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
          .count());
}

// Two members in one thread: they connect, 5000 records cross both ways (the 64 KiB logs wrap
// many times), control datagrams too, and teardown is clean.
TEST(RdmaTransport, TwoMembersInOneThread) {
  REQUIRE_DEVICE();
  const auto addrs = free_addresses(2);
  auto a = RdmaTransport::create(options_for(addrs, 0));
  ASSERT_TRUE(a.ok()) << a.error().message();
  auto b = RdmaTransport::create(options_for(addrs, 1));
  ASSERT_TRUE(b.ok()) << b.error().message();
  RdmaTransport* t[2] = {a->get(), b->get()};
  std::printf("device: %s\n", t[0]->device_description().c_str());
  constexpr uint64_t kRecords = 5000;
  uint64_t written[2] = {}, read[2] = {};
  const auto deadline = Clock::now() + std::chrono::seconds(60);
  while ((read[0] < kRecords || read[1] < kRecords) && Clock::now() < deadline) {
    for (int i = 0; i < 2; ++i) {
      const uint64_t now = now_ns();
      t[i]->poll(now);
      auto* sub = t[i]->subscription(1 - i);
      ASSERT_NE(sub, nullptr);
      RecordView v[32];
      const uint32_t n = sub->poll(v, 32);
      for (uint32_t k = 0; k < n; ++k) {
        ASSERT_EQ(v[k].payload.size(), 8 + read[i] % 100);
        uint64_t x;
        std::memcpy(&x, v[k].payload.data(), 8);
        ASSERT_EQ(x, read[i] * 2 + static_cast<uint64_t>(1 - i));
        ++read[i];
      }
      sub->release();
      ASSERT_EQ(sub->fault(), LogFault::kNone);
      for (int k = 0; k < 16 && written[i] < kRecords; ++k) {
        Claim c;
        const uint32_t size = static_cast<uint32_t>(8 + written[i] % 100);
        if (t[i]->publication().try_claim(size, kRecordUser, &c) != ClaimStatus::kOk) break;
        const uint64_t x = written[i] * 2 + static_cast<uint64_t>(i);
        std::memset(c.data, 0xab, size);
        std::memcpy(c.data, &x, 8);
        t[i]->publication().commit(c);
        ++written[i];
      }
      t[i]->flush(now);
    }
  }
  EXPECT_EQ(read[0], kRecords);
  EXPECT_EQ(read[1], kRecords);
  EXPECT_TRUE(t[0]->peer_alive(1));
  EXPECT_TRUE(t[1]->peer_alive(0));
  EXPECT_GT(t[0]->heartbeat_of(1), 0u);
  EXPECT_GT(t[0]->stats().signalled, 0u);
  EXPECT_LT(t[0]->stats().signalled, t[0]->stats().write_wrs);  // selective signalling
  EXPECT_EQ(t[0]->stats().completion_errors, 0u);
  // The control channel.
  const std::byte hello[5] = {std::byte{'h'}, std::byte{'e'}, std::byte{'l'}, std::byte{'l'},
                              std::byte{'o'}};
  ASSERT_EQ(t[0]->send_control(1, hello), SendStatus::kOk);
  ControlMessage msgs[4];
  uint32_t got = 0;
  for (int k = 0; k < 1000 && got == 0; ++k) {
    got = t[1]->poll_control(msgs, 4);
    if (got == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ASSERT_EQ(got, 1u);
  EXPECT_EQ(msgs[0].from, 0u);
  EXPECT_EQ(msgs[0].bytes.size(), 5u);
  std::printf("a: %s\nb: %s\n", t[0]->describe().c_str(), t[1]->describe().c_str());
  // b goes: a sees its TCP connection end at its next poll.
  b->reset();
  for (int k = 0; k < 200 && t[0]->peer_alive(1); ++k) {
    t[0]->poll(now_ns());
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  EXPECT_FALSE(t[0]->peer_alive(1));
  EXPECT_EQ(t[0]->take_failed(), 1u << 1);
  t[0]->declare_gone(1);
  EXPECT_EQ(t[0]->subscription(1), nullptr);
  EXPECT_FALSE(t[0]->publication().counts_reader(1));
}

void expect_error(const RdmaOptions& o, const std::string& part) {
  auto t = RdmaTransport::create(o);
  ASSERT_FALSE(t.ok()) << part;
  std::printf("error, as expected: %s\n", t.error().message().c_str());
  EXPECT_NE(t.error().message().find(part), std::string::npos) << t.error().message();
}

TEST(RdmaTransport, UnknownDeviceListsTheDevicesFound) {
  REQUIRE_DEVICE();
  auto o = options_for(free_addresses(2), 0);
  o.device = "mlx5_7";
  expect_error(o, "rdma: device 'mlx5_7' not found; devices found: ");
  expect_error(o, " port 1 ACTIVE (Ethernet)");
  o.device = "";
  o.port = 2;
  expect_error(o, "no port 2");
}

TEST(RdmaTransport, NoGidAtTheIndexListsTheGids) {
  REQUIRE_DEVICE();
  auto o = options_for(free_addresses(2), 0);
  o.gid_index = 77;
  expect_error(o, "has no GID at index 77; GIDs there: 0 fe80::");
  expect_error(o, "(RoCE v2)");
}

// The port goes down with its netdev (root only: the guest is): the error says so.
TEST(RdmaTransport, PortDownIsNamed) {
  REQUIRE_DEVICE();
  const char* netdev = std::getenv("RDMAVM_NETDEV");
  if (netdev == nullptr || geteuid() != 0) GTEST_SKIP() << "needs the guest's netdev and root";
  const std::string dev = netdev;
  ASSERT_EQ(std::system(("ip link set " + dev + " down").c_str()), 0);
  // rxe follows its netdev's state with a little delay.
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  auto o = options_for(free_addresses(2), 0);
  o.device = "rxe0";
  expect_error(o, "no active port on rxe0; found: rxe0 port 1 DOWN");
  o.port = 1;
  expect_error(o, "rxe0 port 1 is DOWN; bring its link up");
  ASSERT_EQ(std::system(("ip link set " + dev + " up").c_str()), 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
}

// Without CAP_IPC_LOCK (dropped in a child), a memlock limit of 64 KiB refuses the
// registration up front, naming the numbers and the fix.
TEST(RdmaTransport, MemlockTooLowNamesTheFix) {
  REQUIRE_DEVICE();
  const auto addrs = free_addresses(2);
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  const pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    __user_cap_header_struct h{_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct d[2] = {};
    syscall(SYS_capget, &h, d);
    d[0].effective &= ~(1u << CAP_IPC_LOCK);
    syscall(SYS_capset, &h, d);
    const rlimit r{64 << 10, 64 << 10};
    setrlimit(RLIMIT_MEMLOCK, &r);
    auto t = RdmaTransport::create(options_for(addrs, 0));
    const std::string m = t.ok() ? "created" : t.error().message();
    (void)!write(fds[1], m.data(), m.size());
    _exit(0);
  }
  close(fds[1]);
  std::string m;
  char buf[1024];
  for (ssize_t n; (n = read(fds[0], buf, sizeof buf)) > 0;) m.append(buf, static_cast<size_t>(n));
  close(fds[0]);
  waitpid(pid, nullptr, 0);
  std::printf("error, as expected: %s\n", m.c_str());
  EXPECT_NE(m.find("locked-memory limit (RLIMIT_MEMLOCK) is 64 KiB"), std::string::npos) << m;
  EXPECT_NE(m.find("ulimit -l unlimited"), std::string::npos) << m;
  EXPECT_NE(m.find("LimitMEMLOCK=infinity"), std::string::npos) << m;
}

}  // namespace
}  // namespace cohort::transport::rdma

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  if (argc < 2) {
    std::fprintf(stderr, "usage: integration_rdma RDMA_MEMBER_BINARY [gtest flags]\n");
    return 2;
  }
  cohort::transport::rdma::g_member_binary = argv[1];
  return RUN_ALL_TESTS();
}
