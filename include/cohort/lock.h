// cohort's lock service: named locks over a group (DESIGN.md, "Apps"; apps/lock/NOTES.md).
//
// Every lock operation is multicast in safe (uniform) total order, so every member keeps the
// same FIFO queue per lock; a release passes the lock to the oldest pending request; a member
// that leaves the view (crash, removal, leave) is dropped from every queue alike at the view
// change, and the lock moves on. Each grant carries a fencing token that only ever grows:
// hand it to the resource the lock guards, and let the resource refuse a token lower than one
// it has seen (a holder paused past its removal comes back with a stale token).
//
//   cohort::GroupOptions options;
//   options.name = "locks";
//   options.node = 1;
//   auto locks = cohort::LockService::create(options);
//   if (!locks) { fprintf(stderr, "%s\n", locks.error().message().c_str()); return 1; }
//   (*locks)->group().start();
//   cohort::LockResult r = (*locks)->acquire("printer", cohort::LockMode::kExclusive,
//                                            std::chrono::seconds(1));
//   if (r.status == cohort::LockStatus::kGranted) {
//     print(job, r.grant.fence);           // the printer refuses fences below one it saw
//     (*locks)->release(r.grant);
//   }
//
// Threading. Callbacks (an asynchronous acquire's outcome, the lost-locks callback, and the
// forwarded GroupListener calls) run on the group's data core, one at a time, and must not
// block (the one exception: a request the group's send queue kept refusing and then answered
// kNotMember is answered from the service's timer thread). acquire() and try_acquire() block
// and are for ordinary threads: from a callback they answer kInvalid, and they must not be
// called from the thread that polls the group (it would wait for a delivery only it can make).
// Everything else may be called from any thread, callbacks included.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "cohort/group.h"
#include "runtime/result.h"

namespace cohort {

enum class LockMode : uint8_t {
  kExclusive = 0,  // one holder
  kShared = 1,     // any number of shared holders, no exclusive one
};

inline constexpr size_t kMaxLockNameBytes = 64;

enum class LockStatus : uint8_t {
  kGranted,    // held; `fence` is this grant's fencing token
  kSent,       // an asynchronous request or a release went out; its outcome follows
  kBusy,       // try-acquire: at its turn in the order, the lock was held or others waited
  kTimedOut,   // the deadline passed first; the request was withdrawn from every queue
  kLost,       // this member left the view (removed, left, cut off) before an outcome
  kNotHeld,    // release() of a grant this member does not hold (released, or lost)
  kNotMember,  // this member is not in a view (joining, removed or left): nothing was sent
  kFull,       // the group's send queue is full: try again
  kInvalid,    // a name of 0 or more than kMaxLockNameBytes bytes, or a blocking call from a
               // callback
  kRefused,    // the lock table's limits (live locks, waiters per lock) refused the request,
               // at every member alike
};
const char* lock_status_name(LockStatus status) noexcept;

// A grant, as its holder sees it.
struct LockGrant {
  std::string name;
  uint64_t request = 0;  // this member's number for the request
  uint64_t fence = 0;    // the fencing token: higher than every earlier grant of this lock
  LockMode mode = LockMode::kExclusive;
};

struct LockResult {
  LockStatus status = LockStatus::kInvalid;
  LockGrant grant;  // when status is kGranted
};

// One holder or waiter of a lock, as this member's copy of the table shows it.
struct LockHolder {
  MemberUid member;
  uint64_t request = 0;
  uint64_t fence = 0;  // 0 while waiting
  LockMode mode = LockMode::kExclusive;
};

struct LockInfo {
  std::vector<LockHolder> holders;  // in grant order
  uint32_t waiting = 0;             // requests queued behind them
  uint64_t fence = 0;               // the lock's latest fencing token; 0 when the lock is idle
};

// Outcome of an asynchronous acquire: kGranted, kBusy, kTimedOut, kLost or kRefused.
using LockCallback = std::function<void(const LockResult& result)>;
// The member left the view: it holds none of `lost` any more (callers must stop using them).
using LostLocksCallback = std::function<void(std::span<const LockGrant> lost, GroupEvent why)>;

struct LockServiceOptions {
  LostLocksCallback on_lost;
  // Receives the group's other traffic and events: messages that are not lock operations
  // (they must not start with the lock operations' first two bytes, 0xC0 0x4C), views, events,
  // and a part of the snapshot of its own. May be null.
  GroupListener* listener = nullptr;
};

class LockService {
 public:
  // Creates the group (Group::create) with the service as its listener; start it with
  // group().start() or poll it yourself.
  static Result<std::unique_ptr<LockService>> create(const GroupOptions& group,
                                                     LockServiceOptions options = {});
  ~LockService();
  LockService(const LockService&) = delete;
  LockService& operator=(const LockService&) = delete;

  Group& group() noexcept;

  // Blocks until the lock is granted or `timeout` passes (then the request is withdrawn from
  // every queue, and a grant that wins the race is released). Not on the data core.
  LockResult acquire(std::string_view name, LockMode mode, std::chrono::nanoseconds timeout);
  // Granted only if, at its turn in the order, the lock is free and nobody waits.
  LockResult try_acquire(std::string_view name, LockMode mode);
  // Asynchronous: kSent, then `done` runs once on the data core with the outcome; any other
  // status means nothing was sent and `done` never runs. timeout <= 0: wait for ever.
  LockStatus acquire_async(std::string_view name, LockMode mode, LockCallback done,
                           std::chrono::nanoseconds timeout = std::chrono::nanoseconds{0});
  // kSent, kNotHeld (already released, or lost) or kNotMember.
  LockStatus release(const LockGrant& grant);
  // True while this member holds `grant`: never again after it was released or lost.
  bool holds(const LockGrant& grant) const;
  // This member's copy of the lock's state (every member's is the same at the same point of
  // the order).
  LockInfo query(std::string_view name) const;

  struct Counters {
    uint64_t ops_applied = 0;
    uint64_t ops_malformed = 0;  // lock-looking messages that do not decode: ignored
    uint64_t grants = 0;
    uint64_t dropped_by_view = 0;  // requests of departed members
  };
  Counters counters() const;

  struct Impl;

 private:
  explicit LockService(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace cohort
