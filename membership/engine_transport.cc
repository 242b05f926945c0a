#include "membership/engine_transport.h"

#include "membership/engine_transport_dgram.h"
#include "transport/shm/shm_transport.h"
#include "transport/udp/udp_transport.h"

namespace cohort::membership {
namespace {

// Shared memory: peers' logs are mapped; a peer's process is seen to die by its flock (the
// kernel drops it, SIGKILL included) and to be replaced by the attach generation.
class ShmEngineTransport final : public EngineTransport, public TicketCounter {
 public:
  explicit ShmEngineTransport(std::unique_ptr<transport::shm::ShmTransport> t) : t_(std::move(t)) {}

  const char* kind() const noexcept override { return "shm"; }
  NodeId self() const noexcept override { return t_->self(); }
  uint32_t members() const noexcept override { return t_->members(); }

  transport::LogWriter& publication() noexcept override { return t_->publication(); }
  uint32_t poll_records(NodeId peer, transport::RecordView* out, uint32_t max) noexcept override {
    transport::LogReader* sub = t_->subscription(peer);
    return sub == nullptr ? 0 : sub->poll(out, max);
  }
  void release(NodeId peer) noexcept override {
    if (transport::LogReader* sub = t_->subscription(peer); sub != nullptr) sub->release();
  }
  WakeWord* doorbell() noexcept override { return t_->doorbell(); }

  // Tickets: the counter is the ticket line of the view's sequencer's file (shm_layout.h).
  TicketCounter* ticket_counter(uint32_t incarnation) noexcept override {
    if (!t_->tickets()) return nullptr;  // ShmOptions::tickets: this member orders by sequencer
    // Release: a peer that reads this owner reads it from a file whose counter is ours.
    t_->ticket_line(t_->self())->owner.store(incarnation, std::memory_order_release);
    return this;
  }
  void open(Uid sequencer, ViewId view) noexcept override {
    transport::shm::TicketLine* line = line_of(sequencer);
    if (line == nullptr) return;  // not mapped yet: takes wait, and the next install opens it
    uint64_t word = line->word.load(std::memory_order_acquire);
    while (TicketWord::may_open(word, view) &&
           !line->word.compare_exchange_weak(word, TicketWord::opened(view),
                                             std::memory_order_acq_rel,
                                             std::memory_order_acquire)) {
    }
  }
  // One compare-and-swap on the sequencer's line: in the line's owner's cache when it sends
  // alone, else one transfer of the line, as any shared tail (Aeron's) costs.
  uint64_t take(Uid sequencer, ViewId view, uint64_t limit) noexcept override {
    transport::shm::TicketLine* line = line_of(sequencer);
    if (line == nullptr) return 0;
    uint64_t word = line->word.load(std::memory_order_relaxed);
    for (;;) {
      const uint64_t gseq = TicketWord::next(word, view, limit);
      if (gseq == 0 || line->word.compare_exchange_weak(word, word + 1, std::memory_order_acq_rel,
                                                        std::memory_order_relaxed)) {
        return gseq;
      }
    }
  }
  // Once per poll, after its appends: wakes peers parked on the records just committed.
  uint32_t flush(TimeNs now) noexcept override {
    (void)now;
    (void)t_->ring_doorbells();
    return 0;
  }
  // Peers no longer in the view stop holding back our log once their process is gone
  // (transport, "declare_gone"); joiners' files are attached before anything of the view is
  // appended, so they read this log from here (transport/NOTES.md, "where a newly attached
  // reader starts").
  //
  // Then the liveness scan starts again from what the view holds: a slot whose process was
  // replaced (a member removed, rejoining as a new incarnation) and whose new incarnation this
  // view already installed must not be reported as failed by the next scan, which would make
  // the Member suspect the new, healthy incarnation (seen in the SIGSTOP-then-SIGCONT
  // integration case, tests/integration/NOTES.md). A replacement that an unrelated install
  // hides this way is still found by the heartbeat timeout.
  void on_install(uint32_t in_view) noexcept override {
    for (NodeId n = 0; n < t_->members(); ++n) {
      if (n == t_->self() || (in_view >> n & 1U) != 0) continue;
      if (t_->subscription(n) != nullptr && !t_->peer_alive(n)) t_->declare_gone(n);
    }
    (void)t_->try_attach_peers();
    for (NodeId n = 0; n < t_->members(); ++n) {
      if (n == t_->self() || (in_view >> n & 1U) == 0) continue;
      alive_[n] = t_->subscription(n) != nullptr && t_->peer_alive(n);
      generation_[n] = t_->attach_generation(n);
    }
  }

