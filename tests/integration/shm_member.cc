// shm_member: one member process of the shm transport tests (shm_integration_test.cc
// starts several and kills some). It writes `--records` records to its own log and reads
// every peer's log, checking that each record of each peer arrives exactly once, in order,
// intact. Output: one line per event on stdout, flushed, ending in "done ..." on success.
//
//   shm_member --dir D --group G --self N --members M [--records R] [--writers K]
//              [--log-bytes B] [--slow-ns NS] [--hold]
// Members 0..K-1 (default: all) write R records each; every member expects R records from
// each of the other writers.
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
#include "tests/integration/member_options.h"
#include "tests/integration/test_records.h"
#include "transport/shm/shm_transport.h"

using namespace cohort::transport;
using namespace cohort::transport::shm;
using Clock = std::chrono::steady_clock;

namespace {

struct Args {
  ShmOptions shm;
  uint64_t records = 0;
  uint32_t writers = kMaxMembers;  // members below this id write; the rest only read
  uint64_t slow_ns = 0;            // busy delay per record read: a reader slower than the writer
  bool hold = false;               // create the transport, say so, and wait to be killed
};

bool parse(int argc, char** argv, Args* a) {
  for (int i = 1; i < argc; ++i) {
    const std::string k = argv[i];
    auto next = [&]() -> const char* { return i + 1 < argc ? argv[++i] : nullptr; };
    const char* v = nullptr;
    if (k == "--hold") {
      a->hold = true;
      continue;
    }
    if ((v = next()) == nullptr) return false;
    if (cohort::testing::parse_transport_option(k, v, &a->shm)) continue;
    if (k == "--records")
      a->records = std::strtoull(v, nullptr, 10);
    else if (k == "--writers")
      a->writers = static_cast<uint32_t>(std::strtoul(v, nullptr, 10));
    else if (k == "--slow-ns")
      a->slow_ns = std::strtoull(v, nullptr, 10);
    else
      return false;
  }
  return a->shm.members > 0;
}

// No big records: the log is small and they would only slow the test.
const cohort::testing::RecordPattern kRecords{};

}  // namespace

int main(int argc, char** argv) {
  Args a;
  if (!parse(argc, argv, &a)) {
    std::fprintf(stderr,
                 "usage: shm_member --dir D --group G --self N --members M "
                 "[--records R] [--log-bytes B] [--slow-ns NS] [--hold]\n");
    return 2;
  }
  setvbuf(stdout, nullptr, _IOLBF, 0);
  auto created = ShmTransport::create(a.shm);
  if (!created.ok()) {
    std::printf("error %s\n", created.error().message().c_str());
    return 1;
  }
  ShmTransport& t = **created;
  std::printf("started member %u pid %d\n", t.self(), getpid());
  if (a.hold) {
    for (;;) pause();
  }
  if (auto s = t.attach_peers(20'000); !s.ok()) {
    std::printf("error %s\n", s.error().message().c_str());
    return 1;
  }
  std::printf("attached\n");

  const MemberId self = t.self();
  const uint64_t to_write = self < a.writers ? a.records : 0;
  uint64_t expect[kMaxMembers] = {};
  for (MemberId p = 0; p < t.members(); ++p) expect[p] = p < a.writers ? a.records : 0;
  uint64_t written = 0;
  uint64_t next[kMaxMembers] = {};
  bool done_with[kMaxMembers] = {};
  done_with[self] = true;
  uint64_t errors = 0;
  uint64_t back_pressure_since_check = 0;
  cohort::IdleOptions idle_options;
  idle_options.max_park_ns = 200'000;
  cohort::IdleStrategy idle(idle_options);
  auto last_liveness = Clock::now();
  RecordView views[32];

  for (;;) {
    uint32_t work = 0;
    // Write a burst of our own records.
    for (int k = 0; k < 32 && written < to_write; ++k) {
      const uint32_t size = kRecords.size(written);
      Claim c;
      const ClaimStatus st = t.publication().try_claim(size, kRecordUser, &c);
      if (st == ClaimStatus::kBackPressure) {
        ++back_pressure_since_check;
        break;
      }
      if (st != ClaimStatus::kOk) {
        std::printf("error claim: %s\n", claim_status_name(st));
        return 1;
      }
      kRecords.fill(c.data, self, written);
      t.publication().commit(c);
      ++written;
      ++work;
    }
    // Read every peer's log.
    bool all_read = true;
    for (MemberId p = 0; p < t.members(); ++p) {
      if (done_with[p]) continue;
      LogReader* sub = t.subscription(p);
      if (sub == nullptr) {
        done_with[p] = true;  // declared gone
        continue;
      }
      const uint32_t n = sub->poll(views, 32);
      for (uint32_t i = 0; i < n; ++i) {
        if (!kRecords.check(views[i], p, next[p])) ++errors;
        ++next[p];
        if (a.slow_ns != 0) cohort::testing::busy_ns(a.slow_ns);
      }
      sub->release();
      if (sub->fault() != LogFault::kNone) {
        std::printf("error log of %u: %s\n", p, log_fault_name(sub->fault()));
        return 1;
      }
      work += n;
      if (next[p] == expect[p]) {
        done_with[p] = true;
        std::printf("read %lu records from %u\n", static_cast<unsigned long>(next[p]), p);
      } else {
        all_read = false;
      }
    }
    // Liveness, a few times a second: a dead peer stops counting as a reader of our log,
    // and we stop waiting for its records.
    if (Clock::now() - last_liveness > std::chrono::milliseconds(5)) {
      last_liveness = Clock::now();
      for (MemberId p = 0; p < t.members(); ++p) {
        if (p == self || !t.publication().counts_reader(p)) continue;
        if (!t.peer_alive(p)) {
          // A peer that finished and left is no reader any more; only a dead one is "gone".
          const bool left = t.peer_left(p);
          t.declare_gone(p);
          std::printf(left ? "member %u left after %lu of its records\n"
                           : "declared member %u gone after %lu of its records\n",
                      p, static_cast<unsigned long>(next[p]));
        }
      }
    }
    if (written == to_write && all_read) break;
    if (work > 0) {
      idle.reset();
    } else {
      switch (idle.next()) {
        case cohort::IdleStrategy::Action::kSpin: cohort::cpu_relax(); break;
        case cohort::IdleStrategy::Action::kYield: sched_yield(); break;
        case cohort::IdleStrategy::Action::kPark: {
          const timespec ts{0, static_cast<long>(idle.park_ns())};
          nanosleep(&ts, nullptr);
          idle.parked();
          break;
        }
      }
    }
  }
  // Stay until every live reader has released all of our records, then leave.
  while (t.publication().min_reader_position() < t.publication().position()) {
    for (MemberId p = 0; p < t.members(); ++p) {
      if (p != self && t.publication().counts_reader(p) && !t.peer_alive(p)) t.declare_gone(p);
    }
    usleep(200);
  }
  std::printf("done wrote %lu errors %lu back_pressure %lu\n", static_cast<unsigned long>(written),
              static_cast<unsigned long>(errors),
              static_cast<unsigned long>(t.publication().stats().back_pressure));
  t.leave();
  return errors == 0 ? 0 : 3;
}
