// The simulator's cluster driver: N nodes over one SimNet, each hosting at most one
// cohort::membership::Member (one incarnation at a time), one simulated clock, and one event
// queue. It carries out every action a member answers with, in order, and shows each to the
// checker; it knows nothing of faults or workloads (workload.h decides those).
//
// Time advances in steps. A step takes everything the network has due (rounded up to a poll
// quantum of 100 us, so records that arrive close together form one burst), then the driver's
// own events due (workload operations, fault ends), then a tick of every live member when the
// 1 ms tick is due, then end_burst() on every member that was called during the step.
//
// Action rules: after every call into a member, its actions() are copied (bytes included) and
// cleared before any is carried out, because the next call into the member ends their spans.
// kTakeSnapshot calls snapshot_taken() at once, and its own actions are carried out before the
// rest of the batch.
#pragma once

#include <cstdint>
#include <functional>
#include <iosfwd>
#include <map>
#include <memory>
#include <queue>
#include <vector>

#include "membership/protocol/member.h"
#include "membership/protocol/record_store.h"
#include "tests/sim/checker.h"
#include "tests/sim/sim_app.h"
#include "transport/sim/sim_net.h"

namespace cohort::sim {

using membership::ActionKind;
using membership::Member;
using membership::NodeId;
using membership::ProtocolConfig;
using transport::sim::Rng;
using transport::sim::SimNet;

inline constexpr TimeNs kMs = 1'000'000;
inline constexpr TimeNs kUs = 1'000;

// An application on top of every member (the lock workload, tests/sim/lock_sim.h): it sees what
// the member's own application sees, in the same order, and adds bytes of its own to the
// member's snapshot (after the 16 bytes of AppState, which the checker reads).
class AppHooks {
 public:
  virtual ~AppHooks() = default;
  virtual void on_start(NodeId node, Uid self, bool founder) = 0;
  virtual void on_deliver(NodeId node, const Delivery& delivery) = 0;
  virtual void on_install(NodeId node, const View& view) = 0;
  virtual std::vector<std::byte> snapshot(NodeId node) = 0;
  virtual void on_restore(NodeId node, std::span<const std::byte> bytes) = 0;
  // kLeft, kRemoved (the process ends after it) or kCutOff.
  virtual void on_final(NodeId node, ActionKind kind) = 0;
  virtual void on_crash(NodeId node) = 0;
  // Point-to-point: a request to the member at `node`, and the one answer to each of its
  // requests (failed: kRequestFailed, no payload).
  virtual void on_request(NodeId node, const membership::P2pMessage& request) {
    (void)node;
    (void)request;
  }
  virtual void on_reply(NodeId node, const membership::P2pMessage& reply, bool failed) {
    (void)node;
    (void)reply;
    (void)failed;
  }
};

// Ticket counters (membership/protocol/types.h, TicketCounter) in this process, one per
// Uid::key() of the process whose file would hold it, as the engine's live in each process's
// shm file. Cluster::use_tickets() gives its members one.
class SimTickets : public membership::TicketCounter {
 public:
  void open(Uid sequencer, ViewId view) noexcept override;
  uint64_t take(Uid sequencer, ViewId view, uint64_t limit) noexcept override;

 private:
  std::map<uint64_t, uint64_t> words_;
};

class Cluster {
 public:
  struct Counters {
    uint64_t steps = 0;
    uint64_t calls = 0;
    uint64_t actions = 0;
    uint64_t deliveries = 0;
    uint64_t installs = 0;
    uint64_t cut_offs = 0;
    uint64_t removed = 0;
    uint64_t left = 0;
    uint64_t crashes = 0;
    uint64_t restores = 0;
    uint64_t sends_ok = 0;
    uint64_t sends_refused = 0;
    uint64_t requests = 0;     // request() calls
    uint64_t replies = 0;      // reply() calls
    uint64_t p2p_answers = 0;  // kReply and kRequestFailed actions
  };

  Cluster(uint32_t nodes, uint64_t net_seed, const ProtocolConfig& config, Checker* checker,
          std::ostream* verbose);
  ~Cluster();
  Cluster(const Cluster&) = delete;
  Cluster& operator=(const Cluster&) = delete;

  TimeNs now() const noexcept { return now_; }
  uint32_t nodes() const noexcept { return static_cast<uint32_t>(slots_.size()); }
  SimNet& net() noexcept { return net_; }

  // A driver event at `at` (not before now). Events at one time run in the order scheduled.
  void at(TimeNs at, std::function<void()> fn);
  // Runs steps until `end` or until `stop()` (asked before each step) says so; true if stopped.
  bool run_until(TimeNs end, const std::function<bool()>& stop = {});
  // Called after every step (the workload's armed triggers).
  std::function<void()> after_step;
  // Called when a member's process ends by itself (kLeft or kRemoved) or restores its state.
  std::function<void(NodeId, ActionKind)> on_end;
  std::function<void(NodeId)> on_restore;

