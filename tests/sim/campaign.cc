// Campaigns of seeds on threads (campaign.h).
#include "tests/sim/campaign.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <ostream>
#include <thread>

namespace cohort::sim {
namespace {

// The seed each worker runs, for the abort reporter: plain atomics, read in a signal handler.
constexpr uint32_t kMaxWorkers = 256;
std::atomic<uint64_t> g_running[kMaxWorkers];
CampaignConfig g_abort_config;

void on_abort(int sig) {
  char line[512];
  for (uint32_t i = 0; i < kMaxWorkers; ++i) {
    // relaxed: a best-effort report on the way down; no ordering with anything else matters.
    const uint64_t seed = g_running[i].load(std::memory_order_relaxed);
    if (seed == 0) continue;
    const SeedConfig c = seed_config(g_abort_config, seed);
    // Not async-signal-safe (allocation), but the process is dying on an assertion anyway.
    const std::string cmd = replay_command(c);
    const int n = std::snprintf(line, sizeof line,
                                "cohort-sim: aborted while running seed %llu; replay: %s\n",
                                static_cast<unsigned long long>(seed), cmd.c_str());
    if (n > 0) (void)!write(2, line, static_cast<size_t>(std::min<int>(n, sizeof line - 1)));
  }
  std::signal(sig, SIG_DFL);
  std::raise(sig);
}

}  // namespace

SeedConfig seed_config(const CampaignConfig& config, uint64_t seed) {
  SeedConfig sc;
  sc.seed = seed;
  sc.ops = config.ops;
  sc.members_max = config.members_max;
  sc.bugs = config.bugs;
  sc.app = config.app;
  sc.app_bugs = config.app_bugs;
  sc.order = config.order;
  return sc;
}

void install_abort_reporter(const CampaignConfig& config) {
  g_abort_config = config;
  std::signal(SIGABRT, on_abort);
  std::signal(SIGSEGV, on_abort);
}

double CampaignResult::liveness_percentile(double p) const {
  if (liveness_ms.empty()) return 0;
  const size_t i = static_cast<size_t>(p * static_cast<double>(liveness_ms.size() - 1) + 0.5);
  return liveness_ms[std::min(i, liveness_ms.size() - 1)];
}

CampaignResult run_campaign(const CampaignConfig& config) {
  uint32_t threads = config.threads != 0 ? config.threads : std::thread::hardware_concurrency();
  threads = std::clamp<uint32_t>(threads, 1, kMaxWorkers);
  threads = static_cast<uint32_t>(std::min<uint64_t>(threads, std::max<uint64_t>(config.seeds, 1)));

  std::vector<SeedResult> results(config.seeds);
  std::vector<uint8_t> done(config.seeds, 0);
  std::atomic<uint64_t> next{0};
  // The lowest failing index so far; workers take no index above it.
  std::atomic<uint64_t> stop_at{config.seeds};

  const auto start = std::chrono::steady_clock::now();
  auto worker = [&](uint32_t slot) {
    for (;;) {
      // relaxed: the index is a ticket; results are published by the join below.
      const uint64_t i = next.fetch_add(1, std::memory_order_relaxed);
      if (i >= config.seeds || i > stop_at.load(std::memory_order_relaxed)) break;
      const SeedConfig sc = seed_config(config, config.first_seed + i);
      g_running[slot].store(sc.seed, std::memory_order_relaxed);
      results[i] = run_seed(sc);
      g_running[slot].store(0, std::memory_order_relaxed);
      done[i] = 1;
      if (!results[i].ok() && config.stop_at_first_violation) {
        uint64_t cur = stop_at.load(std::memory_order_relaxed);
        while (i < cur && !stop_at.compare_exchange_weak(cur, i, std::memory_order_relaxed)) {
        }
      }
    }
  };
  std::vector<std::thread> pool;
  for (uint32_t t = 1; t < threads; ++t) pool.emplace_back(worker, t);
  worker(0);
  for (std::thread& t : pool) t.join();
  const auto end = std::chrono::steady_clock::now();

  CampaignResult r;
  r.threads = threads;
  r.wall_s = std::chrono::duration<double>(end - start).count();
  const uint64_t limit =
      config.stop_at_first_violation ? std::min(stop_at.load() + 1, config.seeds) : config.seeds;
  for (uint64_t i = 0; i < limit; ++i) {
    if (!done[i]) continue;  // stopping: an index above the first failure
    SeedResult& s = results[i];
    r.seeds_run++;
    r.leader_crash_in_flush += s.leader_crash_in_flush;
    r.sequencer_crash_in_flight += s.sequencer_crash_in_flight;
    r.partition_heal += s.partition_heal;
    r.join_under_load += s.join_under_load;
    r.halves_split += s.halves_split;
    r.group_lost += s.group_lost;
    if (s.group_lost && r.lost_seeds.size() < 10) r.lost_seeds.push_back(s.seed);
    r.protocol_leader_failed_in_flush += s.protocol.leader_failed_in_flush > 0;
    r.protocol_sequencer_failed_in_flight += s.protocol.sequencer_failed_in_flight > 0;
    r.protocol_cut_adopted += s.protocol.cut_adopted > 0;
    r.protocol_relays_served += s.protocol.relays_served > 0;
    if (s.converged) r.liveness_ms.push_back(s.liveness_ms);
    r.sim_ms += s.sim_ms;
    r.deliveries += s.deliveries;
    r.installs += s.installs;
    r.lock_acquires += s.lock_acquires;
    r.lock_grants += s.lock_grants;
    r.lock_held += s.lock_held;
    r.lock_timeouts += s.lock_timeouts;
    r.lock_busy += s.lock_busy;
    r.lock_lost_holds += s.lock_lost_holds;
    r.lock_seeds_moved_on += s.lock_moved_on > 0;
    r.lock_seeds_lost_hold += s.lock_lost_holds > 0;
    r.lock_seeds_timeout += s.lock_timeouts > 0;
    r.cache_gets += s.cache_gets;
    r.cache_peer_hits += s.cache_peer_hits;
    r.cache_loads += s.cache_loads;
    r.cache_puts += s.cache_puts;
    r.cache_stale_refused += s.cache_stale_refused;
    r.cache_false_hits += s.cache_false_hits;
    r.cache_seeds_stale_refused += s.cache_stale_refused > 0;
    r.cache_seeds_peer_failure += s.cache_peer_failures > 0;
    r.seeds_tickets += s.tickets;
    r.seeds_tickets_burned += s.tickets_burned > 0;
    r.tickets_burned += s.tickets_burned;
    r.cache_peer_reads += s.cache_peer_reads;
    r.cache_seeds_peer_reads += s.cache_peer_reads > 0;
    r.cache_seeds_ghost_reads += s.cache_ghost_reads > 0;
    r.p2p_requests += s.p2p_requests;
    r.p2p_replies += s.p2p_replies;
    r.p2p_failed += s.p2p_failed;
    r.p2p_seeds_failed += s.p2p_failed > 0;
    if (!s.ok()) {
      if (r.first_violation_seed == 0) r.first_violation_seed = s.seed;
      r.failures.push_back(std::move(s));
    }
  }
  std::sort(r.liveness_ms.begin(), r.liveness_ms.end());
  return r;
}

void print_summary(const CampaignConfig& config, const CampaignResult& r, std::ostream& out) {
  for (const SeedResult& s : r.failures) {
    const SeedConfig sc = seed_config(config, s.seed);
    out << "VIOLATION seed " << s.seed << " (" << s.profile << ")\n";
    for (const std::string& v : s.violations) out << "  " << v << "\n";
    out << "  replay: " << replay_command(sc) << "\n";
  }
  std::string bugs = bug_names(config.bugs);
  const std::string app_bugs = app_bug_names(config.app_bugs);
  if (!app_bugs.empty()) bugs += (bugs.empty() ? "" : ",") + app_bugs;
  out << "campaign: seeds " << config.first_seed << ".." << config.first_seed + config.seeds - 1
      << " (" << r.seeds_run << " run), ops " << config.ops << ", members 3.."
      << std::clamp<uint32_t>(config.members_max, 3, 12) << ", threads " << r.threads << ", bug "
      << (bugs.empty() ? "none" : bugs)
      << (config.app == SimApp::kLock    ? ", app lock"
          : config.app == SimApp::kP2p   ? ", app p2p"
          : config.app == SimApp::kCache ? ", app cache"
                                         : "")
      << "\n";
  out << "coverage (seeds): leader_crash_in_flush " << r.leader_crash_in_flush
      << ", sequencer_crash_in_flight " << r.sequencer_crash_in_flight << ", partition_heal "
      << r.partition_heal << ", join_under_load " << r.join_under_load << ", halves_split "
      << r.halves_split << "\n";
  out << "seeds whose faults killed a majority of the last view (liveness not asked): "
      << r.group_lost;
  if (!r.lost_seeds.empty()) {
    out << " (e.g. seeds";
    for (uint64_t seed : r.lost_seeds) out << " " << seed;
    out << ")";
  }
  out << "\n";
  out << "coverage by the members (seeds): leader_failed_in_flush "
      << r.protocol_leader_failed_in_flush << ", sequencer_failed_in_flight "
      << r.protocol_sequencer_failed_in_flight << ", cut_adopted " << r.protocol_cut_adopted
      << ", relays_served " << r.protocol_relays_served << "\n";
  out << "order (seeds): by tickets " << r.seeds_tickets << ", by the sequencer "
      << r.seeds_run - r.seeds_tickets << "; tickets taken by a member that crashed before sending "
      << r.tickets_burned << " (in " << r.seeds_tickets_burned << " seeds)\n";
  out << "liveness_ms (heal to a stable view with probes delivered, " << r.liveness_ms.size()
      << " seeds): p50 " << r.liveness_percentile(0.50) << " p90 " << r.liveness_percentile(0.90)
      << " p99 " << r.liveness_percentile(0.99) << " max "
      << (r.liveness_ms.empty() ? 0 : r.liveness_ms.back()) << "\n";
  if (config.app == SimApp::kLock) {
    out << "locks: " << r.lock_acquires << " acquires, " << r.lock_grants << " table grants ("
        << r.lock_held << " acted on by their holders), " << r.lock_busy << " busy tries, "
        << r.lock_timeouts << " timeouts, " << r.lock_lost_holds << " held locks lost\n";
    out << "lock coverage (seeds): holder dropped and lock granted onward in one view change "
        << r.lock_seeds_moved_on << ", held lock lost " << r.lock_seeds_lost_hold << ", timeout "
        << r.lock_seeds_timeout << "\n";
  }
  if (config.app == SimApp::kCache) {
    out << "cache: " << r.cache_gets << " gets checked, " << r.cache_peer_hits << " peer hits, "
        << r.cache_loads << " store loads, " << r.cache_puts << " puts, " << r.cache_stale_refused
        << " stale peer values refused, " << r.cache_false_hits << " false hits, "
        << r.cache_peer_reads << " peer values read in place\n";
    out << "cache coverage (seeds): stale peer value refused " << r.cache_seeds_stale_refused
        << ", asked member left mid-fetch " << r.cache_seeds_peer_failure
        << ", peer values read in place " << r.cache_seeds_peer_reads
        << ", a crashed member's values read " << r.cache_seeds_ghost_reads << "\n";
  }
  if (config.app == SimApp::kP2p) {
    out << "p2p: " << r.p2p_requests << " requests, " << r.p2p_replies << " replies, "
        << r.p2p_failed << " failed (target left); seeds with a failed request "
        << r.p2p_seeds_failed << "\n";
  }
  out << "simulated " << r.sim_ms / 1000 << " s, " << r.deliveries << " deliveries, " << r.installs
      << " installs, in " << r.wall_s << " s\n";
  out << "figure sim_seeds " << r.seeds_run << " seeds\n";
  out << "figure sim_seeds_per_s "
      << (r.wall_s > 0 ? static_cast<double>(r.seeds_run) / r.wall_s : 0) << " seeds/s\n";
  out << "figure sim_violations " << r.failures.size() << " count\n";
  out << "figure sim_liveness_ms_p99 " << r.liveness_percentile(0.99) << " ms\n";
  out << "figure sim_coverage_leader_crash_in_flush " << r.leader_crash_in_flush << " seeds\n";
  out << "figure sim_coverage_sequencer_crash_in_flight " << r.sequencer_crash_in_flight
      << " seeds\n";
  out << "figure sim_coverage_partition_heal " << r.partition_heal << " seeds\n";
  out << "figure sim_coverage_join_under_load " << r.join_under_load << " seeds\n";
  if (config.app == SimApp::kLock) {
    out << "figure sim_lock_grants " << r.lock_grants << " count\n";
    out << "figure sim_lock_coverage_moved_on_in_view_change " << r.lock_seeds_moved_on
        << " seeds\n";
  }
}

}  // namespace cohort::sim
