// What the simulator's gtest suites (sim_test, sim_lock_test, sim_cache_test, sim_p2p_test)
// share: the switch for the long campaigns, running a campaign that must keep every invariant,
// the protocol's rare faults every campaign must reach, and the mutation self-test (NOTES.md,
// "The mutation self-test"). Each suite keeps its own figures and its own paths to reach.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <string>
#include <string_view>

#include "tests/sim/campaign.h"

namespace cohort::sim {

// COHORT_LONG_TESTS=1 (scripts/test --long) adds the bigger campaigns.
inline bool long_tests() {
  const char* v = std::getenv("COHORT_LONG_TESTS");
  return v != nullptr && std::string(v) != "0" && std::string(v) != "";
}

// A campaign of seeds first..first+seeds-1 of `app`'s workload, `ops` operations each, on up to
// 7 members.
inline CampaignConfig app_campaign(SimApp app, uint32_t ops, uint64_t first, uint64_t seeds) {
  CampaignConfig config;
  config.first_seed = first;
  config.seeds = seeds;
  config.ops = ops;
  config.members_max = 7;
  config.app = app;
  return config;
}

// Each failed seed: its first violation and the command that replays it.
inline std::string failures_text(const CampaignConfig& config, const CampaignResult& r) {
  std::string out;
  for (const SeedResult& s : r.failures) {
    out += "seed " + std::to_string(s.seed) + ": " + s.violations.front() +
           "\n  replay: " + replay_command(seed_config(config, s.seed)) + "\n";
  }
  return out;
}

// Runs `config` (an abort prints its replay command), prints the summary, and expects every
// seed run and none broken. The caller checks what its workload must reach.
inline CampaignResult run_campaign_keeping_invariants(const CampaignConfig& config) {
  install_abort_reporter(config);
  const CampaignResult r = run_campaign(config);
  print_summary(config, r, std::cout);
  EXPECT_EQ(r.seeds_run, config.seeds);
  EXPECT_TRUE(r.failures.empty()) << r.failures.size() << " seeds broke an invariant:\n"
                                  << failures_text(config, r);
  return r;
}

// The protocol's rare faults are reached, not assumed, and the guard keeps the group alive:
// seeds where faults killed a majority stay rare.
inline void expect_protocol_faults_reached(const CampaignResult& r) {
  EXPECT_GT(r.leader_crash_in_flush, 0U);
  EXPECT_GT(r.sequencer_crash_in_flight, 0U);
  EXPECT_GT(r.partition_heal, 0U);
  EXPECT_GT(r.join_under_load, 0U);
  EXPECT_LT(r.group_lost * 20, r.seeds_run) << "the fault guard lets too many groups die";
  // Both orders ran (mixed), and with tickets members died holding gseqs they never sent.
  EXPECT_GT(r.seeds_tickets, 0U);
  EXPECT_LT(r.seeds_tickets, r.seeds_run);
  EXPECT_GT(r.seeds_tickets_burned, 0U) << "no seed left a hole in the order to fill";
}

// Determinism: `sc` run twice leaves the same trace and the same violations, and the same
// `figure(result)`, nonzero (the workload's own count: so the workload did run).
template <typename Figure>
void expect_same_trace(const SeedConfig& sc, Figure figure) {
  const SeedResult first = run_seed(sc);
  const SeedResult second = run_seed(sc);
  EXPECT_EQ(first.trace_hash, second.trace_hash) << "seed " << sc.seed;
  EXPECT_EQ(first.violations, second.violations) << "seed " << sc.seed;
  EXPECT_EQ(figure(first), figure(second)) << "seed " << sc.seed;
  EXPECT_GT(figure(first), 0U) << "seed " << sc.seed;
}

// The mutation self-test: `planted` carries one planted bug (`bug`, in `bugs` or `app_bugs`);
// it must break an invariant within seeds 1..1000, on a seed that passes without it (so that
// an unrelated violation cannot stand in for the planted one). Prints the seed, the command
// that replays it, and the figure `<figure_prefix><bug>_seeds`.
inline void expect_planted_bug_caught(CampaignConfig planted, std::string_view bug,
                                      std::string_view figure_prefix) {
  install_abort_reporter(planted);
  CampaignConfig clean = planted;
  clean.bugs = membership::PlantedBugs{};
  clean.app_bugs = AppBugs{};
  constexpr uint64_t kLimit = 1000;
  uint64_t next = 1;
  while (next <= kLimit) {
    planted.first_seed = next;
    planted.seeds = kLimit - next + 1;
    planted.stop_at_first_violation = true;
    const CampaignResult r = run_campaign(planted);
    if (r.first_violation_seed == 0) break;
    const SeedResult& caught = r.failures.front();
    if (run_seed(seed_config(clean, caught.seed)).ok()) {
      std::cout << "mutation " << bug << ": caught at seed " << caught.seed << " (seeds 1.."
                << caught.seed << " tried): " << caught.violations.front()
                << "\n  replay: " << replay_command(seed_config(planted, caught.seed)) << "\n";
      std::cout << "figure " << figure_prefix << bug << "_seeds " << caught.seed << " seeds\n";
      return;
    }
    next = caught.seed + 1;  // the seed fails without the bug too: not evidence
  }
  ADD_FAILURE() << "planted bug " << bug << " was not caught within " << kLimit << " seeds";
}

}  // namespace cohort::sim
