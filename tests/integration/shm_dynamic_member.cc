// shm_dynamic_member: one member process of a shm group whose membership changes while it
// runs (shm_integration_test.cc starts members late, kills some, and starts new processes in
// their slots). It runs until SIGTERM: it keeps attaching peers (try_attach_peers), writes
// records to its own log at a steady rate, reads every attached peer's log checking that the
// records of each attachment are consecutive and intact, sends a control datagram to every
// slot every few milliseconds, and declares dead peers gone. Output: one line per event on
// stdout, flushed; few lines, so the pipe never fills:
//   started member N pid P incarnation X
//   attached P gen G incarnation X start S      our subscription to P's log (re)attached
//   first record from P gen G is I              the writer's record index where we started
//   read 1000 records from P gen G
//   control to P ok | control to P no-peer      when the send status changes
//   control from P incarnation X                when P's sender changes
//   declared P gone
//   done errors E                               after SIGTERM; then it leaves
//
//   shm_dynamic_member --dir D --group G --self N --members M [--log-bytes B] [--no-liveness]
// --no-liveness: never declare a peer gone, so a replaced process is noticed only by its new
// file (try_attach_peers re-attaches the slot).
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "tests/integration/member_options.h"
#include "tests/integration/test_records.h"
#include "transport/shm/shm_transport.h"

using namespace cohort::transport;
using namespace cohort::transport::shm;
using Clock = std::chrono::steady_clock;

namespace {

volatile sig_atomic_t g_stop = 0;
void on_term(int) {
  g_stop = 1;
}

struct Args {
  ShmOptions shm;
  bool liveness = true;
};

bool parse(int argc, char** argv, Args* a) {
  for (int i = 1; i < argc; ++i) {
    const std::string k = argv[i];
    if (k == "--no-liveness") {
      a->liveness = false;
      continue;
    }
    if (i + 1 >= argc) return false;
    const char* v = argv[++i];
    if (!cohort::testing::parse_transport_option(k, v, &a->shm)) return false;
  }
  return a->shm.members > 0;
}

const cohort::testing::RecordPattern kRecords{};

// What this member knows of one peer's log, for the current attachment.
struct Reading {
  uint64_t generation = 0;
  bool started = false;  // the first record of this attachment was read
  uint64_t next = 0;     // the writer's record index expected next
  uint64_t count = 0;    // records read in this attachment
};

struct Control {
  SendStatus last_send = SendStatus::kTooLarge;  // "never sent": any status is a change
  uint64_t last_from_incarnation = 0;
};

// A control datagram: "hi", then the sender's member id and incarnation.
struct Hello {
  char tag[4] = {'h', 'i', '!', '\0'};
  uint32_t from = 0;
  uint64_t incarnation = 0;
};

}  // namespace

