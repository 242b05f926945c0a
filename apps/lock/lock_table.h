// LockTable: the lock service's replicated state as a pure state machine (apps/lock/NOTES.md).
// Every member feeds its table the same delivered ops in the same order and the same views, so
// every table takes the same steps and answers with the same events. No clock, thread or
// transport inside: the service (lock_core.h, lock_service.cc) and the simulator
// (tests/sim/lock_sim.*) drive the same code.
//
// Rules:
// - A lock's requests form one FIFO queue in delivery order; the granted requests are always a
//   prefix of it. A request is granted once every request before it is granted and its mode is
//   compatible with theirs (shared with shared only); so no request ever overtakes an earlier
//   one, and a shared request waits behind a waiting exclusive one.
// - A try acquire is granted when it would be granted at once, and otherwise never queued.
// - Release and withdraw remove the sender's request, granted or waiting.
// - on_view() removes the requests of every member not in the view, then grants onward.
// - Each grant takes the next fencing token of the table (one counter for all locks), so a
//   lock's tokens strictly increase, and no two grants anywhere share one.
// - An idle lock (no holder, no waiter) is forgotten; its tokens stay below any later one.
//
// Events (events()) say what each call did, in order; they are valid until the next call.
//
// Threading: one thread at a time (the service holds a mutex around it).
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "apps/lock/lock_op.h"
#include "cohort/lock.h"

namespace cohort::lock {

// A lock's name without an allocation, for events.
struct LockName {
  std::array<char, kMaxLockNameBytes> bytes{};
  uint8_t size = 0;

  static LockName of(std::string_view name) noexcept;
  std::string_view view() const noexcept { return {bytes.data(), size}; }
};

enum class EventKind : uint8_t {
  kGranted,    // the request holds the lock now, with `fence`
  kReleased,   // a release removed it (`was_held`: it held the lock)
  kWithdrawn,  // a withdraw removed it
  kTryFailed,  // a try acquire that could not be granted at once: never queued
  kDropped,    // its member is not in the view: removed at the view change
  kRefused,    // the table's limits refused the acquire: never queued
};
const char* event_kind_name(EventKind kind) noexcept;

struct TableEvent {
  EventKind kind = EventKind::kGranted;
  LockName name;
  MemberUid owner;
  uint64_t request = 0;
  uint64_t fence = 0;  // kGranted; the grant's token for removals of a held request
  LockMode mode = LockMode::kExclusive;
  bool was_held = false;
};

enum class ApplyResult : uint8_t { kApplied, kNotOp, kMalformed };

class LockTable {
 public:
  struct Limits {
    uint32_t max_locks = 4096;         // live locks (with a holder or a waiter)
    uint32_t max_queue = 1024;         // holders and waiters of one lock
  };
  struct Counters {
    uint64_t ops_applied = 0;
    uint64_t ops_malformed = 0;
    uint64_t duplicates = 0;  // an acquire whose (member, request) is queued already
    uint64_t stale = 0;       // a release or withdraw of a request that is not queued
    uint64_t refused = 0;
    uint64_t grants = 0;
    uint64_t dropped_by_view = 0;
    uint64_t restores_malformed = 0;
  };

  LockTable() = default;
  explicit LockTable(const Limits& limits) : limits_(limits) {}

  // One delivered message from `sender`. kNotOp: not a lock op (left alone); kMalformed: counted
  // and ignored. `decoded`, when given, receives the op on kApplied (its name points into
  // `payload`).
  ApplyResult apply(std::span<const std::byte> payload, MemberUid sender, Op* decoded = nullptr);
  void apply(const Op& op, MemberUid sender);
  // A view was installed: `members` are all of it.
  void on_view(std::span<const MemberUid> members);

  // The whole state, deterministic bytes (locks in name order). restore() replaces the state;
  // on malformed bytes it returns false, counts, and leaves the table empty.
  std::vector<std::byte> snapshot() const;
  bool restore(std::span<const std::byte> bytes);

  LockInfo query(std::string_view name) const;
  // The latest fencing token handed out (0 before the first grant).
  uint64_t fence() const noexcept { return fence_; }
  size_t live_locks() const noexcept { return locks_.size(); }
  const Counters& counters() const noexcept { return counters_; }
  std::span<const TableEvent> events() const noexcept { return events_; }

 private:
  struct Entry {
    MemberUid owner;
    uint64_t request = 0;
    uint64_t fence = 0;  // 0 while waiting
    LockMode mode = LockMode::kExclusive;
  };
  struct Lock {
    std::vector<Entry> queue;  // queue[0, held) hold the lock
    uint32_t held = 0;
    uint64_t fence = 0;  // latest token of this lock
  };
  using Locks = std::map<std::string, Lock, std::less<>>;

  void acquire(const Op& op, MemberUid sender);
  void remove(const Op& op, MemberUid sender);
  void grant_onward(const std::string& name, Lock& lock);
  static bool compatible(const Lock& lock, LockMode mode) noexcept;
  void emit(EventKind kind, std::string_view name, const Entry& e, bool was_held);

  Limits limits_{};
  Locks locks_;
  uint64_t fence_ = 0;
  Counters counters_{};
  std::vector<TableEvent> events_;
};

}  // namespace cohort::lock
