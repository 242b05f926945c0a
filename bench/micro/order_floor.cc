// The floor of a one-hop total order in shared memory on this machine, for the group's latency
// target (issue 5: total-order p50 at most 4x one bounced cache line). Not cohort's protocol: the
// least a protocol of the other design could do (membership/NOTES.md, "A shared log"), measured
// beside the raw line of the same run.
//
// The design: every member appends to one log shared by the group; a sender takes its slot with
// fetch_add on the log's tail, and the slot's position is the message's place in the total
// order, so no sequencer hop is needed. Here one sender thread on cpu 1 and one receiver thread
// on cpu 0, both busy-polling; 64-byte slots (a header word and the payload in one line); the
// sender paced at --rate messages/s. Latency: from the sender's clock read before fetch_add to
// each side's delivery (the sender's own at once after its store, as nothing is ahead of it;
// the receiver's when it sees the slot's sequence word), per message, the slower side counts,
// as in `cohort bench`. Nothing here handles a second sender's gaps, a dead sender's claimed
// slot, flow control, stability or views: those are what the floor leaves out.
//
// Output: `result order_floor_p50_ns V`, `result order_floor_p99_ns V`,
// `result order_floor_raw_oneway_ns V`.
#include <sched.h>
#include <time.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

namespace {

constexpr size_t kLine = 64;

bool pin(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  return sched_setaffinity(0, sizeof set, &set) == 0;
}

uint64_t now_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ULL + static_cast<uint64_t>(ts.tv_nsec);
}

// One cache line bounced between cpus 0 and 1: median over blocks of 1000 round trips, halved
// (as `cohort bench` measures it).
double raw_oneway_ns() {
  alignas(kLine) static std::atomic<uint64_t> line{0};
  std::atomic<bool> stop{false};
  pin(1);
  std::thread partner([&] {
    pin(1);
    uint64_t expect = line.load() + 1;
    while (!stop.load(std::memory_order_relaxed)) {
      if (line.load(std::memory_order_acquire) == expect) {
        line.store(expect + 1, std::memory_order_release);
        expect += 2;
      }
    }
  });
  pin(0);
  std::vector<double> blocks;
  uint64_t v = line.load();
  for (int b = 0; b < 200; ++b) {
    const uint64_t t0 = now_ns();
    for (int i = 0; i < 1000; ++i) {
      line.store(++v, std::memory_order_release);
      while (line.load(std::memory_order_acquire) != v + 1) {
      }
      ++v;
    }
    blocks.push_back(static_cast<double>(now_ns() - t0) / 2000.0);
  }
  stop.store(true);
  partner.join();
  std::sort(blocks.begin(), blocks.end());
  return blocks[blocks.size() / 2];
}

struct alignas(kLine) Slot {
  std::atomic<uint64_t> seq;  // position + 1 once the payload is in
  uint64_t sent_ns;
  std::byte payload[kLine - 16];
};
static_assert(sizeof(Slot) == kLine);

struct alignas(kLine) Tail {
  std::atomic<uint64_t> value{0};
};

}  // namespace

int main(int argc, char** argv) {
  uint64_t rate = 20000, messages = 40000;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--rate") == 0) rate = std::strtoull(argv[i + 1], nullptr, 10);
    if (std::strcmp(argv[i], "--messages") == 0) {
      messages = std::strtoull(argv[i + 1], nullptr, 10);
    }
  }
  if (std::thread::hardware_concurrency() < 2 || rate == 0 || messages == 0) {
    std::fprintf(stderr, "order_floor: needs 2 cpus, --rate > 0 and --messages > 0\n");
    return 1;
  }
  const double raw_before = raw_oneway_ns();
  const size_t slots = 1u << 16;  // the ring never wraps onto an unread slot at these rates
  auto log = std::make_unique<Slot[]>(slots);
  Tail tail;
  std::vector<uint64_t> sent_lat(messages), recv_lat(messages);
  std::atomic<bool> ready{false};
  pin(0);
  std::thread receiver([&] {
    pin(0);
    ready.store(true);
    for (uint64_t pos = 0; pos < messages; ++pos) {
      Slot& s = log[pos % slots];
      while (s.seq.load(std::memory_order_acquire) != pos + 1) {
      }
      recv_lat[pos] = now_ns() - s.sent_ns;  // delivered: the next position is the next message
    }
  });
  pin(1);
  while (!ready.load()) {
  }
  const uint64_t interval = 1'000'000'000ULL / rate;
  const uint64_t start = now_ns() + 1'000'000;
  for (uint64_t i = 0; i < messages; ++i) {
    while (now_ns() < start + i * interval) {
    }
    const uint64_t t0 = now_ns();
    const uint64_t pos = tail.value.fetch_add(1, std::memory_order_acq_rel);
    Slot& s = log[pos % slots];
    s.sent_ns = t0;
    s.payload[0] = std::byte{1};
    s.seq.store(pos + 1, std::memory_order_release);
    sent_lat[pos] = now_ns() - t0;  // the sender's own delivery: nothing is ahead of it
  }
  receiver.join();
  const double raw_after = raw_oneway_ns();
  std::vector<uint64_t> worst(messages);
  for (uint64_t i = 0; i < messages; ++i) worst[i] = std::max(sent_lat[i], recv_lat[i]);
  std::sort(worst.begin(), worst.end());
  std::printf("result order_floor_p50_ns %llu\n",
              static_cast<unsigned long long>(worst[messages / 2]));
  std::printf("result order_floor_p99_ns %llu\n",
              static_cast<unsigned long long>(worst[messages * 99 / 100]));
  std::printf("result order_floor_raw_oneway_ns %.3f\n", (raw_before + raw_after) / 2);
  return 0;
}
