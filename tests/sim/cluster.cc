// The cluster driver (cluster.h).
#include "tests/sim/cluster.h"

#include <algorithm>
#include <ostream>

#include "runtime/assert.h"

namespace cohort::sim {
namespace {

constexpr TimeNs kTick = kMs;
constexpr TimeNs kQuantum = 100 * kUs;
// Record copies: chunks of ~10 records, so a chunk is given back soon after its messages are
// released, and a misjudged one is poisoned soon.
constexpr size_t kStoreChunkBytes = 1024;
constexpr size_t kStoreSpares = 16;

TimeNs round_up(TimeNs t, TimeNs q) {
  return (t + q - 1) / q * q;
}

}  // namespace

Cluster::Cluster(uint32_t nodes, uint64_t net_seed, const ProtocolConfig& config, Checker* checker,
                 std::ostream* verbose)
    : config_(config),
      checker_(checker),
      verbose_(verbose),
      net_(nodes, net_seed),
      rng_(net_seed ^ 0x243f6a8885a308d3ULL),
      slots_(nodes) {
  COHORT_ASSERT(nodes <= 64);
}

Cluster::~Cluster() {
  // Members hold spans into the network's logs: they go first.
  for (Slot& s : slots_) s.member.reset();
}

void Cluster::at(TimeNs at, std::function<void()> fn) {
  events_.push(Event{std::max(at, now_), event_seq_++, std::move(fn)});
}

bool Cluster::run_until(TimeNs end, const std::function<bool()>& stop) {
  for (;;) {
    if (stop && stop()) return true;
    TimeNs t = next_tick_;
    const TimeNs due = net_.next_due();
    if (due != transport::sim::kNever) t = std::min(t, std::max(round_up(due, kQuantum), now_));
    if (!events_.empty()) t = std::min(t, events_.top().at);
    if (t > end) {
      now_ = std::max(now_, end);
      return false;
    }
    now_ = t;
    step();
    if (after_step) after_step();
  }
}

void Cluster::step() {
  counters_.steps++;
  touched_ = 0;
  transport::sim::Item item;
  while (net_.pop(now_, &item)) {
    Slot& s = slots_[item.to];
    if (s.member == nullptr || s.paused) continue;  // the net drops these; belt and braces
    hash(0x1000 + item.to);
    if (item.kind == transport::sim::ItemKind::kRecord) {
      s.member->on_record(item.from, s.store->keep(item.bytes), now_);
    } else {
      s.member->on_control(item.from, item.bytes, now_);
    }
    touched_ |= uint64_t{1} << item.to;
    drain(item.to);
  }
  while (!events_.empty() && events_.top().at <= now_) {
    std::function<void()> fn = std::move(const_cast<Event&>(events_.top()).fn);
    events_.pop();
    fn();
  }
  if (next_tick_ <= now_) {
    for (NodeId n = 0; n < nodes(); ++n) {
      Slot& s = slots_[n];
      if (s.member == nullptr || s.paused) continue;
      s.member->tick(now_);
      touched_ |= uint64_t{1} << n;
      drain(n);
    }
    next_tick_ = now_ + kTick;
  }
  for (NodeId n = 0; n < nodes(); ++n) {
    Slot& s = slots_[n];
    if ((touched_ & (uint64_t{1} << n)) == 0 || s.member == nullptr || s.paused) continue;
    s.member->end_burst(now_);
    drain(n);
    if (s.member == nullptr) continue;
    s.store->release(*s.member);
    // No record here is malformed: a member that finds one read a poisoned copy. (Planted bugs
    // may make conflicting orders that members count as malformed: with tickets, two views of
    // one id installed side by side take gseqs from counters at the same tag. The checker must
    // catch those seeds.)
    COHORT_ASSERT_MSG(config_.bugs.any() || s.member->counters().records_malformed == 0,
                      "a member read a record copy after holds() said it was done with it");
    // The network loses, repeats, reorders and delays control messages, but never corrupts one:
    // a member that counts one malformed misread a well-formed message (as the leader once did
    // every JOIN that another member passed on).
    COHORT_ASSERT_MSG(config_.bugs.any() || s.member->counters().control_malformed == 0,
                      "a member counted a control message malformed on a network that never "
                      "corrupts one");
  }
}

// --- nodes -------------------------------------------------------------------------------------

void Cluster::start(NodeId node, bool founder) {
  Slot& s = slots_[node];
  COHORT_ASSERT(s.member == nullptr);
  s.incarnation++;
  s.paused = false;
  s.app = AppState{};
  const Uid self{node, s.incarnation};
  net_.start(node, now_);
  s.member = std::make_unique<Member>(config_, self, nodes());
  s.store = std::make_unique<membership::RecordStore>(kStoreChunkBytes, kStoreSpares, true);
  checker_->on_start(self, founder, now_);
  if (hooks_ != nullptr) hooks_->on_start(node, self, founder);
  hash(0x2000 + node);
  if (founder) {
    s.member->start_group(now_);
  } else {
    std::vector<NodeId> seeds;
    for (NodeId n = 0; n < nodes(); ++n) {
      if (n != node) seeds.push_back(n);
    }
    s.member->start_join(seeds, now_);
  }
  touched_ |= uint64_t{1} << node;
  drain(node);
}

void SimTickets::open(Uid sequencer, ViewId view) noexcept {
  uint64_t& word = words_[sequencer.key()];
  if (membership::TicketWord::may_open(word, view)) word = membership::TicketWord::opened(view);
}

uint64_t SimTickets::take(Uid sequencer, ViewId view, uint64_t limit) noexcept {
  uint64_t& word = words_[sequencer.key()];
  const uint64_t gseq = membership::TicketWord::next(word, view, limit);
  if (gseq != 0) ++word;
  return gseq;
}

void Cluster::crash(NodeId node) {
  Slot& s = slots_[node];
  COHORT_ASSERT(s.member != nullptr);
  // Killed between taking a ticket and appending its DATA (the engine does both in one poll).
  if (config_.tickets != nullptr && s.member->view().id != 0 && rng_.chance(0.3)) {
    const membership::View& v = s.member->view();
    if (tickets_.take(v.members[0], v.id, UINT64_MAX) != 0) {
      ++tickets_burned_;
      hash(0x3100 + node);
    }
  }
  counters_.crashes++;
  hash(0x3000 + node);
  checker_->on_crash(uid(node), now_);
  if (hooks_ != nullptr) hooks_->on_crash(node);
  collect_coverage(*s.member);
  s.member.reset();
  s.store.reset();  // after the member, which points into it
  s.paused = false;
  net_.crash(node, now_);
}

void Cluster::pause(NodeId node) {
  Slot& s = slots_[node];
  COHORT_ASSERT(s.member != nullptr);
  hash(0x4000 + node);
  s.paused = true;
  net_.pause(node, now_);
}

void Cluster::resume(NodeId node) {
  Slot& s = slots_[node];
  if (s.member == nullptr || !s.paused) return;
  hash(0x5000 + node);
  s.paused = false;
  net_.resume(node, now_);
}

void Cluster::leave(NodeId node) {
  Slot& s = slots_[node];
  COHORT_ASSERT(s.member != nullptr && !s.paused);
  hash(0x6000 + node);
  checker_->on_leave_request(uid(node), now_);
  s.member->leave(now_);
  touched_ |= uint64_t{1} << node;
  drain(node);
}

SendResult Cluster::app_send(NodeId node, Mode mode, uint64_t* id_out) {
  Slot& s = slots_[node];
  COHORT_ASSERT(s.member != nullptr && !s.paused);
  const uint64_t id = next_message_id();
  if (id_out != nullptr) *id_out = id;
  return send_payload(node, mode, id, make_payload(id, rng_));
}

SendResult Cluster::app_send_body(NodeId node, Mode mode, uint64_t id,
                                  std::span<const std::byte> body) {
  COHORT_ASSERT(slots_[node].member != nullptr && !slots_[node].paused);
  COHORT_ASSERT(id != 0 && id <= last_message_id_);
  std::vector<std::byte> payload(kIdBytes);
  for (size_t i = 0; i < kIdBytes; ++i) payload[i] = static_cast<std::byte>(id >> (8 * i));
  payload.insert(payload.end(), body.begin(), body.end());
  return send_payload(node, mode, id, payload);
}

SendResult Cluster::send_payload(NodeId node, Mode mode, uint64_t id,
                                 std::span<const std::byte> payload) {
  Slot& s = slots_[node];
  const SendResult r = s.member->send(mode, payload, now_);
  checker_->on_send(uid(node), id, mode, payload, r, now_);
  if (r == SendResult::kOk) {
    counters_.sends_ok++;
  } else {
    counters_.sends_refused++;
  }
  hash(0x7000 + node);
  hash(static_cast<uint64_t>(r) << 8 | static_cast<uint64_t>(mode));
  touched_ |= uint64_t{1} << node;
  drain(node);
  return r;
}

SendResult Cluster::request(NodeId node, Uid to, uint64_t id, std::span<const std::byte> payload) {
  return p2p_call(node, true, to, id, payload);
}

SendResult Cluster::reply(NodeId node, Uid to, uint64_t id, std::span<const std::byte> payload) {
  return p2p_call(node, false, to, id, payload);
}

SendResult Cluster::p2p_call(NodeId node, bool request, Uid to, uint64_t id,
                             std::span<const std::byte> payload) {
  Slot& s = slots_[node];
  COHORT_ASSERT(s.member != nullptr && !s.paused);
  const SendResult r = request ? s.member->send_request(to, id, payload, now_)
                               : s.member->send_reply(to, id, payload, now_);
  (request ? counters_.requests : counters_.replies)++;
  hash(0x8000 + node);
  hash(to.key());
  hash(id);
  hash(static_cast<uint64_t>(r) << 1 | (request ? 1 : 0));
  touched_ |= uint64_t{1} << node;
  drain(node);
  return r;
}

// --- actions -----------------------------------------------------------------------------------

void Cluster::drain(NodeId node) {
  Member* m = slots_[node].member.get();
  if (m == nullptr) return;
  counters_.calls++;
  const std::span<const membership::Action> actions = m->actions();
  if (actions.empty()) return;
  std::vector<Owned> batch(actions.size());
  for (size_t i = 0; i < actions.size(); ++i) {
    const membership::Action& a = actions[i];
    batch[i].action = a;
    batch[i].bytes.assign(a.bytes.begin(), a.bytes.end());
    const std::span<const std::byte> payload =
        a.kind == ActionKind::kDeliver ? a.delivery.payload : a.p2p.payload;
    batch[i].payload.assign(payload.begin(), payload.end());
    if (a.view != nullptr) {
      batch[i].view = *a.view;
      batch[i].action.view = &batch[i].view;
    }
  }
  m->clear_actions();
  ActionKind end = ActionKind::kAppend;  // kLeft or kRemoved when the process ends
  for (Owned& a : batch) {
    if (slots_[node].member == nullptr) break;
    carry_out(node, a, &end);
  }
  if (end == ActionKind::kLeft || end == ActionKind::kRemoved) end_process(node, end);
}

void Cluster::carry_out(NodeId node, Owned& owned, ActionKind* end) {
  Slot& s = slots_[node];
  membership::Action& a = owned.action;
  counters_.actions++;
  hash(now_);
  hash(static_cast<uint64_t>(a.kind) << 32 | node);
  const Uid self = uid(node);
  switch (a.kind) {
    case ActionKind::kAppend:
      hash(owned.bytes);
      net_.append(node, owned.bytes, now_);
      break;
    case ActionKind::kSend:
      hash(a.to);
      hash(owned.bytes);
      if (a.to < nodes()) net_.send(node, a.to, owned.bytes, now_);
      break;
    case ActionKind::kDeliver: {
      a.delivery.payload = owned.payload;
      const Delivery& d = a.delivery;
      hash(d.sender.key());
      hash(d.view);
      hash(d.gseq);
      hash(payload_id(d.payload));
      app_apply(&s.app, payload_id(d.payload));
      counters_.deliveries++;
      checker_->on_deliver(self, d, now_);
      if (hooks_ != nullptr) hooks_->on_deliver(node, d);
      break;
    }
    case ActionKind::kInstall:
      hash(a.view->id);
      for (Uid u : a.view->list()) hash(u.key());
      counters_.installs++;
      checker_->on_install(self, *a.view, now_);
      if (hooks_ != nullptr) hooks_->on_install(node, *a.view);
      if (verbose_ != nullptr) {
        *verbose_ << "  t=" << now_ / kUs << "us "
                  << "n" << node << "." << s.incarnation << " installs view " << a.view->id << " {";
        for (Uid u : a.view->list()) *verbose_ << " n" << u.node << "." << u.incarnation;
        *verbose_ << " }\n";
      }
      break;
    case ActionKind::kTakeSnapshot: {
      hash(a.view->id);
      const auto app = app_snapshot(s.app);
      std::vector<std::byte> snap(app.begin(), app.end());
      if (hooks_ != nullptr) {
        const std::vector<std::byte> more = hooks_->snapshot(node);
        snap.insert(snap.end(), more.begin(), more.end());
        hash(more);
      }
      s.member->snapshot_taken(a.view->id, snap);
      drain(node);  // the snapshot's own actions (sends to the joiner) go first
      break;
    }
    case ActionKind::kRestore: {
      hash(owned.bytes);
      counters_.restores++;
      // With hooks, the application's bytes follow the 16 of AppState.
      std::span<const std::byte> app = owned.bytes;
      if (hooks_ != nullptr && app.size() >= kSnapshotBytes) app = app.first(kSnapshotBytes);
      AppState restored;
      if (app_decode(app, &restored)) s.app = restored;
      checker_->on_restore(self, app, now_);
      if (hooks_ != nullptr && owned.bytes.size() >= kSnapshotBytes) {
        hooks_->on_restore(node, std::span<const std::byte>(owned.bytes).subspan(kSnapshotBytes));
      }
      if (on_restore) on_restore(node);
      break;
    }
    case ActionKind::kLeft:
      counters_.left++;
      checker_->on_left(self, now_);
      if (hooks_ != nullptr) hooks_->on_final(node, ActionKind::kLeft);
      *end = ActionKind::kLeft;
      break;
    case ActionKind::kRemoved:
      counters_.removed++;
      checker_->on_removed(self, now_);
      if (hooks_ != nullptr) hooks_->on_final(node, ActionKind::kRemoved);
      if (*end != ActionKind::kLeft) *end = ActionKind::kRemoved;
      break;
    case ActionKind::kCutOff:
      counters_.cut_offs++;
      checker_->on_cut_off(self, now_);
      if (hooks_ != nullptr) hooks_->on_final(node, ActionKind::kCutOff);
      break;
    case ActionKind::kRequest:
    case ActionKind::kReply:
    case ActionKind::kRequestFailed: {
      a.p2p.payload = owned.payload;
      hash(a.p2p.peer.key());
      hash(a.p2p.id);
      hash(owned.payload);
      counters_.p2p_answers += a.kind == ActionKind::kRequest ? 0 : 1;
      if (hooks_ == nullptr) break;
      if (a.kind == ActionKind::kRequest) {
        hooks_->on_request(node, a.p2p);
      } else {
        hooks_->on_reply(node, a.p2p, a.kind == ActionKind::kRequestFailed);
      }
      break;
    }
  }
}

// The member left or was removed: its process exits cleanly (readers still get its whole log).
void Cluster::end_process(NodeId node, ActionKind why) {
  Slot& s = slots_[node];
  if (s.member == nullptr) return;
  if (verbose_ != nullptr) {
    *verbose_ << "  t=" << now_ / kUs << "us n" << node << "." << s.incarnation << " "
              << membership::action_kind_name(why) << "\n";
  }
  collect_coverage(*s.member);
  s.member.reset();
  s.store.reset();  // after the member, which points into it
  s.paused = false;
  net_.stop(node, now_);
  if (on_end) on_end(node, why);
}

void Cluster::collect_coverage(const Member& m) noexcept {
  const Member::Coverage& c = m.coverage();
  ended_coverage_.leader_failed_in_flush += c.leader_failed_in_flush;
  ended_coverage_.sequencer_failed_in_flight += c.sequencer_failed_in_flight;
  ended_coverage_.cut_adopted += c.cut_adopted;
  ended_coverage_.relays_served += c.relays_served;
}

Member::Coverage Cluster::coverage() const noexcept {
  Member::Coverage total = ended_coverage_;
  for (const Slot& s : slots_) {
    if (s.member == nullptr) continue;
    const Member::Coverage& c = s.member->coverage();
    total.leader_failed_in_flush += c.leader_failed_in_flush;
    total.sequencer_failed_in_flight += c.sequencer_failed_in_flight;
    total.cut_adopted += c.cut_adopted;
    total.relays_served += c.relays_served;
  }
  return total;
}

// --- the trace hash: FNV-1a over every action of every member, in order ------------------------

void Cluster::hash(uint64_t word) noexcept {
  for (int i = 0; i < 8; ++i) {
    trace_ ^= (word >> (8 * i)) & 0xff;
    trace_ *= 0x100000001b3ULL;
  }
}

void Cluster::hash(std::span<const std::byte> bytes) noexcept {
  trace_ = bytes_hash(bytes, trace_);
}

}  // namespace cohort::sim
