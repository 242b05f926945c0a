// The simulator's suite (meson suite `sim`): a campaign of 1,000 seeds with every invariant
// checked and the rare paths reached, determinism of the trace, and the mutation self-test
// that proves the checker catches each planted bug. COHORT_LONG_TESTS=1 adds a bigger
// campaign. Seeds run on threads; every figure printed is the same for any thread count.
#include <gtest/gtest.h>

#include <cstdlib>
#include <iostream>
#include <string>

#include "tests/sim/campaign.h"

namespace cohort::sim {
namespace {

bool long_tests() {
  const char* v = std::getenv("COHORT_LONG_TESTS");
  return v != nullptr && std::string(v) != "0" && std::string(v) != "";
}

std::string failures_text(const CampaignConfig& config, const CampaignResult& r) {
  std::string out;
  for (const SeedResult& s : r.failures) {
    SeedConfig sc;
    sc.seed = s.seed;
    sc.ops = config.ops;
    sc.members_max = config.members_max;
    sc.bugs = config.bugs;
    out += "seed " + std::to_string(s.seed) + ": " + s.violations.front() +
           "\n  replay: " + replay_command(sc) + "\n";
  }
  return out;
}

void run_and_check(const CampaignConfig& config) {
  install_abort_reporter(config);
  const CampaignResult r = run_campaign(config);
  print_summary(config, r, std::cout);
  EXPECT_EQ(r.seeds_run, config.seeds);
  EXPECT_TRUE(r.failures.empty()) << r.failures.size() << " seeds broke an invariant:\n"
                                  << failures_text(config, r);
  // The rare paths are reached, not assumed.
  EXPECT_GT(r.leader_crash_in_flush, 0U);
  EXPECT_GT(r.sequencer_crash_in_flight, 0U);
  EXPECT_GT(r.partition_heal, 0U);
  EXPECT_GT(r.join_under_load, 0U);
  // The guard keeps the group alive: seeds where faults killed a majority stay rare.
  EXPECT_LT(r.group_lost * 20, r.seeds_run) << "the fault guard lets too many groups die";
}

TEST(Sim, ThousandSeedsKeepEveryInvariant) {
  CampaignConfig config;
  config.first_seed = 1;
  config.seeds = 1000;
  config.ops = 2000;
  config.members_max = 7;
  run_and_check(config);
}

TEST(Sim, LongCampaign) {
  if (!long_tests()) GTEST_SKIP() << "set COHORT_LONG_TESTS=1 (scripts/test --long) to run it";
  CampaignConfig config;
  config.first_seed = 1'000'001;
  config.seeds = 20'000;
  config.ops = 3000;
  config.members_max = 9;
  run_and_check(config);
}

TEST(Sim, SameSeedSameTrace) {
  CampaignConfig config;
  config.first_seed = 5000;
  config.seeds = 20;
  config.ops = 2000;
  config.threads = 2;
  const CampaignResult a = run_campaign(config);
  for (uint64_t i = 0; i < config.seeds; ++i) {
    SeedConfig sc;
    sc.seed = config.first_seed + i;
    sc.ops = config.ops;
    sc.members_max = config.members_max;
    const SeedResult first = run_seed(sc);
    const SeedResult second = run_seed(sc);
    EXPECT_EQ(first.trace_hash, second.trace_hash) << "seed " << sc.seed;
    EXPECT_EQ(first.violations, second.violations) << "seed " << sc.seed;
    EXPECT_EQ(first.sim_ms, second.sim_ms) << "seed " << sc.seed;
    EXPECT_NE(first.trace_hash, 0U);
  }
  // On threads too: the campaign's liveness figures equal those of the single runs.
  EXPECT_EQ(a.seeds_run, config.seeds);
}

// Each planted bug must be caught by the checker within 1,000 seeds, on a seed that passes
// without the bug (so an unrelated violation of the protocol cannot stand in for it).
class Mutation : public ::testing::TestWithParam<std::string_view> {};

TEST_P(Mutation, CheckerCatchesThePlantedBug) {
  CampaignConfig config;
  config.ops = 2000;
  config.members_max = 7;
  ASSERT_TRUE(parse_bug(GetParam(), &config.bugs));
  install_abort_reporter(config);
  constexpr uint64_t kLimit = 1000;
  uint64_t next = 1;
  while (next <= kLimit) {
    config.first_seed = next;
    config.seeds = kLimit - next + 1;
    config.stop_at_first_violation = true;
    const CampaignResult r = run_campaign(config);
    if (r.first_violation_seed == 0) break;
    const SeedResult& caught = r.failures.front();
    SeedConfig clean;
    clean.seed = caught.seed;
    clean.ops = config.ops;
    clean.members_max = config.members_max;
    if (run_seed(clean).ok()) {
      SeedConfig sc = clean;
      sc.bugs = config.bugs;
      std::cout << "mutation " << GetParam() << ": caught at seed " << caught.seed << " (seeds "
                << 1 << ".." << caught.seed << " tried): " << caught.violations.front()
                << "\n  replay: " << replay_command(sc) << "\n";
      std::cout << "figure sim_mutation_" << GetParam() << "_seeds " << caught.seed << " seeds\n";
      return;
    }
    next = caught.seed + 1;  // the seed fails without the bug too: not evidence
  }
  FAIL() << "planted bug " << GetParam() << " was not caught within " << kLimit << " seeds";
}

INSTANTIATE_TEST_SUITE_P(PlantedBugs, Mutation, ::testing::ValuesIn(kBugNames),
                         [](const auto& p) { return std::string(p.param); });

}  // namespace
}  // namespace cohort::sim
