// The lock workload's suite (meson suite `sim`, tests/sim/NOTES.md "The lock workload"): 1,000
// seeds of the lock service on every member under every fault of the protocol workload, with
// the lock checker and the protocol checker both holding; determinism of the trace; and the
// planted bugs (a grant taken without waiting for the order; lock ops in total order instead of
// safe) each caught on a seed that passes without it. COHORT_LONG_TESTS=1 adds a bigger
// campaign.
#include <gtest/gtest.h>

#include <iostream>
#include <string>

#include "tests/sim/campaign.h"
#include "tests/sim/sim_suite.h"

namespace cohort::sim {
namespace {

// Fewer operations per seed than the protocol's own campaign: a lock seed checks much more at
// every step, and 1,000 of them must fit the suite's time on two cores.
constexpr uint32_t kOps = 1000;

CampaignConfig lock_campaign(uint64_t first, uint64_t seeds) {
  return app_campaign(SimApp::kLock, kOps, first, seeds);
}

void run_and_check(const CampaignConfig& config) {
  const CampaignResult r = run_campaign_keeping_invariants(config);
  // The faults of the protocol's workload are all there...
  expect_protocol_faults_reached(r);
  EXPECT_GT(r.halves_split, 0U);
  // ...and the lock service's rare paths are reached, not assumed.
  EXPECT_GT(r.lock_held, 10 * config.seeds);
  EXPECT_GT(r.lock_seeds_moved_on, config.seeds / 20)
      << "too few view changes dropped a holder and granted its lock onward";
  EXPECT_GT(r.lock_seeds_lost_hold, 0U);
  EXPECT_GT(r.lock_seeds_timeout, config.seeds / 10);
  EXPECT_GT(r.lock_busy, 0U);
}

TEST(SimLock, ThousandLockSeedsKeepEveryInvariant) {
  run_and_check(lock_campaign(1, 1000));
}

TEST(SimLock, LongLockCampaign) {
  if (!long_tests()) GTEST_SKIP() << "set COHORT_LONG_TESTS=1 (scripts/test --long) to run it";
  CampaignConfig config = lock_campaign(2'000'001, 10'000);
  config.ops = 2000;
  config.members_max = 9;
  run_and_check(config);
}

TEST(SimLock, SameSeedSameTrace) {
  for (uint64_t seed = 7000; seed < 7010; ++seed) {
    const SeedConfig sc = seed_config(lock_campaign(seed, 1), seed);
    expect_same_trace(sc, [](const SeedResult& r) { return r.lock_grants; });
  }
}

// Each planted bug must be caught within 1,000 seeds, on a seed that passes without it:
// grant_before_order (a member takes a lock its own table shows idle without waiting for the
// order) and lock_total_order (lock ops in total, non-uniform order: a member that crashes may
// have granted what the survivors grant to another).
class LockMutation : public ::testing::TestWithParam<std::string_view> {};

TEST_P(LockMutation, CheckerCatchesThePlantedBug) {
  CampaignConfig config = lock_campaign(1, 0);
  ASSERT_TRUE(parse_app_bug(GetParam(), &config.app_bugs));
  expect_planted_bug_caught(config, GetParam(), "sim_lock_mutation_");
}

INSTANTIATE_TEST_SUITE_P(PlantedBugs, LockMutation, ::testing::ValuesIn(kAppBugNames),
                         [](const auto& p) { return std::string(p.param); });

}  // namespace
}  // namespace cohort::sim
