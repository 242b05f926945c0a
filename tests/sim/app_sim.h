// What the application workloads (lock_sim, cache_sim) share in running a service's core on
// every simulated member through the cluster's AppHooks: the translation between the
// simulator's Uids and the public MemberUids, the guard against re-entering a core, the
// member's final action as the GroupEvent a service gets, and the deferred flush.
#pragma once

#include <algorithm>
#include <cstddef>
#include <span>
#include <vector>

#include "cohort/group.h"
#include "runtime/assert.h"
#include "tests/sim/cluster.h"
#include "tests/sim/sim_app.h"

namespace cohort::sim {

inline MemberUid to_public(Uid u) {
  return MemberUid{u.node, u.incarnation};
}
inline Uid from_public(MemberUid u) {
  return Uid{u.node, u.incarnation};
}

// A view's members as a service's core takes them.
inline std::vector<MemberUid> public_members(const View& view) {
  std::vector<MemberUid> members;
  for (Uid u : view.list()) members.push_back(to_public(u));
  return members;
}

// What follows the 8-byte id the protocol checker reads (sim_app.h): the service's own bytes.
inline std::span<const std::byte> app_body(std::span<const std::byte> payload) {
  return payload.subspan(std::min(payload.size(), kIdBytes));
}

// The final action of a member as the event a service gets from its group.
inline GroupEvent final_event(ActionKind kind) {
  return kind == ActionKind::kCutOff ? GroupEvent::kCutOff
         : kind == ActionKind::kLeft ? GroupEvent::kLeft
                                     : GroupEvent::kRemoved;
}

// Marks a node's core busy for the length of a call, so a call into it cannot re-enter.
// `message` names the workload and its core, for the assertion.
class CoreBusy {
 public:
  CoreBusy(bool* flag, const char* message) : flag_(flag) {
    COHORT_ASSERT_MSG(!*flag_, message);
    *flag_ = true;
  }
  ~CoreBusy() { *flag_ = false; }
  CoreBusy(const CoreBusy&) = delete;
  CoreBusy& operator=(const CoreBusy&) = delete;

 private:
  bool* flag_;
};

// Sends are never made from inside a member's action (the cluster is carrying them out): they
// go from a driver event at the same simulated time. `flush()` runs once however often this is
// asked before then, and not at all for a later incarnation of the node. A node (`NodeT`) has
// `uid` and `flush_scheduled`; `nodes` outlives the cluster's events.
template <typename NodeT, typename Flush>
void schedule_flush_once(Cluster* cluster, std::vector<NodeT>* nodes, NodeId n, Flush flush) {
  NodeT& node = (*nodes)[n];
  if (node.flush_scheduled) return;
  node.flush_scheduled = true;
  const Uid uid = node.uid;
  cluster->at(cluster->now(), [nodes, n, uid, flush] {
    if (!((*nodes)[n].uid == uid)) return;
    (*nodes)[n].flush_scheduled = false;
    flush();
  });
}

}  // namespace cohort::sim
