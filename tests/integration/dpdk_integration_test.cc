// The dpdk transport between real processes on virtual devices (no NIC here):
//   - two dpdk_members over net_memif (one role=server, one role=client, socket in a temp dir),
//     exchanging control datagrams both ways beside their logs;
//   - the same with the seeded fault decorator (FaultPort<DpdkPort>) dropping, duplicating,
//     reordering and delaying the data datagrams;
//   - two dpdk_members over net_af_packet on a veth pair whose ends sit in two network
//     namespaces this test creates and always removes;
//   - a dpdk_member in one namespace and a udp_member (the kernel's stack) in the other, over
//     the same kind of veth: the two transports put the same UDP payloads on the wire, on the
//     data port and on the control port (port + 1), IPv4 fragments included.
// Every record of every writer must arrive exactly once, in order, intact (the members check).
// Then the IPv4 reassembly of the control channel, in process (no EAL needed).
// Arguments (meson passes them): the dpdk_member binary, then the udp_member binary. The
// process tests need root (DPDK here, and `ip netns`); they skip with the reason otherwise.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <string>
#include <vector>

#include "tests/integration/child_process.h"
#include "transport/dpdk/ipv4_reassembly.h"

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

// Control datagrams each member of a pair sends the other (dgram_member.h: sizes from 16 bytes
// to kMaxControlBytes, a third of them in IPv4 fragments), one a millisecond.
constexpr uint64_t kControl = 120;
const std::vector<std::string> kControlArgs = {"--control", std::to_string(kControl)};

// What a member's "control from P ..." line says about the datagrams it got from P.
struct ControlReport {
  bool found = false;
  unsigned long received = 0, of = 0, bad = 0, duplicate = 0, reordered = 0, fragmented = 0,
                largest = 0;
};
ControlReport control_from(const std::string& out, int peer) {
  ControlReport r;
  const std::string key = "control from " + std::to_string(peer) + " ";
  const auto at = out.find(key);
  if (at == std::string::npos) return r;
  r.found = std::sscanf(out.c_str() + at + key.size(),
                        "received %lu of %lu bad %lu duplicate %lu reordered %lu fragmented %lu "
                        "largest %lu",
                        &r.received, &r.of, &r.bad, &r.duplicate, &r.reordered, &r.fragmented,
                        &r.largest) == 7;
  return r;
}

// `out` (a member's output) got control datagrams from `peer`, none damaged or misattributed:
// all of them when `all`, else at least half (a veth into af_packet may drop frames under
// load, as any network may: control datagrams are not repaired), and of the fragmented ones,
// the largest (8192 bytes, six fragments) too.
void expect_control_from(const std::string& out, int peer, bool all) {
  const ControlReport r = control_from(out, peer);
  ASSERT_TRUE(r.found) << out;
  EXPECT_EQ(r.of, kControl) << out;
  EXPECT_EQ(r.bad, 0u) << out;
  EXPECT_EQ(r.duplicate, 0u) << out;
  if (all) {
    EXPECT_EQ(r.received, kControl) << out;
  } else {
    EXPECT_GE(r.received, kControl / 2) << out;
  }
  EXPECT_GT(r.fragmented, 0u) << out;
  EXPECT_GT(r.largest, 0u) << out;
}

// The numbers of a member's "counts dropped ..." line (the fault decorator and the repairs).
struct FaultCounts {
  unsigned long dropped = 0, duplicated = 0, reordered = 0, delayed = 0, nacks_sent = 0,
                nacks_served = 0, repair_frames = 0, duplicates_dropped = 0;
};
FaultCounts fault_counts(const std::string& out) {
  FaultCounts c;
  const auto at = out.find("counts dropped ");
  if (at == std::string::npos) return c;
  std::sscanf(out.c_str() + at,
              "counts dropped %lu duplicated %lu reordered %lu delayed %lu nacks_sent %lu "
              "nacks_served %lu repair_frames %lu duplicates_dropped %lu",
              &c.dropped, &c.duplicated, &c.reordered, &c.delayed, &c.nacks_sent, &c.nacks_served,
              &c.repair_frames, &c.duplicates_dropped);
  return c;
}

TEST(DpdkProcesses, TwoMembersOverMemifExchangeLogsAndControlDatagrams) {
  SKIP_UNLESS(why_not_root());
  Scratch scratch;
  const std::string sock = scratch.dir() + "/memif.sock";
  // Addresses on the memif exist only inside the two processes (127/8: never routed anywhere).
  const std::string members = "127.0.0.11:7000,127.0.0.12:7000";
  Member m0(g_dpdk_member, concat(concat(member_args(members, 0, "dm"), kControlArgs),
                                  scratch.eal("m0", "net_memif0,role=server,socket=" + sock)));
  Member m1(g_dpdk_member, concat(concat(member_args(members, 1, "dm"), kControlArgs),
                                  scratch.eal("m1", "net_memif0,role=client,socket=" + sock)));
  expect_pair_delivered(&m0, &m1);
  // A memif drops nothing (a full ring makes the sender wait), so every control datagram
  // arrives, both ways, the fragmented ones reassembled.
  expect_control_from(m0.all_output(), 1, true);
  expect_control_from(m1.all_output(), 0, true);
}

