// bench_micro: the runtime's micro benchmarks and their baselines, in one binary so that
// every figure and its baseline come from the same run on the same two cpus.
//   pingpong.cc   ring ping-pong latency vs one bounced cache line (and two lines)
//   throughput.cc ring throughput in bursts of 1, 8, 32 vs DPDK's rte_ring SP/SC
// The benchmark thread is pinned to the first allowed cpu, partners to the second; both
// busy-poll (one spinning thread per core, shared/notes/measuring.md).
#include <benchmark/benchmark.h>

#include <cstdio>

#include "bench/common/partner.h"

int main(int argc, char** argv) {
  using cohort::bench::cpu_pair;
  const auto pair = cpu_pair();
  if (!cohort::bench::pin_self(pair.main_cpu)) {
    std::fprintf(stderr, "bench_micro: cannot pin the benchmark thread to cpu %d\n", pair.main_cpu);
    return 1;
  }
  benchmark::AddCustomContext("main_cpu", std::to_string(pair.main_cpu));
  benchmark::AddCustomContext("partner_cpu", std::to_string(pair.partner_cpu));
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
