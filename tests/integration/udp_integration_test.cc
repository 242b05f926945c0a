// The udp transport between real processes on 127.0.0.1, with loss, duplication, reordering
// and delay injected by the fault decorator (this machine has no `tc netem`), and one member
// killed with SIGKILL; then the transport's own checks, in process. The path of the udp_member
// binary comes as the first argument (meson passes it).
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/child_process.h"
#include "transport/udp/udp_transport.h"

namespace cohort::transport::udp {
namespace {

std::string g_member_binary;
using Clock = std::chrono::steady_clock;

// True when both port and port + 1 are free on 127.0.0.1 (a member needs both).
bool port_pair_free(int port) {
  for (int p = port; p <= port + 1; ++p) {
    const int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(static_cast<uint16_t>(p));
    const bool ok = bind(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a) == 0;
    close(fd);
    if (!ok) return false;
  }
  return true;
}

// `n` members' addresses on 127.0.0.1, each with a free port pair, starting from a base
// derived from the pid (so parallel test runs rarely collide) and skipping busy ports.
std::vector<std::string> free_addresses(int n) {
  std::vector<std::string> out;
  int port = 20000 + static_cast<int>((getpid() * 97) % 20000) * 2 % 40000;
  while (static_cast<int>(out.size()) < n && port < 65000) {
    if (port_pair_free(port)) out.push_back("127.0.0.1:" + std::to_string(port));
    port += 2;
  }
  EXPECT_EQ(static_cast<int>(out.size()), n) << "no free UDP ports on 127.0.0.1";
  return out;
}

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ",") + x;
  return s;
}

using testing::exited_ok;

struct Member : testing::ChildProcess {
  explicit Member(const std::vector<std::string>& args) : ChildProcess(g_member_binary, args) {}
};

std::vector<std::string> member_args(const std::vector<std::string>& addrs, int self,
                                     uint64_t records, const std::string& group, int writers,
                                     bool faults) {
  std::vector<std::string> a = {"--members", join(addrs), "--self", std::to_string(self), "--group",
                                group, "--records", std::to_string(records), "--writers",
                                std::to_string(writers), "--log-bytes", std::to_string(256 << 10),
                                // Under meson's timeout, not the member's 50 s default: a
                                // busy 2-core machine runs tests beside this one.
                                "--deadline-s", "240"};
  if (faults) {
    const std::vector<std::string> f = {
        "--loss", "0.05",    "--dup", "0.02",         "--reorder",
        "0.03",   "--delay", "0.02",  "--fault-seed", std::to_string(1000 + self)};
    a.insert(a.end(), f.begin(), f.end());
  }
  return a;
}

// The numbers of a member's "counts ..." line, added into `sum` (same order as printed).
void add_counts(const std::string& out, uint64_t sum[8]) {
  const auto at = out.find("counts ");
  if (at == std::string::npos) return;
  unsigned long v[8] = {};
  if (std::sscanf(out.c_str() + at,
                  "counts dropped %lu duplicated %lu reordered %lu delayed %lu nacks_sent %lu "
                  "nacks_served %lu repair_frames %lu duplicates_dropped %lu",
                  &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]) == 8) {
    for (int i = 0; i < 8; ++i) sum[i] += v[i];
  }
}

// Three processes on loopback, each writing 200k records (one in 50 up to 20 KB, over 15
// frames) and reading both others', with 5% loss, 2% duplication, 3% reordering and 2% delay
// on every datagram: every record arrives once, in order, intact.
TEST(UdpProcesses, ThreeMembersEveryRecordOnceInOrderUnderFaults) {
  constexpr uint64_t kRecords = 200'000;
  const auto addrs = free_addresses(3);
  ASSERT_EQ(addrs.size(), 3u);
  const auto t0 = Clock::now();
  Member m0(member_args(addrs, 0, kRecords, "g3", 3, true));
  Member m1(member_args(addrs, 1, kRecords, "g3", 3, true));
  Member m2(member_args(addrs, 2, kRecords, "g3", 3, true));
  Member* all[] = {&m0, &m1, &m2};
  uint64_t sum[8] = {};
  for (Member* m : all) {
    const std::string out = m->all_output();
    std::printf("%s", out.c_str());
    EXPECT_TRUE(exited_ok(m->wait())) << out;
    EXPECT_NE(out.find("done wrote 200000 errors 0"), std::string::npos) << out;
    EXPECT_EQ(out.find("gone"), std::string::npos) << out;
    add_counts(out, sum);
  }
  const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  std::printf(
      "udp summary: 3 members x %lu records (each member read %lu) in %.2f s; faults "
      "dropped %lu duplicated %lu reordered %lu delayed %lu; nacks sent %lu served %lu; "
      "repair frames %lu; duplicates dropped %lu\n",
      static_cast<unsigned long>(kRecords), static_cast<unsigned long>(2 * kRecords), seconds,
      static_cast<unsigned long>(sum[0]), static_cast<unsigned long>(sum[1]),
      static_cast<unsigned long>(sum[2]), static_cast<unsigned long>(sum[3]),
      static_cast<unsigned long>(sum[4]), static_cast<unsigned long>(sum[5]),
      static_cast<unsigned long>(sum[6]), static_cast<unsigned long>(sum[7]));
  EXPECT_GT(sum[0], 0u);  // the faults happened,
  EXPECT_GT(sum[5], 0u);  // and were repaired
}