  transport::SendStatus send_control(NodeId to,
                                     std::span<const std::byte> bytes) noexcept override {
    return t_->send_control(to, bytes);
  }
  uint32_t poll_control(transport::ControlMessage* out, uint32_t max) noexcept override {
    return t_->poll_control(out, max);
  }
  void beat() noexcept override { t_->beat(); }

  uint32_t maintain(TimeNs now) noexcept override {
    (void)now;
    (void)t_->try_attach_peers();
    uint32_t failed = 0;
    for (NodeId n = 0; n < t_->members(); ++n) {
      if (n == t_->self()) continue;
      const bool alive = t_->subscription(n) != nullptr && t_->peer_alive(n);
      // A process replaced within one scan shows only as a new attach generation.
      const uint64_t generation = t_->attach_generation(n);
      const bool replaced = generation != generation_[n] && generation_[n] != 0;
      if (alive_[n] && (!alive || replaced)) failed |= 1U << n;
      alive_[n] = alive;
      generation_[n] = generation;
    }
    return failed;
  }

  std::string describe() const override {
    return "shm control_drops=" + std::to_string(t_->control_drops()) +
           " doorbell_wakes=" + std::to_string(t_->doorbell_wakes());
  }

  const transport::shm::ShmTransport& shm() const noexcept { return *t_; }

 private:
  // The sequencer's line, if the file mapped for its slot is that very process's.
  transport::shm::TicketLine* line_of(Uid sequencer) noexcept {
    transport::shm::TicketLine* line = t_->ticket_line(sequencer.node);
    return line != nullptr && line->owner.load(std::memory_order_acquire) == sequencer.incarnation
               ? line
               : nullptr;
  }

  std::unique_ptr<transport::shm::ShmTransport> t_;
  std::array<bool, transport::kMaxMembers> alive_{};
  std::array<uint64_t, transport::kMaxMembers> generation_{};
};

}  // namespace

Result<std::unique_ptr<EngineTransport>> make_shm_engine_transport(
    const transport::shm::ShmOptions& options) {
  auto t = transport::shm::ShmTransport::create(options);
  if (!t.ok()) return std::move(t).error();
  auto out = std::make_unique<ShmEngineTransport>(std::move(*t));
  (void)out->maintain(0);  // attach whoever is there already
  // Every member of a group orders alike: a member that takes tickets from a sequencer that
  // does not keep them would wait for ever, and each side would count the other's DATA as
  // malformed. (Two members started together with different orders may both miss this.)
  const auto order_name = [](bool tickets) { return tickets ? "tickets" : "the sequencer"; };
  for (NodeId n = 0; n < options.members; ++n) {
    const int peer = n == options.self ? -1 : out->shm().peer_tickets(n);
    if (peer < 0 || (peer == 1) == options.tickets) continue;
    return Error(Errc::kInvalidArgument,
                 "shm: member " + std::to_string(n) + " of group '" + options.group +
                     "' orders by " + order_name(peer == 1) + " and this member by " +
                     order_name(options.tickets) +
                     "; every member of a group must choose the same order (GroupOptions::order, "
                     "cohort node --order)");
  }
  return std::unique_ptr<EngineTransport>(std::move(out));
}

Result<std::unique_ptr<EngineTransport>> make_udp_engine_transport(
    const transport::udp::UdpOptions& options) {
  auto t = transport::udp::UdpTransport::create(options);
  if (!t.ok()) return std::move(t).error();
  return std::unique_ptr<EngineTransport>(
      std::make_unique<DgramEngineTransport<transport::udp::UdpTransport>>(std::move(*t), "udp"));
}

}  // namespace cohort::membership
