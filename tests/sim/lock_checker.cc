// The lock workload's checker (lock_checker.h).
#include "tests/sim/lock_checker.h"

#include <algorithm>
#include <tuple>

namespace cohort::sim {
namespace {

// Appends rather than `"n" + ...`: GCC 12 warns falsely (-Wrestrict) on the latter here.
std::string name(Uid u) {
  std::string s("n");
  s += std::to_string(u.node);
  s += '.';
  s += std::to_string(u.incarnation);
  return s;
}

std::string req(Uid owner, uint64_t request) {
  std::string s = name(owner);
  s += '#';
  s += std::to_string(request);
  return s;
}

constexpr size_t kMaxViolations = 40;

const char* kind_name(LockEventKind k) {
  switch (k) {
    case LockEventKind::kGranted: return "granted";
    case LockEventKind::kReleased: return "released";
    case LockEventKind::kWithdrawn: return "withdrawn";
    case LockEventKind::kTryFailed: return "try_failed";
    case LockEventKind::kDropped: return "dropped";
    case LockEventKind::kRefused: return "refused";
  }
  return "?";
}

}  // namespace

bool LockChecker::Model::operator==(const Model& o) const {
  if (last_fence != o.last_fence || queues.size() != o.queues.size()) return false;
  for (auto a = queues.begin(), b = o.queues.begin(); a != queues.end(); ++a, ++b) {
    if (a->first != b->first || a->second.size() != b->second.size()) return false;
    for (size_t i = 0; i < a->second.size(); ++i) {
      const Entry& x = a->second[i];
      const Entry& y = b->second[i];
      if (!(x.owner == y.owner) || x.request != y.request || x.shared != y.shared ||
          x.granted != y.granted || x.fence != y.fence) {
        return false;
      }
    }
  }
  return true;
}

LockChecker::MemberState* LockChecker::find(Uid member) {
  auto it = members_.find(member.key());
  return it == members_.end() ? nullptr : &it->second;
}

void LockChecker::violation(std::string text) {
  if (violations_.size() < kMaxViolations) {
    violations_.push_back("lock: " + std::move(text));
  } else {
    suppressed_++;
  }
}

// --- members -----------------------------------------------------------------------------------

void LockChecker::on_start(Uid member, bool founder) {
  MemberState& m = members_[member.key()];
  m = MemberState{};
  m.uid = member;
  m.valid = founder;
}

void LockChecker::on_end(Uid member) {
  MemberState* m = find(member);
  if (m == nullptr) return;
  m->ended = true;
  m->valid = false;
  std::erase_if(beliefs_, [member](const auto& kv) { return kv.second.owner == member; });
}

void LockChecker::on_cut_off(Uid member) {
  if (MemberState* m = find(member)) m->cut_off = true;
}

void LockChecker::on_restore(Uid member) {
  MemberState* m = find(member);
  if (m == nullptr) return;
  m->valid = false;
  m->awaiting_first_view = true;
}

void LockChecker::on_op_sent(uint64_t msg_id, const LockOpRecord& op) {
  ops_.emplace(msg_id, op);
  if (op.kind == LockOpKind::kAcquire) requests_[{op.owner.key(), op.request}].sent_ok++;
}

// --- steps -------------------------------------------------------------------------------------

void LockChecker::begin_delivery(Uid member, uint64_t msg_id, TimeNs now) {
  MemberState* m = find(member);
  if (m == nullptr || !m->valid) return;
  m->step = Step::kDelivery;
  auto it = ops_.find(msg_id);
  m->op = it == ops_.end() ? nullptr : &it->second;
  m->try_grantable = m->try_resolved = m->removal_expected = m->removal_done = false;
  m->where = " (at " + name(member) + ", view " + std::to_string(m->view_id) + ", msg " +
             std::to_string(msg_id) + ", t=" + std::to_string(now / 1000) + "us)";
  if (m->op == nullptr) return;
  const LockOpRecord& op = *m->op;
  std::vector<Entry>& q = m->model.queues[op.lock];
  const auto at = std::find_if(q.begin(), q.end(), [&](const Entry& e) {
    return e.owner == op.owner && e.request == op.request;
  });
  if (op.kind == LockOpKind::kAcquire) {
    if (at != q.end()) {
      violation("workload: request " + req(op.owner, op.request) + " sent twice" + m->where);
      return;
    }
    q.push_back(Entry{op.owner, op.request, op.shared, false, 0});
    m->try_grantable = grantable(q, q.size() - 1);
  } else {
    m->removal_expected = at != q.end();
  }
}

void LockChecker::begin_install(Uid member, const View& view, TimeNs now) {
  MemberState* m = find(member);
  if (m == nullptr || m->ended) return;
  const bool consecutive = m->view_id != 0 && view.id == m->view_id + 1;
  m->view_id = view.id;
  m->view.assign(view.list().begin(), view.list().end());
  m->where = " (at " + name(member) + ", install of view " + std::to_string(view.id) +
             ", t=" + std::to_string(now / 1000) + "us)";
  if (m->awaiting_first_view) {
    m->awaiting_first_view = false;
    auto b = boundary_.find(view.id);
    if (b == boundary_.end()) {
      violation("state transfer: joiner " + name(member) + " restored into view " +
                std::to_string(view.id) + ", which no old member entered" + m->where);
      return;
    }
    m->model = b->second;
    m->valid = true;
  } else if (m->valid && consecutive) {
    // Members that go from v-1 to v hold the same queues there (the joiner's snapshot too).
    auto [b, inserted] = boundary_.emplace(view.id, m->model);
    if (!inserted && !(b->second == m->model)) {
      violation("agreement: members enter view " + std::to_string(view.id) +
                " with different lock queues" + m->where);
    }
  }
  if (!m->valid) return;
  m->step = Step::kInstall;
  m->op = nullptr;
  m->dropped_held.clear();
  for (const auto& [key, b] : beliefs_) {
    if (b.owner == member) check_exclusion(b, "after an install");
  }
}

bool LockChecker::grantable(const std::vector<Entry>& q, size_t i) {
  for (size_t k = 0; k < i; ++k) {
    if (!q[k].granted) return false;
    if (!q[i].shared || !q[k].shared) return false;
  }
  return true;
}

void LockChecker::on_table_event(Uid member, const LockEventRecord& e) {
  MemberState* m = find(member);
  if (m == nullptr || !m->valid) return;
  const std::string what = std::string(kind_name(e.kind)) + " " + req(e.owner, e.request) +
                           " of lock " + e.lock + m->where;
  if (m->step == Step::kNone) {
    violation("an event outside a delivery or a view: " + what);
    return;
  }
  std::vector<Entry>& q = m->model.queues[e.lock];
  const auto at = std::find_if(q.begin(), q.end(), [&](const Entry& x) {
    return x.owner == e.owner && x.request == e.request;
  });
  if (at == q.end()) {
    violation("an event for a request not queued: " + what);
    return;
  }
  const size_t i = static_cast<size_t>(at - q.begin());
  const LockOpRecord* op = m->op;
  const bool this_op = op != nullptr && op->owner == e.owner && op->request == e.request &&
                       op->lock == e.lock;
  switch (e.kind) {
    case LockEventKind::kGranted: {
      if (at->granted) {
        violation("granted twice: " + what);
        return;
      }
      if (!grantable(q, i)) {
        bool overtakes = false;
        for (size_t k = 0; k < i; ++k) overtakes = overtakes || !q[k].granted;
        if (overtakes) {
          violation("FIFO: the grant overtakes an earlier request still queued: " + what);
        } else {
          violation("mutual exclusion: granted beside an incompatible holder at one member: " +
                    what);
        }
      }
      uint64_t& last = m->model.last_fence[e.lock];
      if (e.fence <= last) {
        violation("fencing: token " + std::to_string(e.fence) + " after token " +
                  std::to_string(last) + ": " + what);
      }
      last = std::max(last, e.fence);
      at->granted = true;
      at->fence = e.fence;
      grants_seen_++;
      agree(e.lock, e.fence, e.owner, e.request, "granted" + m->where);
      if (this_op && op->kind == LockOpKind::kAcquire) m->try_resolved = true;
      if (m->step == Step::kInstall && m->dropped_held.erase(e.lock) != 0) moved_on_++;
      return;
    }
    case LockEventKind::kReleased:
    case LockEventKind::kWithdrawn: {
      const LockOpKind want =
          e.kind == LockEventKind::kReleased ? LockOpKind::kRelease : LockOpKind::kWithdraw;
      if (m->step != Step::kDelivery || !this_op || op->kind != want) {
        violation("a removal no delivered op asked for: " + what);
      }
      if (e.was_held != at->granted) violation("removal says held=" + std::to_string(e.was_held) + ": " + what);
      q.erase(at);
      m->removal_done = true;
      return;
    }
    case LockEventKind::kTryFailed:
      if (m->step != Step::kDelivery || !this_op || op->kind != LockOpKind::kAcquire ||
          !op->try_only) {
        violation("a failed try no delivered try asked for: " + what);
      } else if (m->try_grantable) {
        violation("a try failed that could have been granted at once: " + what);
      }
      q.erase(at);
      m->try_resolved = true;
      return;
    case LockEventKind::kDropped: {
      const bool departed =
          std::find(m->view.begin(), m->view.end(), e.owner) == m->view.end();
      if (m->step != Step::kInstall || !departed) {
        violation("dropped a request of a member in the view, or outside a view change: " + what);
      }
      if (e.was_held != at->granted) violation("drop says held=" + std::to_string(e.was_held) + ": " + what);
      if (at->granted) m->dropped_held.insert(e.lock);
      q.erase(at);
      return;
    }
    case LockEventKind::kRefused:
      violation("refused although far from the table's limits: " + what);
      q.erase(at);
      return;
  }
}

void LockChecker::check_onward(MemberState& m) {
  for (const auto& [lock, q] : m.model.queues) {
    for (size_t i = 0; i < q.size(); ++i) {
      if (q[i].granted) continue;
      if (grantable(q, i)) {
        violation("onward grant: " + req(q[i].owner, q[i].request) + " heads lock " + lock +
                  "'s waiters and could hold it, but was not granted" + m.where);
      }
      break;
    }
  }
}

void LockChecker::end_step(Uid member, std::span<const LockSeen> seen) {
  MemberState* m = find(member);
  if (m == nullptr || !m->valid || m->step == Step::kNone) return;
  const LockOpRecord* op = m->op;
  if (m->step == Step::kDelivery && op != nullptr) {
    if (op->kind == LockOpKind::kAcquire && op->try_only && !m->try_resolved) {
      violation("a delivered try was neither granted nor failed: " + req(op->owner, op->request) +
                " of lock " + op->lock + m->where);
    }
    if (m->removal_expected && !m->removal_done) {
      violation("a delivered " + std::string(op->kind == LockOpKind::kRelease ? "release" : "withdraw") +
                " left its request queued: " + req(op->owner, op->request) + " of lock " +
                op->lock + m->where);
    }
  }
  if (m->step == Step::kInstall) {
    for (const auto& [lock, q] : m->model.queues) {
      for (const Entry& e : q) {
        if (std::find(m->view.begin(), m->view.end(), e.owner) == m->view.end()) {
          violation("a departed member stays queued after the view change: " +
                    req(e.owner, e.request) + " of lock " + lock + m->where);
        }
      }
    }
  }
  check_onward(*m);
  // The table, as its query shows it, is the model.
  for (const LockSeen& s : seen) {
    auto it = m->model.queues.find(s.lock);
    static const std::vector<Entry> kNone;
    const std::vector<Entry>& q = it == m->model.queues.end() ? kNone : it->second;
    std::vector<std::pair<Uid, uint64_t>> holders;
    std::vector<uint64_t> fences;
    uint32_t waiting = 0;
    for (const Entry& e : q) {
      if (e.granted) {
        holders.emplace_back(e.owner, e.request);
        fences.push_back(e.fence);
      } else {
        waiting++;
      }
    }
    const auto lf = m->model.last_fence.find(s.lock);
    const uint64_t fence = q.empty() || lf == m->model.last_fence.end() ? 0 : lf->second;
    if (holders != s.holders || fences != s.fences || waiting != s.waiting ||
        (!q.empty() && fence != s.fence)) {
      violation("the table's query of lock " + s.lock + " (" + std::to_string(s.holders.size()) +
                " holders, " + std::to_string(s.waiting) + " waiting, token " +
                std::to_string(s.fence) + ") differs from the checker's model (" +
                std::to_string(holders.size()) + ", " + std::to_string(waiting) + ", " +
                std::to_string(fence) + ")" + m->where);
    }
  }
  for (auto it = m->model.queues.begin(); it != m->model.queues.end();) {
    it = it->second.empty() ? m->model.queues.erase(it) : std::next(it);
  }
  m->step = Step::kNone;
  m->op = nullptr;
}

// --- fencing agreement and the holders' beliefs ------------------------------------------------

void LockChecker::agree(const std::string& lock, uint64_t fence, Uid owner, uint64_t request,
                        const std::string& who) {
  const std::pair<uint64_t, uint64_t> grant{owner.key(), request};
  auto [f, f_new] = fence_owner_.emplace(std::make_pair(lock, fence), grant);
  if (!f_new && f->second != grant) {
    violation("fencing: token " + std::to_string(fence) + " of lock " + lock + " belongs to " +
              req(Uid::from_key(f->second.first), f->second.second) + " elsewhere, but to " +
              req(owner, request) + ": " + who);
  }
  auto [r, r_new] = request_fence_.emplace(std::make_tuple(lock, owner.key(), request), fence);
  if (!r_new && r->second != fence) {
    violation("fencing: " + req(owner, request) + " of lock " + lock + " has token " +
              std::to_string(r->second) + " elsewhere, but " + std::to_string(fence) + ": " + who);
  }
}

void LockChecker::check_exclusion(const Belief& b, const std::string& when) {
  const MemberState* mb = find(b.owner);
  if (mb == nullptr || mb->ended || mb->view_id == 0) return;
  for (const auto& [key, o] : beliefs_) {
    if (o.lock != b.lock || (o.owner == b.owner && o.request == b.request)) continue;
    if (o.shared && b.shared) continue;
    const MemberState* mo = find(o.owner);
    if (mo == nullptr || mo->ended || mo->view_id != mb->view_id) continue;
    violation("mutual exclusion: " + req(o.owner, o.request) + " (token " +
              std::to_string(o.fence) + (o.shared ? ", shared" : "") + ") and " +
              req(b.owner, b.request) + " (token " + std::to_string(b.fence) +
              (b.shared ? ", shared" : "") + ") both act as holders of lock " + b.lock +
              " in view " + std::to_string(mb->view_id) + ", " + when);
  }
}

void LockChecker::on_held(Uid owner, uint64_t request, const std::string& lock, uint64_t fence,
                          bool shared, TimeNs now) {
  beliefs_seen_++;
  const std::string when = "at t=" + std::to_string(now / 1000) + "us";
  agree(lock, fence, owner, request, "acted on by its holder " + when);
  Belief b{owner, request, lock, fence, shared};
  check_exclusion(b, "when " + req(owner, request) + " took it " + when);
  beliefs_[{owner.key(), request}] = std::move(b);
}

void LockChecker::on_unheld(Uid owner, uint64_t request, TimeNs /*now*/) {
  beliefs_.erase({owner.key(), request});
}

void LockChecker::on_outcome(Uid owner, uint64_t request, LockStatus status) {
  Request& r = requests_[{owner.key(), request}];
  if (r.has_outcome) {
    violation("request " + req(owner, request) + " had two outcomes (" +
              lock_status_name(r.outcome) + ", then " + lock_status_name(status) + ")");
  }
  r.has_outcome = true;
  r.outcome = status;
}

void LockChecker::finish(std::span<const Uid> live, const View* final_view, bool converged) {
  if (converged && final_view != nullptr) {
    for (const auto& [key, r] : requests_) {
      const Uid owner = Uid::from_key(key.first);
      if (std::find(live.begin(), live.end(), owner) == live.end() ||
          !final_view->contains(owner) || r.sent_ok == 0) {
        continue;
      }
      if (!r.has_outcome) {
        violation("request lost: surviving member " + req(owner, key.second) +
                  " sent an acquire and never had its outcome");
      } else if (r.outcome != LockStatus::kGranted && r.outcome != LockStatus::kBusy &&
                 r.outcome != LockStatus::kTimedOut) {
        violation(std::string("request lost: surviving member ") + req(owner, key.second) +
                  "'s acquire ended " + lock_status_name(r.outcome));
      }
    }
  }
  if (suppressed_ != 0) {
    violations_.push_back("lock: ... and " + std::to_string(suppressed_) + " more violations");
    suppressed_ = 0;
  }
}

}  // namespace cohort::sim
