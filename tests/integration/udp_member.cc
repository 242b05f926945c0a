// udp_member: one member process of the udp transport tests (udp_integration_test.cc starts
// several, injects faults through the decorator, and kills some). It writes `--records`
// records to its own log and reads every peer's log, checking that each record of each peer
// arrives exactly once, in order, intact. Output: one line per event on stdout, flushed,
// ending in "done ..." and "summary ..." on success.
//
//   udp_member --members A:P,B:Q[,...] --self N --group G [--records R] [--writers K]
//              [--log-bytes B] [--mtu M] [--loss P] [--dup P] [--reorder P] [--delay P]
//              [--fault-seed S] [--silence-gone-ms MS] [--slow-ns NS] [--deadline-s S]
//              [--control N]
// Members 0..K-1 (default: all) write R records each; every member expects R records from each
// of the other writers. With --silence-gone-ms, a peer not heard from for that long is declared
// gone (the hook the membership layer will use). With --control, a second thread exchanges N
// control datagrams with every peer (dgram_member.h).
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
#include "transport/udp/udp_transport.h"

using namespace cohort::transport;
using namespace cohort::transport::udp;
using Clock = std::chrono::steady_clock;

namespace {

struct Args {
  UdpOptions udp;
  cohort::testing::MemberSettings m;
};

bool parse(int argc, char** argv, Args* a) {
  return cohort::testing::parse_member_args(argc, argv, &a->udp, &a->m,
                                            [](const std::string&, const char*) { return false; });
}

// One record in 50 is up to 20 KB, spread over 15 frames of 1400 bytes.
const cohort::testing::RecordPattern kRecords{50, 20016};

using Member = cohort::testing::DgramMember<UdpTransport>;

}  // namespace

int main(int argc, char** argv) {
  Args a;
  if (!parse(argc, argv, &a)) {
    std::fprintf(stderr,
                 "usage: udp_member --members A:P,B:Q[,...] --self N --group G [--records R] "
                 "[--writers K] [--log-bytes B] [--mtu M] [--loss P] [--dup P] [--reorder P] "
                 "[--delay P] [--fault-seed S] [--silence-gone-ms MS] [--slow-ns NS] "
                 "[--deadline-s S] [--control N]\n");
    return 2;
  }
  setvbuf(stdout, nullptr, _IOLBF, 0);
  auto created = UdpTransport::create(a.udp);
  if (!created.ok()) {
    std::printf("error %s\n", created.error().message().c_str());
    return 1;
  }
  UdpTransport& t = **created;
  std::printf("started member %u pid %d fault seed %lu\n", t.self(), getpid(),
              static_cast<unsigned long>(t.faults().seed()));
  Member member(a.m, kRecords, &t);
  const int code = member.run();
  if (code == 0 || code == 3) {
    member.report();
    cohort::testing::print_fault_counts(t);
  }
  return code;
}