int main(int argc, char** argv) {
  Args a;
  if (!parse(argc, argv, &a)) {
    std::fprintf(stderr,
                 "usage: shm_dynamic_member --dir D --group G --self N --members M "
                 "[--log-bytes B] [--no-liveness]\n");
    return 2;
  }
  setvbuf(stdout, nullptr, _IOLBF, 0);
  signal(SIGTERM, on_term);
  auto created = ShmTransport::create(a.shm);
  if (!created.ok()) {
    std::printf("error %s\n", created.error().message().c_str());
    return 1;
  }
  ShmTransport& t = **created;
  const MemberId self = t.self();
  std::printf("started member %u pid %d incarnation %" PRIu64 "\n", self, getpid(),
              t.incarnation());

  Reading reading[kMaxMembers];
  Control control[kMaxMembers];
  uint64_t written = 0;
  uint64_t errors = 0;
  RecordView views[32];
  ControlMessage messages[16];
  auto last_tick = Clock::now() - std::chrono::seconds(1);
  auto last_write = Clock::now();

  while (g_stop == 0) {
    uint32_t work = 0;
    const auto now = Clock::now();
    // Every few milliseconds: attach, liveness, heartbeat and control datagrams.
    if (now - last_tick > std::chrono::milliseconds(3)) {
      last_tick = now;
      if (auto r = t.try_attach_peers(); !r.ok()) {
        std::printf("error %s\n", r.error().message().c_str());
        return 1;
      }
      t.beat();
      for (MemberId p = 0; p < t.members(); ++p) {
        if (p == self) continue;
        if (a.liveness && t.peer_incarnation(p) != 0 && !t.peer_alive(p)) {
          t.declare_gone(p);
          std::printf("declared %u gone\n", p);
        }
        Hello hello;
        hello.from = self;
        hello.incarnation = t.incarnation();
        const SendStatus st = t.send_control(p, std::as_bytes(std::span(&hello, 1)));
        if (st != control[p].last_send && st != SendStatus::kWouldBlock) {
          control[p].last_send = st;
          std::printf("control to %u %s\n", p, st == SendStatus::kOk ? "ok" : "no-peer");
        }
      }
    }
    for (uint32_t n; (n = t.poll_control(messages, 16)) != 0;) {
      for (uint32_t i = 0; i < n; ++i) {
        Hello h;
        if (messages[i].bytes.size() != sizeof h) {
          ++errors;
          continue;
        }
        std::memcpy(&h, messages[i].bytes.data(), sizeof h);
        if (h.from != messages[i].from) ++errors;
        Control& c = control[messages[i].from];
        if (h.incarnation != c.last_from_incarnation) {
          c.last_from_incarnation = h.incarnation;
          std::printf("control from %u incarnation %" PRIu64 "\n", h.from, h.incarnation);
        }
      }
    }
    // A burst of our own records every 200 us, until back pressure.
    if (now - last_write > std::chrono::microseconds(200)) {
      last_write = now;
      for (int k = 0; k < 16; ++k) {
        const uint32_t size = kRecords.size(written);
        Claim c;
        const ClaimStatus st = t.publication().try_claim(size, kRecordUser, &c);
        if (st == ClaimStatus::kBackPressure) break;
        if (st != ClaimStatus::kOk) {
          std::printf("error claim: %s\n", claim_status_name(st));
          return 1;
        }
        kRecords.fill(c.data, self, written);
        t.publication().commit(c);
        ++written;
        ++work;
      }
    }
    // Every attached peer's log: consecutive records from wherever this attachment started.
    for (MemberId p = 0; p < t.members(); ++p) {
      LogReader* sub = t.subscription(p);
      if (p == self || sub == nullptr) continue;
      Reading& r = reading[p];
      if (r.generation != t.attach_generation(p)) {
        r = Reading{};
        r.generation = t.attach_generation(p);
        std::printf("attached %u gen %" PRIu64 " incarnation %" PRIu64 " start %" PRIu64 "\n", p,
                    r.generation, t.peer_incarnation(p), sub->position());
      }
      const uint32_t n = sub->poll(views, 32);
      for (uint32_t i = 0; i < n; ++i) {
        uint64_t head[2] = {};
        if (views[i].payload.size() >= sizeof head) {
          std::memcpy(head, views[i].payload.data(), sizeof head);
        }
        if (!r.started) {
          r.started = true;
          r.next = head[1];
          std::printf("first record from %u gen %" PRIu64 " is %" PRIu64 "\n", p, r.generation,
                      r.next);
        }
        if (!kRecords.check(views[i], p, r.next)) {
          if (++errors <= 10) {
            std::printf("bad record from %u gen %" PRIu64 ": expected %" PRIu64 "\n", p,
                        r.generation, r.next);
          }
        }
        ++r.next;
        if (++r.count == 1000) {
          std::printf("read 1000 records from %u gen %" PRIu64 "\n", p, r.generation);
        }
      }
      sub->release();
      if (sub->fault() != LogFault::kNone) {
        std::printf("error log of %u: %s\n", p, log_fault_name(sub->fault()));
        return 1;
      }
      work += n;
    }
    if (work == 0) {
      const timespec ts{0, 50'000};
      nanosleep(&ts, nullptr);
    }
  }
  std::printf("done errors %" PRIu64 " wrote %" PRIu64 "\n", errors, written);
  t.leave();
  return errors == 0 ? 0 : 3;
}
