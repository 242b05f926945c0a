// The checker driver of the integration tests: reads the `cohort node --log` files of one run
// (apps/cli/node_log.h has the format), merges them into one timeline by their CLOCK_MONOTONIC
// stamps, adds the SIGKILLs the harness did, and feeds tests/sim's independent Checker the
// same observations the simulator gives it: starts, sends and what send() answered,
// deliveries, installs, restores, leave requests, left/removed/cut off, crashes. So real
// processes are held to exactly the simulator's invariants (tests/sim/NOTES.md, "The checker's
// invariants").
//
// What the driver adds, since its runs end differently from the simulator's: a member that
// ended by leaving (kLeft) must have delivered every message it sent with kOk (the simulator's
// "nothing of a survivor lost", which it checks only for members live at the end); and a
// process that stopped its Group without leaving, being removed or being killed counts as
// crashed there (it is gone without a word), and is listed in the facts for the test to judge.
//
// A payload never reaches the checker: the driver gives it the message id and the FNV hash of
// the bytes each side logged (`id ‖ hash`, 16 bytes), so the checker's payload check still
// catches a member that delivered other bytes than were sent.
#pragma once

#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "membership/protocol/types.h"

namespace cohort::itest {

using membership::Uid;
using membership::View;
using membership::ViewId;

struct LogInput {
  std::string path;
  uint64_t killed_ns = 0;  // the harness SIGKILLed this file's process then (0: it did not)
};

// What one member (one incarnation) did, as its log says.
struct MemberFacts {
  enum class End : uint8_t { kNone, kLeft, kRemoved, kKilled, kStopped };
  Uid uid;
  size_t file = 0;  // index into the inputs
  bool founder = false;
  uint64_t start_ns = 0;
  uint64_t end_ns = 0;
  End end = End::kNone;
  bool restored = false;
  bool cut_off = false;
  bool leave_requested = false;
  uint64_t restore_ns = 0;
  std::vector<View> views;         // installed, in order
  std::vector<uint64_t> views_ns;  // when each was installed
  uint64_t deliveries = 0;
  ViewId last_delivery_view = 0;
  uint64_t sends_ok = 0;
  uint64_t first_send_ns = 0, last_send_ns = 0;  // of the sends that returned kOk
  std::vector<std::pair<uint64_t, uint32_t>> peer_failed;  // (when, node) the transport saw fail
};
const char* end_name(MemberFacts::End end) noexcept;

struct CheckReport {
  std::vector<MemberFacts> members;  // by start time
  std::map<ViewId, View> views;      // every view any member installed
  uint64_t deliveries = 0;
  uint64_t sends_ok = 0;
  std::vector<std::string> violations;  // the checker's, then the driver's own

  bool ok() const noexcept { return violations.empty(); }
  // `checker: OK (members 5, views 4, deliveries 123456, sends 40000)`, or
  // `checker: FAILED (N violations)` and one indented line per violation.
  std::string verdict() const;
  const MemberFacts* find(Uid uid) const noexcept;
  // The incarnations that one log file holds, oldest first.
  std::vector<const MemberFacts*> of_file(size_t file) const;
};

// Reads, merges and checks. Never throws on bad input: an unreadable file or line is a
// violation (except the torn last line of a process that was SIGKILLed).
CheckReport check_logs(std::span<const LogInput> logs);

}  // namespace cohort::itest
