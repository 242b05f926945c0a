#include "membership/group_engine.h"

#include <algorithm>
#include <chrono>
#include <cstring>

#include "runtime/assert.h"
#include "runtime/clock.h"

namespace cohort::membership {
namespace {

constexpr uint32_t kSubmissionSlots = 1024;
constexpr uint32_t kDrainBurst = 256;       // sends taken per poll: they leave as one DATA record
constexpr TimeNs kTickNs = 1'000'000;       // the Member's timers: heartbeats, retries
constexpr TimeNs kMaintainNs = 20'000'000;  // look for new, dead or restarted peers
constexpr uint32_t kControlSlots = 256;     // dedicated mode: datagrams between the cores
constexpr TimeNs kControlPollNs = 20'000;   // shared mode: how often the control socket is read
constexpr uint16_t kRecordType = transport::kRecordUser;

TimeNs now_ns() {
  return cohort::clock().now_ns();
}

uint32_t incarnation_from_clock() {
  // Milliseconds since the epoch, low 32 bits: a restarted process gets a higher number unless
  // it restarts in the same millisecond or 49 days have wrapped (then it is refused as retired
  // and must wait a millisecond). Never 0 (0 means "no member").
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::system_clock::now().time_since_epoch())
                      .count();
  const auto inc = static_cast<uint32_t>(ms);
  return inc == 0 ? 1 : inc;
}

}  // namespace

GroupEngine::GroupEngine(const EngineOptions& options, std::unique_ptr<EngineTransport> transport,
                         EngineListener* listener)
    : options_(options), listener_(listener), transport_(std::move(transport)) {}

GroupEngine::~GroupEngine() = default;

Result<std::unique_ptr<GroupEngine>> GroupEngine::create(const EngineOptions& options,
                                                         std::unique_ptr<EngineTransport> transport,
                                                         EngineListener* listener) {
  COHORT_ASSERT(listener != nullptr && transport != nullptr);
  std::unique_ptr<GroupEngine> e(new GroupEngine(options, std::move(transport), listener));
  COHORT_TRY(e->setup());
  return e;
}

namespace {

// A ring of slot indices, every index in it when `full`.
Result<std::unique_ptr<SpscRing<uint32_t>>> index_ring(bool full) {
  auto r = SpscRing<uint32_t>::create(kControlSlots);
  if (!r.ok()) return std::move(r).error();
  for (uint32_t i = 0; full && i < kControlSlots; ++i) COHORT_ASSERT((*r)->try_enqueue(i));
  return std::move(*r);
}

}  // namespace

Status GroupEngine::setup() {
  self_ = transport_->self();
  nodes_ = transport_->members();
  auto ring = MpscRing<Submission*>::create(kSubmissionSlots);
  auto free_ring = MpscRing<Submission*>::create(kSubmissionSlots);
  if (!ring.ok()) return std::move(ring).error();
  if (!free_ring.ok()) return std::move(free_ring).error();
  submissions_ = std::move(*ring);
  free_slots_ = std::move(*free_ring);
  for (uint32_t i = 0; i < kSubmissionSlots; ++i) {
    submission_slots_.push_back(std::make_unique<Submission>());
    Submission* s = submission_slots_.back().get();
    COHORT_ASSERT(free_slots_->enqueue_burst(&s, 1) == 1);
  }
  if (options_.dedicated) {
    in_slots_ = std::make_unique<ControlSlot[]>(kControlSlots);
    out_slots_ = std::make_unique<ControlSlot[]>(kControlSlots);
    auto in = index_ring(false), in_free = index_ring(true);
    auto out = index_ring(false), out_free = index_ring(true);
    for (auto* r : {&in, &in_free, &out, &out_free}) {
      if (!r->ok()) return std::move(*r).error();
    }
    in_ = std::move(*in);
    in_free_ = std::move(*in_free);
    out_ = std::move(*out);
    out_free_ = std::move(*out_free);
  }
  const uint32_t incarnation =
      options_.incarnation != 0 ? options_.incarnation : incarnation_from_clock();
  // The Member keeps every record it writes within what this log takes (DATA batches close
  // before; a message too large for a record of its own is refused at send()).
  options_.protocol.max_record_bytes = transport_->publication().max_record_bytes();
  // One-hop total order where the transport keeps a counter (shm, unless told otherwise:
  // ShmOptions::tickets); the sequencer orders elsewhere.
  options_.protocol.tickets = transport_->ticket_counter(incarnation);
  member_ = std::make_unique<Member>(options_.protocol, Uid{self_, incarnation}, nodes_);
  const TimeNs now = now_ns();
  if (options_.bootstrap) {
    member_->start_group(now);
  } else {
    std::vector<NodeId> seeds;
    for (NodeId n = 0; n < nodes_; ++n) {
      if (n != self_) seeds.push_back(n);
    }
    member_->start_join(seeds, now);
  }
  carry_out();
  return {};
}

