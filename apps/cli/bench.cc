// Scenarios (each a fresh group of real processes in a fresh folder under /dev/shm):
//   lat2   2 members, each on its own cpu (0 and 1), busy-polling, member loop on the main thread;
//          member 1 sends 64 B total-order messages at --rate; latency from send to delivery at
//          every member (CLOCK_MONOTONIC in the payload), per member
//          (over shm, by default, each message carries its order inline, taken by the sender
//          from the group's ticket counter: one hop; membership/protocol/NOTES.md, "Tickets")
//   lat2seq  the same, but member 0 sends: the view's sequencer, whose file holds the counter
//   lat2sq   lat2 with --order sequencer: member 1's messages go to the sequencer, which orders
//          them (two hops: DATA to the sequencer, ORDER back); the design before tickets
//   tput64 / tput1k  the same pair; member 1 sends as fast as backpressure allows (one sender);
//          throughput = deliveries per second at each member, the slower one counts
//   lat3   3 members with the backoff idle policy, not pinned (oversubscribed: 3 threads on 2
//          cpus); member 1 sends 64 B at 2000/s
//   raw    two threads on cpus 0 and 1 bounce one cache line: the one-way time of a line
//   floor  not cohort's protocol: the least a one-hop total order through one log shared by the
//          group could cost (membership/NOTES.md, "A shared log, and its floor"). A sender
//          thread on cpu 1 takes each 64-byte slot with fetch_add on the log's tail (the slot's
//          position is the message's place in the order) and a receiver thread on cpu 0
//          busy-polls the slots; the sender paced at --rate, 40,000 messages; latency from the
//          sender's clock read before its fetch_add to each side's delivery (the sender's own
//          at once after its store), the slower side per message. Nothing of several senders'
//          gaps, a dead sender's claimed slot, flow control, stability or views.
// Output: `result NAME VALUE` lines; scripts/bench group turns medians of runs into figures.
#include "apps/cli/bench.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "apps/cli/lines.h"

