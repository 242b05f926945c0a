// dpdk_member: one member process of the dpdk transport tests (dpdk_integration_test.cc starts
// two, over net_memif or net_af_packet on a veth pair, and pairs one with a udp_member). As
// udp_member, it writes `--records` records to its own log and reads every peer's log, checking
// that each record of each peer arrives exactly once, in order, intact. Output: one line per
// event on stdout, flushed, ending in "done ..." and "summary ..." on success.
//
//   dpdk_member --members A:P,B:Q[,...] --self N --group G --eal ARG [--eal ARG ...]
//               [--port I] [--mbuf-bytes N] [--records R] [--writers K] [--log-bytes B]
//               [--mtu M] [--loss P] [--dup P] [--reorder P] [--delay P] [--fault-seed S]
//               [--silence-gone-ms MS] [--deadline-s S] [--control N]
// Each --eal is one EAL argument ("--vdev=net_memif0,role=server,socket=/tmp/s"). The fault
// options put the seeded FaultPort in front of the DpdkPort, as udp_member's do in front of
// its socket; --control N exchanges N control datagrams with every peer (dgram_member.h).
#include <sched.h>
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "runtime/idle.h"
#include "tests/integration/dgram_member.h"
#include "tests/integration/test_records.h"
#include "transport/dpdk/dpdk_transport.h"

using namespace cohort::transport;
using namespace cohort::transport::dpdk;
using Clock = std::chrono::steady_clock;

namespace {

struct Args {
  DpdkOptions dpdk;
  cohort::testing::MemberSettings m;
};

bool parse(int argc, char** argv, Args* a) {
  auto own = [a](const std::string& k, const char* v) {
    if (k == "--eal") {
      a->dpdk.eal_args.push_back(v);
    } else if (k == "--mbuf-bytes") {
      a->dpdk.mbuf_bytes = static_cast<uint32_t>(std::strtoul(v, nullptr, 10));
    } else if (k == "--port") {
      a->dpdk.port_index = static_cast<uint16_t>(std::strtoul(v, nullptr, 10));
    } else {
      return false;
    }
    return true;
  };
  return cohort::testing::parse_member_args(argc, argv, &a->dpdk, &a->m, own);
}

// One record in 50 is up to 20 KB, spread over 15 frames of 1400 bytes.
const cohort::testing::RecordPattern kRecords{50, 20016};

using Member = cohort::testing::DgramMember<DpdkTransport>;

}  // namespace

int main(int argc, char** argv) {
  Args a;
  if (!parse(argc, argv, &a)) {
    std::fprintf(stderr,
                 "usage: dpdk_member --members A:P,B:Q[,...] --self N --group G --eal ARG "
                 "[--eal ARG ...] [--port I] [--mbuf-bytes N] [--records R] [--writers K] "
                 "[--log-bytes B] [--mtu M] [--loss P] [--dup P] [--reorder P] [--delay P] "
                 "[--fault-seed S] [--silence-gone-ms MS] [--deadline-s S] [--control N]\n");
    return 2;
  }
  setvbuf(stdout, nullptr, _IOLBF, 0);
  a.dpdk.link_wait_ms = 20'000;
  auto created = DpdkTransport::create(a.dpdk);
  if (!created.ok()) {
    std::printf("error %s\n", created.error().message().c_str());
    return 1;
  }
  DpdkTransport& t = **created;
  std::printf("started member %u pid %d port %u fault seed %lu\n", t.self(), getpid(),
              t.port().port_id(), static_cast<unsigned long>(t.faults().seed()));
  Member member(a.m, kRecords, &t);
  const int code = member.run();
  if (code == 0 || code == 3) {
    member.report();
    const auto& p = t.port_stats();
    // Machine-readable, for the test.
    std::printf("counts arp_requests %lu arp_replies %lu rx_arp %lu not_for_us %lu no_arp %lu\n",
                static_cast<unsigned long>(p.tx_arp_requests),
                static_cast<unsigned long>(p.tx_arp_replies), static_cast<unsigned long>(p.rx_arp),
                static_cast<unsigned long>(p.rx_not_for_us),
                static_cast<unsigned long>(p.tx_no_arp));
    cohort::testing::print_fault_counts(t);
  }
  return code;
}