// A reader killed with SIGKILL stops holding the writer back once its silence gets it
// declared gone; the other reader still gets everything.
TEST(UdpProcesses, KilledReaderIsDeclaredGoneAndStopsHoldingTheWriter) {
  constexpr uint64_t kRecords = 100'000;
  const auto addrs = free_addresses(3);
  ASSERT_EQ(addrs.size(), 3u);
  auto writer_args = member_args(addrs, 0, kRecords, "gk", 1, true);
  // Long enough that the healthy reader, started last and sharing 2 cores with other tests,
  // is heard from before it and never stalls this long (its being declared gone is for good).
  writer_args.insert(writer_args.end(), {"--silence-gone-ms", "3000"});
  Member writer(writer_args);
  // Member 1 reads very slowly (200 us a record): it holds the writer back until killed.
  auto victim_args = member_args(addrs, 1, kRecords, "gk", 1, true);
  victim_args.insert(victim_args.end(), {"--slow-ns", "200000"});
  Member victim(victim_args);
  Member reader(member_args(addrs, 2, kRecords, "gk", 1, true));
  ASSERT_NE(victim.read_until("started"), "");
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  victim.kill_hard();
  EXPECT_TRUE(WIFSIGNALED(victim.wait()));
  const std::string w = writer.all_output();
  const std::string r = reader.all_output();
  std::printf("%s%s", w.c_str(), r.c_str());
  EXPECT_TRUE(exited_ok(writer.wait())) << w;
  EXPECT_TRUE(exited_ok(reader.wait())) << r;
  EXPECT_NE(w.find("declared member 1 gone"), std::string::npos) << w;
  EXPECT_EQ(w.find("declared member 2 gone"), std::string::npos) << w;
  EXPECT_NE(w.find("done wrote 100000 errors 0"), std::string::npos) << w;
  EXPECT_NE(r.find("read 100000 records from 0"), std::string::npos) << r;
}

// ---- The transport in process: its errors and its control channel.

UdpOptions options_for(const std::vector<std::string>& addrs, MemberId self) {
  UdpOptions o;
  o.members = addrs;
  o.self = self;
  o.group = "unit";
  o.log_bytes = 64 << 10;
  return o;
}

TEST(UdpTransport, RefusesBadOptionsNamingTheFix) {
  auto expect_error = [](const UdpOptions& o, const std::string& part) {
    auto t = UdpTransport::create(o);
    ASSERT_FALSE(t.ok()) << part;
    EXPECT_NE(t.error().message().find(part), std::string::npos) << t.error().message();
  };
  const auto addrs = free_addresses(2);
  expect_error(options_for({"localhost:7000", addrs[1]}, 1),
               "udp: member 0 address 'localhost:7000' is not an IPv4 address:port");
  expect_error(options_for({"127.0.0.1:0", addrs[1]}, 1), "port 0 is not allowed");
  expect_error(options_for({"127.0.0.1:65535", addrs[1]}, 1), "the next port");
  expect_error(options_for({"127.0.0.1:7000", "127.0.0.1:7001"}, 0), "space the ports");
  expect_error(options_for({addrs[0], addrs[1]}, 2), "member 2 of 2");
  UdpOptions bad_group = options_for(addrs, 0);
  bad_group.group = "a/b";
  expect_error(bad_group, "group name 'a/b'");
  UdpOptions bad_log = options_for(addrs, 0);
  bad_log.log_bytes = 1000;
  expect_error(bad_log, "log size 1000");
  // A port in use: a running member already holds it.
  auto first = UdpTransport::create(options_for(addrs, 0));
  ASSERT_TRUE(first.ok()) << first.error().message();
  expect_error(options_for(addrs, 0), "is in use");
}