void GroupEngine::set_waker(Waker* waker) noexcept {
  if (waker_ != nullptr && waker_ != waker) waker_->bind_shared(nullptr);
  waker_ = waker;
  if (waker_ != nullptr) waker_->bind_shared(transport_->doorbell());
}

// The transport's own view of its peers: new ones attached, and those it saw fail (shm: the
// process died or was replaced), which the Member suspects at once instead of after the
// heartbeat timeout.
void GroupEngine::maintain(TimeNs now) {
  const uint32_t failed = transport_->maintain(now);
  for (NodeId n = 0; n < nodes_; ++n) {
    if ((failed >> n & 1U) == 0) continue;
    listener_->on_peer_failed(n);
    member_->peer_failed(n, now);
    carry_out();
  }
}

uint32_t GroupEngine::poll_logs(TimeNs now) {
  uint32_t work = 0;
  transport::RecordView* const records = burst_;
  std::span<const std::byte>* const copies = burst_copies_;
  for (NodeId n = 0; n < nodes_; ++n) {
    if (n == self_) continue;
    const uint32_t got = transport_->poll_records(n, records, kPollBurst);
    if (got == 0) continue;
    // Copies the Member may keep pointing into (group_engine.h, "Record lifetime"), all taken
    // before release(): what the Member then asks for (a re-attach at an install) cannot pull
    // a subscription from under a burst.
    for (uint32_t i = 0; i < got; ++i) copies[i] = store_.keep(records[i].payload);
    transport_->release(n);
    for (uint32_t i = 0; i < got; ++i) {
      member_->on_record(n, copies[i], now);
      carry_out();
    }
    counters_.records_in += got;
    work += got;
  }
  // Every copy is with the Member now and its actions are carried out (RecordStore's rules).
  // While one chunk is being filled there is nothing to give back before it fills: ask only
  // when older chunks wait (a few times per MiB of records).
  if (store_.live_chunks() > 1) store_.release(*member_);
  return work;
}

uint32_t GroupEngine::poll_control(TimeNs now) {
  if (options_.dedicated) return drain_control_in(now);
  // Shared mode: the control socket costs a system call per look (most of an idle loop's
  // time, measured with perf in the 2-member benchmark), and nothing on it is urgent to a
  // microsecond: look every kControlPollNs, and at once again after a datagram came.
  if (now < next_control_poll_ns_) return 0;
  transport::ControlMessage msgs[32];
  const uint32_t got = transport_->poll_control(msgs, 32);
  for (uint32_t i = 0; i < got; ++i) {
    member_->on_control(msgs[i].from, msgs[i].bytes, now);
    carry_out();
  }
  counters_.control_in += got;
  next_control_poll_ns_ = got != 0 ? now : now + kControlPollNs;
  return got;
}

// Dedicated mode, data core: the datagrams the control core received.
uint32_t GroupEngine::drain_control_in(TimeNs now) {
  uint32_t idx[32];
  const uint32_t got = in_->dequeue_burst(idx, 32);
  for (uint32_t i = 0; i < got; ++i) {
    const ControlSlot& slot = in_slots_[idx[i]];
    member_->on_control(slot.peer, std::span<const std::byte>(slot.bytes, slot.length), now);
    carry_out();
  }
  if (got != 0) COHORT_ASSERT(in_free_->enqueue_burst(idx, got) == got);
  counters_.control_in += got;
  return got;
}

