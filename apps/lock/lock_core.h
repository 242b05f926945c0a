// LockCore: one member's side of the lock service, without a group, a clock or a thread: its
// copy of the table (lock_table.h), its own requests and what became of them, and the ops it
// has yet to send. The LockService (lock_service.cc) runs it behind a mutex over a real
// cohort::Group; the simulator (tests/sim/lock_sim.*) runs the same class over simulated
// members. apps/lock/NOTES.md has the rules.
//
// Inputs: the application's requests (acquire, release, withdraw at a deadline) and the group's
// deliveries, views and final events. Outputs: ops to send (flush(), always in safe mode, in
// the order they were made) and events for the application (events(), until clear_events()).
//
// A request's outcome is decided by the order, never locally: kGranted when the member's own
// table grants it; kBusy or kRefused when the table says so; kTimedOut when the member's own
// withdraw is delivered (a grant delivered before it is not reported, and the withdraw itself
// removes it); kLost when the member leaves the view first. A held lock is lost (kLostHold) when
// the member is removed, leaves, or is cut off from a majority (then it queues a release, which
// takes effect if the group takes it back); from then on holds() is false for it.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <span>
#include <string_view>
#include <vector>

#include "apps/lock/lock_table.h"
#include "cohort/group.h"
#include "cohort/lock.h"

namespace cohort::lock {

// A planted bug for the simulator's self test (tests/sim, "lock mutation"); production code
// never sets it.
struct CoreBugs {
  // acquire() of a lock the local table shows idle reports kGranted at once, with the token it
  // guesses comes next, without waiting for the ordered delivery.
  bool grant_before_order = false;
};

struct CoreOptions {
  LockTable::Limits limits{};
  CoreBugs bugs{};
};

struct CoreEvent {
  enum class Kind : uint8_t {
    kOutcome,   // the request's outcome: `status` is kGranted, kBusy, kTimedOut, kLost,
                // kRefused or kNotMember
    kLostHold,  // a grant this member held is lost (`status` kLost)
  };
  Kind kind = Kind::kOutcome;
  LockStatus status = LockStatus::kGranted;
  uint64_t request = 0;
  LockName name;
  uint64_t fence = 0;
  LockMode mode = LockMode::kExclusive;
};

class LockCore {
 public:
  explicit LockCore(const CoreOptions& options = {});

  // This member's identity, before any delivery.
  void set_self(MemberUid self) noexcept { self_ = self; }
  MemberUid self() const noexcept { return self_; }

  // --- the application's side ----------------------------------------------------------------
  // Queues an acquire and returns its request number, or 0 with `*status` kInvalid (bad name)
  // or kNotMember (this member left the group for good). deadline_ns 0: none.
  uint64_t acquire(std::string_view name, LockMode mode, bool try_only, uint64_t deadline_ns,
                   LockStatus* status);
  // kSent (a release is queued), or kNotHeld.
  LockStatus release(uint64_t request);
  // Withdraws a waiting request now (a blocking caller's deadline); false if it is not waiting.
  bool withdraw(uint64_t request);
  // Withdraws every waiting request whose deadline is <= now_ns.
  void expire(uint64_t now_ns);
  // The earliest deadline of a waiting request; 0 when none.
  uint64_t next_deadline() const noexcept;
  bool holds(uint64_t request, uint64_t fence) const noexcept;
  // Requests not finished (waiting, held, or with an op still to be delivered).
  size_t outstanding() const noexcept { return own_.size(); }
  bool final() const noexcept { return final_; }

  // --- the group's side ----------------------------------------------------------------------
  // A delivery; false when it is not a lock op (another application message).
  bool on_deliver(std::span<const std::byte> payload, MemberUid sender);
  void on_view(std::span<const MemberUid> members);
  void on_event(GroupEvent event);
  std::vector<std::byte> snapshot() const { return table_.snapshot(); }
  bool restore(std::span<const std::byte> bytes) { return table_.restore(bytes); }

  // --- outputs -------------------------------------------------------------------------------
  using SendFn = std::function<SendStatus(std::span<const std::byte>)>;
  // Sends queued ops in order until one is refused for now (kFull: call again later); a
  // kNotMember or kTooLarge answer drops the op and ends its request. Returns ops sent.
  uint32_t flush(const SendFn& send);
  bool has_outbox() const noexcept { return !outbox_.empty(); }
  std::span<const CoreEvent> events() const noexcept { return events_; }
  void clear_events() noexcept { events_.clear(); }

  const LockTable& table() const noexcept { return table_; }

 private:
  enum class State : uint8_t {
    kWaiting,      // acquire sent (or queued); no outcome yet
    kHeld,         // granted, and the application holds it
    kWithdrawing,  // timed out: a withdraw is on its way; the outcome comes with it
    kReleasing,    // released: a release is on its way
    kAbandoned,    // lost while held (cut off): a release is on its way
  };
  struct Own {
    LockName name;
    LockMode mode = LockMode::kExclusive;
    State state = State::kWaiting;
    uint64_t deadline_ns = 0;
    uint64_t fence = 0;
  };
  struct Outgoing {
    EncodedOp op;
    OpKind kind = OpKind::kAcquire;
    uint64_t request = 0;
  };

  void queue_op(OpKind kind, uint64_t request, const Own& own, bool try_only = false);
  void on_table_events();
  void own_event(const TableEvent& e);
  void outcome(uint64_t request, const Own& own, LockStatus status,
               CoreEvent::Kind kind = CoreEvent::Kind::kOutcome);

  CoreOptions options_;
  MemberUid self_{};
  LockTable table_;
  std::map<uint64_t, Own> own_;
  std::deque<Outgoing> outbox_;
  std::vector<CoreEvent> events_;
  uint64_t next_request_ = 0;
  bool final_ = false;
};

}  // namespace cohort::lock
