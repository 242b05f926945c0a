// The lock workload (lock_sim.h).
#include "tests/sim/lock_sim.h"

#include <sstream>

#include "runtime/assert.h"
#include "tests/sim/app_sim.h"

namespace cohort::sim {
namespace {

constexpr char kReentered[] = "lock_sim: re-entered a member's lock core";

class Busy : public CoreBusy {
 public:
  explicit Busy(bool* flag) : CoreBusy(flag, kReentered) {}
};

using lock::CoreEvent;
using lock::LockCore;

LockEventKind event_kind(lock::EventKind k) {
  switch (k) {
    case lock::EventKind::kGranted: return LockEventKind::kGranted;
    case lock::EventKind::kReleased: return LockEventKind::kReleased;
    case lock::EventKind::kWithdrawn: return LockEventKind::kWithdrawn;
    case lock::EventKind::kTryFailed: return LockEventKind::kTryFailed;
    case lock::EventKind::kDropped: return LockEventKind::kDropped;
    case lock::EventKind::kRefused: return LockEventKind::kRefused;
  }
  return LockEventKind::kRefused;
}

}  // namespace

LockSim::LockSim(Cluster* cluster, Rng rng, LockChecker* checker, const lock::CoreBugs& bugs,
                 Mode mode)
    : cluster_(cluster),
      rng_(rng),
      checker_(checker),
      bugs_(bugs),
      mode_(mode),
      nodes_(cluster->nodes()) {
  const uint64_t locks = rng_.between(1, 4);
  for (uint64_t i = 0; i < locks; ++i) names_.push_back("lock" + std::to_string(i));
  p_shared_ = rng_.chance(0.5) ? 0.0 : 0.4 * rng_.unit();
  p_try_ = rng_.chance(0.3) ? 0.0 : 0.3 * rng_.unit();
  p_timeout_ = rng_.chance(0.3) ? 0.0 : 0.6 * rng_.unit();
  max_outstanding_ = static_cast<uint32_t>(rng_.between(1, 3));
  hold_max_ns_ = rng_.between(1, 30) * kMs;
}

std::string LockSim::describe() const {
  std::ostringstream o;
  o << "lock: locks=" << names_.size() << " shared=" << p_shared_ << " try=" << p_try_
    << " timeout=" << p_timeout_ << " per_member=" << max_outstanding_
    << " hold_max_ms=" << hold_max_ns_ / kMs;
  if (bugs_.grant_before_order) o << " bug=grant_before_order";
  if (mode_ != Mode::kSafe) o << " bug=lock_total_order";
  return o.str();
}

void LockSim::start() {
  cluster_->at(cluster_->now() + kMs, [this] { tick(); });
}

// Deadlines and held-back ops, every millisecond, as a real service's timer would.
void LockSim::tick() {
  for (NodeId n = 0; n < nodes_.size(); ++n) {
    Node& node = nodes_[n];
    if (!node.core || !cluster_->running(n) || cluster_->paused(n)) continue;
    if (node.core->next_deadline() != 0) {
      Busy b(&node.busy);
      node.core->expire(cluster_->now());
    }
    after(n);
    if (node.core->has_outbox()) flush(n);
  }
  cluster_->at(cluster_->now() + kMs, [this] { tick(); });
}

bool LockSim::op() {
  std::vector<NodeId> able;
  for (NodeId n = 0; n < nodes_.size(); ++n) {
    const Member* m = cluster_->member(n);
    const Node& node = nodes_[n];
    if (m == nullptr || cluster_->paused(n) || !node.core || node.core->final()) continue;
    if (m->state() != membership::MemberState::kActive &&
        m->state() != membership::MemberState::kWedged) {
      continue;
    }
    if (!m->restored() || node.core->outstanding() >= max_outstanding_) continue;
    able.push_back(n);
  }
  if (able.empty()) return false;
  const NodeId n = able[rng_.below(able.size())];
  Node& node = nodes_[n];
  const std::string& name = names_[rng_.below(names_.size())];
  const LockMode mode = rng_.chance(p_shared_) ? LockMode::kShared : LockMode::kExclusive;
  const bool try_only = rng_.chance(p_try_);
  const uint64_t deadline =
      !try_only && rng_.chance(p_timeout_) ? cluster_->now() + rng_.between(1, 60) * kMs : 0;
  LockStatus status;
  {
    Busy b(&node.busy);
    const uint64_t request = node.core->acquire(name, mode, try_only, deadline, &status);
    COHORT_ASSERT(request != 0 && status == LockStatus::kSent);
  }
  counters_.acquires++;
  after(n);
  flush(n);
  return true;
}

bool LockSim::quiescent() const {
  for (NodeId n = 0; n < nodes_.size(); ++n) {
    const Node& node = nodes_[n];
    if (!cluster_->running(n) || !node.core) continue;
    if (node.core->outstanding() != 0 || node.core->has_outbox() ||
        node.core->table().live_locks() != 0) {
      return false;
    }
  }
  return true;
}

// --- after every call into a core: outcomes, beliefs, sends ------------------------------------

void LockSim::after(NodeId n) {
  Node& node = nodes_[n];
  if (!node.core) return;
  const TimeNs now = cluster_->now();
  for (const CoreEvent& e : node.core->events()) {
    const std::string name(e.name.view());
    if (e.kind == CoreEvent::Kind::kLostHold) {
      counters_.lost_holds++;
      checker_->on_unheld(node.uid, e.request, now);
      continue;
    }
    checker_->on_outcome(node.uid, e.request, e.status);
    switch (e.status) {
      case LockStatus::kGranted:
        counters_.granted++;
        checker_->on_held(node.uid, e.request, name, e.fence, e.mode == LockMode::kShared, now);
        schedule_release(n, node.uid, e.request, e.fence,
                         now + rng_.between(200 * kUs, hold_max_ns_));
        break;
      case LockStatus::kBusy: counters_.busy++; break;
      case LockStatus::kTimedOut: counters_.timed_out++; break;
      case LockStatus::kLost: counters_.lost++; break;
      default: break;
    }
  }
  node.core->clear_events();
  if (node.core->has_outbox()) schedule_flush(n);
}

void LockSim::schedule_flush(NodeId n) {
  schedule_flush_once(cluster_, &nodes_, n, [this, n] { flush(n); });
}

// The core hands its ops over first and the cluster sends them after: a send can deliver at
// once (a view of one), and a delivery calls into the core again. A send the member refuses
// (it is not in a view, or holds 4096 sends) fails the run: the workload only sends from
// members in a view, far below that.
void LockSim::flush(NodeId n) {
  Node& node = nodes_[n];
  const Member* m = cluster_->member(n);
  if (!node.core || m == nullptr || cluster_->paused(n)) return;  // the tick retries
  if (m->state() != membership::MemberState::kActive &&
      m->state() != membership::MemberState::kWedged) {
    return;
  }
  std::vector<std::vector<std::byte>> out;
  {
    Busy b(&node.busy);
    node.core->flush([&out](std::span<const std::byte> bytes) {
      out.emplace_back(bytes.begin(), bytes.end());
      return SendStatus::kOk;
    });
  }
  const Uid uid = node.uid;
  for (const std::vector<std::byte>& bytes : out) {
    if (!cluster_->running(n) || !(cluster_->uid(n) == uid)) break;  // ended by a delivery
    lock::Op op;
    COHORT_ASSERT(lock::decode_op(bytes, &op) == lock::DecodeResult::kOk);
    const uint64_t id = cluster_->next_message_id();
    LockOpRecord rec;
    rec.owner = uid;
    rec.kind = op.kind == lock::OpKind::kAcquire   ? LockOpKind::kAcquire
               : op.kind == lock::OpKind::kRelease ? LockOpKind::kRelease
                                                   : LockOpKind::kWithdraw;
    rec.lock = std::string(op.name);
    rec.request = op.request;
    rec.shared = op.mode == LockMode::kShared;
    rec.try_only = op.try_only;
    checker_->on_op_sent(id, rec);
    const SendResult r = cluster_->app_send_body(n, mode_, id, bytes);
    if (r != SendResult::kOk) {
      checker_->fail("workload: member n" + std::to_string(n) + " refused a lock op (send result " +
                     std::to_string(static_cast<int>(r)) + ")");
    }
  }
  after(n);
}

void LockSim::schedule_release(NodeId n, Uid uid, uint64_t request, uint64_t fence, TimeNs at) {
  cluster_->at(at, [this, n, uid, request, fence] {
    Node& node = nodes_[n];
    if (!node.core || !(node.uid == uid) || !cluster_->running(n)) return;
    if (cluster_->paused(n)) {  // a paused process does nothing; it releases once it runs again
      schedule_release(n, uid, request, fence, cluster_->now() + kMs);
      return;
    }
    if (!node.core->holds(request, fence)) return;  // lost meanwhile
    {
      Busy b(&node.busy);
      COHORT_ASSERT(node.core->release(request) == LockStatus::kSent);
    }
    counters_.releases++;
    checker_->on_unheld(uid, request, cluster_->now());
    after(n);
    flush(n);
  });
}

// --- the member's events -----------------------------------------------------------------------

void LockSim::forward_table_events(NodeId n) {
  Node& node = nodes_[n];
  for (const lock::TableEvent& e : node.core->table().events()) {
    LockEventRecord r;
    r.kind = event_kind(e.kind);
    r.lock = std::string(e.name.view());
    r.owner = from_public(e.owner);
    r.request = e.request;
    r.fence = e.fence;
    r.shared = e.mode == LockMode::kShared;
    r.was_held = e.was_held;
    checker_->on_table_event(node.uid, r);
  }
}

void LockSim::end_step(NodeId n) {
  Node& node = nodes_[n];
  std::vector<LockSeen> seen(names_.size());
  for (size_t i = 0; i < names_.size(); ++i) {
    const LockInfo info = node.core->table().query(names_[i]);
    seen[i].lock = names_[i];
    for (const LockHolder& h : info.holders) {
      seen[i].holders.emplace_back(from_public(h.member), h.request);
      seen[i].fences.push_back(h.fence);
    }
    seen[i].waiting = info.waiting;
    seen[i].fence = info.fence;
  }
  checker_->end_step(node.uid, seen);
}

void LockSim::on_start(NodeId node, Uid self, bool founder) {
  Node& s = nodes_[node];
  lock::CoreOptions options;
  options.bugs = bugs_;
  s.core = std::make_unique<LockCore>(options);
  s.core->set_self(to_public(self));
  s.uid = self;
  s.flush_scheduled = false;
  s.busy = false;
  checker_->on_start(self, founder);
}

void LockSim::on_deliver(NodeId n, const Delivery& d) {
  Node& node = nodes_[n];
  if (!node.core) return;
  checker_->begin_delivery(node.uid, payload_id(d.payload), cluster_->now());
  bool op = false;
  {
    Busy b(&node.busy);
    op = node.core->on_deliver(app_body(d.payload), to_public(d.sender));
  }
  if (!op) counters_.not_ops++;
  forward_table_events(n);
  end_step(n);
  after(n);
}

void LockSim::on_install(NodeId n, const View& view) {
  Node& node = nodes_[n];
  if (!node.core) return;
  checker_->begin_install(node.uid, view, cluster_->now());
  {
    Busy b(&node.busy);
    node.core->on_view(public_members(view));
  }
  forward_table_events(n);
  end_step(n);
  after(n);
}

std::vector<std::byte> LockSim::snapshot(NodeId n) {
  Node& node = nodes_[n];
  return node.core ? node.core->snapshot() : std::vector<std::byte>{};
}

void LockSim::on_restore(NodeId n, std::span<const std::byte> bytes) {
  Node& node = nodes_[n];
  if (!node.core) return;
  bool ok = false;
  {
    Busy b(&node.busy);
    ok = node.core->restore(bytes);
  }
  if (!ok) {
    checker_->fail("state transfer: n" + std::to_string(n) +
                   "'s lock table refused its snapshot (" + std::to_string(bytes.size()) +
                   " bytes)");
  }
  checker_->on_restore(node.uid);
}

void LockSim::on_final(NodeId n, ActionKind kind) {
  Node& node = nodes_[n];
  if (!node.core) return;
  if (kind == ActionKind::kCutOff) checker_->on_cut_off(node.uid);
  {
    Busy b(&node.busy);
    node.core->on_event(final_event(kind));
  }
  after(n);
  if (kind != ActionKind::kCutOff) checker_->on_end(node.uid);
}

void LockSim::on_crash(NodeId n) {
  Node& node = nodes_[n];
  if (!node.core) return;
  checker_->on_end(node.uid);
  node.core.reset();
}

}  // namespace cohort::sim