// A datagram the Member wants sent: at once (shared mode), or handed to the control core.
void GroupEngine::send_control(NodeId to, std::span<const std::byte> bytes) {
  if (!options_.dedicated) {
    if (transport_->send_control(to, bytes) == transport::SendStatus::kOk) {
      ++counters_.control_out;
    } else {
      ++counters_.control_send_failed;  // the protocol repeats what matters
    }
    return;
  }
  uint32_t i = 0;
  if (bytes.size() > transport::kMaxControlBytes || !out_free_->try_dequeue(i)) {
    ++counters_.control_ring_full;  // as a lost datagram: the protocol repeats what matters
    return;
  }
  ControlSlot& slot = out_slots_[i];
  slot.peer = to;
  slot.length = static_cast<uint32_t>(bytes.size());
  std::memcpy(slot.bytes, bytes.data(), bytes.size());
  COHORT_ASSERT(out_->try_enqueue(i));
  ++counters_.control_out;
  if (control_waker_ != nullptr) control_waker_->wake();
}

// Dedicated mode, control core: sends what the data core queued, hands over what arrived,
// and beats. Its counters are its own (the data core's are not touched here).
uint32_t GroupEngine::poll_control_core() {
  uint32_t work = 0;
  uint32_t idx[32];
  const uint32_t out = out_->dequeue_burst(idx, 32);
  for (uint32_t i = 0; i < out; ++i) {
    const ControlSlot& slot = out_slots_[idx[i]];
    (void)transport_->send_control(slot.peer, std::span<const std::byte>(slot.bytes, slot.length));
  }
  if (out != 0) COHORT_ASSERT(out_free_->enqueue_burst(idx, out) == out);
  work += out;
  transport::ControlMessage msgs[32];
  // Take only as many as there are free slots: the rest wait in the socket.
  uint32_t free_idx[32];
  const uint32_t room = in_free_->dequeue_burst(free_idx, 32);
  const uint32_t got = room == 0 ? 0 : transport_->poll_control(msgs, room);
  for (uint32_t i = 0; i < got; ++i) {
    ControlSlot& slot = in_slots_[free_idx[i]];
    slot.peer = msgs[i].from;
    slot.length = static_cast<uint32_t>(std::min<size_t>(msgs[i].bytes.size(), sizeof slot.bytes));
    std::memcpy(slot.bytes, msgs[i].bytes.data(), slot.length);
  }
  if (got != 0) {
    COHORT_ASSERT(in_->enqueue_burst(free_idx, got) == got);
    if (waker_ != nullptr) waker_->wake();
  }
  if (room > got) COHORT_ASSERT(in_free_->enqueue_burst(free_idx + got, room - got) == room - got);
  work += got;
  const TimeNs now = now_ns();
  if (now >= control_next_beat_ns_) {
    control_next_beat_ns_ = now + kTickNs;
    transport_->beat();
  }
  return work;
}

// Hands queued submissions to the Member, in order. Back-pressure reaches the submitters: while
// records wait for room in the log, or the Member answers a send kFull (it holds
// max_pending_sends while wedged or waiting for tickets), nothing more is taken, the ring fills,
// and submit() says kFull. A send the Member refused for kFull stays at the head (held_) and is
// offered again next poll: a message submit() accepted is never dropped here.
uint32_t GroupEngine::drain_submissions(TimeNs now) {
  uint32_t done = 0;
  while (done < kDrainBurst && pending_appends_.empty()) {
    Submission* s = held_;
    if (s == nullptr) {
      if (!submissions_->try_dequeue(s)) break;
      if (s->from_data_thread) --own_queued_;
    }
    held_ = nullptr;
    if (offer(*s, now) == SendResult::kFull) {
      held_ = s;
      ++counters_.send_held;
      break;
    }
    // The Member copied the payload: the slot goes back now. Its actions are carried out once
    // for the whole drain, so the sends of one poll leave as one DATA record.
    COHORT_ASSERT(free_slots_->enqueue_burst(&s, 1) == 1);
    ++done;
  }
  carry_out();
  return done;
}