// The seeded fault decorator in front of each DpdkPort (as udp_member's in front of its socket):
// 5% of the data datagrams lost, 2% duplicated, 3% reordered, 2% delayed, and still every record
// arrives once, in order, intact, repaired by NACKs.
TEST(DpdkProcesses, TwoMembersOverMemifEveryRecordOnceInOrderUnderFaults) {
  SKIP_UNLESS(why_not_root());
  Scratch scratch;
  const std::string sock = scratch.dir() + "/memif.sock";
  const std::string members = "127.0.0.11:7000,127.0.0.12:7000";
  auto faults = [](int self) {
    return std::vector<std::string>{
        "--loss", "0.05",    "--dup", "0.02",         "--reorder",
        "0.03",   "--delay", "0.02",  "--fault-seed", std::to_string(2000 + self)};
  };
  Member m0(g_dpdk_member, concat(concat(member_args(members, 0, "df"), faults(0)),
                                  scratch.eal("f0", "net_memif0,role=server,socket=" + sock)));
  Member m1(g_dpdk_member, concat(concat(member_args(members, 1, "df"), faults(1)),
                                  scratch.eal("f1", "net_memif0,role=client,socket=" + sock)));
  expect_pair_delivered(&m0, &m1);
  const std::string o0 = m0.all_output();
  const std::string o1 = m1.all_output();
  EXPECT_NE(o0.find("fault seed 2000"), std::string::npos) << o0;
  EXPECT_NE(o1.find("fault seed 2001"), std::string::npos) << o1;
  const FaultCounts c0 = fault_counts(o0);
  const FaultCounts c1 = fault_counts(o1);
  std::printf(
      "dpdk faults: dropped %lu duplicated %lu reordered %lu delayed %lu; nacks served %lu; "
      "repair frames %lu; duplicates dropped %lu\n",
      c0.dropped + c1.dropped, c0.duplicated + c1.duplicated, c0.reordered + c1.reordered,
      c0.delayed + c1.delayed, c0.nacks_served + c1.nacks_served,
      c0.repair_frames + c1.repair_frames, c0.duplicates_dropped + c1.duplicates_dropped);
  // The faults happened, in every kind, and were repaired.
  EXPECT_GT(c0.dropped + c1.dropped, 0u) << o0 << o1;
  EXPECT_GT(c0.duplicated + c1.duplicated, 0u) << o0 << o1;
  EXPECT_GT(c0.reordered + c1.reordered, 0u) << o0 << o1;
  EXPECT_GT(c0.nacks_served + c1.nacks_served, 0u) << o0 << o1;
  EXPECT_GT(c0.duplicates_dropped + c1.duplicates_dropped, 0u) << o0 << o1;
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
  // The kernel sends the larger control datagrams as IPv4 fragments, and af_packet hands them
  // over reassembled (PACKET_FANOUT_FLAG_DEFRAG), cut at framesz: frames and mbufs of 16 KiB
  // hold the largest whole. (Our own fragments the kernel reassembles as any host does.)
  const std::vector<std::string> big_frames = {"--mbuf-bytes", "16384"};
  const std::string vdev = "net_af_packet0,iface=" + net.veth_a() + ",blocksz=16384,framesz=16384";
  Member m0(net.ns_a(), g_dpdk_member,
            concat(concat(concat(member_args(members, 0, "du"), kControlArgs), big_frames),
                   scratch.eal("u0", vdev)));
  Member m1(net.ns_b(), g_udp_member, concat(member_args(members, 1, "du"), kControlArgs));
  expect_pair_delivered(&m0, &m1);
  // The dpdk member resolved the kernel's MAC by ARP (the kernel, in turn, learns ours from our
  // request, as Linux does, or from our reply to its own).
  const std::string o0 = m0.all_output();
  const std::string o1 = m1.all_output();
  EXPECT_EQ(o0.find("rx_arp 0 "), std::string::npos) << o0;
  // Control datagrams both ways between the two control channels, the largest ones in IPv4
  // fragments: the dpdk member's reassembled by the udp member's kernel, the udp member's by
  // the kernel under af_packet (over memif, the dpdk member reassembles them itself).
  expect_control_from(o0, 1, false);
  expect_control_from(o1, 0, false);
}

// ---- The control channel's IPv4 reassembly, in process: no EAL, no root.

