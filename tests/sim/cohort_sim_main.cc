// cohort-sim: seeded simulator campaigns against the group protocol (tests/sim/NOTES.md).
//
//   cohort-sim --seeds 1000 --ops 2000 --first-seed 1 --members-max 7 [--threads T]
//   cohort-sim --seed 42 --ops 2000 --members-max 7 [--bug reorder_cut]   (replay one, verbose)
//   cohort-sim --app lock --seeds 1000 [--bug grant_before_order]          (the lock workload)
//   cohort-sim --app cache --seeds 500 [--bug unchecked_peer_reply]        (the cache workload)
//
// Ends with `figure` lines; exits 1 when any seed shows a violation.
#include <CLI/CLI.hpp>
#include <iostream>
#include <sstream>
#include <string>

#include "tests/sim/campaign.h"

int main(int argc, char** argv) {
  using namespace cohort::sim;
  CLI::App app{"cohort-sim: seeded fault campaigns against the group protocol"};
  CampaignConfig config;
  uint64_t replay_seed = 0;
  std::string bug;
  std::string sim_app = "counter";
  app.add_option("--seeds", config.seeds, "number of seeds")
      ->check(CLI::Range(1ULL, 100'000'000ULL));
  app.add_option("--first-seed", config.first_seed, "first seed")->check(CLI::PositiveNumber);
  app.add_option("--ops", config.ops, "workload operations per seed")
      ->check(CLI::Range(1U, 10'000'000U));
  app.add_option("--members-max", config.members_max, "nodes per seed: 3..K (K <= 12)")
      ->check(CLI::Range(3U, 12U));
  app.add_option("--seed", replay_seed, "replay one seed, verbosely")->check(CLI::PositiveNumber);
  app.add_option(
      "--bug", bug,
      "plant bugs (comma separated): skip_flush, minority_view, deliver_before_order, "
      "reorder_cut; with --app lock also grant_before_order, lock_total_order; with --app "
      "cache also unchecked_peer_reply");
  app.add_option("--app", sim_app,
                 "the members' application: counter (the default), lock (the lock service "
                 "on top, with its checker), p2p (point-to-point requests and replies, "
                 "checked) or cache (the cooperative cache, with its checker)")
      ->check(CLI::IsMember({"counter", "lock", "p2p", "cache"}));
  std::string order = "mixed";
  app.add_option("--order", order,
                 "how total order is made: sequencer, tickets (one hop: every sender takes its "
                 "gseqs from a shared counter, as over shm), or mixed (the default: half the "
                 "seeds each)")
      ->check(CLI::IsMember({"mixed", "sequencer", "tickets"}));
  app.add_option("--threads", config.threads, "worker threads (default: hardware concurrency)");
  CLI11_PARSE(app, argc, argv);

  if (sim_app == "lock") config.app = SimApp::kLock;
  if (sim_app == "cache") config.app = SimApp::kCache;
  if (sim_app == "p2p") config.app = SimApp::kP2p;
  if (order == "sequencer") config.order = SimOrder::kSequencer;
  if (order == "tickets") config.order = SimOrder::kTickets;
  std::stringstream names(bug);
  for (std::string one; std::getline(names, one, ',');) {
    if (one.empty() || parse_bug(one, &config.bugs)) continue;
    if (config.app != SimApp::kCounter && parse_app_bug(one, &config.app_bugs)) continue;
    std::cerr << "cohort-sim: unknown bug '" << one
              << "'; use skip_flush, minority_view, deliver_before_order or reorder_cut, or "
                 "grant_before_order or lock_total_order with --app lock\n";
    return 2;
  }

  if (replay_seed != 0) {
    SeedConfig sc = seed_config(config, replay_seed);
    sc.verbose = &std::cout;
    config.first_seed = replay_seed;
    config.seeds = 1;
    install_abort_reporter(config);
    const SeedResult r = run_seed(sc);
    std::cout << "trace_hash " << std::hex << r.trace_hash << std::dec << "\n";
    std::cout << "coverage: leader_crash_in_flush " << r.leader_crash_in_flush
              << " sequencer_crash_in_flight " << r.sequencer_crash_in_flight << " partition_heal "
              << r.partition_heal << " join_under_load " << r.join_under_load << " halves_split "
              << r.halves_split << "\n";
    if (!r.ok()) std::cout << "replay: " << replay_command(sc) << "\n";
    std::cout << "figure sim_violations " << (r.ok() ? 0 : 1) << " count\n";
    return r.ok() ? 0 : 1;
  }

  install_abort_reporter(config);
  const CampaignResult r = run_campaign(config);
  print_summary(config, r, std::cout);
  return r.failures.empty() ? 0 : 1;
}
