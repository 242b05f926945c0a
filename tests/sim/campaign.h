// A campaign: many seeds, run on threads (seeds are independent), summed up in the same words
// whatever the thread count: coverage of the rare paths, the liveness distribution, and the
// `figure` lines. Used by the cohort-sim program and the gtest suite.
#pragma once

#include <cstdint>
#include <functional>
#include <iosfwd>
#include <vector>

#include "tests/sim/workload.h"

namespace cohort::sim {

struct CampaignConfig {
  uint64_t first_seed = 1;
  uint64_t seeds = 1000;
  uint32_t ops = 2000;
  uint32_t members_max = 7;
  membership::PlantedBugs bugs{};
  SimApp app = SimApp::kCounter;
  AppBugs app_bugs{};
  SimOrder order = SimOrder::kMixed;
  uint32_t threads = 0;  // 0: the hardware's concurrency
  // Stop at the first seed (in seed order) that shows a violation: seeds below it all run,
  // so which seed that is does not depend on the threads.
  bool stop_at_first_violation = false;
};

struct CampaignResult {
  uint64_t seeds_run = 0;
  std::vector<SeedResult> failures;   // in seed order
  uint64_t first_violation_seed = 0;  // 0: none
  // Seeds that reached each rare path.
  uint64_t leader_crash_in_flush = 0;
  uint64_t sequencer_crash_in_flight = 0;
  uint64_t partition_heal = 0;
  uint64_t join_under_load = 0;
  uint64_t halves_split = 0;
  uint64_t group_lost = 0;           // seeds whose faults killed a majority: liveness not asked
  std::vector<uint64_t> lost_seeds;  // the first few of them, to replay
  uint64_t protocol_leader_failed_in_flush = 0;
  uint64_t protocol_sequencer_failed_in_flight = 0;
  uint64_t protocol_cut_adopted = 0;
  uint64_t protocol_relays_served = 0;
  std::vector<double> liveness_ms;  // converged seeds, sorted
  uint64_t sim_ms = 0;
  uint64_t deliveries = 0;
  uint64_t installs = 0;
  // The lock workload: totals, and seeds that reached its rare paths.
  uint64_t lock_acquires = 0;
  uint64_t lock_grants = 0;
  uint64_t lock_held = 0;
  uint64_t lock_timeouts = 0;
  uint64_t lock_busy = 0;
  uint64_t lock_lost_holds = 0;
  uint64_t lock_seeds_moved_on = 0;  // a view change dropped a holder and granted onward
  uint64_t lock_seeds_lost_hold = 0;
  uint64_t lock_seeds_timeout = 0;
  // The cache workload: totals, and seeds that reached its rare paths.
  uint64_t cache_gets = 0;
  uint64_t cache_peer_hits = 0;
  uint64_t cache_loads = 0;
  uint64_t cache_puts = 0;
  uint64_t cache_stale_refused = 0;
  uint64_t cache_false_hits = 0;
  uint64_t cache_seeds_stale_refused = 0;  // a peer's stale value refused by the stamp check
  uint64_t cache_seeds_peer_failure = 0;   // an asked member left before it replied
  uint64_t seeds_tickets = 0;              // seeds ordered by tickets
  uint64_t seeds_tickets_burned = 0;  // of them, a crashed member had taken a gseq it never sent
  uint64_t tickets_burned = 0;
  uint64_t cache_peer_reads = 0;
  uint64_t cache_seeds_peer_reads = 0;   // holders' values read in place
  uint64_t cache_seeds_ghost_reads = 0;  // a crashed member's values read in place
  // The point-to-point workload: totals, and seeds where a target left with requests to it.
  uint64_t p2p_requests = 0;
  uint64_t p2p_replies = 0;
  uint64_t p2p_failed = 0;
  uint64_t p2p_seeds_failed = 0;
  double wall_s = 0;
  uint32_t threads = 0;

  double liveness_percentile(double p) const;
  bool coverage_complete() const {
    return leader_crash_in_flush > 0 && sequencer_crash_in_flight > 0 && partition_heal > 0 &&
           join_under_load > 0;
  }
};

CampaignResult run_campaign(const CampaignConfig& config);

// The SeedConfig of one seed of the campaign.
SeedConfig seed_config(const CampaignConfig& config, uint64_t seed);

// The summary: failures with their replay commands, coverage, the liveness distribution and
// the `figure` lines.
void print_summary(const CampaignConfig& config, const CampaignResult& result, std::ostream& out);

// On an abort (a protocol assertion), print the seeds this process was running and how to
// replay them. Installed once by programs that run campaigns.
void install_abort_reporter(const CampaignConfig& config);

}  // namespace cohort::sim
