// bench_transport: latency and throughput of the transports, with their baselines measured
// in the same run on the same two cpus (the first two the process may use; both threads
// busy-poll, one per cpu).
//
//   latency     ping-pong of 64-byte records between member 0 (this thread) and member 1 (a
//               partner thread); one-way = round trip / 2, every round trip recorded in a
//               histogram. Baseline: one cache line bounced between the same two cpus.
//   throughput  records of 64 B, 1 KiB and 64 KiB from member 0 to member 1 as fast as the
//               reader takes them. Baseline: the runtime's SpscRing moving 64-byte items in
//               bursts of 32.
//
// Figure and baseline alternate in blocks of a few milliseconds (the host moves these vCPUs
// between sibling hyperthreads and separate cores during a run; see bench/micro/paired.cc),
// and each ratio is the median of the per-block ratios. The two members are two threads of
// one process, each with its own ShmTransport and its own mappings of the files: the same
// memory path as two processes.
//
// Output: lines "result KEY VALUE" for scripts/bench to read.
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "bench/common/partner.h"
#include "bench/transport/udp_bench.h"
#include "runtime/clock.h"
#include "runtime/histogram.h"
#include "runtime/spsc_ring.h"
#include "transport/shm/shm_transport.h"

namespace cohort::bench {
namespace {

using transport::Claim;
using transport::ClaimStatus;
using transport::kRecordUser;
using transport::LogReader;
using transport::LogWriter;
using transport::RecordView;
using transport::shm::ShmOptions;
using transport::shm::ShmTransport;

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  if (v.empty()) return 0;
  return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

// What a throughput reader does when it finds nothing: a short back-off, so that it does not
// keep pulling the line the writer is filling (the same for the ring and for shm).
constexpr int kEmptyPollPauses = 256;
void empty_poll_backoff() {
  for (int i = 0; i < kEmptyPollPauses; ++i) cpu_relax();
}

struct Members {
  std::unique_ptr<ShmTransport> a;  // member 0, used by this thread
  std::unique_ptr<ShmTransport> b;  // member 1, used by the partner thread
};

Members make_members(uint64_t log_bytes) {
  const std::string group = "bench-" + std::to_string(getpid());
  auto a = ShmTransport::create(ShmOptions{"", group, 0, 2, log_bytes});
  auto b = ShmTransport::create(ShmOptions{"", group, 1, 2, log_bytes});
  if (!a.ok() || !b.ok()) {
    std::fprintf(stderr, "bench_transport: %s\n",
                 (!a.ok() ? a.error() : b.error()).message().c_str());
    std::exit(1);
  }
  Members m{std::move(*a), std::move(*b)};
  if (!m.a->attach_peers(1000).ok() || !m.b->attach_peers(1000).ok()) std::exit(1);
  return m;
}

// The bytes every record carries: the writer fills the whole payload, as an application
// writing its message in place would; the reader looks at the first word only (the order
// check), as Aeron's throughput tests count bytes without reading them.
alignas(64) std::byte g_payload[65536];
uint32_t g_latency_bytes = 64;

void write_record(LogWriter& w, uint32_t size, uint64_t stamp) {
  Claim c;
  while (w.try_claim(size, kRecordUser, &c) != ClaimStatus::kOk) cpu_relax();
  std::memcpy(c.data, g_payload, size);
  std::memcpy(c.data, &stamp, sizeof stamp);
  w.commit(c);
}

uint64_t read_one(LogReader& r) {
  RecordView v;
  while (r.poll(&v, 1) == 0) cpu_relax();
  uint64_t stamp;
  std::memcpy(&stamp, v.payload.data(), sizeof stamp);
  r.release();
  return stamp;
}

// One block of `n` round trips; every one-way time goes into `h`. Returns the block median.
template <typename RoundTrip>
double timed_block(int n, Histogram& h, RoundTrip rt) {
  const TscClock& c = cohort::clock();
  std::vector<double> samples;
  samples.reserve(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    const uint64_t t0 = c.ticks();
    rt();
    const double one_way = static_cast<double>(c.ticks_to_ns(c.ticks() - t0)) / 2;
    samples.push_back(one_way);
    h.record(static_cast<uint64_t>(one_way + 0.5));
  }
  return median(samples);
}

void latency(int blocks, int round_trips) {
  Members m = make_members(1 << 20);
  Histogram raw_h = std::move(Histogram::create(10'000'000'000).value());
  Histogram shm_h = std::move(Histogram::create(10'000'000'000).value());
  std::vector<double> ratios;
  std::vector<double> raw_medians;
  std::vector<double> shm_medians;
  for (int b = 0; b < blocks; ++b) {
    double raw_med = 0;
    double shm_med = 0;
    for (int k = 0; k < 2; ++k) {
      if ((b + k) % 2 == 0) {
        BouncedLine line;
        Partner partner([&line](const StopFlag& flag) { line.echo(flag); });
        raw_med = timed_block(round_trips, raw_h, [&] { line.round_trip(); });
      } else {
        ShmTransport& b_side = *m.b;
        Partner partner([&b_side](const StopFlag& flag) {
          LogReader& in = *b_side.subscription(0);
          LogWriter& out = b_side.publication();
          RecordView v;
          for (;;) {
            while (in.poll(&v, 1) == 0) {
              if (flag.requested()) return;
              cpu_relax();
            }
            uint64_t stamp;
            std::memcpy(&stamp, v.payload.data(), sizeof stamp);
            in.release();
            write_record(out, g_latency_bytes, stamp);
          }
        });
        LogWriter& out = m.a->publication();
        LogReader& in = *m.a->subscription(1);
        uint64_t seq = 0;
        shm_med = timed_block(round_trips, shm_h, [&] {
          write_record(out, g_latency_bytes, seq);
          if (read_one(in) != seq) std::abort();  // the echo must be our record
          ++seq;
        });
      }
    }
    raw_medians.push_back(raw_med);
    shm_medians.push_back(shm_med);
    ratios.push_back(shm_med / raw_med);
  }
  auto pct = [](const Histogram& h, double p) {
    return static_cast<double>(h.value_at_percentile(p));
  };
  std::printf("result raw_oneway_p50_ns %.1f\n", median(raw_medians));
  std::printf("result raw_oneway_p99_ns %.1f\n", pct(raw_h, 99));
  std::printf("result shm_oneway_p50_ns %.1f\n", median(shm_medians));
  std::printf("result shm_oneway_p99_ns %.1f\n", pct(shm_h, 99));
  std::printf("result shm_oneway_p999_ns %.1f\n", pct(shm_h, 99.9));
  std::printf("result shm_oneway_max_ns %.1f\n", static_cast<double>(shm_h.max()));
  std::printf("result shm_oneway_p50_vs_raw %.3f\n", median(ratios));
}

struct Item64 {
  uint64_t words[8];
};

// Records/s of one block: `records` records of `size` bytes from member 0 to member 1.
double shm_block(Members& m, uint32_t size, uint64_t records) {
  std::atomic<uint64_t> received{0};
  ShmTransport& b_side = *m.b;
  const TscClock& c = cohort::clock();
  uint64_t t0 = 0;
  {
    Partner partner([&](const StopFlag& flag) {
      LogReader& in = *b_side.subscription(0);
      RecordView v[32];
      uint64_t got = 0;
      while (got < records) {
        const uint32_t n = in.poll(v, 32);
        if (n == 0) {
          if (flag.requested()) return;
          empty_poll_backoff();
          continue;
        }
        for (uint32_t i = 0; i < n; ++i) {
          uint64_t first;
          std::memcpy(&first, v[i].payload.data(), sizeof first);
          if (first != got + i) std::abort();  // in order, each once
        }
        got += n;
        in.release();
      }
      received.store(got, std::memory_order_release);
    });
    LogWriter& out = m.a->publication();
    t0 = c.ticks();
    for (uint64_t i = 0; i < records; ++i) write_record(out, size, i);
    while (received.load(std::memory_order_acquire) < records) cpu_relax();
  }
  const double s = static_cast<double>(c.ticks_to_ns(c.ticks() - t0)) / 1e9;
  return static_cast<double>(records) / s;
}

double ring_block(uint64_t items) {
  // As many items as the shm log of the 64-byte blocks holds records (4 MiB / 80 B = 52k),
  // rounded up to a power of two: neither side gets the bigger buffer.
  auto ring = std::move(SpscRing<Item64>::create(1 << 16).value());
  std::atomic<uint64_t> received{0};
  const TscClock& c = cohort::clock();
  uint64_t t0 = 0;
  {
    Partner partner([&](const StopFlag& flag) {
      Item64 out[32];
      uint64_t got = 0;
      while (got < items) {
        const uint32_t n = ring->dequeue_burst(out, 32);
        if (n == 0) {
          if (flag.requested()) return;
          empty_poll_backoff();
          continue;
        }
        for (uint32_t i = 0; i < n; ++i) {
          if (out[i].words[0] != got + i) std::abort();
        }
        got += n;
      }
      received.store(got, std::memory_order_release);
    });
    Item64 batch[32] = {};
    t0 = c.ticks();
    for (uint64_t i = 0; i < items; i += 32) {
      for (uint32_t k = 0; k < 32; ++k) batch[k].words[0] = i + k;
      uint32_t done = 0;
      while (done < 32) {
        const uint32_t n = ring->enqueue_burst(batch + done, 32 - done);
        if (n == 0) cpu_relax();
        done += n;
      }
    }
    while (received.load(std::memory_order_acquire) < items) cpu_relax();
  }
  const double s = static_cast<double>(c.ticks_to_ns(c.ticks() - t0)) / 1e9;
  return static_cast<double>(items) / s;
}

void throughput(int blocks) {
  // 64-byte records get a 4 MiB log (52k records, as many as the ring's items); the bigger
  // records get at least 4 records' worth (a record may take a quarter of the log).
  Members m = make_members(4 << 20);
  std::vector<double> ring_ips;
  std::vector<double> shm64;
  std::vector<double> ratio;
  for (int b = 0; b < blocks; ++b) {
    double r = 0;
    double s = 0;
    for (int k = 0; k < 2; ++k) {
      if ((b + k) % 2 == 0)
        r = ring_block(1 << 18);
      else
        s = shm_block(m, 64, 1 << 18);
    }
    ring_ips.push_back(r);
    shm64.push_back(s);
    ratio.push_back(s / r);
  }
  std::printf("result ring_64B_items_per_s %.0f\n", median(ring_ips));
  std::printf("result shm_64B_records_per_s %.0f\n", median(shm64));
  std::printf("result shm_64B_throughput_vs_ring %.3f\n", median(ratio));
  m = Members{};  // leave before the next pair joins the same group
  for (uint32_t size : {1024u, 65536u}) {
    Members big = make_members(size == 1024 ? (8 << 20) : (64 << 20));
    std::vector<double> rps;
    const uint64_t records = size == 1024 ? (1 << 16) : (1 << 11);
    for (int b = 0; b < blocks / 4 + 1; ++b) rps.push_back(shm_block(big, size, records));
    const double med = median(rps);
    std::printf("result shm_%uB_records_per_s %.0f\n", size, med);
    std::printf("result shm_%uB_gbytes_per_s %.3f\n", size, med * size / 1e9);
  }
  std::printf("result shm_64B_gbytes_per_s %.3f\n", median(shm64) * 64 / 1e9);
}

}  // namespace
}  // namespace cohort::bench

int main(int argc, char** argv) {
  using namespace cohort::bench;
  int blocks = 40;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::string(argv[i]) == "--blocks") blocks = std::atoi(argv[i + 1]);
    if (std::string(argv[i]) == "--latency-bytes")
      g_latency_bytes = static_cast<uint32_t>(std::atoi(argv[i + 1]));
  }
  if (cpu_pair().partner_cpu < 0 || !pin_self(cpu_pair().main_cpu)) {
    std::fprintf(stderr, "bench_transport: needs two allowed cpus\n");
    return 1;
  }
  (void)cohort::clock();  // calibrate before measuring
  std::printf("result cpus %d,%d\n", cpu_pair().main_cpu, cpu_pair().partner_cpu);
  latency(blocks, 2000);
  throughput(blocks / 2);
  udp_latency(20000);
  udp_throughput();
#ifdef COHORT_BENCH_DPDK
  dpdk_latency(20000);
  dpdk_throughput();
#endif
  return 0;
}
