// One seeded simulator run: the faults drawn from the seed, the workload (application sends,
// faults, joins and leaves) in a safety phase, then a liveness phase that heals everything and
// must converge, all watched by the independent checker. run_seed() is a pure function of its
// SeedConfig: the same config gives the same result and trace hash on any machine and thread.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <string>
#include <string_view>
#include <vector>

#include "membership/protocol/member.h"

namespace cohort::sim {

// The application every member runs: the counter of sim_app.h alone, the lock service on top of
// it (lock_sim.h, `--app lock`), the counter with point-to-point requests (p2p_sim.h,
// `--app p2p`), or the cooperative cache (cache_sim.h, `--app cache`).
enum class SimApp : uint8_t { kCounter, kLock, kP2p, kCache };

// How total order is made (types.h, TicketCounter): by the sequencer, by tickets, or each seed
// one or the other (mixed: the seed's hash decides, drawing nothing from the seed's random
// stream, so a seed that orders by the sequencer runs as it did before tickets existed).
enum class SimOrder : uint8_t { kMixed, kSequencer, kTickets };
bool uses_tickets(SimOrder order, uint64_t seed) noexcept;

// Planted bugs of the application (the lock workload's mutation self-test); production code
// never has them.
struct AppBugs {
  bool grant_before_order = false;    // a member takes a lock its table shows idle, unordered
  bool lock_total_order = false;      // lock ops in total (non-uniform) order, not safe
  bool unchecked_peer_reply = false;  // the cache uses a peer's value without its stamp check
  bool any() const noexcept {
    return grant_before_order || lock_total_order || unchecked_peer_reply;
  }
};

struct SeedConfig {
  uint64_t seed = 1;
  uint32_t ops = 2000;       // workload operations of the safety phase
  uint32_t members_max = 7;  // nodes in the seed: drawn in 3..members_max
  membership::PlantedBugs bugs{};
  SimApp app = SimApp::kCounter;
  AppBugs app_bugs{};
  SimOrder order = SimOrder::kMixed;
  std::ostream* verbose = nullptr;  // the faults drawn and done, views, violations
};

struct SeedResult {
  uint64_t seed = 0;
  uint32_t nodes = 0;
  std::vector<std::string> violations;
  uint64_t trace_hash = 0;
  bool converged = false;
  // The faults killed a majority of the latest view (the guard could not see a view being
  // decided): liveness was not required of this seed. Kept rare by the guard; counted.
  bool group_lost = false;
  double liveness_ms = 0;     // from the heal to convergence (stable view, probes delivered)
  double stable_view_ms = 0;  // from the heal to the first view of exactly the live nodes
  // Rare paths, as the driver saw them.
  bool leader_crash_in_flush = false;      // crashed a member while it led a view change
  bool sequencer_crash_in_flight = false;  // crashed the sequencer with sends not yet delivered
  bool partition_heal = false;             // healed a partition that outlasted the timeout
  bool join_under_load = false;            // a joiner restored while sends were in flight
  bool halves_split = false;               // split the view into halves without a majority
  // Rare paths, as the members counted them (Member::coverage()).
  membership::Member::Coverage protocol{};
  std::string profile;  // the faults drawn, one line
  uint64_t sim_ms = 0;
  uint64_t sends_ok = 0;
  uint64_t deliveries = 0;
  uint64_t installs = 0;
  uint64_t crashes = 0;
  uint64_t actions = 0;
  // The lock workload (app lock): what it did.
  uint64_t lock_acquires = 0;
  uint64_t lock_grants = 0;  // table grants seen, at all members
  uint64_t lock_held = 0;    // grants acted on by their holders
  uint64_t lock_busy = 0;
  uint64_t lock_timeouts = 0;
  uint64_t lock_lost_holds = 0;  // held locks lost to removal, leave or cut-off
  uint64_t lock_moved_on = 0;    // view changes that dropped a holder and granted onward
  // The cache workload (app cache): what it did.
  uint64_t cache_gets = 0;  // gets checked (a value returned)
  uint64_t cache_peer_hits = 0;
  uint64_t cache_loads = 0;  // store loads
  uint64_t cache_puts = 0;
  uint64_t cache_waves = 0;
  uint64_t cache_stale_refused = 0;  // peer replies refused by the stamp check
  uint64_t cache_false_hits = 0;
  uint64_t cache_peer_failures = 0;
  bool tickets = false;            // total order by tickets (SimOrder)
  uint64_t tickets_burned = 0;     // gseqs taken by members that crashed before sending them
  uint64_t cache_peer_reads = 0;   // holders' values read in place
  uint64_t cache_ghost_reads = 0;  // of them, a crashed member's
  // The point-to-point workload (app p2p).
  uint64_t p2p_requests = 0;  // accepted by send_request
  uint64_t p2p_replies = 0;   // kReply answers
  uint64_t p2p_failed = 0;    // kRequestFailed answers
  bool ok() const noexcept { return violations.empty(); }
};

SeedResult run_seed(const SeedConfig& config);

// The planted bugs by name (skip_flush, minority_view, deliver_before_order, reorder_cut).
bool parse_bug(std::string_view name, membership::PlantedBugs* bugs);
std::string bug_names(const membership::PlantedBugs& bugs);
inline constexpr std::string_view kBugNames[] = {"skip_flush", "minority_view",
                                                 "deliver_before_order", "reorder_cut"};

// The application's planted bugs by name (grant_before_order, lock_total_order,
// unchecked_peer_reply).
bool parse_app_bug(std::string_view name, AppBugs* bugs);
std::string app_bug_names(const AppBugs& bugs);
inline constexpr std::string_view kAppBugNames[] = {"grant_before_order", "lock_total_order"};
inline constexpr std::string_view kCacheBugNames[] = {"unchecked_peer_reply"};

// The one command that replays `config` exactly.
std::string replay_command(const SeedConfig& config);

}  // namespace cohort::sim
