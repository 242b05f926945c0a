// The point-to-point workload and its checks (p2p_sim.h).
#include "tests/sim/p2p_sim.h"

#include <sstream>

#include "runtime/assert.h"

namespace cohort::sim {
namespace {

std::string name(Uid u) {
  std::ostringstream o;
  o << "n" << u.node << "." << u.incarnation;
  return o.str();
}

// The reply a target sends: its own Uid, then the request's bytes, so a reply from another
// incarnation or to another request cannot match.
std::vector<std::byte> reply_bytes(Uid target, std::span<const std::byte> request) {
  std::vector<std::byte> out;
  out.reserve(8 + request.size());
  const uint64_t k = target.key();
  for (size_t i = 0; i < 8; ++i) out.push_back(static_cast<std::byte>(k >> (8 * i)));
  for (const std::byte b : request) out.push_back(b);
  return out;
}

}  // namespace

void P2pSim::fail(const std::string& what) {
  if (violations_.size() < 20) violations_.push_back("p2p: " + what);
}

bool P2pSim::op() {
  std::vector<NodeId> can;
  for (NodeId n = 0; n < cluster_->nodes(); ++n) {
    const Member* m = cluster_->member(n);
    if (m == nullptr || cluster_->paused(n) || !m->restored()) continue;
    if (m->state() == membership::MemberState::kActive ||
        m->state() == membership::MemberState::kWedged) {
      can.push_back(n);
    }
  }
  if (can.empty()) return false;
  const NodeId n = can[rng_.below(can.size())];
  const Member& m = *cluster_->member(n);
  const View view = m.view();
  // Mostly another member of the view; sometimes an older incarnation of one, a node's next
  // incarnation, or itself: none of these is in the view, and each must be refused.
  Uid to = view.members[rng_.below(view.count)];
  const double odd = rng_.unit();
  if (odd < 0.05) {
    to = Uid{to.node, to.incarnation + 1};
  } else if (odd < 0.10 && to.incarnation > 1) {
    to = Uid{to.node, to.incarnation - 1};
  } else if (odd < 0.12) {
    to = m.self();
  }
  const bool member = view.contains(to) && to != m.self();
  std::vector<std::byte> payload(8 + rng_.below(33));
  const uint64_t id = ++next_id_;
  for (size_t i = 0; i < payload.size(); ++i) {
    payload[i] =
        i < 8 ? static_cast<std::byte>(id >> (8 * i)) : static_cast<std::byte>(rng_.next());
  }
  // Registered first: the answer may come within the call (a target not in the view never does).
  const Key key{m.self().key(), id};
  requests_[key] = Request{to, payload, false, false, false, {}};
  const SendResult r = cluster_->request(n, to, id, payload);
  if (r == SendResult::kOk) {
    ++counters_.requests;
    if (!member)
      fail(name(cluster_->uid(n)) + " request to " + name(to) + ", not in its view: kOk");
  } else {
    ++counters_.refused;
    requests_.erase(key);
    if (member && r != SendResult::kFull) {
      fail(name(cluster_->uid(n)) + " request to " + name(to) + " of its view refused");
    }
  }
  return true;
}

void P2pSim::on_start(NodeId, Uid, bool) {}

void P2pSim::on_request(NodeId node, const membership::P2pMessage& request) {
  ++counters_.received;
  const Uid self = cluster_->uid(node);
  const auto it = requests_.find(Key{request.peer.key(), request.id});
  if (it == requests_.end()) {
    fail(name(self) + " got request " + std::to_string(request.id) + " of " + name(request.peer) +
         " that was never sent");
    return;
  }
  Request& q = it->second;
  if (q.target != self) {
    fail("request " + std::to_string(request.id) + " of " + name(request.peer) + " to " +
         name(q.target) + " reached " + name(self));
    return;
  }
  if (q.received) fail(name(self) + " got request " + std::to_string(request.id) + " twice");
  q.received = true;
  if (!std::equal(q.payload.begin(), q.payload.end(), request.payload.begin(),
                  request.payload.end())) {
    fail(name(self) + " got request " + std::to_string(request.id) + " with other bytes");
  }
  // Half at once, inside the action; the rest a little later (while views may change).
  const TimeNs at =
      rng_.chance(0.5) ? cluster_->now() : cluster_->now() + rng_.between(100, 5000) * kUs;
  if (at == cluster_->now()) {
    q.reply = reply_bytes(self, q.payload);
    (void)cluster_->reply(node, request.peer, request.id, q.reply);
    return;
  }
  reply_later(node, self, request.peer, request.id, at);
}

// A later reply is sent by the same incarnation only; a paused one sends it when it runs again.
void P2pSim::reply_later(NodeId node, Uid self, Uid requester, uint64_t id, TimeNs at) {
  cluster_->at(at, [this, node, self, requester, id] {
    if (!cluster_->running(node) || cluster_->uid(node) != self) return;  // crashed, or ended
    if (cluster_->paused(node)) {
      reply_later(node, self, requester, id, cluster_->now() + kMs);
      return;
    }
    const auto it = requests_.find(Key{requester.key(), id});
    COHORT_ASSERT(it != requests_.end());  // requests are never forgotten
    it->second.reply = reply_bytes(self, it->second.payload);
    (void)cluster_->reply(node, requester, id, it->second.reply);
  });
}

void P2pSim::on_reply(NodeId node, const membership::P2pMessage& reply, bool failed) {
  const Uid self = cluster_->uid(node);
  const auto it = requests_.find(Key{self.key(), reply.id});
  if (it == requests_.end()) {
    fail(name(self) + " got an answer to request " + std::to_string(reply.id) + " it never sent");
    return;
  }
  Request& q = it->second;
  if (q.requester_gone) {
    fail(name(self) + " got an answer to request " + std::to_string(reply.id) +
         " after its process ended");
  }
  if (q.answered) fail(name(self) + " got a second answer to request " + std::to_string(reply.id));
  q.answered = true;
  if (reply.peer != q.target) {
    fail(name(self) + " request " + std::to_string(reply.id) + " to " + name(q.target) +
         " answered by " + name(reply.peer));
  }
  if (failed) {
    ++counters_.failed;
    return;
  }
  ++counters_.replied;
  if (!q.received || q.reply.empty()) {
    fail(name(self) + " got a reply to request " + std::to_string(reply.id) + " that " +
         name(q.target) + " never sent");
  } else if (!std::equal(q.reply.begin(), q.reply.end(), reply.payload.begin(),
                         reply.payload.end())) {
    fail(name(self) + " got a reply to request " + std::to_string(reply.id) + " with other bytes");
  }
}

// kLeft and kRemoved come after every request's answer (Member::become_final). The requests
// stay known: their targets may still get them, and answer.
void P2pSim::on_final(NodeId node, ActionKind kind) {
  if (kind == ActionKind::kCutOff) return;
  const uint64_t self = cluster_->uid(node).key();
  for (auto it = requests_.lower_bound(Key{self, 0});
       it != requests_.end() && it->first.first == self; ++it) {
    if (!it->second.answered) {
      fail(name(cluster_->uid(node)) + " " + membership::action_kind_name(kind) + " with request " +
           std::to_string(it->first.second) + " unanswered");
    }
    it->second.requester_gone = true;
  }
}

void P2pSim::on_crash(NodeId node) {
  const uint64_t self = cluster_->uid(node).key();
  for (auto it = requests_.lower_bound(Key{self, 0});
       it != requests_.end() && it->first.first == self; ++it) {
    if (!it->second.answered) ++counters_.crashed_with;
    it->second.requester_gone = true;
  }
}

bool P2pSim::quiescent() const {
  for (const auto& [key, q] : requests_) {
    if (!q.answered && !q.requester_gone) return false;
  }
  return true;
}

void P2pSim::finish(bool converged) {
  if (!converged) return;  // the liveness violation says it already
  for (const auto& [key, q] : requests_) {
    if (q.answered || q.requester_gone) continue;
    fail(name(Uid::from_key(key.first)) + " request " + std::to_string(key.second) + " to " +
         name(q.target) + " never answered after convergence");
  }
}

}  // namespace cohort::sim
