// `cohort-check`: the integration tests' checker driver on log files of a run by hand
// (tests/integration/NOTES.md):
//
//   cohort-check [--killed FILE=T_NS]... FILE...
//
// FILE is a `cohort node --log` file; --killed says that FILE's process was SIGKILLed at T_NS
// (CLOCK_MONOTONIC). Prints the verdict line (and each violation) and every member's facts;
// exits 0 when the checker found nothing.
#include <CLI/CLI.hpp>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "tests/integration/group_check.h"

int main(int argc, char** argv) {
  CLI::App app{"cohort-check: tests/sim's checker over cohort node --log files"};
  std::vector<std::string> files;
  std::vector<std::string> killed;
  bool quiet = false;
  app.add_option("files", files, "cohort node --log files of one run")->required();
  app.add_option("--killed", killed, "FILE=T_NS: FILE's process was SIGKILLed at T_NS");
  app.add_flag("--quiet", quiet, "only the verdict");
  CLI11_PARSE(app, argc, argv);

  std::vector<cohort::itest::LogInput> logs;
  for (const std::string& f : files) logs.push_back({f, 0});
  for (const std::string& k : killed) {
    const size_t eq = k.rfind('=');
    bool found = false;
    for (auto& l : logs) {
      if (eq != std::string::npos && l.path == k.substr(0, eq)) {
        l.killed_ns = std::strtoull(k.c_str() + eq + 1, nullptr, 10);
        found = true;
      }
    }
    if (!found) {
      std::fprintf(stderr, "cohort-check: --killed %s names no FILE given; use FILE=T_NS\n",
                   k.c_str());
      return 2;
    }
  }
  const cohort::itest::CheckReport report = cohort::itest::check_logs(logs);
  if (!quiet) {
    for (const auto& m : report.members) {
      std::printf("member n%u.%u (%s): %s, views %zu, deliveries %" PRIu64 ", sends %" PRIu64
                  "%s%s\n",
                  m.uid.node, m.uid.incarnation, logs[m.file].path.c_str(),
                  cohort::itest::end_name(m.end), m.views.size(), m.deliveries, m.sends_ok,
                  m.restored ? ", restored" : "", m.cut_off ? ", was cut off" : "");
    }
  }
  std::printf("%s\n", report.verdict().c_str());
  return report.ok() ? 0 : 1;
}
