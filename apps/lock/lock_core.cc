// One member's side of the lock service (lock_core.h).
#include "apps/lock/lock_core.h"

#include "runtime/assert.h"

namespace cohort::lock {

LockCore::LockCore(const CoreOptions& options) : options_(options), table_(options.limits) {}

// --- the application's side --------------------------------------------------------------------

uint64_t LockCore::acquire(std::string_view name, LockMode mode, bool try_only,
                           uint64_t deadline_ns, LockStatus* status) {
  if (final_) {
    *status = LockStatus::kNotMember;
    return 0;
  }
  if (!valid_name(name)) {
    *status = LockStatus::kInvalid;
    return 0;
  }
  const uint64_t request = ++next_request_;
  Own& own = own_[request];
  own.name = LockName::of(name);
  own.mode = mode;
  own.deadline_ns = try_only ? 0 : deadline_ns;
  queue_op(OpKind::kAcquire, request, own, try_only);
  *status = LockStatus::kSent;
  if (options_.bugs.grant_before_order) {
    // The planted bug: trusts this member's table as if no other request could come first.
    const LockInfo info = table_.query(name);
    if (info.holders.empty() && info.waiting == 0) {
      own.state = State::kHeld;
      own.fence = table_.fence() + 1;
      outcome(request, own, LockStatus::kGranted);
    }
  }
  return request;
}

LockStatus LockCore::release(uint64_t request) {
  auto it = own_.find(request);
  if (it == own_.end() || it->second.state != State::kHeld) return LockStatus::kNotHeld;
  it->second.state = State::kReleasing;
  queue_op(OpKind::kRelease, request, it->second);
  return LockStatus::kSent;
}

bool LockCore::withdraw(uint64_t request) {
  auto it = own_.find(request);
  if (it == own_.end() || it->second.state != State::kWaiting) return false;
  it->second.state = State::kWithdrawing;
  queue_op(OpKind::kWithdraw, request, it->second);
  return true;
}

void LockCore::expire(uint64_t now_ns) {
  for (auto& [request, own] : own_) {
    if (own.state == State::kWaiting && own.deadline_ns != 0 && own.deadline_ns <= now_ns) {
      own.state = State::kWithdrawing;
      queue_op(OpKind::kWithdraw, request, own);
    }
  }
}

uint64_t LockCore::next_deadline() const noexcept {
  uint64_t next = 0;
  for (const auto& [request, own] : own_) {
    if (own.state != State::kWaiting || own.deadline_ns == 0) continue;
    if (next == 0 || own.deadline_ns < next) next = own.deadline_ns;
  }
  return next;
}

bool LockCore::holds(uint64_t request, uint64_t fence) const noexcept {
  auto it = own_.find(request);
  return it != own_.end() && it->second.state == State::kHeld && it->second.fence == fence;
}

void LockCore::queue_op(OpKind kind, uint64_t request, const Own& own, bool try_only) {
  Outgoing out;
  out.kind = kind;
  out.request = request;
  Op op;
  op.kind = kind;
  op.mode = own.mode;
  op.try_only = try_only;
  op.request = request;
  op.name = own.name.view();
  COHORT_ASSERT(encode_op(op, &out.op));
  outbox_.push_back(out);
}

// --- the group's side --------------------------------------------------------------------------

bool LockCore::on_deliver(std::span<const std::byte> payload, MemberUid sender) {
  Op op;
  const ApplyResult r = table_.apply(payload, sender, &op);
  if (r == ApplyResult::kNotOp) return false;
  if (r == ApplyResult::kMalformed) return true;
  on_table_events();
  // This member's own release or withdraw is in the order now: the request is over.
  if (sender == self_ && op.kind != OpKind::kAcquire) {
    auto it = own_.find(op.request);
    if (it != own_.end()) {
      switch (it->second.state) {
        case State::kWithdrawing:
          outcome(op.request, it->second, LockStatus::kTimedOut);
          own_.erase(it);
          break;
        case State::kReleasing:
        case State::kAbandoned: own_.erase(it); break;
        case State::kWaiting:
        case State::kHeld: break;  // not an op this core sent for it
      }
    }
  }
  return true;
}

void LockCore::on_view(std::span<const MemberUid> members) {
  table_.on_view(members);
  on_table_events();
}

void LockCore::on_event(GroupEvent event) {
  if (final_) return;
  if (event == GroupEvent::kCutOff) {
    // The majority may remove this member and grant its locks on at any moment: stop holding
    // now. The release takes effect if this member is taken back instead.
    for (auto& [request, own] : own_) {
      if (own.state != State::kHeld) continue;
      outcome(request, own, LockStatus::kLost, CoreEvent::Kind::kLostHold);
      own.state = State::kAbandoned;
      queue_op(OpKind::kRelease, request, own);
    }
    return;
  }
  for (auto& [request, own] : own_) {
    if (own.state == State::kHeld) {
      outcome(request, own, LockStatus::kLost, CoreEvent::Kind::kLostHold);
    } else if (own.state == State::kWaiting || own.state == State::kWithdrawing) {
      outcome(request, own, LockStatus::kLost);
    }
  }
  own_.clear();
  outbox_.clear();
  final_ = true;
}

void LockCore::on_table_events() {
  for (const TableEvent& e : table_.events()) {
    if (e.owner == self_) own_event(e);
  }
}

void LockCore::own_event(const TableEvent& e) {
  auto it = own_.find(e.request);
  if (it == own_.end()) return;
  Own& own = it->second;
  switch (e.kind) {
    case EventKind::kGranted:
      // A grant that a withdraw or a loss overtook is not reported: the op on its way removes it.
      if (own.state == State::kWaiting) {
        own.state = State::kHeld;
        own.fence = e.fence;
        outcome(e.request, own, LockStatus::kGranted);
      }
      break;
    case EventKind::kTryFailed:
      if (own.state == State::kWaiting) outcome(e.request, own, LockStatus::kBusy);
      own_.erase(it);
      break;
    case EventKind::kRefused:
      if (own.state == State::kWaiting || own.state == State::kWithdrawing) {
        outcome(e.request, own, LockStatus::kRefused);
      }
      own_.erase(it);
      break;
    case EventKind::kDropped:  // only if this member is not in its own view: treat as lost
      if (own.state == State::kHeld) {
        outcome(e.request, own, LockStatus::kLost, CoreEvent::Kind::kLostHold);
      } else if (own.state == State::kWaiting || own.state == State::kWithdrawing) {
        outcome(e.request, own, LockStatus::kLost);
      }
      own_.erase(it);
      break;
    case EventKind::kReleased:
    case EventKind::kWithdrawn: break;  // on_deliver() ends the request after the events
  }
}

void LockCore::outcome(uint64_t request, const Own& own, LockStatus status, CoreEvent::Kind kind) {
  CoreEvent ev;
  ev.kind = kind;
  ev.status = status;
  ev.request = request;
  ev.name = own.name;
  ev.fence = own.fence;
  ev.mode = own.mode;
  events_.push_back(ev);
}

// --- outputs -----------------------------------------------------------------------------------

uint32_t LockCore::flush(const SendFn& send) {
  uint32_t sent = 0;
  while (!outbox_.empty()) {
    const Outgoing& out = outbox_.front();
    const SendStatus status = send(out.op.span());
    if (status == SendStatus::kFull) break;
    if (status == SendStatus::kOk) {
      sent++;
    } else if (auto it = own_.find(out.request); it != own_.end()) {
      // Refused for good: the request ends here.
      if (it->second.state == State::kWaiting && out.kind == OpKind::kAcquire) {
        outcome(out.request, it->second, LockStatus::kNotMember);
      } else if (it->second.state == State::kWaiting || it->second.state == State::kWithdrawing) {
        outcome(out.request, it->second, LockStatus::kLost);
      } else if (it->second.state == State::kHeld) {
        outcome(out.request, it->second, LockStatus::kLost, CoreEvent::Kind::kLostHold);
      }
      own_.erase(it);
    }
    outbox_.pop_front();
  }
  return sent;
}

}  // namespace cohort::lock
