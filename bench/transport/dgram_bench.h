// Latency and throughput of a transport built on the dgram engine (udp, dpdk), for
// bench_transport: two members, this thread and a partner thread pinned like the shm runs,
// each calling poll() and flush() in its loop as a data core would.
#pragma once

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "bench/common/partner.h"
#include "runtime/clock.h"
#include "runtime/histogram.h"
#include "transport/transport.h"

namespace cohort::bench {

// What every record carries; the writer fills the whole payload.
alignas(64) inline std::byte g_dgram_payload[65536];

namespace dgram_bench {

using transport::Claim;
using transport::ClaimStatus;
using transport::kRecordUser;
using transport::RecordView;

// Claims, fills and commits one record, keeping the transport moving while it waits.
template <typename Transport>
void write(Transport& t, const std::byte* payload, uint32_t size, uint64_t stamp) {
  const TscClock& c = cohort::clock();
  Claim claim;
  while (t.publication().try_claim(size, kRecordUser, &claim) != ClaimStatus::kOk) {
    t.poll(c.now_ns());
    t.flush(c.now_ns());
  }
  std::memcpy(claim.data, payload, size);
  std::memcpy(claim.data, &stamp, sizeof stamp);
  t.publication().commit(claim);
}

template <typename Transport, typename MakePair>
void dgram_latency(const char* name, int round_trips, MakePair make_pair) {
  auto p = make_pair(uint64_t{1} << 20);
  Histogram h = std::move(Histogram::create(10'000'000'000).value());
  Transport& b_side = *p.b;
  {
    Partner partner([&b_side](const StopFlag& flag) {
      const TscClock& c = cohort::clock();
      RecordView v;
      while (!flag.requested()) {
        b_side.poll(c.now_ns());
        auto* in = b_side.subscription(0);
        if (in == nullptr) std::abort();
        if (in->poll(&v, 1) == 1) {
          uint64_t stamp;
          std::memcpy(&stamp, v.payload.data(), sizeof stamp);
          in->release();
          write(b_side, g_dgram_payload, 64, stamp);
        }
        b_side.flush(c.now_ns());
      }
    });
    const TscClock& c = cohort::clock();
    Transport& a = *p.a;
    RecordView v;
    for (int i = -1000; i < round_trips; ++i) {  // the first thousand warm up
      const uint64_t t0 = c.ticks();
      write(a, g_dgram_payload, 64, static_cast<uint64_t>(i));
      a.flush(c.now_ns());
      auto* in = a.subscription(1);
      if (in == nullptr) std::abort();  // members are never declared gone here
      for (;;) {
        a.poll(c.now_ns());
        if (in->poll(&v, 1) == 1) break;
        a.flush(c.now_ns());
      }
      in->release();
      if (i >= 0) h.record(c.ticks_to_ns(c.ticks() - t0) / 2);
    }
  }
  std::printf("result %s_oneway_p50_ns %lu\n", name,
              static_cast<unsigned long>(h.value_at_percentile(50)));
  std::printf("result %s_oneway_p99_ns %lu\n", name,
              static_cast<unsigned long>(h.value_at_percentile(99)));
  std::printf("result %s_oneway_p999_ns %lu\n", name,
              static_cast<unsigned long>(h.value_at_percentile(99.9)));
}

template <typename Transport, typename MakePair>
void dgram_throughput(const char* name, MakePair make_pair) {
  for (uint32_t size : {64u, 1024u, 65536u}) {
    auto p = make_pair(uint64_t{8} << 20);
    const uint64_t records = size == 65536 ? 2000 : (size == 1024 ? 40000 : 200000);
    std::atomic<uint64_t> received{0};
    Transport& b_side = *p.b;
    const TscClock& c = cohort::clock();
    uint64_t t0 = 0;
    {
      Partner partner([&](const StopFlag& flag) {
        RecordView v[32];
        uint64_t got = 0;
        while (got < records && !flag.requested()) {
          b_side.poll(c.now_ns());
          auto* in = b_side.subscription(0);
          if (in == nullptr) std::abort();
          const uint32_t n = in->poll(v, 32);
          for (uint32_t i = 0; i < n; ++i) {
            uint64_t first;
            std::memcpy(&first, v[i].payload.data(), sizeof first);
            if (first != got + i) std::abort();  // in order, each once
          }
          got += n;
          if (n > 0) in->release();
          b_side.flush(c.now_ns());
        }
        received.store(got, std::memory_order_release);
      });
      Transport& a = *p.a;
      t0 = c.ticks();
      for (uint64_t i = 0; i < records; ++i) {
        write(a, g_dgram_payload, size, i);
        if ((i & 15) == 15) {
          a.poll(c.now_ns());
          a.flush(c.now_ns());
        }
      }
      while (received.load(std::memory_order_acquire) < records) {
        a.poll(c.now_ns());
        a.flush(c.now_ns());
      }
    }
    const double s = static_cast<double>(c.ticks_to_ns(c.ticks() - t0)) / 1e9;
    const double rps = static_cast<double>(records) / s;
    std::printf("result %s_%uB_records_per_s %.0f\n", name, size, rps);
    std::printf("result %s_%uB_gbytes_per_s %.3f\n", name, size, rps * size / 1e9);
  }
}

}  // namespace dgram_bench

using dgram_bench::dgram_latency;
using dgram_bench::dgram_throughput;

}  // namespace cohort::bench
