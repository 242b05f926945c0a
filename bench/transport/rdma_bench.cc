// bench_rdma: the rdma transport beside the udp transport, measured in the same process on the
// same machine: one-way latency of 64-byte records (p50/p99/p99.9, half the round trip) and
// throughput of 64 B, 1 KiB and 64 KiB records, two members, this thread and a partner thread
// pinned as in bench_transport (dgram_bench.h runs both transports through the same loops).
// Meant for the Soft-RoCE guest of scripts/rdma-vm (scripts/bench transport runs it there):
// its rdma figures are SOFTWARE RDMA (rxe, in an emulated CPU), useful only as a ratio to udp
// measured in the same guest, never as hardware latency. Prints "result NAME VALUE" lines and
// the two ratios rdma_oneway_p50_vs_udp and rdma_64B_throughput_vs_udp.
//
//   bench_rdma [--round-trips N] [--device D]
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "bench/transport/dgram_bench.h"
#include "bench/transport/udp_bench.h"
#include "transport/rdma/rdma_transport.h"

namespace cohort::bench {
namespace {

using transport::rdma::RdmaOptions;
using transport::rdma::RdmaTransport;

std::string g_device;
// The pair being measured, for the watchdog: a run that stalls (a queue pair in error, a
// guest too slow for the retry timer) says why instead of hanging until the guest's timeout.
// Taken only when a pair is made or destroyed and by the watchdog, never while measuring.
std::mutex g_watch_mutex;
RdmaTransport* g_watch_a = nullptr;
RdmaTransport* g_watch_b = nullptr;

struct RdmaPair {
  std::unique_ptr<RdmaTransport> a;
  std::unique_ptr<RdmaTransport> b;
  RdmaPair(std::unique_ptr<RdmaTransport> x, std::unique_ptr<RdmaTransport> y)
      : a(std::move(x)), b(std::move(y)) {
    const std::lock_guard<std::mutex> lock(g_watch_mutex);
    g_watch_a = a.get();
    g_watch_b = b.get();
  }
  RdmaPair(RdmaPair&&) = delete;
  ~RdmaPair() {
    const std::lock_guard<std::mutex> lock(g_watch_mutex);
    g_watch_a = nullptr;
    g_watch_b = nullptr;
  }
};

RdmaPair make_rdma_pair(uint64_t log_bytes) {
  static int round = 0;
  // Ports from the pid and the round (TCP may keep the last pair's in TIME_WAIT).
  const int base = 40000 + static_cast<int>(getpid() % 1000) * 16 + (round++ % 4) * 4;
  RdmaOptions o;
  o.members = {"127.0.0.1:" + std::to_string(base), "127.0.0.1:" + std::to_string(base + 2)};
  o.group = "bench";
  o.log_bytes = log_bytes;
  o.device = g_device;
  o.self = 0;
  auto a = RdmaTransport::create(o);
  o.self = 1;
  auto b = RdmaTransport::create(o);
  if (!a.ok() || !b.ok()) {
    std::fprintf(stderr, "bench_rdma: %s\n", (!a.ok() ? a.error() : b.error()).message().c_str());
    std::exit(1);
  }
  // Connect them: each handshake step is one poll() of the side whose turn it is.
  const TscClock& c = cohort::clock();
  const uint64_t deadline = c.now_ns() + 10'000'000'000ull;
  while (((*a)->connected() == 0 || (*b)->connected() == 0) && c.now_ns() < deadline) {
    (*a)->poll(c.now_ns());
    (*b)->poll(c.now_ns());
  }
  if ((*a)->connected() == 0 || (*b)->connected() == 0) {
    std::fprintf(stderr, "bench_rdma: the pair did not connect in 10 s: %s\n",
                 (*a)->describe().c_str());
    std::exit(1);
  }
  return RdmaPair(std::move(*a), std::move(*b));
}

}  // namespace
}  // namespace cohort::bench

int main(int argc, char** argv) {
  using namespace cohort::bench;
  int round_trips = 20000;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::string(argv[i]) == "--round-trips") round_trips = std::atoi(argv[i + 1]);
    if (std::string(argv[i]) == "--device") g_device = argv[i + 1];
  }
  if (cpu_pair().partner_cpu < 0 || !pin_self(cpu_pair().main_cpu)) {
    std::fprintf(stderr, "bench_rdma: needs two allowed cpus\n");
    return 1;
  }
  setvbuf(stdout, nullptr, _IOLBF, 0);  // results as they come, even from a run that stalls
  (void)cohort::clock();                // calibrate before measuring
  // Every 30 s, the pair's counters on stderr (racy reads of plain counters: for people only).
  std::thread([] {
    for (;;) {
      std::this_thread::sleep_for(std::chrono::seconds(30));
      const std::lock_guard<std::mutex> lock(g_watch_mutex);
      if (g_watch_a != nullptr && g_watch_b != nullptr) {
        std::fprintf(stderr, "bench_rdma: still running; a: %s\nb: %s\n",
                     g_watch_a->describe().c_str(), g_watch_b->describe().c_str());
      }
    }
  }).detach();
  std::printf("result cpus %d,%d\n", cpu_pair().main_cpu, cpu_pair().partner_cpu);
  // Interleaved, so both see the same machine: udp, rdma, udp, rdma.
  udp_latency(round_trips);
  dgram_latency<RdmaTransport>("rdma", round_trips, make_rdma_pair);
  udp_throughput();
  dgram_throughput<RdmaTransport>("rdma", make_rdma_pair);
  return 0;
}