// One submission to the Member. A request it refuses was already accepted by submit_request(),
// so it is answered here, as failed: the target was not in the view (or this member is not in
// one any more); its size and the limit on outstanding requests were checked at submission, so
// a request is never held. A reply to a requester gone is dropped and counted.
SendResult GroupEngine::offer(const Submission& s, TimeNs now) {
  const std::span<const std::byte> bytes(s.bytes, s.length);
  switch (s.kind) {
    case Submission::Kind::kLeave: member_->leave(now); return SendResult::kOk;
    case Submission::Kind::kSend: return member_->send(s.mode, bytes, now);
    case Submission::Kind::kRequest: {
      const SendResult r = member_->send_request(s.target, s.id, bytes, now);
      COHORT_ASSERT(r != SendResult::kFull && r != SendResult::kTooLarge);  // submit_request()
      if (r != SendResult::kOk) answer(P2pMessage{s.target, s.id, {}}, true);
      return SendResult::kOk;
    }
    case Submission::Kind::kReply: {
      const SendResult r = member_->send_reply(s.target, s.id, bytes, now);
      if (r != SendResult::kOk) ++counters_.replies_dropped;
      return SendResult::kOk;  // a reply is never held: nothing is owed for it
    }
  }
  return SendResult::kOk;
}

uint32_t GroupEngine::poll() {
  // A poll from inside a callback (the application's loop calling Group::poll() in on_deliver,
  // say) would walk the Member's actions while the outer poll walks them, and reuse the record
  // burst the outer poll is reading: it does nothing instead.
  if (polling_) return 0;
  polling_ = true;
  const uint32_t work = poll_once();
  polling_ = false;
  return work;
}

uint32_t GroupEngine::poll_once() {
  ++counters_.polls;
  sent_last_cycle_ = sent_this_cycle_;
  sent_this_cycle_ = false;
  const TimeNs now = now_ns();
  last_poll_ns_ = now;
  // One thread polls (its own, or the application's in a loop): its sends skip the queue.
  // Written only when it changes, so submitting threads do not see the line bounce.
  const std::thread::id me = std::this_thread::get_id();
  if (data_thread_.load(std::memory_order_relaxed) != me) {
    data_thread_.store(me, std::memory_order_relaxed);
  }
  uint32_t work = 0;
  if (now >= next_maintain_ns_) {
    next_maintain_ns_ = now + kMaintainNs;
    maintain(now);
  }
  // Sends first: a message submitted while the loop went round is in the log before this poll
  // spends its time reading peers' logs (about a sixth of the send-to-delivery time at p50 on
  // the 2-member benchmark when it came after them).
  work += drain_submissions(now);
  if (leave_requested_ && own_queued_ == 0 && held_ == nullptr) {
    leave_requested_ = false;
    member_->leave(now);
    carry_out();
    ++work;
  }
  work += transport_->receive(now);
  work += poll_logs(now);
  work += poll_control(now);
  member_->end_burst(now);
  carry_out();
  if (now >= next_tick_ns_) {
    next_tick_ns_ = now + kTickNs;
    if (!options_.dedicated) transport_->beat();
    member_->tick(now);
    carry_out();
    store_.release(*member_);  // the last chunk too, once the flow stops
  }
  if (!pending_appends_.empty()) work += flush_appends() ? 1 : 0;
  work += transport_->flush(now) != 0 ? 1 : 0;
  if (work == 0) ++counters_.idle_polls;
  return work;
}

// The records of a send the data thread makes go into the log now, not at the next poll, when
// it is the first since that poll and the loop tried no send in the poll cycle before: up to the
// first action that is not an append (the send's own delivery, whose callback waits for the
// poll, as every callback does). Reading the actions closes the Member's batch
// (Member::actions), so later sends before the poll join one new record. A sender that sends in
// every cycle (a flood: bursts between polls) is left to batch as before: committing the first
// message of each burst on its own cost a sixth of the 64-byte throughput (cohort bench
// tput64, 5.7 against 6.8 million messages/s, alternating builds). carry_out() skips what was
// appended here. (Probes put about 100 ns of a one-hop message's 715 between the send and the
// commit at the next poll: membership/NOTES.md.)
void GroupEngine::append_early() {
  if (early_appended_ != 0 || sent_last_cycle_ || !pending_appends_.empty()) return;
  const auto actions = member_->actions();
  size_t n = 0;
  while (n < actions.size() && actions[n].kind == ActionKind::kAppend &&
         try_append(actions[n].bytes)) {
    ++n;
  }
  early_appended_ = n;
}

