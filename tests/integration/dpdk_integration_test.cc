// The dpdk transport between real processes on virtual devices (no NIC here):
//   - two dpdk_members over net_memif (one role=server, one role=client, socket in a temp dir);
//   - two dpdk_members over net_af_packet on a veth pair whose ends sit in two network
//     namespaces this test creates and always removes;
//   - a dpdk_member in one namespace and a udp_member (the kernel's stack) in the other, over
//     the same kind of veth: the two transports put the same UDP payloads on the wire.
// Every record of every writer must arrive exactly once, in order, intact (the members check).
// Arguments (meson passes them): the dpdk_member binary, then the udp_member binary. Needs
// root (DPDK here, and `ip netns`); skips with the reason otherwise.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "tests/integration/child_process.h"

namespace cohort::transport::dpdk {
namespace {

std::string g_dpdk_member;
std::string g_udp_member;

using testing::exited_ok;

constexpr uint64_t kRecords = 50'000;
const std::string kRecordsText = std::to_string(kRecords);

int run(const std::string& command) {
  const int rc = std::system(command.c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

std::string ip_binary() {
  for (const char* p : {"/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"}) {
    if (access(p, X_OK) == 0) return p;
  }
  return "";
}

// Empty when the test can run; otherwise why not.
std::string why_not_root() {
  return geteuid() == 0 ? "" : "not root: DPDK's EAL and `ip netns` need root here";
}
std::string why_no_netns() {
  std::string why = why_not_root();
  if (!why.empty()) return why;
  if (ip_binary().empty() || run(ip_binary() + " netns list >/dev/null 2>&1") != 0) {
    return "`ip netns` is not available (iproute2 missing or no network namespace support)";
  }
  return "";
}

#define SKIP_UNLESS(why_expr)                     \
  do {                                            \
    const std::string why_ = (why_expr);          \
    if (!why_.empty()) {                          \
      std::printf("skipped: %s\n", why_.c_str()); \
      GTEST_SKIP() << why_;                       \
    }                                             \
  } while (0)

// EAL runtime directories and memif sockets of this test, removed at the end whatever happens.
class Scratch {
 public:
  Scratch() {
    char tmpl[] = "/tmp/cohort_dpdk_XXXXXX";
    const char* d = mkdtemp(tmpl);
    EXPECT_NE(d, nullptr);
    dir_ = d == nullptr ? "/tmp" : d;
  }
  ~Scratch() {
    for (const auto& p : prefixes_) run("rm -rf /var/run/dpdk/" + p);
    run("rm -rf " + dir_);
  }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;

  // EAL arguments for one process: its own --file-prefix, no hugepages, no PCI, one vdev.
  std::vector<std::string> eal(const std::string& name, const std::string& vdev) {
    const std::string prefix = "cohort_" + std::to_string(getpid()) + "_" + name;
    prefixes_.push_back(prefix);
    std::vector<std::string> a;
    for (const std::string& x :
         {std::string("--no-huge"), std::string("--no-pci"), std::string("-m"), std::string("256"),
          std::string("--no-shconf"), std::string("--file-prefix"), prefix, "--vdev=" + vdev}) {
      a.push_back("--eal");
      a.push_back(x);
    }
    return a;
  }
  const std::string& dir() const { return dir_; }

 private:
  std::string dir_;
  std::vector<std::string> prefixes_;
};

// Two network namespaces joined by a veth pair, deleted (with the veth) in the destructor, so
// also when an assertion ends the test early.
class VethNamespaces {
 public:
  VethNamespaces() {
    remove_stale();
    const std::string id = std::to_string(getpid());
    ns_a_ = "cohort_dpdk_a_" + id;
    ns_b_ = "cohort_dpdk_b_" + id;
    veth_a_ = "cda" + id;  // at most 15 characters
    veth_b_ = "cdb" + id;
    const std::string ip = ip_binary();
    ok_ = run(ip + " netns add " + ns_a_) == 0 && run(ip + " netns add " + ns_b_) == 0 &&
          run(ip + " link add " + veth_a_ + " type veth peer name " + veth_b_) == 0 &&
          run(ip + " link set " + veth_a_ + " netns " + ns_a_) == 0 &&
          run(ip + " link set " + veth_b_ + " netns " + ns_b_) == 0 &&
          run(ip + " -n " + ns_a_ + " link set " + veth_a_ + " up") == 0 &&
          run(ip + " -n " + ns_b_ + " link set " + veth_b_ + " up") == 0;
  }
  ~VethNamespaces() {
    const std::string ip = ip_binary();
    // Deleting a namespace deletes the veth end inside it, and with it the pair.
    run(ip + " netns del " + ns_a_ + " 2>/dev/null");
    run(ip + " netns del " + ns_b_ + " 2>/dev/null");
    run(ip + " link del " + veth_a_ + " 2>/dev/null");  // if it never left this namespace
  }
  VethNamespaces(const VethNamespaces&) = delete;
  VethNamespaces& operator=(const VethNamespaces&) = delete;

  bool ok() const { return ok_; }
  // Gives veth b a kernel address (10.x, inside namespace b only) for a udp member.
  bool address_b(const std::string& cidr) {
    return run(ip_binary() + " -n " + ns_b_ + " addr add " + cidr + " dev " + veth_b_) == 0;
  }
  const std::string& ns_a() const { return ns_a_; }
  const std::string& ns_b() const { return ns_b_; }
  const std::string& veth_a() const { return veth_a_; }
  const std::string& veth_b() const { return veth_b_; }

 private:
  // Namespaces of an earlier run that was killed before its destructor ran (its pid is gone).
  static void remove_stale() {
    FILE* list = popen((ip_binary() + " netns list 2>/dev/null").c_str(), "r");
    if (list == nullptr) return;
    char line[256];
    std::vector<std::string> stale;
    while (fgets(line, sizeof line, list) != nullptr) {
      const std::string name = std::string(line).substr(0, std::string(line).find_first_of(" \n"));
      const std::string prefix = name.rfind("cohort_dpdk_a_", 0) == 0   ? "cohort_dpdk_a_"
                                 : name.rfind("cohort_dpdk_b_", 0) == 0 ? "cohort_dpdk_b_"
                                                                        : "";
      if (prefix.empty()) continue;
      const long pid = std::strtol(name.c_str() + prefix.size(), nullptr, 10);
      if (pid > 0 && kill(static_cast<pid_t>(pid), 0) != 0) stale.push_back(name);
    }
    pclose(list);
    for (const auto& name : stale) run(ip_binary() + " netns del " + name + " 2>/dev/null");
  }

  std::string ns_a_, ns_b_, veth_a_, veth_b_;
  bool ok_ = false;
};

std::vector<std::string> member_args(const std::string& members, int self,
                                     const std::string& group) {
  return {
      "--members", members,      "--self",      std::to_string(self),      "--group",      group,
      "--records", kRecordsText, "--log-bytes", std::to_string(256 << 10), "--deadline-s", "40"};
}

std::vector<std::string> concat(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// A member started directly, or inside a namespace with `ip netns exec NS binary ...` (which
// execs the binary, so the child's pid is the member's).
struct Member : testing::ChildProcess {
  Member(const std::string& binary, const std::vector<std::string>& args)
      : ChildProcess(binary, args) {}
  Member(const std::string& ns, const std::string& binary, const std::vector<std::string>& args)
      : ChildProcess(ip_binary(), concat({"netns", "exec", ns, binary}, args)) {}
};

// Both members of a pair read all of the other's records, intact, and exit cleanly.
void expect_pair_delivered(Member* m0, Member* m1) {
  const int s1 = m1->wait();
  const int s0 = m0->wait();
  const std::string o0 = m0->all_output();
  const std::string o1 = m1->all_output();
  std::printf("member 0:\n%smember 1:\n%s", o0.c_str(), o1.c_str());
  EXPECT_TRUE(exited_ok(s0)) << o0;
  EXPECT_TRUE(exited_ok(s1)) << o1;
  EXPECT_NE(o0.find("read " + kRecordsText + " records from 1"), std::string::npos) << o0;
  EXPECT_NE(o1.find("read " + kRecordsText + " records from 0"), std::string::npos) << o1;
  EXPECT_NE(o0.find("done wrote " + kRecordsText + " errors 0"), std::string::npos) << o0;
  EXPECT_NE(o1.find("done wrote " + kRecordsText + " errors 0"), std::string::npos) << o1;
}

TEST(DpdkProcesses, TwoMembersOverMemif) {
  SKIP_UNLESS(why_not_root());
  Scratch scratch;
  const std::string sock = scratch.dir() + "/memif.sock";
  // Addresses on the memif exist only inside the two processes (127/8: never routed anywhere).
  const std::string members = "127.0.0.11:7000,127.0.0.12:7000";
  Member m0(g_dpdk_member, concat(member_args(members, 0, "dm"),
                                  scratch.eal("m0", "net_memif0,role=server,socket=" + sock)));
  Member m1(g_dpdk_member, concat(member_args(members, 1, "dm"),
                                  scratch.eal("m1", "net_memif0,role=client,socket=" + sock)));
  expect_pair_delivered(&m0, &m1);
}

TEST(DpdkProcesses, MissingPortIsRefusedListingThePortsFound) {
  SKIP_UNLESS(why_not_root());
  Scratch scratch;
  const std::string sock = scratch.dir() + "/memif.sock";
  Member m(g_dpdk_member,
           concat(concat(member_args("127.0.0.11:7000,127.0.0.12:7000", 0, "dx"), {"--port", "1"}),
                  scratch.eal("x0", "net_memif0,role=server,socket=" + sock)));
  const int status = m.wait();
  const std::string out = m.all_output();
  EXPECT_FALSE(exited_ok(status)) << out;
  EXPECT_NE(out.find("dpdk: port 1 not found after EAL init (ports: 0 net_memif0"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("check --vdev"), std::string::npos) << out;
}

TEST(DpdkProcesses, TwoMembersOverAfPacketOnAVethBetweenNamespaces) {
  SKIP_UNLESS(why_no_netns());
  Scratch scratch;
  VethNamespaces net;
  ASSERT_TRUE(net.ok()) << "could not create the namespaces and the veth pair";
  // No kernel address on either end: the addresses exist only in the two DPDK processes, and
  // the kernel's own traffic on the link (IPv6) is noise the ports count and drop.
  const std::string members = "10.201.0.1:7000,10.201.0.2:7000";
  Member m0(net.ns_a(), g_dpdk_member,
            concat(member_args(members, 0, "da"),
                   scratch.eal("a0", "net_af_packet0,iface=" + net.veth_a())));
  Member m1(net.ns_b(), g_dpdk_member,
            concat(member_args(members, 1, "da"),
                   scratch.eal("a1", "net_af_packet0,iface=" + net.veth_b())));
  expect_pair_delivered(&m0, &m1);
  // They found each other by ARP: each learns from the other's request, and a request for our
  // own address is answered, so at least one of them replied.
  const std::string o0 = m0.all_output();
  const std::string o1 = m1.all_output();
  EXPECT_TRUE(o0.find("arp_replies 0 ") == std::string::npos ||
              o1.find("arp_replies 0 ") == std::string::npos)
      << o0 << o1;
}

TEST(DpdkProcesses, DpdkMemberInteroperatesWithUdpMemberAcrossNamespaces) {
  SKIP_UNLESS(why_no_netns());
  ASSERT_FALSE(g_udp_member.empty()) << "pass the udp_member binary as the second argument";
  Scratch scratch;
  VethNamespaces net;
  ASSERT_TRUE(net.ok()) << "could not create the namespaces and the veth pair";
  // The udp member's address is the kernel's in namespace b; the dpdk member's only its own
  // (the kernel in namespace a has none, so it neither answers ARP nor sends unreachables).
  ASSERT_TRUE(net.address_b("10.202.0.2/24"));
  const std::string members = "10.202.0.1:7000,10.202.0.2:7000";
  Member m0(net.ns_a(), g_dpdk_member,
            concat(member_args(members, 0, "du"),
                   scratch.eal("u0", "net_af_packet0,iface=" + net.veth_a())));
  Member m1(net.ns_b(), g_udp_member, member_args(members, 1, "du"));
  expect_pair_delivered(&m0, &m1);
  // The dpdk member resolved the kernel's MAC by ARP (the kernel, in turn, learns ours from our
  // request, as Linux does, or from our reply to its own).
  const std::string o0 = m0.all_output();
  EXPECT_EQ(o0.find("rx_arp 0 "), std::string::npos) << o0;
}

}  // namespace
}  // namespace cohort::transport::dpdk

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s PATH_TO_dpdk_member [PATH_TO_udp_member] [gtest flags]\n",
                 argv[0]);
    return 2;
  }
  cohort::transport::dpdk::g_dpdk_member = argv[1];
  if (argc >= 3) cohort::transport::dpdk::g_udp_member = argv[2];
  return RUN_ALL_TESTS();
}
