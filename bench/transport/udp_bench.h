// The udp and dpdk rows of bench_transport (udp_bench.cc, dpdk_bench.cc).
#pragma once

namespace cohort::bench {
void udp_latency(int round_trips);
void udp_throughput();
void dpdk_latency(int round_trips);  // only in a build with DPDK
void dpdk_throughput();
}  // namespace cohort::bench
