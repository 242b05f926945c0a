// The lock workload (tests/sim/NOTES.md, "The lock workload"): every simulated member runs the
// lock service's own LockCore (apps/lock/lock_core.h), fed by its deliveries, views, snapshots
// and final events through the cluster's AppHooks; the workload's operations acquire locks
// (exclusive or shared, try, with deadlines) at random members, and each grant is held for a
// while and released. Everything is shown to the LockChecker as it happens.
//
// Lock ops travel as application messages in safe mode, behind the 8-byte id the protocol
// checker reads (sim_app.h). Every other message of the run (the base workload's random
// payloads, the liveness probes) reaches the cores too and is told apart as not an op.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <memory>
#include <string>
#include <vector>

#include "apps/lock/lock_core.h"
#include "tests/sim/cluster.h"
#include "tests/sim/lock_checker.h"

namespace cohort::sim {

class LockSim final : public AppHooks {
 public:
  struct Counters {
    uint64_t acquires = 0;
    uint64_t granted = 0;
    uint64_t busy = 0;
    uint64_t timed_out = 0;
    uint64_t lost = 0;        // requests that ended kLost
    uint64_t lost_holds = 0;  // grants lost to a removal, a leave or a cut-off
    uint64_t releases = 0;
    uint64_t not_ops = 0;     // deliveries that were not lock ops
  };

  // `rng` is the lock workload's own stream; its profile is drawn from it at once. Lock ops go
  // in `mode`: kSafe, as the service sends them, or kTotal for the planted bug.
  LockSim(Cluster* cluster, Rng rng, LockChecker* checker, const lock::CoreBugs& bugs,
          Mode mode = Mode::kSafe);

  // Starts the 1 ms timer of every member's application (deadlines, held-back sends).
  void start();
  // One operation: an acquire at a random member that can take one; false if none can.
  bool op();
  // Every live member's core is idle (nothing queued, held or waiting) and its table empty.
  bool quiescent() const;
  std::string describe() const;
  const Counters& counters() const noexcept { return counters_; }

  // --- AppHooks ------------------------------------------------------------------------------
  void on_start(NodeId node, Uid self, bool founder) override;
  void on_deliver(NodeId node, const Delivery& delivery) override;
  void on_install(NodeId node, const View& view) override;
  std::vector<std::byte> snapshot(NodeId node) override;
  void on_restore(NodeId node, std::span<const std::byte> bytes) override;
  void on_final(NodeId node, ActionKind kind) override;
  void on_crash(NodeId node) override;

 private:
  struct Node {
    std::unique_ptr<lock::LockCore> core;
    Uid uid;
    bool flush_scheduled = false;
    bool busy = false;  // inside a call into the core (no re-entry)
  };

  void after(NodeId n);
  void flush(NodeId n);
  void schedule_flush(NodeId n);
  void schedule_release(NodeId n, Uid uid, uint64_t request, uint64_t fence, TimeNs at);
  void tick();
  void forward_table_events(NodeId n);
  void end_step(NodeId n);

  Cluster* cluster_;
  Rng rng_;
  LockChecker* checker_;
  lock::CoreBugs bugs_;
  Mode mode_;
  std::vector<Node> nodes_;
  std::vector<std::string> names_;
  double p_shared_ = 0;
  double p_try_ = 0;
  double p_timeout_ = 0;
  uint32_t max_outstanding_ = 1;
  TimeNs hold_max_ns_ = 0;
  Counters counters_;
};

}  // namespace cohort::sim
