// The lock workload's suite (meson suite `sim`, tests/sim/NOTES.md "The lock workload"): 1,000
// seeds of the lock service on every member under every fault of the protocol workload, with
// the lock checker and the protocol checker both holding; determinism of the trace; and the
// planted bugs (a grant taken without waiting for the order; lock ops in total order instead of
// safe) each caught on a seed that passes without it. COHORT_LONG_TESTS=1 adds a bigger
// campaign.
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

// Fewer operations per seed than the protocol's own campaign: a lock seed checks much more at
// every step, and 1,000 of them must fit the suite's time on two cores.
constexpr uint32_t kOps = 1000;

CampaignConfig lock_campaign(uint64_t first, uint64_t seeds) {
  CampaignConfig config;
  config.first_seed = first;
  config.seeds = seeds;
  config.ops = kOps;
  config.members_max = 7;
  config.app = SimApp::kLock;
  return config;
}

std::string failures_text(const CampaignConfig& config, const CampaignResult& r) {
  std::string out;
  for (const SeedResult& s : r.failures) {
    out += "seed " + std::to_string(s.seed) + ": " + s.violations.front() +
           "\n  replay: " + replay_command(seed_config(config, s.seed)) + "\n";
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
  // The faults of the protocol's workload are all there...
  EXPECT_GT(r.leader_crash_in_flush, 0U);
  EXPECT_GT(r.sequencer_crash_in_flight, 0U);
  EXPECT_GT(r.partition_heal, 0U);
  EXPECT_GT(r.join_under_load, 0U);
  EXPECT_GT(r.halves_split, 0U);
  EXPECT_LT(r.group_lost * 20, r.seeds_run) << "the fault guard lets too many groups die";
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
    const SeedResult first = run_seed(sc);
    const SeedResult second = run_seed(sc);
    EXPECT_EQ(first.trace_hash, second.trace_hash) << "seed " << seed;
    EXPECT_EQ(first.violations, second.violations) << "seed " << seed;
    EXPECT_EQ(first.lock_grants, second.lock_grants) << "seed " << seed;
    EXPECT_GT(first.lock_grants, 0U) << "seed " << seed;
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
    CampaignConfig clean = config;
    clean.app_bugs = AppBugs{};
    if (run_seed(seed_config(clean, caught.seed)).ok()) {
      std::cout << "mutation " << GetParam() << ": caught at seed " << caught.seed << ": "
                << caught.violations.front()
                << "\n  replay: " << replay_command(seed_config(config, caught.seed)) << "\n";
      std::cout << "figure sim_lock_mutation_" << GetParam() << "_seeds " << caught.seed
                << " seeds\n";
      return;
    }
    next = caught.seed + 1;  // fails without the bug too: not evidence
  }
  FAIL() << "planted bug " << GetParam() << " was not caught within " << kLimit << " seeds";
}

INSTANTIATE_TEST_SUITE_P(PlantedBugs, LockMutation, ::testing::ValuesIn(kAppBugNames),
                         [](const auto& p) { return std::string(p.param); });

}  // namespace
}  // namespace cohort::sim
