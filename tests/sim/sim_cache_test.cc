// The cache workload's suite (meson suite `sim`, tests/sim/NOTES.md "The cache workload"): 500
// seeds of the cooperative cache on every member under every fault of the protocol workload,
// with the cache checker (coherence, no invention, single-flight) and the protocol checker both
// holding (on half the seeds, holders' values read in place, as the service reads a peer's shm
// mirror); determinism of the trace; and the planted bug (a peer's value used without its stamp
// check) caught on a seed that passes without it. COHORT_LONG_TESTS=1 adds a bigger campaign.
#include <gtest/gtest.h>

#include <iostream>
#include <string>

#include "tests/sim/campaign.h"
#include "tests/sim/sim_suite.h"

namespace cohort::sim {
namespace {

// Fewer operations per seed than the protocol's campaign: 500 cache seeds must fit well under a
// minute on two cores.
constexpr uint32_t kOps = 600;

CampaignConfig cache_campaign(uint64_t first, uint64_t seeds) {
  return app_campaign(SimApp::kCache, kOps, first, seeds);
}

void run_and_check(const CampaignConfig& config) {
  const CampaignResult r = run_campaign_keeping_invariants(config);
  // The faults of the protocol's workload are all there...
  expect_protocol_faults_reached(r);
  // ...and the cache's paths are taken, not assumed.
  EXPECT_GT(r.cache_gets, 50 * config.seeds);
  EXPECT_GT(r.cache_peer_hits, 5 * config.seeds);
  EXPECT_GT(r.cache_puts, 5 * config.seeds);
  EXPECT_GT(r.cache_seeds_stale_refused, 0U) << "no peer's stale value ever reached the check";
  EXPECT_GT(r.cache_seeds_peer_failure, 0U) << "no asked member ever left mid-fetch";
  EXPECT_GT(r.cache_false_hits, 0U);
  // Peer reads (half the seeds): holders' values read in place, a crashed one's among them.
  EXPECT_GT(r.cache_seeds_peer_reads, 0U) << "no holder's value was ever read in place";
  EXPECT_GT(r.cache_seeds_ghost_reads, 0U) << "no crashed member's values were ever read";
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
    expect_same_trace(sc, [](const SeedResult& r) { return r.cache_gets; });
  }
}

// The planted bug must be caught within 1,000 seeds, on a seed that passes without it: a peer's
// value used without comparing its stamp with the key's last write delivered here.
TEST(SimCache, CheckerCatchesUncheckedPeerReplies) {
  CampaignConfig config = cache_campaign(1, 0);
  ASSERT_TRUE(parse_app_bug("unchecked_peer_reply", &config.app_bugs));
  expect_planted_bug_caught(config, "unchecked_peer_reply", "sim_cache_mutation_");
}

}  // namespace
}  // namespace cohort::sim
