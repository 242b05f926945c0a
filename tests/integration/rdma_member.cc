// rdma_member: one member process of the rdma transport tests (rdma_integration_test.cc starts
// several inside the Soft-RoCE guest, and kills some). The same loop as udp_member
// (dgram_member.h): it writes `--records` records to its own log and reads every peer's,
// checking that each record of each peer arrives exactly once, in order, intact. Output: one
// line per event on stdout, flushed, ending in "done ..." and "summary ..." on success.
//
//   rdma_member --members A:P,B:Q[,...] --self N --group G [--records R] [--writers K]
//               [--log-bytes B] [--device D] [--gid-index I] [--signal-every S]
//               [--silence-gone-ms MS] [--slow-ns NS] [--deadline-s S] [--control N]
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "tests/integration/dgram_member.h"
#include "tests/integration/test_records.h"
#include "transport/rdma/rdma_transport.h"

using namespace cohort::transport;
using namespace cohort::transport::rdma;

namespace {

struct Args {
  RdmaOptions rdma;
  cohort::testing::MemberSettings m;
};

bool parse(int argc, char** argv, Args* a) {
  auto own = [a](const std::string& k, const char* v) {
    if (k == "--device") {
      a->rdma.device = v;
    } else if (k == "--gid-index") {
      a->rdma.gid_index = static_cast<int32_t>(std::strtol(v, nullptr, 10));
    } else if (k == "--signal-every") {
      a->rdma.signal_every = static_cast<uint32_t>(std::strtoul(v, nullptr, 10));
    } else {
      return false;
    }
    return true;
  };
  return cohort::testing::parse_member_args(argc, argv, &a->rdma, &a->m, own);
}

// One record in 50 is up to 20 KB, as in the udp tests.
const cohort::testing::RecordPattern kRecords{50, 20016};

using Member = cohort::testing::DgramMember<RdmaTransport>;

}  // namespace

int main(int argc, char** argv) {
  Args a;
  if (!parse(argc, argv, &a)) {
    std::fprintf(stderr,
                 "usage: rdma_member --members A:P,B:Q[,...] --self N --group G [--records R] "
                 "[--writers K] [--log-bytes B] [--device D] [--gid-index I] [--signal-every S] "
                 "[--silence-gone-ms MS] [--slow-ns NS] [--deadline-s S] [--control N]\n");
    return 2;
  }
  setvbuf(stdout, nullptr, _IOLBF, 0);
  auto created = RdmaTransport::create(a.rdma);
  if (!created.ok()) {
    std::printf("error %s\n", created.error().message().c_str());
    return 1;
  }
  RdmaTransport& t = **created;
  std::printf("started member %u pid %d on %s\n", t.self(), getpid(),
              t.device_description().c_str());
  Member member(a.m, kRecords, &t);
  const int code = member.run();
  if (code == 0 || code == 3) member.report();
  // What the TCP liveness signal saw: peers whose process ended under us.
  for (MemberId p = 0; p < t.members(); ++p) {
    if (p != t.self() && !t.peer_alive(p)) std::printf("peer %u not alive at the end\n", p);
  }
  return code;
}