// One record into the log; false (nothing appended) when the log is full.
bool GroupEngine::try_append(std::span<const std::byte> record) {
  transport::Claim c;
  const transport::ClaimStatus st =
      transport_->publication().try_claim(static_cast<uint32_t>(record.size()), kRecordType, &c);
  if (st == transport::ClaimStatus::kBackPressure) {
    ++counters_.append_backpressure;
    return false;
  }
  COHORT_ASSERT_MSG(st == transport::ClaimStatus::kOk, "a protocol record the log refuses");
  std::memcpy(c.data, record.data(), record.size());
  transport_->publication().commit(c);
  ++counters_.records_out;
  return true;
}

// Appends what back-pressure held, in order; false while the log is still full.
bool GroupEngine::flush_appends() {
  while (!pending_appends_.empty()) {
    if (!try_append(pending_appends_.front())) return false;
    pending_appends_.pop_front();
  }
  member_->set_log_backlog(false);
  return true;
}

void GroupEngine::carry_out() {
  const auto actions = member_->actions();
  if (actions.empty()) return;
  // The callbacks below may not call into the member (they run inside this loop); what they
  // submit goes through the ring.
  carrying_out_ = true;
  for (size_t i = early_appended_; i < actions.size(); ++i) {
    const Action& a = actions[i];
    switch (a.kind) {
      case ActionKind::kAppend:
        // Straight into the log, unless earlier records wait for room (order is kept).
        if (pending_appends_.empty() && try_append(a.bytes)) break;
        pending_appends_.emplace_back(a.bytes.begin(), a.bytes.end());
        member_->set_log_backlog(true);
        break;
      case ActionKind::kSend: send_control(a.to, a.bytes); break;
      case ActionKind::kDeliver:
        counters_.delivered_bytes += a.delivery.payload.size();
        listener_->on_deliver(a.delivery);
        break;
      case ActionKind::kInstall: {
        ++counters_.installs;
        // Before appending anything of the new view: departed peers stop holding our log
        // back, and (shm) joiners' files are attached so they read this log from here on.
        uint32_t in_view = 0;
        for (const Uid u : a.view->list()) in_view |= 1U << u.node;
        transport_->on_install(in_view);
        listener_->on_install(*a.view);
        break;
      }
      case ActionKind::kTakeSnapshot: {
        const std::vector<std::byte> snap = listener_->snapshot();
        member_->snapshot_taken(a.view->id, snap);
        break;
      }
      case ActionKind::kRestore: listener_->restore(a.bytes); break;
      case ActionKind::kLeft:
      case ActionKind::kRemoved:
      case ActionKind::kCutOff: listener_->on_final(a.kind); break;
      case ActionKind::kRequest: listener_->on_request(a.p2p); break;
      case ActionKind::kReply:
      case ActionKind::kRequestFailed: answer(a.p2p, a.kind == ActionKind::kRequestFailed); break;
    }
  }
  member_->clear_actions();
  early_appended_ = 0;
  carrying_out_ = false;
  if (!pending_appends_.empty()) flush_appends();
}

// A free slot filled and queued for the data core; kFull when every slot is taken.
SendResult GroupEngine::enqueue(Submission::Kind kind, Mode mode, Uid target, uint64_t id,
                                std::span<const std::byte> payload) {
  if (payload.size() > sizeof(Submission::bytes)) return SendResult::kTooLarge;
  Submission* s = take_free_slot();
  if (s == nullptr) return SendResult::kFull;  // counted in take_free_slot()
  s->kind = kind;
  s->mode = mode;
  s->target = target;
  s->id = id;
  s->length = static_cast<uint32_t>(payload.size());
  std::memcpy(s->bytes, payload.data(), payload.size());
  s->from_data_thread = data_thread_.load(std::memory_order_relaxed) == std::this_thread::get_id();
  if (s->from_data_thread)
    ++own_queued_;  // before the slot is published: the drain's decrement follows
  COHORT_ASSERT(submissions_->enqueue_burst(&s, 1) == 1);
  if (waker_ != nullptr) waker_->wake();
  return SendResult::kOk;
}

