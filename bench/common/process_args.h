// Plumbing of the benchmark programs that scripts/bench runs as processes (bench_lock,
// bench_cache): `PROGRAM COMMAND --name value ...` arguments, a monotonic clock, and the
// `result NAME VALUE` lines of a latency histogram that the script turns into figures.
#pragma once

#include <chrono>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "runtime/histogram.h"

namespace cohort::bench {

inline uint64_t mono_ns() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

// The words after the command (argv[2] on).
struct Args {
  std::vector<std::string> words;

  static Args after_command(int argc, char** argv) {
    Args a;
    for (int i = 2; i < argc; ++i) a.words.emplace_back(argv[i]);
    return a;
  }
  std::string get(const char* name, const char* fallback = "") const {
    for (size_t i = 0; i + 1 < words.size(); ++i) {
      if (words[i] == name) return words[i + 1];
    }
    return fallback;
  }
  uint64_t num(const char* name, const char* fallback) const {
    return std::stoull(get(name, fallback));
  }
  bool has(const char* name) const {
    for (const std::string& w : words) {
      if (w == name) return true;
    }
    return false;
  }
};

// result PREFIX_n, PREFIX_p50_us, PREFIX_p99_us.
inline void print_latency(const std::string& prefix, const Histogram& h) {
  std::printf("result %s_n %" PRIu64 "\n", prefix.c_str(), h.count());
  std::printf("result %s_p50_us %.2f\n", prefix.c_str(),
              static_cast<double>(h.value_at_percentile(50)) / 1e3);
  std::printf("result %s_p99_us %.2f\n", prefix.c_str(),
              static_cast<double>(h.value_at_percentile(99)) / 1e3);
}

}  // namespace cohort::bench
