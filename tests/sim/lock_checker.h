// The lock workload's independent checker (tests/sim/NOTES.md, "The lock workload"). It sees
// what the lock workload shows it: every lock op a member sent (the workload's own record of
// it, by message id), each member's deliveries and views as they happen, the events each
// member's lock table answers with, a query of that table after every step, and the grants
// each member's application acts on ("beliefs"). It never reads a LockTable's insides: it keeps
// its own model of every member's queues, built from those observations and checked against
// the rules at every step.
//
// Checked as observations arrive (each names the member, the lock, the request, the time):
// - mutual exclusion at each member: its table never shows an exclusive holder beside another;
// - mutual exclusion among the members' applications: no two of them act as holders of one
//   lock at once (one exclusive) while both have the same view installed;
// - fencing: a lock's tokens strictly increase at every member; one token of one lock is one
//   grant everywhere (the same member and request at every member that grants it, and at the
//   holder that acts on it: a grant acted on is the grant every survivor sees);
// - FIFO: a grant never overtakes an earlier request still queued at that member;
// - onward grants: after every delivery and view, the oldest waiter is granted if it can be,
//   so a crashed holder's lock moves on within the one view change that removes it;
// - each table event is justified by the step (a removal by a delivered release/withdraw of
//   that very request or a view without its member; a failed try by a try that could not be
//   granted at once), and each step does what it must (a delivered try is granted or fails, a
//   delivered release removes its request, a view leaves no departed member queued);
// - the table's query (holders, waiters, token) matches the model after every step;
// - members that go from view v-1 to v hold equal models there; a joiner starts from it.
// After the run: every acquire a surviving member sent got an outcome, and none was lost.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "cohort/lock.h"
#include "tests/sim/checker.h"

namespace cohort::sim {

enum class LockOpKind : uint8_t { kAcquire, kRelease, kWithdraw };

struct LockOpRecord {
  Uid owner;
  LockOpKind kind = LockOpKind::kAcquire;
  std::string lock;
  uint64_t request = 0;
  bool shared = false;
  bool try_only = false;
};

enum class LockEventKind : uint8_t { kGranted, kReleased, kWithdrawn, kTryFailed, kDropped, kRefused };

struct LockEventRecord {
  LockEventKind kind = LockEventKind::kGranted;
  std::string lock;
  Uid owner;
  uint64_t request = 0;
  uint64_t fence = 0;
  bool shared = false;
  bool was_held = false;
};

// One lock as a member's table answers query().
struct LockSeen {
  std::string lock;
  std::vector<std::pair<Uid, uint64_t>> holders;  // (member, request), in grant order
  std::vector<uint64_t> fences;
  uint32_t waiting = 0;
  uint64_t fence = 0;
};

class LockChecker {
 public:
  // --- what the members do -----------------------------------------------------------------
  void on_start(Uid member, bool founder);
  void on_end(Uid member);          // crashed, left or removed: its process is gone
  void on_cut_off(Uid member);
  void on_restore(Uid member);
  void on_op_sent(uint64_t msg_id, const LockOpRecord& op);
  // A step at `member`: a delivery (msg_id; 0 or an unknown id: not a lock op) or a view.
  void begin_delivery(Uid member, uint64_t msg_id, TimeNs now);
  void begin_install(Uid member, const View& view, TimeNs now);
  void on_table_event(Uid member, const LockEventRecord& event);
  void end_step(Uid member, std::span<const LockSeen> seen);

  // --- what the members' applications do ---------------------------------------------------
  void on_held(Uid owner, uint64_t request, const std::string& lock, uint64_t fence, bool shared,
               TimeNs now);
  void on_unheld(Uid owner, uint64_t request, TimeNs now);
  void on_outcome(Uid owner, uint64_t request, LockStatus status);

  // `live` are the members alive at the end, `final_view` the last view installed; with
  // `converged`, every surviving member's acquire must have had its outcome.
  void finish(std::span<const Uid> live, const View* final_view, bool converged);

  // Fails the run from outside (the workload: a snapshot the table refused, a send refused).
  void fail(std::string what) { violation(std::move(what)); }

  const std::vector<std::string>& violations() const noexcept { return violations_; }
  uint64_t grants_seen() const noexcept { return grants_seen_; }
  uint64_t beliefs_seen() const noexcept { return beliefs_seen_; }
  // View changes that dropped a departed holder and granted its lock on, in the same change.
  uint64_t moved_on_in_view_change() const noexcept { return moved_on_; }

 private:
  struct Entry {
    Uid owner;
    uint64_t request = 0;
    bool shared = false;
    bool granted = false;
    uint64_t fence = 0;
  };
  struct Model {
    std::map<std::string, std::vector<Entry>> queues;
    std::map<std::string, uint64_t> last_fence;  // never forgotten
    bool operator==(const Model& o) const;
  };
  enum class Step : uint8_t { kNone, kDelivery, kInstall };
  struct MemberState {
    Uid uid;
    bool valid = false;  // the model is known (founder, or a joiner after its first view)
    bool awaiting_first_view = false;
    bool ended = false;
    bool cut_off = false;
    ViewId view_id = 0;
    std::vector<Uid> view;
    Model model;
    // The step under way.
    Step step = Step::kNone;
    const LockOpRecord* op = nullptr;
    bool try_grantable = false;
    bool try_resolved = false;
    bool removal_expected = false;
    bool removal_done = false;
    std::set<std::string> dropped_held;  // locks whose holder this view change dropped
    std::string where;                   // for messages
  };
  struct Belief {
    Uid owner;
    uint64_t request = 0;
    std::string lock;
    uint64_t fence = 0;
    bool shared = false;
  };
  struct Request {
    uint64_t sent_ok = 0;
    bool has_outcome = false;
    LockStatus outcome = LockStatus::kSent;
  };

  MemberState* find(Uid member);
  void violation(std::string text);
  void agree(const std::string& lock, uint64_t fence, Uid owner, uint64_t request,
             const std::string& who);
  void check_exclusion(const Belief& b, const std::string& when);
  static bool grantable(const std::vector<Entry>& q, size_t i);
  void check_onward(MemberState& m);

  std::map<uint64_t, LockOpRecord> ops_;      // by message id
  std::map<uint64_t, MemberState> members_;   // by Uid key
  std::map<ViewId, Model> boundary_;          // the model entering view v from v-1
  std::map<std::pair<std::string, uint64_t>, std::pair<uint64_t, uint64_t>> fence_owner_;
  std::map<std::tuple<std::string, uint64_t, uint64_t>, uint64_t> request_fence_;
  std::map<std::pair<uint64_t, uint64_t>, Belief> beliefs_;  // (owner key, request)
  std::map<std::pair<uint64_t, uint64_t>, Request> requests_;
  std::vector<std::string> violations_;
  uint64_t suppressed_ = 0;
  uint64_t grants_seen_ = 0;
  uint64_t beliefs_seen_ = 0;
  uint64_t moved_on_ = 0;
};

}  // namespace cohort::sim
