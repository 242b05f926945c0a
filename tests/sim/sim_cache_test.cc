// The cache workload's suite (meson suite `sim`, tests/sim/NOTES.md "The cache workload"): 500
// seeds of the cooperative cache on every member under every fault of the protocol workload,
// with the cache checker (coherence, no invention, single-flight) and the protocol checker both
// holding; determinism of the trace; and the planted bug (a peer's value used without its stamp
// check) caught on a seed that passes without it. COHORT_LONG_TESTS=1 adds a bigger campaign.
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

// Fewer operations per seed than the protocol's campaign: 500 cache seeds must fit well under a
// minute on two cores.
constexpr uint32_t kOps = 600;

CampaignConfig cache_campaign(uint64_t first, uint64_t seeds) {
  CampaignConfig config;
  config.first_seed = first;
  config.seeds = seeds;
  config.ops = kOps;
  config.members_max = 7;
  config.app = SimApp::kCache;
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
  EXPECT_LT(r.group_lost * 20, r.seeds_run) << "the fault guard lets too many groups die";
  // ...and the cache's paths are taken, not assumed.
  EXPECT_GT(r.cache_gets, 50 * config.seeds);
  EXPECT_GT(r.cache_peer_hits, 5 * config.seeds);
  EXPECT_GT(r.cache_puts, 5 * config.seeds);
  EXPECT_GT(r.cache_seeds_stale_refused, 0U) << "no peer's stale value ever reached the check";
  EXPECT_GT(r.cache_seeds_peer_failure, 0U) << "no asked member ever left mid-fetch";
  EXPECT_GT(r.cache_false_hits, 0U);
}

TEST(SimCache, FiveHundredCacheSeedsKeepEveryInvariant) {
  run_and_check(cache_campaign(1, 500));
}

TEST(SimCache, LongCacheCampaign) {
  if (!long_tests()) GTEST_SKIP() << "set COHORT_LONG_TESTS=1 (scripts/test --long) to run it";
  CampaignConfig config = cache_campaign(3'000'001, 5'000);
  config.ops = 2000;
  config.members_max = 9;
  run_and_check(config);
}

TEST(SimCache, SameSeedSameTrace) {
  for (uint64_t seed = 9000; seed < 9006; ++seed) {
    const SeedConfig sc = seed_config(cache_campaign(seed, 1), seed);
    const SeedResult first = run_seed(sc);
    const SeedResult second = run_seed(sc);
    EXPECT_EQ(first.trace_hash, second.trace_hash) << "seed " << seed;
    EXPECT_EQ(first.violations, second.violations) << "seed " << seed;
    EXPECT_EQ(first.cache_gets, second.cache_gets) << "seed " << seed;
    EXPECT_GT(first.cache_gets, 0U) << "seed " << seed;
  }
}

// The planted bug must be caught within 1,000 seeds, on a seed that passes without it: a peer's
// value used without comparing its stamp with the key's last write delivered here.
TEST(SimCache, CheckerCatchesUncheckedPeerReplies) {
  CampaignConfig config = cache_campaign(1, 0);
  ASSERT_TRUE(parse_app_bug("unchecked_peer_reply", &config.app_bugs));
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
      std::cout << "mutation unchecked_peer_reply: caught at seed " << caught.seed << ": "
                << caught.violations.front()
                << "\n  replay: " << replay_command(seed_config(config, caught.seed)) << "\n";
      std::cout << "figure sim_cache_mutation_unchecked_peer_reply_seeds " << caught.seed
                << " seeds\n";
      return;
    }
    next = caught.seed + 1;  // fails without the bug too: not evidence
  }
  FAIL() << "planted bug unchecked_peer_reply was not caught within " << kLimit << " seeds";
}

}  // namespace
}  // namespace cohort::sim
