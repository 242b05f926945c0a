// One seeded run (workload.h): the fault profile, the safety phase, the liveness phase.
#include "tests/sim/workload.h"

#include <algorithm>
#include <array>
#include <ostream>
#include <sstream>

#include "tests/sim/cache_checker.h"
#include "tests/sim/cache_sim.h"
#include "tests/sim/checker.h"
#include "tests/sim/cluster.h"
#include "tests/sim/lock_checker.h"
#include "tests/sim/lock_sim.h"
#include "tests/sim/p2p_sim.h"

namespace cohort::sim {
namespace {

using membership::MemberState;
using transport::sim::LinkFaults;

constexpr TimeNs kLivenessBound = 30'000 * kMs;  // from the heal; far above any sane view change
constexpr uint64_t kActionBudget = 60'000'000;   // a run that does more is running away

// What one seed throws at the group, drawn once from the seed and printed.
struct Profile {
  uint32_t nodes = 3;
  uint32_t initial = 3;  // nodes started at the beginning; the rest join later
  double loss = 0;
  double dup = 0;
  TimeNs log_delay_max_ns = 0;
  TimeNs dgram_delay_max_ns = 0;
  std::array<uint32_t, 3> mode_weight{};  // fifo, total, safe
  TimeNs op_gap_mean_ns = 0;
  double fault_prob = 0;  // per operation
  bool crashes = false, aim_sequencer = false, aim_leader = false, partitions = false,
       one_way = false, halves = false, pauses = false, slow = false, link_faults = false,
       joins_leaves = false;
  NodeId slow_node = 0;
};

enum Fault : uint32_t {
  kCrash,
  kCrashSequencer,
  kArmLeaderCrash,
  kPause,
  kPartition,
  kPartitionOneWay,
  kLinkCut,
  kHalves,
  kSlow,
  kLinkFaults,
  kJoin,
  kLeave,
  kFaultCount,
};

class Workload {
 public:
  explicit Workload(const SeedConfig& config);
  SeedResult run();

 private:
  using Conn = std::array<uint64_t, 64>;  // bit `to` of [from]: from reaches to

  void draw_profile();
  std::string describe() const;
  void log(const std::string& what);
  LinkFaults base_faults() const;

  void next_op();
  void op_send();
  void op_app();  // the application's operation: a send, or a lock op in the lock workload
  bool op_fault(Fault f);
  bool crash_some();
  bool crash_sequencer();
  bool arm_leader_crash();
  bool pause_one();
  bool partition(Fault f);
  bool halves();
  bool slow_one();
  bool link_faults();
  bool join_one();
  bool leave_one();
  void armed_check();

  // Keeps the group alive: some strict majority of the latest installed view stays live,
  // unpaused and connected both ways, holding a member whose state is restored.
  bool survives(uint64_t gone, const Conn& conn) const;
  bool majority_lives(const std::vector<Uid>& members, uint64_t gone, const Conn& conn) const;
  bool snapshots_reachable(uint64_t gone, const Conn& conn) const;
  const View* lagging_view(uint64_t gone) const;
  bool source_alive(const Member& joiner, uint64_t gone, const Conn& conn) const;
  Conn connectivity() const;
  bool crash_allowed(uint64_t gone) const { return survives(gone, connectivity()); }
  void do_crash(NodeId n);
  void schedule_restart(NodeId n, TimeNs after);
  uint64_t in_flight() const;
  std::vector<NodeId> running_nodes(bool unpaused_only) const;

  void heal_everything();
  bool state_lost() const;
  bool group_lost();
  bool alive_at_heal(Uid u) const {
    return std::find(alive_at_heal_.begin(), alive_at_heal_.end(), u) != alive_at_heal_.end();
  }
  void liveness_check();

  SeedConfig config_;
  Rng rng_;
  Profile p_;
  ProtocolConfig protocol_;
  Checker checker_;
  std::unique_ptr<Cluster> cluster_;
  // The lock workload (app lock): its checker and the application of every member.
  LockChecker lock_checker_;
  std::unique_ptr<LockSim> lock_;
  // The cache workload (app cache): likewise.
  CacheChecker cache_checker_;
  std::unique_ptr<CacheSim> cache_;
  std::unique_ptr<P2pSim> p2p_;  // app p2p
  SeedResult result_;

