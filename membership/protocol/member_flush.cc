// Member: the view change (PROTOCOL.md, "View change"), failure detection, joins, leaves and
// state transfer. Normal operation is member.cc.
//
// The view change is single-decree Paxos over the value CutValue (the cut of view v and view
// v+1), with attempts as ballots: PROPOSE is the prepare, FLUSH_STATE the promise (carrying the
// highest value the member accepted), CUT the accept, HAVE_CUT the accepted (sent only once the
// member also holds every message of the cut), INSTALL the decision. NOTES.md has the argument.
#include <algorithm>
#include <bit>

#include "membership/protocol/member_impl.h"
#include "runtime/assert.h"

namespace cohort::membership {
namespace {

uint64_t round_of(uint64_t attempt) {
  return attempt >> 8;
}

uint32_t all_ranks(uint32_t count) {
  return count >= 32 ? ~0U : ((1U << count) - 1);
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Failure detection and leadership

uint32_t Member::Impl::local_suspects() const {
  uint32_t mask = 0;
  for (uint32_t r = 0; r < cur->view.count; ++r) {
    if (r != cur->my_rank && now > last_heard[r] + config.suspect_timeout_ns) mask |= 1U << r;
  }
  return mask;
}

// Who the next view leaves out: those this member suspects, and those suspected by a member it
// does not suspect (so a one-way link failure does not stall the group). Never itself.
uint32_t Member::Impl::exclusion() const {
  const uint32_t local = local_suspects();
  uint32_t mask = local | unresponsive;
  for (uint32_t r = 0; r < cur->view.count; ++r) {
    if (r != cur->my_rank && (local & (1U << r)) == 0) mask |= reported[r];
  }
  mask &= ~(1U << cur->my_rank);
  mask &= all_ranks(cur->view.count);
  // Acting on reports must not cost the majority: then only what this member sees counts.
  if (!majority(all_ranks(cur->view.count) & ~mask)) mask = local;
  return mask;
}

uint32_t Member::Impl::leader_rank() const {
  const uint32_t suspects = local_suspects();
  for (uint32_t r = 0; r < cur->view.count; ++r) {
    if ((suspects & (1U << r)) == 0) return r;
  }
  return cur->my_rank;
}

bool Member::Impl::majority(uint32_t mask) const {
  if (config.bugs.minority_view) return mask != 0;
  return 2 * static_cast<uint32_t>(std::popcount(mask)) > cur->view.count;
}

void Member::Impl::wedge() {
  if (state == MemberState::kActive) state = MemberState::kWedged;
}

void Member::Impl::tick_view() {
  if (state == MemberState::kJoining) {
    if (join_sent_ns == 0 || now >= join_sent_ns + config.join_retry_ns) {
      join_sent_ns = now;
      for (NodeId n : seeds) {
        if (n != self.node) send_control(n, ControlKind::kJoin, [](Writer&) {});
      }
    }
    return;
  }
  if (!in_view()) return;
  ViewData& v = *cur;
  const uint32_t suspects = local_suspects();

  if (now >= last_heartbeat_ns + config.heartbeat_interval_ns) {
    last_heartbeat_ns = now;
    const uint8_t flags = state == MemberState::kWedged ? 1 : 0;
    for (uint32_t r = 0; r < v.view.count; ++r) {
      if (r == v.my_rank) continue;
      send_control(v.view.members[r].node, ControlKind::kHeartbeat, [&](Writer& w) {
        w.u32(suspects);
        w.u8(flags);
      });
    }
  }

  // Primary partition: a member that cannot see a majority of its view stops delivering.
  const bool alone = !majority(all_ranks(v.view.count) & ~suspects);
  if (alone && !cut_off) {
    cut_off = true;
    ++counters.cut_off;
    wedge();
    emit(ActionKind::kCutOff);
  } else if (!alone) {
    cut_off = false;
  }

  if (leaving && v.view.count == 1) {  // the others left first: nobody to tell
    become_final(MemberState::kLeft);
    return;
  }
  // A leaver's accepted sends go out before it asks to leave, so that they are in the cut: with
  // tickets a send may wait while the member is active (no ticket to take yet). Not for ever:
  // past the suspect timeout it leaves without them, as a removed member would (found by
  // helper-24's review: 20 sends answered kOk were never delivered).
  const bool sends_wait =
      active() && !pending_sends.empty() && now < leave_asked_ns + config.suspect_timeout_ns;
  if (leaving && !sends_wait && now >= leave_sent_ns + config.retry_interval_ns) {
    leave_sent_ns = now;
    send_control(v.view.members[leader_rank()].node, ControlKind::kLeave, [](Writer&) {});
  }

  leader_tick();
  if (!in_view()) return;

  // Member side of a view change: fetch what the cut needs, repeat HAVE_CUT until INSTALL.
  const CutValue* target = pending_install ? &*pending_install : accepted ? &*accepted : nullptr;
  if (target != nullptr && now >= fetch_ns + config.retry_interval_ns) {
    fetch_ns = now;
    if (!holds_cut(*target)) {
      fetch_missing(*target);
    } else if (!pending_install && promised == accepted_attempt) {
      send_control(cut_leader, ControlKind::kHaveCut, [&](Writer& w) { w.u64(accepted_attempt); });
    }
  }
  snapshot_tick();
}

void Member::Impl::leader_tick() {
  if (cut_off || leader_rank() != cur->my_rank) {
    lf.active = false;
    return;
  }
  const uint32_t excluded = exclusion();
  if (lf.active) {
    if ((lf.participants & excluded) != 0) {
      begin_attempt();  // a participant failed: start again without it
      return;
    }
    // PROTOCOL.md, round 2: a participant that does not answer in time is suspected, and the
    // change starts again without it (its heartbeats may still arrive: a one-way link).
    if (now > lf.started_ns + config.suspect_timeout_ns) {
      const uint32_t done = lf.phase == LeaderFlush::Phase::kCollect ? lf.answered : lf.have_cut;
      const uint32_t late = lf.participants & ~done & ~(1U << cur->my_rank);
      if (late != 0 && majority(lf.participants & ~late)) {
        unresponsive |= late;
        begin_attempt();
        return;
      }
      if (late != 0 && now > lf.started_ns + 2 * config.suspect_timeout_ns) {
        begin_attempt();  // no quorum without them: try again, with a higher attempt
        return;
      }
    }
    if (now < lf.sent_ns + config.retry_interval_ns) return;
    lf.sent_ns = now;
    for (uint32_t r = 0; r < cur->view.count; ++r) {
      if ((lf.participants & (1U << r)) == 0 || r == cur->my_rank) continue;
      const NodeId node = cur->view.members[r].node;
      if (lf.phase == LeaderFlush::Phase::kCollect && (lf.answered & (1U << r)) == 0) {
        send_control(node, ControlKind::kPropose, [&](Writer& w) { w.u64(lf.attempt); });
      } else if (lf.phase == LeaderFlush::Phase::kCut && (lf.have_cut & (1U << r)) == 0) {
        send_cut(node);
      }
    }
    return;
  }
  const bool wedged_somewhere = state == MemberState::kWedged || reported_wedged != 0;
  if (excluded != 0 || !pending_joins.empty() || !pending_leaves.empty() || wedged_somewhere) {
    begin_attempt();
  }
}

// ---------------------------------------------------------------------------------------------
// Leader: rounds 1-3

void Member::Impl::begin_attempt() {
  const uint32_t participants = all_ranks(cur->view.count) & ~exclusion();
  if (!majority(participants)) {
    lf.active = false;
    return;
  }
  if (!lf.active && state == MemberState::kWedged && promised != 0 &&
      (promised & 0xFF) != cur->my_rank) {
    ++coverage.leader_failed_in_flush;  // another leader's change, taken over
  }
  if (!lf.active && promised == 0) ++counters.view_changes_started;
  ++counters.attempts;
  max_round = std::max(max_round, round_of(promised)) + 1;
  lf = LeaderFlush{};
  lf.active = true;
  lf.attempt = (max_round << 8) | cur->my_rank;
  lf.participants = participants;
  lf.sent_ns = now;
  lf.started_ns = now;
  for (uint32_t r = 0; r < cur->view.count; ++r) {
    if ((participants & (1U << r)) == 0) continue;
    send_control(cur->view.members[r].node, ControlKind::kPropose,
                 [&](Writer& w) { w.u64(lf.attempt); });
  }
}

// Union of the answers holds everything of `c`: then it can be completed. If the highest
// accepted value was installed anywhere, every member that accepted it in that attempt held
// all of it, and a majority did, so some answer here does (NOTES.md): a value no answer can
// complete was installed nowhere, and a new one may be chosen.
bool Member::Impl::fulfillable(const CutValue& c) const {
  if (c.from != cur->view.id || c.senders != cur->view.count) return false;
  bool order_ok = false;
  for (uint32_t s = 0; s < c.senders; ++s) {
    bool ok = false;
    for (uint32_t r = 0; r < cur->view.count; ++r) {
      if ((lf.participants & (1U << r)) != 0 && lf.states[r].recv[s] >= c.cut[s]) ok = true;
    }
    if (!ok) return false;
  }
  for (uint32_t r = 0; r < cur->view.count; ++r) {
    if ((lf.participants & (1U << r)) != 0 && lf.states[r].ordered >= c.ordered) order_ok = true;
  }
  return order_ok;
}

void Member::Impl::decide() {
  const ViewData& v = *cur;
  int best = -1;
  for (uint32_t r = 0; r < v.view.count; ++r) {
    if ((lf.participants & (1U << r)) == 0 || !lf.states[r].has_accepted) continue;
    if (best < 0 ||
        lf.states[r].accepted_attempt > lf.states[static_cast<uint32_t>(best)].accepted_attempt) {
      best = static_cast<int>(r);
    }
  }
  if (best >= 0 && fulfillable(lf.states[static_cast<uint32_t>(best)].accepted)) {
    lf.value = lf.states[static_cast<uint32_t>(best)].accepted;  // adopt before you decide
    ++coverage.cut_adopted;
  } else {
    CutValue c{};
    c.attempt = lf.attempt;
    c.from = v.view.id;
    c.senders = v.view.count;
    for (uint32_t r = 0; r < v.view.count; ++r) {
      if ((lf.participants & (1U << r)) == 0) continue;
      for (uint32_t s = 0; s < c.senders; ++s) c.cut[s] = std::max(c.cut[s], lf.states[r].recv[s]);
      c.ordered = std::max(c.ordered, lf.states[r].ordered);
    }
    c.next.id = v.view.id + 1;
    for (uint32_t r = 0; r < v.view.count; ++r) {
      const Uid u = v.view.members[r];
      const bool leaves =
          std::find(pending_leaves.begin(), pending_leaves.end(), u) != pending_leaves.end();
      if ((lf.participants & (1U << r)) != 0 && !leaves) c.next.members[c.next.count++] = u;
    }
    if (c.next.count == 0) {  // everyone asked to leave: the oldest stays to close the group
      c.next.members[c.next.count++] = v.view.members[std::countr_zero(lf.participants)];
    }
    for (const Uid j : pending_joins) {
      if (c.next.count >= kMaxMembers) break;
      bool node_taken = false;
      for (uint32_t i = 0; i < c.next.count; ++i) node_taken |= c.next.members[i].node == j.node;
      if (node_taken) continue;
      c.joiners_mask |= 1U << c.next.count;
      c.next.members[c.next.count++] = j;
    }
    // Coverage: the old sequencer failed with DATA it never ordered; the cut orders it now.
    uint64_t in_cut = 0;
    for (uint32_t s = 0; s < c.senders; ++s) in_cut += c.cut[s];
    if ((lf.participants & 1U) == 0 && in_cut > c.ordered) ++coverage.sequencer_failed_in_flight;
    lf.value = c;
  }
  // Where each member fetches what it lacks: a participant holding the most.
  for (uint32_t s = 0; s < v.view.count; ++s) {
    uint32_t best_r = v.my_rank;
    for (uint32_t r = 0; r < v.view.count; ++r) {
      if ((lf.participants & (1U << r)) != 0 && lf.states[r].recv[s] > lf.states[best_r].recv[s]) {
        best_r = r;
      }
    }
    lf.holders[s] = static_cast<uint8_t>(best_r);
  }
  lf.order_holder = static_cast<uint8_t>(v.my_rank);
  for (uint32_t r = 0; r < v.view.count; ++r) {
    if ((lf.participants & (1U << r)) != 0 &&
        lf.states[r].ordered > lf.states[lf.order_holder].ordered) {
      lf.order_holder = static_cast<uint8_t>(r);
    }
  }
  lf.sent_ns = now;
  if (config.bugs.skip_flush) {  // planted bug: install at once, no cut, no HAVE_CUT
    const CutValue c = lf.value;
    const uint64_t attempt = lf.attempt;
    for (uint32_t i = 0; i < c.next.count; ++i) send_install(c.next.members[i].node, c, attempt);
    for (uint32_t r = 0; r < v.view.count; ++r) {
      if ((lf.participants & (1U << r)) != 0 && !c.next.contains(v.view.members[r])) {
        send_install(v.view.members[r].node, c, attempt);
      }
    }
    lf.active = false;
    return;
  }
  lf.phase = LeaderFlush::Phase::kCut;
  for (uint32_t r = 0; r < v.view.count; ++r) {
    if ((lf.participants & (1U << r)) != 0) send_cut(v.view.members[r].node);
  }
}

void Member::Impl::send_cut(NodeId to) {
  send_control(to, ControlKind::kCut, [&](Writer& w) {
    w.u64(lf.attempt);
    put_cut_value(w, lf.value);
    for (uint32_t s = 0; s < lf.value.senders; ++s) w.u8(lf.holders[s]);
    w.u8(lf.order_holder);
  });
}

void Member::Impl::send_install(NodeId to, const CutValue& c, uint64_t attempt) {
  send_control(to, ControlKind::kInstall, [&](Writer& w) {
    w.u64(attempt);
    put_cut_value(w, c);
  });
}

void Member::Impl::on_flush_state(const ControlHead& h, Reader& r) {
  FlushState f;
  if (!get_flush_state(r, &f)) {
    ++counters.control_malformed;
    return;
  }
  const uint32_t rank = cur->view.rank_of(h.from);
  max_round = std::max(max_round, round_of(f.attempt));
  if (lf.active && f.attempt > lf.attempt) {
    begin_attempt();  // outbid: a member promised a higher attempt than this one
    return;
  }
  if (!lf.active || lf.phase != LeaderFlush::Phase::kCollect || f.attempt != lf.attempt ||
      (lf.participants & (1U << rank)) == 0 || f.senders != cur->view.count) {
    return;
  }
  lf.states[rank] = f;
  lf.answered |= 1U << rank;
  if (lf.answered == lf.participants) decide();
}

void Member::Impl::on_have_cut(const ControlHead& h, Reader& r) {
  const uint64_t attempt = r.u64();
  if (!r.at_end()) {
    ++counters.control_malformed;
    return;
  }
  const uint32_t rank = cur->view.rank_of(h.from);
  if (!lf.active || lf.phase != LeaderFlush::Phase::kCut || attempt != lf.attempt ||
      (lf.participants & (1U << rank)) == 0) {
    return;
  }
  lf.have_cut |= 1U << rank;
  if (lf.have_cut != lf.participants) return;
  // Round 3: every participant holds the whole cut. Decided: tell everyone, self last.
  const CutValue c = lf.value;
  const uint64_t a = lf.attempt;
  const ViewData& v = *cur;
  for (uint32_t i = 0; i < c.next.count; ++i) {
    if (c.next.members[i] != self) send_install(c.next.members[i].node, c, a);
  }
  for (uint32_t q = 0; q < v.view.count; ++q) {
    const Uid u = v.view.members[q];
    if (u != self && (lf.participants & (1U << q)) != 0 && !c.next.contains(u)) {
      send_install(u.node, c, a);
    }
  }
  lf.active = false;
  send_install(self.node, c, a);
}

// ---------------------------------------------------------------------------------------------
// Member: answering the leader

void Member::Impl::on_propose(const ControlHead& h, NodeId from, Reader& r) {
  const uint64_t attempt = r.u64();
  if (!r.at_end()) {
    ++counters.control_malformed;
    return;
  }
  // A PROPOSE below the promise is answered with the promise's attempt: the leader ignores the
  // state but learns the round to outbid (a leader that was paused missed the later rounds).
  (void)h;
  if (attempt >= promised) {
    promised = attempt;
    max_round = std::max(max_round, round_of(attempt));
    wedge();
  }
  send_promise(from);
}

void Member::Impl::send_promise(NodeId to) {
  const ViewData& v = *cur;
  FlushState f{};
  f.attempt = promised;
  f.senders = v.view.count;
  for (uint32_t s = 0; s < v.view.count; ++s) f.recv[s] = v.senders[s].recv;
  f.ordered = v.ordered;
  if (accepted) {
    f.has_accepted = true;
    f.accepted_attempt = accepted_attempt;
    f.accepted = *accepted;
  }
  send_control(to, ControlKind::kFlushState, [&](Writer& w) { put_flush_state(w, f); });
}

void Member::Impl::on_cut(const ControlHead& h, NodeId from, Reader& r) {
  (void)h;
  const uint64_t attempt = r.u64();
  CutValue c{};
  if (!get_cut_value(r, &c) || c.senders != cur->view.count || c.from != cur->view.id) {
    ++counters.control_malformed;
    return;
  }
  uint8_t hold[kMaxMembers] = {};
  for (uint32_t s = 0; s < c.senders; ++s) hold[s] = r.u8();
  const uint8_t oh = r.u8();
  if (!r.at_end() || oh >= c.senders) {
    ++counters.control_malformed;
    return;
  }
  for (uint32_t s = 0; s < c.senders; ++s) {
    if (hold[s] >= c.senders) {
      ++counters.control_malformed;
      return;
    }
  }
  if (attempt < promised) {
    // A newer leader asked first: its value, not this one. Tell this leader the promise, so it
    // outbids it if the newer one has gone quiet (on_flush_state).
    send_promise(from);
    return;
  }
  promised = attempt;
  max_round = std::max(max_round, round_of(attempt));
  wedge();
  if (!accepted || accepted_attempt != attempt) fetch_ns = 0;
  accepted = c;
  accepted_attempt = attempt;
  cut_leader = from;
  std::copy(hold, hold + c.senders, holders);
  order_holder = oh;
  holders_known = true;
  fetch_ns = now;
  if (holds_cut(c)) {
    have_cut_attempt = attempt;
    send_control(from, ControlKind::kHaveCut, [&](Writer& w) { w.u64(attempt); });
  } else {
    fetch_missing(c);
  }
}

bool Member::Impl::holds_cut(const CutValue& c) const {
  const ViewData& v = *cur;
  if (c.from != v.view.id) return false;
  for (uint32_t s = 0; s < c.senders; ++s) {
    if (v.senders[s].recv < c.cut[s]) return false;
  }
  return v.ordered >= c.ordered;
}

// After records arrive: a wedged member that now holds its accepted cut says so at once, and a
// member waiting to install does.
void Member::Impl::check_cut_progress() {
  if (!in_view()) return;
  if (pending_install && holds_cut(*pending_install)) {
    const CutValue c = *pending_install;
    do_install(c);
    return;
  }
  // HAVE_CUT(a) only while a is still the promise: once this member has told a newer leader
  // what it holds, a later "I hold all of a" could let leader a install a value the newer
  // leader, trusting that report, did not adopt (cohort-sim seed 26192).
  if (accepted && !pending_install && promised == accepted_attempt &&
      have_cut_attempt != accepted_attempt && holds_cut(*accepted)) {
    have_cut_attempt = accepted_attempt;
    send_control(cut_leader, ControlKind::kHaveCut, [&](Writer& w) { w.u64(accepted_attempt); });
  }
}

void Member::Impl::fetch_missing(const CutValue& c) {
  const ViewData& v = *cur;
  FetchBody f{};
  for (uint32_t s = 0; s < c.senders; ++s) {
    if (v.senders[s].recv < c.cut[s]) {
      f.ranges[f.count++] = OrderRange{static_cast<uint8_t>(s), v.senders[s].recv + 1, c.cut[s]};
    }
  }
  if (v.ordered < c.ordered) {
    f.order_from = v.ordered + 1;
    f.order_to = c.ordered;
  }
  if (f.count == 0 && f.order_from == 0) return;
  // Ask the holder the leader named (or the member that sent INSTALL), then, every other
  // time, go round the other members: a named holder may have failed since.
  const uint32_t round = fetch_round++;
  NodeId target = install_hint;
  if (!pending_install && holders_known) {
    target = v.view.members[f.count > 0 ? holders[f.ranges[0].rank] : order_holder].node;
  }
  if (round % 2 == 1 && v.view.count > 1) {
    const uint32_t step = 1 + (round / 2) % (v.view.count - 1);
    target = v.view.members[(v.my_rank + step) % v.view.count].node;
  }
  if (target == self.node) return;
  send_control(target, ControlKind::kFetch, [&](Writer& w) { put_fetch(w, f); });
}

// A holder relays what a member misses into its own log, where every member reads it. The log
// is reliable, so each message and entry is relayed once (`relayed`) however often it is asked
// for.
void Member::Impl::on_fetch(const ControlHead& h, NodeId from, Reader& r) {
  (void)from;
  FetchBody f{};
  if (!get_fetch(r, &f)) {
    ++counters.control_malformed;
    return;
  }
  ViewData* v = cur && cur->view.id == h.view     ? cur.get()
                : prev && prev->view.id == h.view ? prev.get()
                                                  : nullptr;
  if (v == nullptr) return;
  ++coverage.relays_served;
  for (uint32_t i = 0; i < f.count; ++i) {
    const OrderRange& range = f.ranges[i];
    if (range.rank >= v->view.count) continue;
    // Released messages are held by every member: nobody asks for them, and they are gone.
    const auto last =
        static_cast<uint32_t>(std::min<uint64_t>(range.sseq_to, v->senders[range.rank].msgs.end()));
    for (uint32_t k = std::max(range.sseq_from, v->released(range.rank) + 1); k <= last; ++k) {
      Msg* m = v->msg(range.rank, k);
      if (m == nullptr || !m->held || m->relayed) continue;
      DataBody d{};
      d.rank = range.rank;
      d.mode = m->mode;
      d.sseq = k;
      d.gseq_inline = m->gseq_inline;
      d.payload = m->payload;
      append_record(RecordKind::kRelayData, v->view.id, [&](Writer& w) { put_data(w, d); });
      m->relayed = true;
      ++counters.relayed_records;
    }
  }
  if (f.order_from != 0) {
    // Each run of entries not relayed yet becomes one RELAY_ORDER record (released entries
    // are held by every member, like released messages).
    const uint64_t end = std::min(f.order_to, v->order.end());
    uint64_t g = std::max(f.order_from, v->order.first() + 1);
    const auto relayable = [&](uint64_t at) {
      const OrderSlot* o = v->order.find(at - 1);
      return o != nullptr && o->present && !o->relayed;
    };
    while (g <= end) {
      if (!relayable(g)) {
        ++g;
        continue;
      }
      OrderRange ranges[kMaxOrderRanges];
      uint32_t n = 0;
      const uint64_t first = g;
      while (g <= end && relayable(g)) {
        OrderSlot& o = v->order.at(g - 1);
        if (n > 0 && ranges[n - 1].rank == o.rank && ranges[n - 1].sseq_to + 1 == o.sseq) {
          ranges[n - 1].sseq_to = o.sseq;
        } else if (n < kMaxOrderRanges) {
          ranges[n++] = OrderRange{o.rank, o.sseq, o.sseq};
        } else {
          break;
        }
        o.relayed = true;
        ++g;
      }
      append_record(RecordKind::kRelayOrder, v->view.id, [&](Writer& w) {
        put_order(w, first, std::span<const OrderRange>(ranges, n));
      });
    }
  }
}

void Member::Impl::on_install(const ControlHead& h, NodeId from, Reader& r) {
  (void)h;
  const uint64_t attempt = r.u64();
  CutValue c{};
  if (!get_cut_value(r, &c) || !r.at_end()) {
    ++counters.control_malformed;
    return;
  }
  (void)attempt;
  if (state == MemberState::kJoining) {
    const uint32_t rank = c.next.rank_of(self);
    if (rank == View::kNoRank || (c.joiners_mask & (1U << rank)) == 0) return;
    last_install = c;
    enter_view(c.next, c.joiners_mask, true);
    return;
  }
  if (c.from < cur->view.id) return;
  if (c.from > cur->view.id) {
    if (!c.next.contains(self)) become_final(MemberState::kRemoved);
    return;
  }
  if (c.senders != cur->view.count) {
    ++counters.control_malformed;
    return;
  }
  if (!c.next.contains(self) && !leaving) {
    become_final(MemberState::kRemoved);
    return;
  }
  if (config.bugs.skip_flush) {
    do_install(c);
    return;
  }
  if (!pending_install) {
    pending_install = c;
    install_hint = from;
    fetch_ns = 0;
  }
  check_cut_progress();
  if (pending_install && now >= fetch_ns + config.retry_interval_ns) {
    fetch_ns = now;
    fetch_missing(*pending_install);
  }
}

// ---------------------------------------------------------------------------------------------
// Install

// The cut's delivery order (PROTOCOL.md, round 2): gseq 1..G, skipping entries beyond cut[s];
// then what no ORDER covers, by (rank, sseq), numbered from G+1.
void Member::Impl::deliver_cut(const CutValue& c) {
  ViewData& v = *cur;
  struct Entry {
    uint32_t rank;
    uint32_t sseq;
    uint64_t gseq;
  };
  std::vector<Entry> list;
  // Released entries (gseqs up to order.first()) were delivered here, and their messages are
  // each sender's sseqs up to released(s): they are in every cut (NOTES.md), and the walk
  // starts after them.
  uint32_t covered[kMaxMembers] = {};
  for (uint32_t s = 0; s < c.senders; ++s) covered[s] = v.released(s);
  for (uint64_t g = v.order.first() + 1; g <= c.ordered; ++g) {
    const OrderSlot& o = v.order.at(g - 1);
    COHORT_ASSERT(o.present);
    if (o.sseq <= c.cut[o.rank]) {
      list.push_back(Entry{o.rank, o.sseq, g});
      covered[o.rank] = std::max(covered[o.rank], o.sseq);
    }
  }
  uint64_t next = c.ordered + 1;
  for (uint32_t s = 0; s < c.senders; ++s) {
    for (uint32_t k = covered[s] + 1; k <= c.cut[s]; ++k) list.push_back(Entry{s, k, next++});
  }
  if (config.bugs.reorder_cut) {  // planted bug: the new order ignores the old sequencer's
    std::sort(list.begin(), list.end(), [](const Entry& a, const Entry& b) {
      return a.rank != b.rank ? a.rank < b.rank : a.sseq < b.sseq;
    });
    for (size_t i = 0; i < list.size(); ++i) list[i].gseq = i + 1;
  }
  for (const Entry& e : list) {
    if (e.sseq <= v.released(e.rank)) continue;  // delivered, and released since
    Msg* m = v.msg(e.rank, e.sseq);
    COHORT_ASSERT_MSG(m != nullptr && m->held, "installing without holding the cut");
    if (m->delivered) continue;
    deliver(v, e.rank, e.sseq, m->mode == Mode::kFifo ? 0 : e.gseq);
  }
  // Nothing delivered before the wedge lies outside the cut (the cut covers every participant).
  if (!config.bugs.any()) {
    for (uint32_t s = 0; s < v.view.count; ++s) {
      COHORT_ASSERT_MSG(v.senders[s].delivered <= c.cut[s], "delivered past the cut");
    }
  }
}

void Member::Impl::do_install(const CutValue& c) {
  pending_install.reset();
  const bool joiner_added = c.joiners_mask != 0;
  // A leaver delivers the cut too, unless the cut was decided without it (an adopted value
  // from an attempt it took no part in) and it delivered past it: then it simply leaves, like a
  // member that crashed after those deliveries (non-uniform, and never in safe mode).
  bool deliver = !config.bugs.skip_flush;
  if (deliver && !c.next.contains(self)) {
    for (uint32_t s = 0; s < c.senders; ++s)
      deliver = deliver && cur->senders[s].delivered <= c.cut[s];
  }
  if (deliver) {
    state = MemberState::kActive;  // deliver_cut delivers only while active
    deliver_cut(c);
  }
  for (uint32_t r = 0; r < cur->view.count; ++r) {
    const Uid u = cur->view.members[r];
    if (!c.next.contains(u)) retired[u.node] = std::max(retired[u.node], u.incarnation);
  }
  if (!c.next.contains(self)) {
    become_final(leaving ? MemberState::kLeft : MemberState::kRemoved);
    return;
  }
  if (joiner_added) {
    Action a{};
    a.kind = ActionKind::kTakeSnapshot;
    a.view = keep_view(c.next);
    emit_app(a);
  }
  last_install = c;
  enter_view(c.next, c.joiners_mask, false);
}

void Member::Impl::enter_view(const View& view, uint32_t joiners_mask, bool joiner) {
  if (prev && !restored) retained_own.push_back(std::move(prev->own));
  if (restored) retained_own.clear();  // the held deliveries went out long ago
  prev = std::move(cur);
  ++release_epoch;  // a view dropped, the next one's records no longer `future`
  cur = std::make_unique<ViewData>();
  cur->view = view;
  cur->my_rank = view.rank_of(self);
  COHORT_ASSERT(cur->my_rank != View::kNoRank);
  state = MemberState::kActive;
  cut_off = false;
  promised = 0;
  max_round = 0;
  accepted.reset();
  accepted_attempt = 0;
  holders_known = false;
  pending_install.reset();
  lf = LeaderFlush{};
  reported.fill(0);
  reported_wedged = 0;
  unresponsive = 0;
  last_heard.fill(now);
  last_heartbeat_ns = 0;
  have_cut_attempt = 0;
  fetch_round = 0;
  // Joined, or outdated by a later incarnation of its node that is in.
  std::erase_if(pending_joins, [&](Uid u) {
    const uint32_t r = view.rank_of_node(u.node);
    return r != View::kNoRank && view.members[r].incarnation >= u.incarnation;
  });
  pending_leaves.clear();
  if (joiner) {
    // A joiner applies the old members' snapshot before anything of its first view.
    restored = false;
    first_view = view.id;
    // Old members took the snapshot; fellow joiners that applied it keep it too, so they can
    // serve it when the old members are gone.
    snap_sources.clear();
    for (uint32_t r = 0; r < view.count; ++r) {
      if ((joiners_mask & (1U << r)) == 0) snap_sources.push_back(view.members[r]);
    }
    snap_old_sources = static_cast<uint32_t>(snap_sources.size());
    for (uint32_t r = 0; r < view.count; ++r) {
      if ((joiners_mask & (1U << r)) != 0 && view.members[r] != self) {
        snap_sources.push_back(view.members[r]);
      }
    }
    snap_buf.clear();
    snap_total_known = false;
    snap_req_ns = 0;
    snap_progress_ns = now;
    if (snap_sources.empty()) restored = true;
  }
  // SNAP_NONE answers count toward giving up only within one view (snapshot_tick).
  snap_none_streak = 0;
  snap_none_joiners = 0;
  Action a{};
  a.kind = ActionKind::kInstall;
  a.view = keep_view(view);
  emit_app(a);
  fail_requests(&view);  // asked members that are not in the view answer no more

  // Sends held while wedged go out in the new view, with new sseqs; with tickets, once this
  // view's count is open (every member that installs it opens it: TicketCounter).
  if (config.tickets != nullptr) config.tickets->open(view.members[0], view.id);
  send_held();

  // Records of this view that arrived early.
  auto early = std::move(future);
  future.clear();
  for (auto& [from, record] : early) handle_record(from, record);
}

// ---------------------------------------------------------------------------------------------
// Control datagrams

void Member::Impl::reply_stale(const ControlHead& h, NodeId from) {
  if (reply_ns[from] != 0 && now < reply_ns[from] + config.retry_interval_ns) return;
  reply_ns[from] = now;
  if (cur->view.contains(h.from)) {
    if (last_install && last_install->from == h.view) {
      send_install(from, *last_install, last_install->attempt);
    }
    return;
  }
  // Naming the incarnation it answers: a late JOIN of a dead incarnation must not end the join
  // of the node's new one.
  send_control(from, ControlKind::kNotMember, [&](Writer& w) {
    w.u32(h.from.node);
    w.u32(h.from.incarnation);
  });
}

// The incarnation a NOT_MEMBER answers is this one (false also when the body is malformed,
// which is counted).
bool Member::Impl::not_member_is_mine(Reader& r) {
  const Uid target{r.u32(), r.u32()};
  if (!r.at_end()) {
    ++counters.control_malformed;
    return false;
  }
  if (target != self) {
    ++counters.control_dropped_stale;
    return false;
  }
  return true;
}

void Member::Impl::handle_control(NodeId from, std::span<const std::byte> bytes) {
  if (!in_view() && state != MemberState::kJoining) return;
  Reader r(bytes);
  ControlHead h{};
  if (!get_control_head(r, &h) || (h.from.node != from && h.kind != ControlKind::kJoin)) {
    ++counters.control_malformed;
    return;
  }
  if (h.from.node != from && !passed_on_by_a_member(from)) {
    // Passed on by a member that is not (or no longer) in our view, or to us while we join:
    // views differ for a while around every change.
    ++counters.control_dropped_stale;
    return;
  }
  if (state == MemberState::kJoining) {
    if (h.kind == ControlKind::kInstall) {
      on_install(h, from, r);
    } else if (h.kind == ControlKind::kNotMember && not_member_is_mine(r)) {
      become_final(MemberState::kRemoved);
    }
    return;
  }
  ViewData& v = *cur;
  const uint32_t rank = v.view.rank_of(h.from);
  // (A JOIN passed on says nothing of the joiner's being alive now.)
  if (rank != View::kNoRank && h.from.node == from) last_heard[rank] = now;
  switch (h.kind) {
    case ControlKind::kJoin: on_join(h, from); return;
    case ControlKind::kSnapRequest: on_snap_request(h, from, r); return;
    case ControlKind::kFetch: on_fetch(h, from, r); return;
    case ControlKind::kNotMember:
      if (not_member_is_mine(r) && h.view > v.view.id) become_final(MemberState::kRemoved);
      return;
    case ControlKind::kInstall: on_install(h, from, r); return;
    default: break;
  }
  if (h.view < v.view.id) {
    ++counters.control_dropped_stale;
    reply_stale(h, from);
    return;
  }
  if (h.view > v.view.id || rank == View::kNoRank) {
    ++counters.control_dropped_stale;
    // The sender has moved on: a heartbeat of this view makes it send the INSTALL this member
    // missed (or NOT_MEMBER), even if the members of this view that could are gone.
    if (h.view > v.view.id &&
        (reply_ns[from] == 0 || now >= reply_ns[from] + config.retry_interval_ns)) {
      reply_ns[from] = now;
      send_control(from, ControlKind::kHeartbeat, [&](Writer& w) {
        w.u32(0);
        w.u8(state == MemberState::kWedged ? 1 : 0);
      });
    }
    return;
  }
  switch (h.kind) {
    case ControlKind::kHeartbeat: {
      const uint32_t suspects = r.u32();
      const uint8_t flags = r.u8();
      if (!r.at_end()) {
        ++counters.control_malformed;
        return;
      }
      reported[rank] = suspects & all_ranks(v.view.count);
      if ((flags & 1) != 0) {
        reported_wedged |= 1U << rank;
      } else {
        reported_wedged &= ~(1U << rank);
      }
      return;
    }
    case ControlKind::kLeave: on_leave(h); return;
    case ControlKind::kPropose: on_propose(h, from, r); return;
    case ControlKind::kFlushState: on_flush_state(h, r); return;
    case ControlKind::kCut: on_cut(h, from, r); return;
    case ControlKind::kHaveCut: on_have_cut(h, r); return;
    case ControlKind::kSnapChunk:
    case ControlKind::kSnapNone: on_snap_chunk(h, r); return;
    default: ++counters.control_malformed; return;
  }
}

// ---------------------------------------------------------------------------------------------
// Joins, leaves, state transfer

// A JOIN, the one control message whose head may name another node than the one it came from,
// is taken so only from another member of our view, which passes it on (on_join).
bool Member::Impl::passed_on_by_a_member(NodeId from) const {
  if (!in_view()) return false;
  const uint32_t r = cur->view.rank_of_node(from);
  return r != View::kNoRank && r != cur->my_rank;
}

void Member::Impl::on_join(const ControlHead& h, NodeId via) {
  const Uid j = h.from;
  const NodeId from = j.node;  // replies go to the joiner, also when a member passed it on
  if (j.incarnation <= retired[j.node]) {
    reply_stale(h, from);  // an incarnation that was removed never comes back
    return;
  }
  ViewData& v = *cur;
  if (v.view.contains(j)) {
    // Its INSTALL was lost: send it again.
    if (last_install && last_install->next.contains(j) &&
        (reply_ns[from] == 0 || now >= reply_ns[from] + config.retry_interval_ns)) {
      reply_ns[from] = now;
      send_install(from, *last_install, last_install->attempt);
    }
    return;
  }
  // A JOIN of an incarnation older than one the view or the pending joins hold on its node is
  // late (delayed, or passed on by a member that got it long ago): that incarnation is dead.
  // Taken, it would push the newer one out of pending_joins and never be decided (its node is
  // taken), and the leader would start a view change for it at every tick.
  const uint32_t held = v.view.rank_of_node(j.node);
  if (held != View::kNoRank && v.view.members[held].incarnation > j.incarnation) return;
  for (const Uid u : pending_joins) {
    if (u.node == j.node && u.incarnation > j.incarnation) return;
  }
  // A new incarnation on a node means the old one there is dead (every JOIN of it says so
  // again: an install in between made the old one look alive).
  if (held != View::kNoRank && v.view.members[held].incarnation < j.incarnation) {
    last_heard[held] = 0;
  }
  const uint32_t leader = leader_rank();
  if (leader != v.my_rank) {
    // Passed on under the joiner's own name, so the leader adds the joiner, not this member;
    // only what came from the joiner itself, so two members that each take the other for the
    // leader do not pass one JOIN back and forth.
    if (via != j.node) return;
    size_t mark = 0;
    Writer w = begin_bytes(ActionKind::kSend, v.view.members[leader].node, &mark);
    put_control_head(w, ControlKind::kJoin, j, 0);
    end_bytes(mark);
    return;
  }
  std::erase_if(pending_joins, [&](Uid u) { return u.node == j.node; });
  pending_joins.push_back(j);
}

void Member::Impl::on_leave(const ControlHead& h) {
  if (std::find(pending_leaves.begin(), pending_leaves.end(), h.from) == pending_leaves.end()) {
    pending_leaves.push_back(h.from);
  }
}

void Member::Impl::on_snap_request(const ControlHead& h, NodeId from, Reader& r) {
  const ViewId view = r.u64();
  const uint32_t offset = r.u32();
  if (!r.at_end()) {
    ++counters.control_malformed;
    return;
  }
  if (!cur->view.contains(h.from)) return;
  for (const auto& snapshot : snapshots) {
    if (snapshot.first != view) continue;
    const std::vector<std::byte>& bytes = snapshot.second;
    if (offset > bytes.size()) return;
    const uint32_t n =
        std::min<uint32_t>(kMaxSnapChunk, static_cast<uint32_t>(bytes.size()) - offset);
    send_control(from, ControlKind::kSnapChunk, [&](Writer& w) {
      w.u64(view);
      w.u32(static_cast<uint32_t>(bytes.size()));
      w.u32(offset);
      w.u32(n);
      w.bytes(std::span<const std::byte>(bytes).subspan(offset, n));
    });
    return;
  }
  send_control(from, ControlKind::kSnapNone, [&](Writer& w) {
    w.u64(view);
    w.u32(0);
    w.u32(0);
    w.u32(0);
  });
}

void Member::Impl::on_snap_chunk(const ControlHead& h, Reader& r) {
  const ViewId view = r.u64();
  const uint32_t total = r.u32();
  const uint32_t offset = r.u32();
  const uint32_t n = r.u32();
  const auto chunk = r.bytes(n);
  if (!r.at_end() || total > kMaxSnapshotBytes || n > kMaxSnapChunk) {
    ++counters.control_malformed;
    return;
  }
  if (restored || view != first_view) return;
  if (h.kind == ControlKind::kSnapNone) {
    ++snap_source;  // that member has no snapshot of this view: ask another
    const auto old_end = snap_sources.begin() + snap_old_sources;
    if (std::find(snap_sources.begin(), old_end, h.from) != old_end) {
      ++snap_none_streak;
    } else {
      ++snap_none_joiners;
    }
    snap_req_ns = 0;
    return;
  }
  snap_none_streak = 0;
  snap_none_joiners = 0;
  if (offset != snap_buf.size() || (snap_total_known && total != snap_total)) return;
  snap_total = total;
  snap_total_known = true;
  snap_buf.insert(snap_buf.end(), chunk.begin(), chunk.end());
  snap_progress_ns = now;
  snap_req_ns = 0;
  if (snap_buf.size() >= snap_total) {
    finish_restore();
  } else {
    snapshot_tick();
  }
}

void Member::Impl::snapshot_tick() {
  if (restored || snap_sources.empty()) return;
  if (now > snap_progress_ns + 2 * config.retry_interval_ns) {
    ++snap_source;  // no answer: another source
    snap_progress_ns = now;
  }
  if (snap_req_ns != 0 && now < snap_req_ns + config.retry_interval_ns) return;
  snap_req_ns = now;
  // Only members still in the view can answer. When none can, or all said they have none, the
  // state is out of reach: this member gives up, to rejoin as a new incarnation that gets a
  // snapshot of a later view. While an old member (one that took the snapshot) is in the view,
  // only old members' answers count: a fellow joiner that has not restored answers SNAP_NONE,
  // which says nothing of the snapshot. (Counting those, two joiners of one view, cut off from
  // the old members by a partition, answered each other until both gave up once a view change
  // left fewer sources, though an old member in that view held the snapshot; the view, without
  // them, had lost its majority for good. The simulator found it: seed 500 of `--app lock
  // --order tickets`.)
  uint32_t reachable = 0;
  uint32_t reachable_old = 0;
  for (uint32_t i = 0; i < snap_sources.size(); ++i) {
    if (!cur->view.contains(snap_sources[i])) continue;
    ++reachable;
    if (i < snap_old_sources) ++reachable_old;
  }
  const bool none_left = reachable_old > 0 ? snap_none_streak >= 2 * reachable_old
                                           : snap_none_joiners >= 2 * reachable;
  if (reachable == 0 || none_left) {
    become_final(MemberState::kRemoved);
    return;
  }
  Uid source = snap_sources[snap_source % snap_sources.size()];
  while (!cur->view.contains(source)) source = snap_sources[++snap_source % snap_sources.size()];
  const NodeId to = source.node;
  send_control(to, ControlKind::kSnapRequest, [&](Writer& w) {
    w.u64(first_view);
    w.u32(static_cast<uint32_t>(snap_buf.size()));
  });
}

void Member::Impl::finish_restore() {
  restored = true;
  ++release_epoch;
  snapshots.emplace_back(first_view, snap_buf);  // served to later joiners of the same view
  Action a{};
  a.kind = ActionKind::kRestore;
  a.bytes = snap_buf;
  emit_app(a);
  auto held = std::move(buffered_app);
  buffered_app.clear();
  for (const Action& b : held) emit_app(b);
}

}  // namespace cohort::membership