std::vector<std::byte> datagram(uint32_t n) {
  std::vector<std::byte> d(n);
  for (uint32_t i = 0; i < n; ++i) d[i] = std::byte{static_cast<uint8_t>(i * 7 + 3)};
  return d;
}

Ipv4Reassembly::Outcome add(Ipv4Reassembly* r, uint16_t id, const std::vector<std::byte>& d,
                            uint32_t offset, uint32_t len, uint64_t now_ns,
                            std::span<const std::byte>* out) {
  const bool more = offset + len < d.size();
  return r->add(0x0100000a, id, offset, more, std::span(d).subspan(offset, len), now_ns, out);
}

TEST(Ipv4Reassembly, OutOfOrderAndDuplicatedFragmentsMakeTheDatagramOnce) {
  Ipv4Reassembly r;
  const std::vector<std::byte> d = datagram(Ipv4Reassembly::kMaxBytes);  // 6 fragments
  std::span<const std::byte> out;
  using O = Ipv4Reassembly::Outcome;
  const uint32_t order[] = {5, 2, 0, 2, 4, 1};  // 3 missing, 2 twice
  for (const uint32_t k : order) {
    const uint32_t off = k * 1480;
    const uint32_t len = std::min<uint32_t>(1480, Ipv4Reassembly::kMaxBytes - off);
    EXPECT_EQ(add(&r, 7, d, off, len, 1000, &out), O::kPending) << k;
  }
  EXPECT_EQ(r.in_progress(), 1u);
  ASSERT_EQ(add(&r, 7, d, 3 * 1480, 1480, 1000, &out), O::kComplete);
  ASSERT_EQ(out.size(), d.size());
  EXPECT_TRUE(std::equal(out.begin(), out.end(), d.begin()));
  EXPECT_EQ(r.in_progress(), 0u);
  EXPECT_EQ(r.stats().completed, 1u);
}

TEST(Ipv4Reassembly, RefusesTooLargeMisalignedAndInconsistentFragments) {
  Ipv4Reassembly r;
  const std::vector<std::byte> d = datagram(Ipv4Reassembly::kMaxBytes + 8);
  std::span<const std::byte> out;
  using O = Ipv4Reassembly::Outcome;
  EXPECT_EQ(add(&r, 1, d, 0, 1480, 0, &out), O::kPending);
  // Its end lies past the largest control datagram: it and what came of it are dropped.
  EXPECT_EQ(add(&r, 1, d, 5 * 1480, static_cast<uint32_t>(d.size()) - 5 * 1480, 0, &out),
            O::kTooLarge);
  EXPECT_EQ(r.in_progress(), 0u);
  // A middle fragment must carry whole 8-byte blocks.
  EXPECT_EQ(r.add(1, 2, 0, true, std::span(d).first(100), 0, &out), O::kMalformed);
  // A last fragment that ends before bytes already received.
  EXPECT_EQ(r.add(1, 3, 1480, true, std::span(d).first(1480), 0, &out), O::kPending);
  EXPECT_EQ(r.add(1, 3, 0, false, std::span(d).first(1000), 0, &out), O::kMalformed);
  EXPECT_EQ(r.in_progress(), 0u);
  EXPECT_EQ(r.stats().too_large, 1u);
  EXPECT_EQ(r.stats().malformed, 2u);
}

TEST(Ipv4Reassembly, ExpiresStaleDatagramsAndEvictsTheOldestWhenFull) {
  Ipv4Reassembly r;
  const std::vector<std::byte> d = datagram(3000);
  std::span<const std::byte> out;
  using O = Ipv4Reassembly::Outcome;
  for (uint16_t id = 0; id < Ipv4Reassembly::kSlots; ++id) {
    EXPECT_EQ(add(&r, id, d, 0, 1480, 1000 + id, &out), O::kPending);
  }
  // A fifth datagram takes the oldest slot (id 0), which is lost.
  EXPECT_EQ(add(&r, 100, d, 0, 1480, 2000, &out), O::kPending);
  EXPECT_EQ(r.stats().evicted, 1u);
  EXPECT_EQ(r.in_progress(), Ipv4Reassembly::kSlots);
  // id 1 is still whole once its last fragments come.
  EXPECT_EQ(add(&r, 1, d, 1480, 1480, 3000, &out), O::kPending);
  ASSERT_EQ(add(&r, 1, d, 2960, 40, 3000, &out), O::kComplete);
  EXPECT_TRUE(std::equal(out.begin(), out.end(), d.begin(), d.end()));
  // Later than the timeout, the rest are stale: a new fragment of id 2 starts over.
  const uint64_t later = 3000 + Ipv4Reassembly::kTimeoutNs + 1;
  EXPECT_EQ(add(&r, 2, d, 1480, 1480, later, &out), O::kPending);
  EXPECT_EQ(r.stats().expired, 3u);  // ids 2, 3 and 100
  EXPECT_EQ(r.in_progress(), 1u);
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
