// The udp rows of bench_transport (udp_bench.cc).
#pragma once

namespace cohort::bench {
void udp_latency(int round_trips);
void udp_throughput();
}  // namespace cohort::bench