namespace cohort::cli {
namespace {

bool pin(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  return sched_setaffinity(0, sizeof set, &set) == 0;
}

// One cache line bounced between cpus 0 and 1: median over blocks of 1000 round trips, halved.
double raw_oneway_ns() {
  alignas(64) static std::atomic<uint64_t> line{0};
  std::atomic<bool> stop{false};
  // The partner is born on cpu 1 (it inherits this thread's affinity) and this thread then
  // moves to cpu 0: under a real-time policy (chrt), a partner born on the cpu where this
  // thread spins would wait behind it for ever instead of reaching its own.
  pin(1);
  std::thread partner([&] {
    pin(1);
    uint64_t expect = 1;
    while (!stop.load(std::memory_order_relaxed)) {
      // acquire/release: the line itself is the message; each side answers the other's value.
      if (line.load(std::memory_order_acquire) == expect) {
        line.store(expect + 1, std::memory_order_release);
        expect += 2;
      }
    }
  });
  pin(0);
  std::vector<double> blocks;
  uint64_t v = 0;
  for (int b = 0; b < 200; ++b) {
    const uint64_t t0 = steady_ns();
    for (int i = 0; i < 1000; ++i) {
      line.store(++v, std::memory_order_release);
      while (line.load(std::memory_order_acquire) != v + 1) {
      }
      ++v;
    }
    blocks.push_back(static_cast<double>(steady_ns() - t0) / 2000.0);
  }
  stop.store(true);
  partner.join();
  std::sort(blocks.begin(), blocks.end());
  return blocks[blocks.size() / 2];
}

// The floor scenario (above): p50 and p99 in ns.
struct Floor {
  uint64_t p50_ns = 0;
  uint64_t p99_ns = 0;
};

Floor order_floor(uint64_t rate) {
  struct alignas(64) Slot {
    std::atomic<uint64_t> seq;  // position + 1 once the payload is in
    uint64_t sent_ns;
    std::byte payload[48];
  };
  struct alignas(64) Tail {
    std::atomic<uint64_t> value{0};
  };
  constexpr uint64_t kMessages = 40'000;
  constexpr size_t kSlots = 1u << 16;  // never wraps onto an unread slot at these rates
  auto log = std::make_unique<Slot[]>(kSlots);
  Tail tail;
  std::vector<uint64_t> sent_lat(kMessages), recv_lat(kMessages);
  std::atomic<bool> ready{false};
  pin(0);
  std::thread receiver([&] {
    pin(0);
    ready.store(true);
    for (uint64_t pos = 0; pos < kMessages; ++pos) {
      Slot& s = log[pos % kSlots];
      while (s.seq.load(std::memory_order_acquire) != pos + 1) {
      }
      recv_lat[pos] = steady_ns() - s.sent_ns;  // delivered: the next position is the next message
    }
  });
  pin(1);
  while (!ready.load()) {
  }
  const uint64_t interval = 1'000'000'000ULL / std::max<uint64_t>(rate, 1);
  const uint64_t start = steady_ns() + 1'000'000;
  for (uint64_t i = 0; i < kMessages; ++i) {
    while (steady_ns() < start + i * interval) {
    }
    const uint64_t t0 = steady_ns();
    const uint64_t pos = tail.value.fetch_add(1, std::memory_order_acq_rel);
    Slot& s = log[pos % kSlots];
    s.sent_ns = t0;
    s.payload[0] = std::byte{1};
    s.seq.store(pos + 1, std::memory_order_release);
    sent_lat[pos] = steady_ns() - t0;  // the sender's own delivery: nothing is ahead of it
  }
  receiver.join();
  std::vector<uint64_t> worst(kMessages);
  for (uint64_t i = 0; i < kMessages; ++i) worst[i] = std::max(sent_lat[i], recv_lat[i]);
  std::sort(worst.begin(), worst.end());
  return Floor{worst[kMessages / 2], worst[kMessages * 99 / 100]};
}

struct Proc {
  pid_t pid = -1;
  std::string out;
};

Proc spawn(const std::string& exe, std::vector<std::string> args, const std::string& out) {
  Proc p;
  p.out = out;
  args.insert(args.begin(), exe);
  p.pid = fork();
  if (p.pid == 0) {
    const int fd = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    dup2(fd, STDOUT_FILENO);
    dup2(fd, STDERR_FILENO);
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(exe.c_str(), argv.data());
    _exit(127);
  }
  return p;
}

std::string stats_line(const Proc& p) {
  std::ifstream in(p.out);
  std::string line, stats;
  while (std::getline(in, line)) {
    if (line.rfind("stats ", 0) == 0) stats = line;
  }
  return stats;
}

struct Scenario {
  const char* name;
  uint32_t members;
  bool busy;
  uint32_t size;
  uint64_t rate;               // 0: flood
  uint32_t sender;             // the member that sends (0 bootstraps the group: the sequencer)
  const char* order = "auto";  // GroupOptions::order
};

// Runs one scenario; prints result lines; false if a member failed.
bool run(const std::string& exe, const Scenario& s, const BenchOptions& o) {
  const std::string dir = "/dev/shm/cohort-bench-" + std::to_string(getpid()) + "-" + s.name;
  std::filesystem::create_directories(dir);
  std::vector<Proc> procs;
  for (uint32_t n = 0; n < s.members; ++n) {
    std::vector<std::string> args = {"node",
                                     "--group",
                                     "bench",
                                     "--node",
                                     std::to_string(n),
                                     "--shm-dir",
                                     dir + "/shm",
                                     "--size",
                                     std::to_string(s.size),
                                     "--all-latency",
                                     "--wait-members",
                                     std::to_string(s.members),
                                     "--run-ms",
                                     std::to_string(o.run_ms + (n == s.sender ? 0 : 800)),
                                     "--drain-ms",
                                     "300"};
    if (n == 0) args.push_back("--bootstrap");
    args.insert(args.end(), {"--order", s.order});
    // Floods time one delivery in 64: the rate is measured over the same span, without a
    // clock read per message (the harness's cost, not the group's).
    if (s.rate == 0) args.insert(args.end(), {"--sample", "64"});
    if (s.busy) {
      args.insert(args.end(), {"--inline", "--idle", "busy", "--pin", std::to_string(n % 2)});
      if (o.rt) args.insert(args.end(), {"--rt-priority", "20"});
    }
    if (n == s.sender) {
      if (s.rate == 0) {
        args.push_back("--flood");
      } else {
        args.insert(args.end(), {"--rate", std::to_string(s.rate)});
      }
    } else {
      args.insert(args.end(), {"--rate", "0"});
    }
    procs.push_back(spawn(exe, args, dir + "/n" + std::to_string(n) + ".out"));
    std::this_thread::sleep_for(std::chrono::milliseconds(n == 0 ? 150 : 20));
  }
  bool ok = true;
  for (Proc& p : procs) {
    int status = 0;
    waitpid(p.pid, &status, 0);
    ok = ok && WIFEXITED(status) && WEXITSTATUS(status) == 0;
  }
  double worst_p50 = 0, worst_p99 = 0, worst_p999 = 0, min_rate = -1;
  for (uint32_t n = 0; n < s.members; ++n) {
    const std::string st = stats_line(procs[n]);
    if (st.empty()) {
      ok = false;
      continue;
    }
    std::printf("member %s n%u: %s\n", s.name, n, st.c_str());
    worst_p50 = std::max(worst_p50, field_f(st, "p50_us"));
    worst_p99 = std::max(worst_p99, field_f(st, "p99_us"));
    worst_p999 = std::max(worst_p999, field_f(st, "p999_us"));
    const double r = field_f(st, "rate_per_s");
    min_rate = min_rate < 0 ? r : std::min(min_rate, r);
  }
  if (s.rate != 0) {
    std::printf("result %s_p50_us %.3f\nresult %s_p99_us %.3f\nresult %s_p999_us %.3f\n", s.name,
                worst_p50, s.name, worst_p99, s.name, worst_p999);
  } else {
    std::printf("result %s_msgs_per_s %.0f\n", s.name, min_rate);
  }
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  if (!ok) std::printf("error %s: a member failed (its output was in %s)\n", s.name, dir.c_str());
  return ok;
}

}  // namespace

int run_bench(const BenchOptions& o) {
  char exe[4096];
  const ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n <= 0) return 1;
  const std::string self(exe, static_cast<size_t>(n));
  if (std::thread::hardware_concurrency() < 2) {
    std::fprintf(stderr, "cohort bench: needs 2 cpus (0 and 1)\n");
    return 1;
  }
  bool ok = true;
  const double raw_before = raw_oneway_ns();
  const Scenario scenarios[] = {
      {"lat2", 2, true, 64, o.rate, 1},
      {"lat2seq", 2, true, 64, o.rate, 0},
      {"lat2sq", 2, true, 64, o.rate, 1, "sequencer"},
      {"tput64", 2, true, 64, 0, 1},
      {"tput1k", 2, true, 1024, 0, 1},
      {"lat3", 3, false, 64, 2000, 1},
  };
  for (const Scenario& s : scenarios) {
    if (!o.only.empty() && std::find(o.only.begin(), o.only.end(), s.name) == o.only.end()) {
      continue;
    }
    ok = run(self, s, o) && ok;
  }
  if (o.only.empty() || std::find(o.only.begin(), o.only.end(), "floor") != o.only.end()) {
    const Floor f = order_floor(o.rate);
    std::printf("result order_floor_p50_ns %" PRIu64 "\nresult order_floor_p99_ns %" PRIu64 "\n",
                f.p50_ns, f.p99_ns);
  }
  const double raw_after = raw_oneway_ns();
  std::printf("result raw_oneway_ns %.3f\n", (raw_before + raw_after) / 2);
  return ok ? 0 : 1;
}

}  // namespace cohort::cli