// The data thread, outside carry_out(). A thread that never polled compares unequal (a default
// id names no thread), and a relaxed load is enough: only the data thread itself can find its
// own id there. carrying_out_ is the data thread's own: read only once the id says this is it.
bool GroupEngine::on_data_thread() const noexcept {
  return data_thread_.load(std::memory_order_relaxed) == std::this_thread::get_id() &&
         !carrying_out_;
}

// From the data thread, a send goes to the Member at once (which copies the payload) unless
// earlier ones wait (a send held for kFull, records held by back-pressure): then it queues
// behind them, keeping this thread's order. The Member's actions stay with it until the next
// poll carries them out, so a burst of sends between polls still leaves as one DATA record.
// (held_, pending_appends_ and own_queued_ are the data thread's: read only once it is this.)
SendResult GroupEngine::submit(Mode mode, std::span<const std::byte> payload) {
  if (!on_data_thread()) return enqueue(Submission::Kind::kSend, mode, Uid{}, 0, payload);
  sent_this_cycle_ = true;  // tried, at least: a flood held back by kFull is still a flood
  if (held_ == nullptr && pending_appends_.empty() && own_queued_ == 0) {
    if (payload.size() > sizeof(Submission::bytes)) return SendResult::kTooLarge;
    const SendResult r = member_->send(mode, payload, last_poll_ns_);
    if (r == SendResult::kOk) {
      ++counters_.sends_inline;
      append_early();
    }
    return r;
  }
  return enqueue(Submission::Kind::kSend, mode, Uid{}, 0, payload);
}

// The Member's limits are checked here, so that a request taken from the ring is never refused
// for its size, and never held at the head for kFull: a held request would stop this member's
// replies behind it, and two members whose tables are full of requests to each other would then
// wait for each other for ever. Requests in flight (submitted, not yet answered) are counted
// instead, and the caller gets kFull.
SendResult GroupEngine::submit_request(Uid to, uint64_t id, std::span<const std::byte> payload) {
  if (payload.size() > options_.protocol.max_payload_bytes) return SendResult::kTooLarge;
  // relaxed: a count, not a guard of other data; at most `limit` can pass the check at once.
  if (requests_in_flight_.fetch_add(1, std::memory_order_relaxed) >=
      options_.protocol.max_outstanding_requests) {
    requests_in_flight_.fetch_sub(1, std::memory_order_relaxed);
    return SendResult::kFull;
  }
  const SendResult r = enqueue(Submission::Kind::kRequest, Mode::kTotal, to, id, payload);
  if (r != SendResult::kOk) requests_in_flight_.fetch_sub(1, std::memory_order_relaxed);
  return r;
}

// The one answer to a request submitted: the count in flight drops, then the listener hears.
void GroupEngine::answer(const P2pMessage& m, bool failed) {
  requests_in_flight_.fetch_sub(1, std::memory_order_relaxed);
  listener_->on_reply(m, failed);
}

SendResult GroupEngine::submit_reply(Uid to, uint64_t id, std::span<const std::byte> payload) {
  if (payload.size() > options_.protocol.max_payload_bytes) return SendResult::kTooLarge;
  return enqueue(Submission::Kind::kReply, Mode::kTotal, to, id, payload);
}

GroupEngine::Submission* GroupEngine::take_free_slot() noexcept {
  Submission* s = nullptr;
  std::lock_guard<std::mutex> g(take_mu_);
  if (free_slots_->try_dequeue(s)) return s;
  ++counters_.submit_full;  // under the lock: submitting threads count it one at a time
  return nullptr;
}

// Another thread waits for a free slot (the data thread frees them). The data thread itself
// must not: with the queue full it is the only one that could empty it (a member cut off with
// its log full, polled inline, spun here for ever). It marks the leave, which its next poll
// carries out once the sends it queued before are taken.
void GroupEngine::submit_leave() {
  if (data_thread_.load(std::memory_order_relaxed) == std::this_thread::get_id()) {
    leave_requested_ = true;
    return;
  }
  Submission* s = nullptr;
  while ((s = take_free_slot()) == nullptr) cpu_relax();
  s->kind = Submission::Kind::kLeave;
  s->length = 0;
  s->from_data_thread = false;
  COHORT_ASSERT(submissions_->enqueue_burst(&s, 1) == 1);
  if (waker_ != nullptr) waker_->wake();
}

}  // namespace cohort::membership
