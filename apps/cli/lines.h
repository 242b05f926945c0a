// What the `cohort` subcommands share: the clock their event lines carry (CLOCK_MONOTONIC, so
// times from different member processes on one host compare), and reading `key=value` fields
// back out of those lines (cohort demo and cohort bench read cohort node's output).
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <string>

namespace cohort::cli {

inline uint64_t steady_ns() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

// The value of `key=` in a line of `cohort node` ("" when absent).
inline std::string field(const std::string& line, const std::string& key) {
  const std::string k = " " + key + "=";
  const size_t at = line.find(k);
  if (at == std::string::npos) return "";
  const size_t end = line.find(' ', at + k.size());
  return line.substr(at + k.size(),
                     end == std::string::npos ? std::string::npos : end - at - k.size());
}

inline uint64_t field_u64(const std::string& line, const std::string& key) {
  const std::string v = field(line, key);
  return v.empty() ? 0 : std::strtoull(v.c_str(), nullptr, 10);
}

inline double field_f(const std::string& line, const std::string& key) {
  const std::string v = field(line, key);
  return v.empty() ? 0.0 : std::strtod(v.c_str(), nullptr);
}

}  // namespace cohort::cli
