// The point-to-point workload (`--app p2p`, tests/sim/NOTES.md "Point-to-point"): the counter
// application of every member, and, for half the workload's operations, a request from a random
// member to another member of its installed view (sometimes to an old incarnation, a
// non-member or itself, which must be refused). Every request that reaches its target is
// answered, at once or a little later, with bytes that name the target and echo the request.
// Every fault of the protocol's workload stays on.
//
// Checked as it happens: a request reaches only the incarnation asked, at most once; every
// answer (kReply or kRequestFailed) is the first for its request, comes to the incarnation
// that asked and names the incarnation asked; a reply carries exactly the bytes that target
// sent, and only after the target got the request; a send_request to a member not in the
// installed view is refused. At kLeft/kRemoved the member has answered every request it had.
// After the run: once converged, every request of a live member was answered (quiescent()).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "tests/sim/cluster.h"

namespace cohort::sim {

class P2pSim final : public AppHooks {
 public:
  struct Counters {
    uint64_t requests = 0;      // send_request said kOk
    uint64_t refused = 0;       // send_request refused (a target not in the view, itself)
    uint64_t received = 0;      // kRequest actions
    uint64_t replied = 0;       // kReply actions
    uint64_t failed = 0;        // kRequestFailed actions
    uint64_t crashed_with = 0;  // requests whose requester crashed before the answer
  };

  P2pSim(Cluster* cluster, Rng rng) : cluster_(cluster), rng_(rng) {}

  // One request at a random member that is in a view and restored; false if none is.
  bool op();
  // Every request of a running member has had its answer.
  bool quiescent() const;
  // After the run: what quiescent() misses, as violations (when converged), and the counts.
  void finish(bool converged);
  const std::vector<std::string>& violations() const noexcept { return violations_; }
  const Counters& counters() const noexcept { return counters_; }

  // --- AppHooks ------------------------------------------------------------------------------
  void on_start(NodeId node, Uid self, bool founder) override;
  void on_deliver(NodeId, const Delivery&) override {}
  void on_install(NodeId, const View&) override {}
  std::vector<std::byte> snapshot(NodeId) override { return {}; }
  void on_restore(NodeId, std::span<const std::byte>) override {}
  void on_final(NodeId node, ActionKind kind) override;
  void on_crash(NodeId node) override;
  void on_request(NodeId node, const membership::P2pMessage& request) override;
  void on_reply(NodeId node, const membership::P2pMessage& reply, bool failed) override;

 private:
  struct Request {
    Uid target;
    std::vector<std::byte> payload;
    bool received = false;  // the target got it
    bool answered = false;
    bool requester_gone = false;   // crashed, left or removed: it waits for nothing more
    std::vector<std::byte> reply;  // what the target sent back, once it did
  };
  using Key = std::pair<uint64_t, uint64_t>;  // (requester Uid key, id)

  void reply_later(NodeId node, Uid self, Uid requester, uint64_t id, TimeNs at);
  void fail(const std::string& what);

  Cluster* cluster_;
  Rng rng_;
  uint64_t next_id_ = 0;
  std::map<Key, Request> requests_;
  std::vector<std::string> violations_;
  Counters counters_;
};

}  // namespace cohort::sim