  // --- nodes -------------------------------------------------------------------------------
  // Starts a new incarnation at `node`: start_group() for the founder, else start_join() with
  // every node as a seed.
  void start(NodeId node, bool founder);
  void crash(NodeId node);
  void pause(NodeId node);
  void resume(NodeId node);
  void leave(NodeId node);
  // Sends a fresh message from `node`'s application; the checker sees it and the answer.
  // `id`, when given, receives the message's id.
  SendResult app_send(NodeId node, Mode mode, uint64_t* id = nullptr);
  // Sends `body` from `node`'s application behind the 8-byte `id` (sim_app.h's layout), taken
  // from next_message_id() by the caller so that it can tell the checkers before the send
  // (a send may deliver at once).
  SendResult app_send_body(NodeId node, Mode mode, uint64_t id, std::span<const std::byte> body);
  // Point-to-point from `node`'s member (Member::send_request / send_reply), its actions carried
  // out like every other call's. The answers reach the hooks (on_request, on_reply).
  SendResult request(NodeId node, Uid to, uint64_t id, std::span<const std::byte> payload);
  SendResult reply(NodeId node, Uid to, uint64_t id, std::span<const std::byte> payload);
  // The application on top of every member (nullptr: none); set before the first start().
  void set_hooks(AppHooks* hooks) noexcept { hooks_ = hooks; }
  // One-hop total order (types.h, TicketCounter): every member takes its gseqs from counters
  // the cluster keeps, one per incarnation as the engine's live in each process's file; a member
  // that crashes in a view has, three times in ten, just taken a gseq it never sent (a hole the
  // view change must fill). Call before the first start().
  void use_tickets() noexcept { config_.tickets = &tickets_; }
  bool tickets() const noexcept { return config_.tickets != nullptr; }
  uint64_t tickets_burned() const noexcept { return tickets_burned_; }

  bool running(NodeId node) const noexcept { return slots_[node].member != nullptr; }
  bool paused(NodeId node) const noexcept { return slots_[node].paused; }
  // The member at `node`, or nullptr when no process runs there.
  Member* member(NodeId node) noexcept { return slots_[node].member.get(); }
  const Member* member(NodeId node) const noexcept { return slots_[node].member.get(); }
  Uid uid(NodeId node) const noexcept { return Uid{node, slots_[node].incarnation}; }
  const AppState& app(NodeId node) const noexcept { return slots_[node].app; }
  // Chunks of record copies `node`'s member may still point into (tests of bounded memory).
  size_t held_record_chunks(NodeId node) const noexcept {
    return slots_[node].store ? slots_[node].store->live_chunks() : 0;
  }

  uint64_t trace_hash() const noexcept { return trace_; }
  const Counters& counters() const noexcept { return counters_; }
  // The coverage of every member that ran here, the live ones included.
  Member::Coverage coverage() const noexcept;
  uint64_t next_message_id() noexcept { return ++last_message_id_; }
  Rng& rng() noexcept { return rng_; }

 private:
  struct Slot {
    std::unique_ptr<Member> member;
    // The member's copies of the records it reads, in small chunks the member says it is done
    // with (Member::holds) and that are then poisoned: a member that read them afterwards would
    // deliver or relay garbage, which the checker's payload hashes catch. The engine keeps its
    // copies the same way.
    std::unique_ptr<membership::RecordStore> store;
    uint32_t incarnation = 0;
    bool paused = false;
    AppState app;
  };
  struct Owned {
    membership::Action action;
    std::vector<std::byte> bytes;    // kAppend, kSend, kRestore
    std::vector<std::byte> payload;  // kDeliver
    membership::View view;           // kInstall, kTakeSnapshot (action.view points here)
  };
  struct Event {
    TimeNs at;
    uint64_t seq;
    std::function<void()> fn;
  };
  struct Later {
    bool operator()(const Event& a, const Event& b) const noexcept {
      return a.at != b.at ? a.at > b.at : a.seq > b.seq;
    }
  };

  void step();
  // Carries out the actions of `node`'s member after a call into it.
  void drain(NodeId node);
  void carry_out(NodeId node, Owned& a, ActionKind* end);
  void end_process(NodeId node, ActionKind why);
  SendResult send_payload(NodeId node, Mode mode, uint64_t id, std::span<const std::byte> payload);
  SendResult p2p_call(NodeId node, bool request, Uid to, uint64_t id,
                      std::span<const std::byte> payload);
  void collect_coverage(const Member& m) noexcept;
  void hash(uint64_t word) noexcept;
  void hash(std::span<const std::byte> bytes) noexcept;

  ProtocolConfig config_;
  SimTickets tickets_;
  uint64_t tickets_burned_ = 0;
  Checker* checker_;
  AppHooks* hooks_ = nullptr;
  std::ostream* verbose_;
  SimNet net_;
  Rng rng_;
  std::vector<Slot> slots_;
  TimeNs now_ = 0;
  TimeNs next_tick_ = 0;
  uint64_t event_seq_ = 0;
  std::priority_queue<Event, std::vector<Event>, Later> events_;
  uint64_t touched_ = 0;  // bit per node called during this step
  uint64_t trace_ = 0xcbf29ce484222325ULL;
  uint64_t last_message_id_ = 0;
  Counters counters_;
  Member::Coverage ended_coverage_{};
};

}  // namespace cohort::sim