  uint32_t ops_done_ = 0;
  bool ops_finished_ = false;
  bool liveness_ = false;
  bool partition_active_ = false;
  TimeNs partition_since_ = 0;
  std::vector<uint64_t> restart_token_;
  uint64_t leaving_ = 0;  // nodes whose member was asked to leave and has not ended yet
  // Joiners crashed before any view held them: a leader may still add them (their JOIN may be
  // pending), so the guard counts them as dead members until a view holds them or a newer
  // incarnation of their node.
  std::vector<Uid> ghosts_;
  TimeNs armed_until_ = 0;
  bool armed_leader_ = true;  // else: any wedged member
  TimeNs heal_at_ = 0;
  bool stable_seen_ = false;
  bool converged_ = false;
  struct Probe {
    Uid uid;
    uint64_t id = 0;
  };
  std::vector<Probe> probes_;
  std::vector<Uid> alive_at_heal_;  // the incarnations that outlived the safety phase
};

Workload::Workload(const SeedConfig& config)
    : config_(config), rng_(config.seed * 0x9e3779b97f4a7c15ULL + 0x1234567) {
  draw_profile();
  protocol_.bugs = config.bugs;
  cluster_ = std::make_unique<Cluster>(p_.nodes, rng_.next(), protocol_, &checker_, config.verbose);
  if (uses_tickets(config.order, config.seed)) cluster_->use_tickets();
  if (config.app == SimApp::kLock) {
    lock::CoreBugs bugs;
    bugs.grant_before_order = config.app_bugs.grant_before_order;
    lock_ =
        std::make_unique<LockSim>(cluster_.get(), rng_.fork(), &lock_checker_, bugs,
                                  config.app_bugs.lock_total_order ? Mode::kTotal : Mode::kSafe);
    cluster_->set_hooks(lock_.get());
  }
  if (config.app == SimApp::kCache) {
    cache::CoreBugs bugs;
    bugs.unchecked_peer_reply = config.app_bugs.unchecked_peer_reply;
    cache_ = std::make_unique<CacheSim>(cluster_.get(), rng_.fork(), &cache_checker_, bugs);
    cluster_->set_hooks(cache_.get());
  }
  if (config.app == SimApp::kP2p) {
    p2p_ = std::make_unique<P2pSim>(cluster_.get(), rng_.fork());
    cluster_->set_hooks(p2p_.get());
  }
  restart_token_.assign(p_.nodes, 0);
  result_.seed = config.seed;
  result_.nodes = p_.nodes;
  result_.profile = describe();
}

void Workload::draw_profile() {
  const uint32_t max = std::clamp<uint32_t>(config_.members_max, 3, 12);
  p_.nodes = static_cast<uint32_t>(rng_.between(3, max));
  p_.loss = rng_.chance(0.25) ? 0 : rng_.unit() * 0.30;
  p_.dup = rng_.chance(0.4) ? 0 : rng_.unit() * 0.10;
  p_.log_delay_max_ns = rng_.between(100, 3000) * kUs;
  p_.dgram_delay_max_ns = rng_.between(200, 5000) * kUs;  // wider than a send gap: reorders
  for (uint32_t& w : p_.mode_weight) w = static_cast<uint32_t>(rng_.between(0, 4));
  if (p_.mode_weight[0] + p_.mode_weight[1] + p_.mode_weight[2] == 0) p_.mode_weight[1] = 1;
  p_.op_gap_mean_ns = rng_.between(500, 3000) * kUs;
  p_.fault_prob = 0.01 + rng_.unit() * 0.03;
  p_.crashes = rng_.chance(0.8);
  p_.aim_sequencer = rng_.chance(0.6);
  p_.aim_leader = rng_.chance(0.6);
  p_.partitions = rng_.chance(0.6);
  p_.one_way = rng_.chance(0.5);
  p_.halves = rng_.chance(0.4);
  p_.pauses = rng_.chance(0.5);
  p_.slow = rng_.chance(0.4);
  p_.link_faults = rng_.chance(0.5);
  p_.joins_leaves = rng_.chance(0.7);
  p_.slow_node = static_cast<NodeId>(rng_.below(p_.nodes));
  p_.initial = p_.joins_leaves ? static_cast<uint32_t>(rng_.between(3, p_.nodes)) : p_.nodes;
}

std::string Workload::describe() const {
  std::ostringstream o;
  o << "nodes=" << p_.nodes << " initial=" << p_.initial << " loss=" << p_.loss << " dup=" << p_.dup
    << " log_delay_max_us=" << p_.log_delay_max_ns / kUs
    << " dgram_delay_max_us=" << p_.dgram_delay_max_ns / kUs
    << " modes(fifo,total,safe)=" << p_.mode_weight[0] << "," << p_.mode_weight[1] << ","
    << p_.mode_weight[2] << " op_gap_mean_us=" << p_.op_gap_mean_ns / kUs
    << " fault_prob=" << p_.fault_prob << " faults:";
  const std::pair<bool, const char*> kinds[] = {{p_.crashes, "crash"},
                                                {p_.aim_sequencer, "crash-sequencer"},
                                                {p_.aim_leader, "crash-leader-in-flush"},
                                                {p_.partitions, "partition"},
                                                {p_.one_way, "one-way"},
                                                {p_.halves, "halves"},
                                                {p_.pauses, "pause"},
                                                {p_.slow, "slow"},
                                                {p_.link_faults, "link-faults"},
                                                {p_.joins_leaves, "join-leave"}};
  for (const auto& [on, name] : kinds) {
    if (on) o << " " << name;
  }
  if (p_.slow) o << " slow_node=" << p_.slow_node;
  if (lock_) o << " " << lock_->describe();
  if (cache_) o << " " << cache_->describe();
  return o.str();
}

void Workload::log(const std::string& what) {
  if (config_.verbose != nullptr) {
    *config_.verbose << "  t=" << cluster_->now() / kUs << "us " << what << "\n";
  }
}

LinkFaults Workload::base_faults() const {
  LinkFaults f;
  f.loss = p_.loss;
  f.dup = p_.dup;
  f.log_delay_min_ns = 50 * kUs;
  f.log_delay_max_ns = p_.log_delay_max_ns;
  f.dgram_delay_min_ns = 50 * kUs;
  f.dgram_delay_max_ns = p_.dgram_delay_max_ns;
  return f;
}

// --- the run -----------------------------------------------------------------------------------

SeedResult Workload::run() {
  if (config_.verbose != nullptr)
    *config_.verbose << "seed " << config_.seed << ": " << describe() << "\n";
  Cluster& c = *cluster_;
  c.net().set_all_faults(base_faults());
  c.on_end = [this](NodeId n, ActionKind) {
    leaving_ &= ~(uint64_t{1} << n);
    schedule_restart(n, liveness_ ? kMs : 0);
  };
  c.on_restore = [this](NodeId) {
    if (!liveness_ && in_flight() > 0) result_.join_under_load = true;
  };
  c.after_step = [this] {
    if (liveness_) {
      liveness_check();
    } else if (armed_until_ != 0) {
      armed_check();
    }
  };
  // Node 0 founds the group; the others ask to join at staggered times.
  c.start(0, /*founder=*/true);
  if (lock_) lock_->start();
  if (cache_) cache_->start();
  TimeNs t = 0;
  for (NodeId n = 1; n < p_.initial; ++n) {
    t += rng_.between(1, 30) * kMs;
    c.at(t, [this, n] {
      if (!cluster_->running(n)) cluster_->start(n, false);
    });
  }
  c.at(rng_.between(1, 5) * kMs, [this] { next_op(); });

  const auto runaway = [this] { return cluster_->counters().actions > kActionBudget; };
  // The safety phase: until the last operation.
  c.run_until(~TimeNs{0} / 2, [&] { return ops_finished_ || runaway(); });
  // The liveness phase: heal and converge.
  if (!runaway()) {
    heal_everything();
    c.run_until(heal_at_ + kLivenessBound, [&] { return converged_ || runaway(); });
  }
  if (runaway()) {
    checker_.fail("runaway: more than " + std::to_string(kActionBudget) +
                  " actions; the protocol does not settle");
  } else if (!converged_ && group_lost()) {
    result_.group_lost = true;
  } else if (!converged_ && !result_.group_lost && state_lost()) {
    result_.group_lost = true;
    log("the application's state is lost: a member waits for a snapshot no old member of its "
        "view can serve (membership/protocol/NOTES.md, known limit)");
  } else if (!converged_ && !result_.group_lost) {
    std::ostringstream o;
    o << "liveness: not converged " << kLivenessBound / kMs << " ms after the heal:";
    for (NodeId n = 0; n < c.nodes(); ++n) {
      const Member* m = c.member(n);
      o << " n" << n;
      if (m == nullptr) {
        o << "(down)";
        continue;
      }
      o << "." << m->self().incarnation << "(" << membership::member_state_name(m->state())
        << ", view " << m->view().id << "/" << m->view().count
        << (m->restored() ? "" : ", waiting for its snapshot")
        << (m->leading_change() ? ", leading a change" : "") << ", attempts "
        << m->counters().attempts << ")";
    }
    for (size_t a = 0; a < probes_.size(); ++a) {
      if (probes_[a].id == 0) continue;
      std::string missing;
      for (NodeId b = 0; b < c.nodes(); ++b) {
        if (c.running(b) && !checker_.delivered_msg(c.uid(b), probes_[a].id)) {
          missing += " n" + std::to_string(b);
        }
      }
      if (!missing.empty()) {
        o << "; probe msg " << probes_[a].id << " of n" << a << "." << probes_[a].uid.incarnation
          << " not delivered at" << missing;
      }
    }
    checker_.fail(o.str());
  }
  std::vector<Uid> live;
  for (NodeId n = 0; n < c.nodes(); ++n) {
    if (c.running(n)) live.push_back(c.uid(n));
  }
  if (lock_) {
    lock_checker_.finish(live, checker_.view(checker_.latest_view()), converged_);
    for (const std::string& v : lock_checker_.violations()) checker_.fail(v);
    const LockSim::Counters& lc = lock_->counters();
    result_.lock_acquires = lc.acquires;
    result_.lock_grants = lock_checker_.grants_seen();
    result_.lock_held = lock_checker_.beliefs_seen();
    result_.lock_busy = lc.busy;
    result_.lock_timeouts = lc.timed_out;
    result_.lock_lost_holds = lc.lost_holds;
    result_.lock_moved_on = lock_checker_.moved_on_in_view_change();
  }
  if (cache_) {
    cache_checker_.finish(converged_, cache_->gets_unfinished());
    for (const std::string& v : cache_checker_.violations()) checker_.fail(v);
    const CacheSim::Counters cc = cache_->final_counters();
    result_.cache_gets = cache_checker_.gets_checked();
    result_.cache_peer_hits = cc.peer_hits;
    result_.cache_loads = cc.loads;
    result_.cache_puts = cc.puts;
    result_.cache_waves = cc.waves;
    result_.cache_stale_refused = cc.stale_replies;
    result_.cache_false_hits = cc.false_hits;
    result_.cache_peer_failures = cc.peer_failures;
    result_.cache_peer_reads = cc.peer_reads;
    result_.cache_ghost_reads = cc.ghost_reads;
  }
  if (p2p_) {
    p2p_->finish(converged_);
    for (const std::string& v : p2p_->violations()) checker_.fail(v);
    result_.p2p_requests = p2p_->counters().requests;
    result_.p2p_replies = p2p_->counters().replied;
    result_.p2p_failed = p2p_->counters().failed;
  }
  checker_.finish(live, converged_);

  result_.violations = checker_.violations();
  result_.trace_hash = c.trace_hash();
  result_.protocol = c.coverage();
  result_.sim_ms = c.now() / kMs;
  result_.sends_ok = c.counters().sends_ok;
  result_.deliveries = c.counters().deliveries;
  result_.installs = c.counters().installs;
  result_.crashes = c.counters().crashes;
  result_.tickets = c.tickets();
  result_.tickets_burned = c.tickets_burned();
  result_.actions = c.counters().actions;
  if (config_.verbose != nullptr) {
    *config_.verbose << "seed " << config_.seed << ": " << (result_.ok() ? "ok" : "VIOLATION")
                     << " sim_ms=" << result_.sim_ms << " sends_ok=" << result_.sends_ok
                     << " deliveries=" << result_.deliveries << " installs=" << result_.installs
                     << " liveness_ms=" << result_.liveness_ms << "\n";
    if (lock_) {
      *config_.verbose << "locks: acquires=" << result_.lock_acquires
                       << " table_grants=" << result_.lock_grants << " held=" << result_.lock_held
                       << " busy=" << result_.lock_busy << " timed_out=" << result_.lock_timeouts
                       << " lost_holds=" << result_.lock_lost_holds
                       << " moved_on_in_view_change=" << result_.lock_moved_on << "\n";
    }
    if (cache_) {
      *config_.verbose << "cache: gets=" << result_.cache_gets
                       << " peer_hits=" << result_.cache_peer_hits
                       << " loads=" << result_.cache_loads << " puts=" << result_.cache_puts
                       << " waves=" << result_.cache_waves
                       << " stale_refused=" << result_.cache_stale_refused
                       << " false_hits=" << result_.cache_false_hits
                       << " peer_failures=" << result_.cache_peer_failures << "\n";
    }
    for (const std::string& v : result_.violations)
      *config_.verbose << "  violation: " << v << "\n";
  }
  return result_;
}

// --- the safety phase: operations --------------------------------------------------------------

void Workload::next_op() {
  if (liveness_) return;
  if (ops_done_ >= config_.ops) {
    ops_finished_ = true;
    return;
  }
  ops_done_++;
  bool done = false;
  if (rng_.chance(p_.fault_prob)) {
    const Fault f = static_cast<Fault>(rng_.below(kFaultCount));
    done = op_fault(f);
  }
  if (!done) op_app();
  cluster_->at(cluster_->now() + rng_.between(0, 2 * p_.op_gap_mean_ns), [this] { next_op(); });
}

std::vector<NodeId> Workload::running_nodes(bool unpaused_only) const {
  std::vector<NodeId> out;
  for (NodeId n = 0; n < cluster_->nodes(); ++n) {
    if (cluster_->running(n) && !(unpaused_only && cluster_->paused(n))) out.push_back(n);
  }
  return out;
}

// The lock workload mixes in a few plain messages: the cores must tell them from lock ops.
void Workload::op_app() {
  if (lock_ && !rng_.chance(0.1) && lock_->op()) return;
  if (cache_ && !rng_.chance(0.1) && cache_->op()) return;
  if (p2p_ && rng_.chance(0.5) && p2p_->op()) return;
  op_send();
}

void Workload::op_send() {
  const std::vector<NodeId> nodes = running_nodes(true);
  if (nodes.empty()) return;
  const NodeId n = nodes[rng_.below(nodes.size())];
  const uint32_t total = p_.mode_weight[0] + p_.mode_weight[1] + p_.mode_weight[2];
  uint64_t pick = rng_.below(total);
  Mode mode = Mode::kFifo;
  if (pick >= p_.mode_weight[0]) {
    pick -= p_.mode_weight[0];
    mode = pick < p_.mode_weight[1] ? Mode::kTotal : Mode::kSafe;
  }
  cluster_->app_send(n, mode);
}

bool Workload::op_fault(Fault f) {
  // Ghosts a view now holds, or whose node a view holds as a newer incarnation, are done.
  if (const View* v = checker_.view(checker_.latest_view()); v != nullptr) {
    std::erase_if(ghosts_, [v](Uid g) {
      for (Uid u : v->list()) {
        if (u.node == g.node && u.incarnation >= g.incarnation) return true;
      }
      return false;
    });
  }
  switch (f) {
    case kCrash: return p_.crashes && crash_some();
    case kCrashSequencer: return p_.aim_sequencer && crash_sequencer();
    case kArmLeaderCrash: return p_.aim_leader && arm_leader_crash();
    case kPause: return p_.pauses && pause_one();
    case kPartition: return p_.partitions && partition(f);
    case kPartitionOneWay: return p_.one_way && partition(f);
    case kLinkCut: return p_.one_way && partition(f);
    case kHalves: return p_.halves && halves();
    case kSlow: return p_.slow && slow_one();
    case kLinkFaults: return p_.link_faults && link_faults();
    case kJoin: return p_.joins_leaves && join_one();
    case kLeave: return p_.joins_leaves && leave_one();
    case kFaultCount: break;
  }
  return false;
}

// --- the guard ---------------------------------------------------------------------------------

Workload::Conn Workload::connectivity() const {
  Conn conn{};
  SimNet& net = cluster_->net();
  for (NodeId a = 0; a < cluster_->nodes(); ++a) {
    for (NodeId b = 0; b < cluster_->nodes(); ++b) {
      if (net.connected(a, b)) conn[a] |= uint64_t{1} << b;
    }
  }
  return conn;
}

bool Workload::survives(uint64_t gone, const Conn& conn) const {
  const View* v = checker_.view(checker_.latest_view());
  if (v == nullptr) return true;
  gone |= leaving_;  // a leaver is as good as gone: it will not be in the next view
  const std::vector<Uid> members(v->list().begin(), v->list().end());
  if (!majority_lives(members, gone, conn) || !snapshots_reachable(gone, conn)) return false;
  // Members that lag a view behind learn the latest view from a member that installed it; when
  // none of those would be left, the laggards' own view must still have a majority to move on.
  if (const View* lag = lagging_view(gone); lag != nullptr) {
    if (!majority_lives({lag->list().begin(), lag->list().end()}, gone, conn)) return false;
  }
  // A next view some member accepted may be decided already (installed by a member that is now
  // gone, or by nobody yet): it too must keep a majority.
  for (NodeId n = 0; n < cluster_->nodes(); ++n) {
    const Member* m = cluster_->member(n);
    if (m == nullptr || ((gone >> n) & 1)) continue;
    const View* next = m->accepted_next_view();
    if (next != nullptr && next->id > v->id &&
        !majority_lives({next->list().begin(), next->list().end()}, gone, conn)) {
      return false;
    }
  }
  // The next view may add any joiner: those that are (or will be) dead, paused or cut off
  // count as members, the worst case (a joiner that can answer only helps).
  std::vector<Uid> with_joiners = members;
  const uint64_t all = (uint64_t{1} << cluster_->nodes()) - 1;
  for (NodeId n = 0; n < cluster_->nodes(); ++n) {
    const Member* m = cluster_->member(n);
    if (m == nullptr || m->state() != MemberState::kJoining || v->contains(m->self())) continue;
    bool cut = (conn[n] & all) != all;
    for (NodeId o = 0; o < cluster_->nodes(); ++o) cut = cut || !((conn[o] >> n) & 1);
    if (((gone >> n) & 1) || cluster_->paused(n) || cut) with_joiners.push_back(m->self());
  }
  for (Uid g : ghosts_) {
    if (!v->contains(g)) with_joiners.push_back(g);
  }
  return with_joiners.size() == members.size() || majority_lives(with_joiners, gone, conn);
}

// The highest view installed by a member that stays (not in `gone`), when it is below the latest
// view any member installed; nullptr when some member that stays has the latest view.
const View* Workload::lagging_view(uint64_t gone) const {
  ViewId highest = 0;
  for (NodeId n = 0; n < cluster_->nodes(); ++n) {
    const Member* m = cluster_->member(n);
    if (m == nullptr || ((gone >> n) & 1) || m->state() == MemberState::kJoining) continue;
    highest = std::max(highest, m->view().id);
  }
  if (highest == 0 || highest >= checker_.latest_view()) return nullptr;
  return checker_.view(highest);
}

// Every member waiting for its snapshot keeps a source: an old member of its view (one that was
// in the view before) that holds the application's state, alive, unpaused and connected to it
// both ways (membership/protocol/NOTES.md, "known limit": no other member can serve it).
bool Workload::snapshots_reachable(uint64_t gone, const Conn& conn) const {
  for (NodeId j = 0; j < cluster_->nodes(); ++j) {
    const Member* m = cluster_->member(j);
    if (m == nullptr || ((gone >> j) & 1) || m->restored() || m->state() == MemberState::kJoining) {
      continue;
    }
    if (!source_alive(*m, gone, conn)) return false;
  }
  return true;
}

bool Workload::source_alive(const Member& joiner, uint64_t gone, const Conn& conn) const {
  const View& w = joiner.view();
  const View* before = checker_.view(w.id - 1);
  const NodeId j = joiner.self().node;
  for (Uid u : w.list()) {
    if (u == joiner.self() || (before != nullptr && !before->contains(u))) continue;
    if (((gone >> u.node) & 1) || !cluster_->running(u.node) || cluster_->paused(u.node)) continue;
    if (!(cluster_->uid(u.node) == u)) continue;
    const Member* s = cluster_->member(u.node);
    if (s->state() == MemberState::kJoining || !s->restored()) continue;
    if (((conn[j] >> u.node) & 1) && ((conn[u.node] >> j) & 1)) return true;
  }
  return false;
}

// Some strict majority of `members` is alive as themselves (not a later incarnation),
// unpaused, not in `gone`, connected both ways, and one of them holds the application's state.
bool Workload::majority_lives(const std::vector<Uid>& members, uint64_t gone,
                              const Conn& conn) const {
  std::vector<NodeId> live;
  std::vector<bool> restored;
  for (Uid u : members) {
    if (u.node >= cluster_->nodes() || (gone >> u.node) & 1) continue;
    if (!cluster_->running(u.node) || cluster_->paused(u.node)) continue;
    if (!(cluster_->uid(u.node) == u)) continue;
    const Member* m = cluster_->member(u.node);
    live.push_back(u.node);
    restored.push_back(m->state() != MemberState::kJoining && m->restored());
  }
  const uint32_t need = static_cast<uint32_t>(members.size()) / 2 + 1;
  if (live.size() < need) return false;
  const uint32_t k = static_cast<uint32_t>(live.size());
  for (uint64_t set = 1; set < (uint64_t{1} << k); ++set) {
    if (static_cast<uint32_t>(__builtin_popcountll(set)) < need) continue;
    bool any_restored = false;
    bool ok = true;
    for (uint32_t i = 0; i < k && ok; ++i) {
      if (!((set >> i) & 1)) continue;
      any_restored = any_restored || restored[i];
      for (uint32_t j = 0; j < k && ok; ++j) {
        if (((set >> j) & 1) && !((conn[live[i]] >> live[j]) & 1)) ok = false;
      }
    }
    if (ok && any_restored) return true;
  }
  return false;
}

uint64_t Workload::in_flight() const {
  uint64_t n = 0;
  for (NodeId node = 0; node < cluster_->nodes(); ++node) {
    if (cluster_->running(node)) n += checker_.undelivered_at_sender(cluster_->uid(node));
  }
  return n;
}

// --- faults ------------------------------------------------------------------------------------

void Workload::do_crash(NodeId n) {
  Member* m = cluster_->member(n);
  const View* latest = checker_.view(checker_.latest_view());
  if (latest == nullptr || !latest->contains(m->self())) ghosts_.push_back(m->self());
  if (m->leading_change()) result_.leader_crash_in_flush = true;
  if (m->is_sequencer() && in_flight() > 0) result_.sequencer_crash_in_flight = true;
  log("crash n" + std::to_string(n) + "." + std::to_string(m->self().incarnation) +
      (m->leading_change() ? " (leading a view change)" : "") +
      (m->is_sequencer() ? " (sequencer)" : ""));
  cluster_->crash(n);
  leaving_ &= ~(uint64_t{1} << n);
  schedule_restart(n, rng_.between(100, 1500) * kMs);
}

void Workload::schedule_restart(NodeId n, TimeNs after) {
  const uint64_t token = ++restart_token_[n];
  if (after == 0) after = rng_.between(50, 1000) * kMs;
  cluster_->at(cluster_->now() + after, [this, n, token] {
    if (restart_token_[n] != token || cluster_->running(n)) return;
    log("restart n" + std::to_string(n) + " as a new incarnation");
    cluster_->start(n, false);
  });
}

bool Workload::crash_some() {
  std::vector<NodeId> nodes = running_nodes(false);
  if (nodes.empty()) return false;
  const View* v = checker_.view(checker_.latest_view());
  const uint32_t minority = v == nullptr ? 1 : std::max<uint32_t>(1, (v->count - 1) / 2);
  const uint32_t k = static_cast<uint32_t>(rng_.between(1, minority));
  uint64_t gone = 0;
  for (uint32_t i = 0; i < k && !nodes.empty(); ++i) {
    const size_t at = rng_.below(nodes.size());
    gone |= uint64_t{1} << nodes[at];
    nodes.erase(nodes.begin() + static_cast<std::ptrdiff_t>(at));
  }
  if (!crash_allowed(gone)) return false;
  for (NodeId n = 0; n < cluster_->nodes(); ++n) {
    if ((gone >> n) & 1) do_crash(n);
  }
  return true;
}

// A burst of sends, then the sequencer dies a moment later, with DATA and ORDER in flight.
bool Workload::crash_sequencer() {
  const uint64_t burst = rng_.between(2, 8);
  for (uint64_t i = 0; i < burst; ++i) op_app();
  cluster_->at(cluster_->now() + rng_.between(0, 1500) * kUs, [this] {
    if (liveness_) return;
    for (NodeId n = 0; n < cluster_->nodes(); ++n) {
      Member* m = cluster_->member(n);
      if (m == nullptr || !m->is_sequencer()) continue;
      if (crash_allowed(uint64_t{1} << n)) do_crash(n);
      return;
    }
  });
  return true;
}

// Crashes the leader (or another member) of the next view change; provokes one with a join.
bool Workload::arm_leader_crash() {
  armed_until_ = cluster_->now() + rng_.between(300, 2000) * kMs;
  armed_leader_ = rng_.chance(0.7);
  log(std::string("armed: crash the ") + (armed_leader_ ? "leader" : "a wedged member") +
      " of the next view change");
  if (!join_one()) crash_some();
  return true;
}

void Workload::armed_check() {
  if (cluster_->now() > armed_until_) {
    armed_until_ = 0;
    return;
  }
  for (NodeId n = 0; n < cluster_->nodes(); ++n) {
    Member* m = cluster_->member(n);
    if (m == nullptr || cluster_->paused(n)) continue;
    const bool target = armed_leader_ ? m->leading_change() : m->state() == MemberState::kWedged;
    if (!target || !rng_.chance(0.15)) continue;
    if (!crash_allowed(uint64_t{1} << n)) continue;
    armed_until_ = 0;
    do_crash(n);
    return;
  }
}

bool Workload::pause_one() {
  const std::vector<NodeId> nodes = running_nodes(true);
  if (nodes.empty()) return false;
  const NodeId n = nodes[rng_.below(nodes.size())];
  if (!crash_allowed(uint64_t{1} << n)) return false;
  const TimeNs d = protocol_.suspect_timeout_ns * rng_.between(12, 40) / 10;
  log("pause n" + std::to_string(n) + " for " + std::to_string(d / kMs) + " ms");
  cluster_->pause(n);
  cluster_->at(cluster_->now() + d, [this, n] {
    if (liveness_) return;
    log("resume n" + std::to_string(n));
    cluster_->resume(n);
  });
  return true;
}

// A symmetric cut between a random side and the rest, a one-way one, or one link one way.
bool Workload::partition(Fault f) {
  if (partition_active_) return false;
  const uint32_t n = cluster_->nodes();
  Conn conn = connectivity();
  std::string what;
  std::vector<std::pair<NodeId, NodeId>> cuts;
  if (f == kLinkCut) {
    const NodeId a = static_cast<NodeId>(rng_.below(n));
    const NodeId b = static_cast<NodeId>((a + 1 + rng_.below(n - 1)) % n);
    cuts.emplace_back(a, b);
    what = "cut link n" + std::to_string(a) + "->n" + std::to_string(b);
  } else {
    const uint32_t k = static_cast<uint32_t>(rng_.between(1, n / 2));
    uint64_t side = 0;
    while (static_cast<uint32_t>(__builtin_popcountll(side)) < k)
      side |= uint64_t{1} << rng_.below(n);
    const bool one_way = f == kPartitionOneWay;
    const bool outward = rng_.chance(0.5);
    for (NodeId a = 0; a < n; ++a) {
      for (NodeId b = 0; b < n; ++b) {
        if (((side >> a) & 1) == 0 || ((side >> b) & 1) != 0) continue;
        if (!one_way || outward) cuts.emplace_back(a, b);
        if (!one_way || !outward) cuts.emplace_back(b, a);
      }
    }
    std::ostringstream o;
    o << (one_way ? (outward ? "one-way partition (side -> rest blocked) side={"
                             : "one-way partition (rest -> side blocked) side={")
                  : "partition side={");
    for (NodeId a = 0; a < n; ++a) {
      if ((side >> a) & 1) o << " n" << a;
    }
    o << " }";
    what = o.str();
  }
  for (auto [a, b] : cuts) conn[a] &= ~(uint64_t{1} << b);
  if (!survives(0, conn)) return false;
  const TimeNs d = rng_.between(50, 1000) * kMs;
  log(what + " for " + std::to_string(d / kMs) + " ms");
  for (auto [a, b] : cuts) cluster_->net().set_connected(a, b, false, cluster_->now());
  partition_active_ = true;
  partition_since_ = cluster_->now();
  cluster_->at(cluster_->now() + d, [this] {
    if (liveness_ || !partition_active_) return;
    if (cluster_->now() - partition_since_ >= protocol_.suspect_timeout_ns) {
      result_.partition_heal = true;
    }
    log("heal the partition");
    cluster_->net().heal(cluster_->now());
    partition_active_ = false;
  });
  return true;
}

// Splits the latest view into two halves (and a lone member when it is odd): no side has a
// majority, so no side may install a view until the heal.
bool Workload::halves() {
  if (partition_active_) return false;
  const View* v = checker_.view(checker_.latest_view());
  if (v == nullptr || v->count < 2) return false;
  std::vector<NodeId> members;
  for (Uid u : v->list()) members.push_back(u.node);
  for (size_t i = members.size(); i > 1; --i) std::swap(members[i - 1], members[rng_.below(i)]);
  const uint32_t n = cluster_->nodes();
  std::vector<uint32_t> group(n);
  const size_t half = members.size() / 2;
  for (size_t i = 0; i < members.size(); ++i) {
    group[members[i]] = i < half ? 0 : (i < 2 * half ? 1 : 2);
  }
  for (NodeId a = 0; a < n; ++a) {
    if (!v->contains(cluster_->uid(a))) group[a] = static_cast<uint32_t>(rng_.below(2));
  }
  const TimeNs d = rng_.between(150, 800) * kMs;
  std::ostringstream o;
  o << "split view " << v->id << " into halves without a majority:";
  for (NodeId a = 0; a < n; ++a) o << " n" << a << ":" << group[a];
  o << " for " << d / kMs << " ms";
  log(o.str());
  for (NodeId a = 0; a < n; ++a) {
    for (NodeId b = 0; b < n; ++b) {
      if (group[a] != group[b]) cluster_->net().set_connected(a, b, false, cluster_->now());
    }
  }
  result_.halves_split = true;
  partition_active_ = true;
  partition_since_ = cluster_->now();
  cluster_->at(cluster_->now() + d, [this] {
    if (liveness_ || !partition_active_) return;
    if (cluster_->now() - partition_since_ >= protocol_.suspect_timeout_ns) {
      result_.partition_heal = true;
    }
    log("heal the split");
    cluster_->net().heal(cluster_->now());
    partition_active_ = false;
  });
  return true;
}

bool Workload::slow_one() {
  const uint32_t factor = static_cast<uint32_t>(rng_.between(4, 20));
  const TimeNs d = rng_.between(200, 3000) * kMs;
  log("slow n" + std::to_string(p_.slow_node) + " x" + std::to_string(factor) + " for " +
      std::to_string(d / kMs) + " ms");
  cluster_->net().set_slow(p_.slow_node, factor);
  cluster_->at(cluster_->now() + d, [this] {
    if (!liveness_) cluster_->net().set_slow(p_.slow_node, 1);
  });
  return true;
}

// One directed link turns bad for a while: heavy loss, duplication, long delays.
bool Workload::link_faults() {
  const uint32_t n = cluster_->nodes();
  const NodeId a = static_cast<NodeId>(rng_.below(n));
  const NodeId b = static_cast<NodeId>((a + 1 + rng_.below(n - 1)) % n);
  LinkFaults f = base_faults();
  f.loss = 0.2 + rng_.unit() * 0.5;
  f.dup = rng_.unit() * 0.3;
  f.log_delay_max_ns *= rng_.between(2, 10);
  f.dgram_delay_max_ns *= rng_.between(2, 10);
  const TimeNs d = rng_.between(50, 800) * kMs;
  log("bad link n" + std::to_string(a) + "->n" + std::to_string(b) + " for " +
      std::to_string(d / kMs) + " ms");
  cluster_->net().set_link_faults(a, b, f);
  cluster_->at(cluster_->now() + d, [this, a, b] {
    if (!liveness_) cluster_->net().set_link_faults(a, b, base_faults());
  });
  return true;
}

bool Workload::join_one() {
  std::vector<NodeId> idle;
  for (NodeId n = 0; n < cluster_->nodes(); ++n) {
    if (!cluster_->running(n)) idle.push_back(n);
  }
  if (idle.empty()) return false;
  const NodeId n = idle[rng_.below(idle.size())];
  restart_token_[n]++;  // cancels a pending restart
  log("join n" + std::to_string(n));
  cluster_->start(n, false);
  return true;
}

bool Workload::leave_one() {
  std::vector<NodeId> active;
  for (NodeId n : running_nodes(true)) {
    if (cluster_->member(n)->state() == MemberState::kActive) active.push_back(n);
  }
  if (active.empty()) return false;
  const NodeId n = active[rng_.below(active.size())];
  if (!crash_allowed(uint64_t{1} << n)) return false;
  log("leave n" + std::to_string(n));
  leaving_ |= uint64_t{1} << n;
  cluster_->leave(n);
  return true;
}

// --- the liveness phase ------------------------------------------------------------------------

void Workload::heal_everything() {
  Cluster& c = *cluster_;
  for (NodeId n = 0; n < c.nodes(); ++n) {
    if (c.running(n)) alive_at_heal_.push_back(c.uid(n));
  }
  liveness_ = true;
  armed_until_ = 0;
  partition_active_ = false;
  heal_at_ = c.now();
  log("heal everything: no loss, no partitions, no pauses; every node rejoins");
  LinkFaults clean;  // no loss, no duplication, short delays
  c.net().set_all_faults(clean);
  c.net().heal(c.now());
  for (NodeId n = 0; n < c.nodes(); ++n) {
    c.net().set_slow(n, 1);
    c.resume(n);
  }
  for (NodeId n = 0; n < c.nodes(); ++n) {
    if (!c.running(n)) {
      restart_token_[n]++;
      c.start(n, false);
    }
  }
}

// The faults killed the group despite the guard (it cannot see a view decided but not yet
// installed): no majority of the latest view outlived the safety phase, or none of it holds the
// application's state, or nobody alive installed it and the view the others are in lost its
// majority. No protocol may go on then, and liveness is not asked for.
bool Workload::group_lost() {
  const View* v = checker_.view(checker_.latest_view());
  if (v == nullptr) return false;
  uint32_t alive = 0;
  bool state = false;
  bool installed = false;
  ViewId lag_id = 0;
  for (NodeId n = 0; n < cluster_->nodes(); ++n) {
    const Member* m = cluster_->member(n);
    if (m == nullptr || !alive_at_heal(m->self()) || m->state() == MemberState::kJoining) continue;
    installed = installed || m->view().id >= v->id;
    lag_id = std::max(lag_id, m->view().id);
  }
  for (Uid u : v->list()) {
    if (!alive_at_heal(u)) continue;
    alive++;
    const Member* m = cluster_->member(u.node);
    state = state || (m != nullptr && m->self() == u && m->restored());
  }
  std::string why;
  if (2 * alive <= v->count || !state) {
    why = std::to_string(alive) + " of the " + std::to_string(v->count) + " members of view " +
          std::to_string(v->id) + " outlived the faults" +
          (state ? "" : ", none with the application's state");
  } else if (const View* lag = checker_.view(lag_id); !installed && lag != nullptr) {
    uint32_t lag_alive = 0;
    for (Uid u : lag->list()) lag_alive += alive_at_heal(u) ? 1 : 0;
    if (2 * lag_alive <= lag->count) {
      why = "nobody alive installed view " + std::to_string(v->id) + ", and " +
            std::to_string(lag_alive) + " of the " + std::to_string(lag->count) +
            " members of view " + std::to_string(lag->id) + " outlived the faults";
    }
  }
  if (why.empty()) return false;
  log("the group is lost: " + why);
  return true;
}

// Some member still waits for its snapshot, and no old member of its view is alive to serve it.
bool Workload::state_lost() const {
  const Conn conn = connectivity();
  for (NodeId j = 0; j < cluster_->nodes(); ++j) {
    const Member* m = cluster_->member(j);
    if (m == nullptr || m->restored() || m->state() == MemberState::kJoining) continue;
    if (!source_alive(*m, 0, conn)) return true;
  }
  return false;
}

// Converged: every node runs a member, all active in one view that holds exactly them, and a
// probe sent by each is delivered by all.
void Workload::liveness_check() {
  Cluster& c = *cluster_;
  const uint32_t n = c.nodes();
  const Member* first = c.member(0);
  if (first == nullptr) return;
  const View& view = first->view();
  if (view.count != n) return;
  for (NodeId a = 0; a < n; ++a) {
    const Member* m = c.member(a);
    if (m == nullptr || c.paused(a) || m->state() != MemberState::kActive) return;
    if (!(m->view() == view) || !view.contains(c.uid(a))) return;
  }
  if (!stable_seen_) {
    stable_seen_ = true;
    result_.stable_view_ms = static_cast<double>(c.now() - heal_at_) / kMs;
    log("stable view " + std::to_string(view.id) + " after " +
        std::to_string(result_.stable_view_ms) + " ms; probes");
  }
  // A probe round belongs to one set of incarnations: a member that joined after a probe was
  // sent gets the state, not the message, so a new set sends new probes, all of them.
  bool same = probes_.size() == n;
  for (NodeId a = 0; a < n && same; ++a) same = probes_[a].uid == c.uid(a);
  if (!same) probes_.assign(n, Probe{});
  bool done = true;
  for (NodeId a = 0; a < n; ++a) {
    if (probes_[a].id != 0) continue;
    uint64_t id = 0;
    if (c.app_send(a, Mode::kSafe, &id) == SendResult::kOk) probes_[a] = Probe{c.uid(a), id};
    if (probes_[a].id == 0) probes_[a].uid = c.uid(a);  // refused: asked again next step
    done = false;
  }
  for (NodeId a = 0; a < n && done; ++a) {
    for (NodeId b = 0; b < n && done; ++b) {
      done = checker_.delivered_msg(c.uid(b), probes_[a].id);
    }
  }
  if (done && lock_ && !lock_->quiescent()) done = false;  // every lock released, every queue empty
  if (done && cache_ && !cache_->quiescent()) done = false;  // every get, load and write ended
  if (done && p2p_ && !p2p_->quiescent()) done = false;      // every request answered
  if (done) {
    converged_ = true;
    result_.converged = true;
    result_.liveness_ms = static_cast<double>(c.now() - heal_at_) / kMs;
    log("converged " + std::to_string(result_.liveness_ms) + " ms after the heal");
  }
}

}  // namespace

SeedResult run_seed(const SeedConfig& config) {
  Workload w(config);
  return w.run();
}

bool parse_bug(std::string_view name, membership::PlantedBugs* bugs) {
  if (name == "skip_flush") {
    bugs->skip_flush = true;
  } else if (name == "minority_view") {
    bugs->minority_view = true;
  } else if (name == "deliver_before_order") {
    bugs->deliver_before_order = true;
  } else if (name == "reorder_cut") {
    bugs->reorder_cut = true;
  } else {
    return false;
  }
  return true;
}

std::string bug_names(const membership::PlantedBugs& bugs) {
  std::string s;
  const std::pair<bool, const char*> all[] = {{bugs.skip_flush, "skip_flush"},
                                              {bugs.minority_view, "minority_view"},
                                              {bugs.deliver_before_order, "deliver_before_order"},
                                              {bugs.reorder_cut, "reorder_cut"}};
  for (const auto& [on, name] : all) {
    if (!on) continue;
    if (!s.empty()) s += ",";
    s += name;
  }
  return s;
}

bool parse_app_bug(std::string_view name, AppBugs* bugs) {
  if (name == "grant_before_order") {
    bugs->grant_before_order = true;
  } else if (name == "lock_total_order") {
    bugs->lock_total_order = true;
  } else if (name == "unchecked_peer_reply") {
    bugs->unchecked_peer_reply = true;
  } else {
    return false;
  }
  return true;
}

std::string app_bug_names(const AppBugs& bugs) {
  std::string s;
  if (bugs.grant_before_order) s = "grant_before_order";
  if (bugs.lock_total_order) s += std::string(s.empty() ? "" : ",") + "lock_total_order";
  if (bugs.unchecked_peer_reply) {
    s += std::string(s.empty() ? "" : ",") + "unchecked_peer_reply";
  }
  return s;
}

bool uses_tickets(SimOrder order, uint64_t seed) noexcept {
  if (order != SimOrder::kMixed) return order == SimOrder::kTickets;
  return ((seed * 0x9e3779b97f4a7c15ULL) >> 63) != 0;  // half the seeds, by a hash of the seed
}

std::string replay_command(const SeedConfig& config) {
  std::string cmd = "build/tests/sim/cohort-sim --seed " + std::to_string(config.seed) + " --ops " +
                    std::to_string(config.ops) + " --members-max " +
                    std::to_string(config.members_max);
  if (config.app == SimApp::kLock) cmd += " --app lock";
  if (config.app == SimApp::kCache) cmd += " --app cache";
  if (config.app == SimApp::kP2p) cmd += " --app p2p";
  if (config.order == SimOrder::kSequencer) cmd += " --order sequencer";
  if (config.order == SimOrder::kTickets) cmd += " --order tickets";
  std::string bugs = bug_names(config.bugs);
  const std::string app_bugs = app_bug_names(config.app_bugs);
  if (!app_bugs.empty()) bugs += (bugs.empty() ? "" : ",") + app_bugs;
  if (!bugs.empty()) cmd += " --bug " + bugs;
  return cmd;
}

}  // namespace cohort::sim