TEST(UdpTransport, TwoMembersExchangeRecordsAndControlDatagrams) {
  const auto addrs = free_addresses(2);
  auto a = UdpTransport::create(options_for(addrs, 0));
  auto b = UdpTransport::create(options_for(addrs, 1));
  ASSERT_TRUE(a.ok()) << a.error().message();
  ASSERT_TRUE(b.ok()) << b.error().message();
  UdpTransport& ta = **a;
  UdpTransport& tb = **b;
  // 3000 records from a to b, through a 64 KiB log: back pressure and wraps on real sockets.
  uint64_t written = 0, read = 0;
  RecordView v[32];
  const auto deadline = Clock::now() + std::chrono::seconds(20);
  while (read < 3000 && Clock::now() < deadline) {
    const auto now = static_cast<uint64_t>(Clock::now().time_since_epoch().count());
    for (; written < 3000; ++written) {
      Claim c;
      const auto size = static_cast<uint32_t>(100 + written % 3000);
      if (ta.publication().try_claim(size, kRecordUser, &c) != ClaimStatus::kOk) break;
      std::memset(c.data, static_cast<int>(written & 0xff), c.length);
      ta.publication().commit(c);
    }
    ta.flush(now);
    tb.poll(now);
    dgram::ReplicaSubscription* sub = tb.subscription(0);
    ASSERT_NE(sub, nullptr);
    const uint32_t n = sub->poll(v, 32);
    for (uint32_t i = 0; i < n; ++i, ++read) {
      ASSERT_EQ(v[i].payload.size(), 100 + read % 3000);
      ASSERT_EQ(v[i].payload[v[i].payload.size() - 1], std::byte(read & 0xff));
    }
    sub->release();
    tb.flush(now);
    ta.poll(now);
  }
  EXPECT_EQ(read, 3000u) << "a: " << ta.describe() << "\nb: " << tb.describe() << "\nwritten "
                         << written << " position " << ta.publication().position() << " sent "
                         << ta.log().sent_position() << " b received "
                         << tb.log().gaps(0).contiguous() << " known "
                         << tb.log().gaps(0).known_end() << " a knows b released "
                         << ta.log().peer_released(1);
  EXPECT_EQ(tb.subscription(1), nullptr);  // self
  EXPECT_EQ(ta.log().stats().tx_nacks + tb.log().stats().tx_nacks, 0u) << ta.describe();

  // The control channel, both ways, and a stranger's datagram dropped and counted.
  const std::byte hello[5] = {std::byte{'h'}, std::byte{'e'}, std::byte{'l'}, std::byte{'l'},
                              std::byte{'o'}};
  EXPECT_EQ(ta.send_control(1, hello), SendStatus::kOk);
  EXPECT_EQ(ta.send_control(0, hello), SendStatus::kNoPeer);  // self
  EXPECT_EQ(ta.send_control(7, hello), SendStatus::kNoPeer);
  std::vector<std::byte> big(kMaxControlBytes + 1);
  EXPECT_EQ(ta.send_control(1, big), SendStatus::kTooLarge);
  const int stranger = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_in to = *parse_endpoint(addrs[1]);
  to.sin_port = htons(static_cast<uint16_t>(ntohs(to.sin_port) + 1));
  sendto(stranger, "junk", 4, 0, reinterpret_cast<const sockaddr*>(&to), sizeof to);
  close(stranger);
  ControlMessage msgs[8];
  uint32_t got = 0;
  for (int i = 0; i < 200 && got == 0; ++i) {
    got = tb.poll_control(msgs, 8);
    if (got == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ASSERT_EQ(got, 1u);
  EXPECT_EQ(msgs[0].from, 0u);
  ASSERT_EQ(msgs[0].bytes.size(), 5u);
  EXPECT_EQ(std::memcmp(msgs[0].bytes.data(), hello, 5), 0);
  // The junk, sent after the hello, may not have been queued when the hello was read.
  for (int i = 0; i < 200 && tb.control_stats().decode.dropped() == 0; ++i) {
    EXPECT_EQ(tb.poll_control(msgs, 8), 0u);
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  EXPECT_EQ(tb.control_stats().decode.dropped(), 1u);  // the junk: not a frame
  EXPECT_EQ(tb.send_control(0, hello), SendStatus::kOk);
  for (int i = 0; i < 200 && (got = ta.poll_control(msgs, 8)) == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ASSERT_EQ(got, 1u);
  EXPECT_EQ(msgs[0].from, 1u);
}

}  // namespace
}  // namespace cohort::transport::udp

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s PATH_TO_udp_member [gtest flags]\n", argv[0]);
    return 2;
  }
  cohort::transport::udp::g_member_binary = argv[1];
  return RUN_ALL_TESTS();
}
