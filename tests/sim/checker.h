// The simulator's independent checker of DESIGN.md's invariants. It sees only what the driver
// shows it: every application send (and what send() answered), and every action a member
// answered with (deliveries, installs, restores, left/removed/cut off), plus crashes. It never
// looks inside a Member, so a bug in the protocol's own bookkeeping cannot hide a violation.
//
// Cheap local checks run as each observation arrives (a duplicate, an invented message, FIFO,
// a delivery after leaving, a non-consecutive view id); the checks across members run in
// finish(), after the run. Each violation is one line of text naming the invariant, the view,
// the members and the messages.
#pragma once

#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "membership/protocol/member.h"
#include "tests/sim/sim_app.h"

namespace cohort::sim {

using membership::Delivery;
using membership::Mode;
using membership::SendResult;
using membership::TimeNs;
using membership::Uid;
using membership::View;
using membership::ViewId;

class Checker {
 public:
  // --- observations ------------------------------------------------------------------------
  // A member process started: `founder` for the one that calls start_group() (no restore).
  void on_start(Uid member, bool founder, TimeNs now);
  void on_send(Uid sender, uint64_t id, Mode mode, std::span<const std::byte> payload,
               SendResult result, TimeNs now);
  void on_deliver(Uid member, const Delivery& delivery, TimeNs now);
  void on_install(Uid member, const View& view, TimeNs now);
  void on_restore(Uid member, std::span<const std::byte> snapshot, TimeNs now);
  // The application asked `member` to leave (Member::leave()).
  void on_leave_request(Uid member, TimeNs now);
  void on_left(Uid member, TimeNs now);
  void on_removed(Uid member, TimeNs now);
  void on_crash(Uid member, TimeNs now);
  void on_cut_off(Uid member, TimeNs now);
  // Fails the run from outside (the driver's liveness check).
  void fail(std::string what);

  // --- the run's end -----------------------------------------------------------------------
  // Runs the checks across members. `live` are the members alive at the end; `converged`
  // says the liveness phase converged (only then must survivors have delivered all they sent).
  void finish(std::span<const Uid> live, bool converged);

  const std::vector<std::string>& violations() const noexcept { return violations_; }
  bool ok() const noexcept { return violations_.empty(); }

  // --- for the driver's coverage counts (not checks) ---------------------------------------
  // Messages `sender` sent (kOk) that it has not yet delivered itself.
  uint64_t undelivered_at_sender(Uid sender) const noexcept;
  ViewId latest_view() const noexcept { return latest_view_; }
  const View* view(ViewId id) const noexcept;
  AppState state(Uid member) const noexcept;
  uint64_t delivered(Uid member) const noexcept;
  bool delivered_msg(Uid member, uint64_t id) const noexcept;

 private:
  struct Sent {
    Uid sender;
    Mode mode;
    uint64_t payload_hash;
    uint64_t order;  // index among its sender's sends that returned kOk
  };
  struct Deliv {
    uint64_t id;
    uint64_t gseq;
    Mode mode;
  };
  enum class End : uint8_t { kNone, kLeft, kRemoved, kCrashed };
  struct MemberLog {
    Uid uid;
    bool founder = false;
    bool restored = false;
    End end = End::kNone;
    bool cut_off = false;
    TimeNs leave_requested_ns = ~TimeNs{0};
    std::vector<ViewId> installs;
    std::map<ViewId, std::vector<Deliv>> deliveries;  // by the view they were delivered in
    std::unordered_set<uint64_t> delivered_ids;
    std::unordered_map<uint64_t, uint64_t> fifo_next;  // sender key -> lowest order allowed
    AppState state;
    // The state at each install of a view whose previous install was id - 1.
    std::map<ViewId, AppState> boundary;
    bool has_restore = false;
    AppState restore_state;
    std::vector<uint64_t> sent_ok;  // ids, in send order
    uint64_t undelivered_own = 0;
  };

  MemberLog* find(Uid member) noexcept;
  const MemberLog* find(Uid member) const noexcept;
  MemberLog& get(Uid member, const char* what);
  void violation(std::string text);
  void check_views();
  void check_view_pair(ViewId v);
  void check_safe_prefixes(ViewId v, std::span<const Uid> live);
  void check_states();
  void check_survivors(std::span<const Uid> live);

  std::unordered_map<uint64_t, Sent> sent_;
  std::unordered_map<uint64_t, uint64_t> sends_per_sender_;  // sender key -> kOk count
  std::map<uint64_t, MemberLog> members_;                    // by Uid key
  std::map<ViewId, View> views_;
  std::map<ViewId, Uid> view_first_installer_;
  std::map<ViewId, TimeNs> view_first_install_ns_;
  ViewId latest_view_ = 0;
  std::vector<std::string> violations_;
  uint64_t suppressed_ = 0;
};

}  // namespace cohort::sim
