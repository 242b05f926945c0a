// GroupEngine: the group protocol (membership/protocol) run over a real transport, on one
// thread. Each poll() reads every peer's log and the control channel, feeds the Member, and
// carries out its actions: records appended to this member's log, control datagrams sent,
// deliveries, views, snapshots handed to the listener. The public API (include/cohort/group.h)
// sits on top of it.
//
// Threading, as Aeron's two modes (NOTES.md, "Threads"):
// - shared: one thread calls poll(), which does everything;
// - dedicated: the data thread calls poll() and a control thread calls poll_control_core();
//   the control thread owns the control channel (its socket calls) and the liveness beat, and
//   hands datagrams over to the data thread, and takes its outgoing ones, through SPSC rings.
// submit() may be called from any thread: it goes through an MPSC ring that poll() drains.
//
// Record lifetime: the Member keeps pointers into records until it releases their messages
// (delivered here and stable), longer than a log subscription lends them (until its next
// release()); so the engine copies each record it polls into its own store (RecordStore) and
// releases the log at once, and gives back each chunk of copies once the Member holds nothing
// in it (Member::holds). Copying costs one memcpy per record (NOTES.md).
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "membership/engine_transport.h"
#include "membership/protocol/member.h"
#include "membership/protocol/record_store.h"
#include "runtime/idle.h"
#include "runtime/mpsc_ring.h"
#include "runtime/result.h"
#include "runtime/spsc_ring.h"

namespace cohort::membership {

class EngineListener {
 public:
  virtual ~EngineListener() = default;
  virtual void on_deliver(const Delivery& delivery) = 0;
  virtual void on_install(const View& view) = 0;
  virtual std::vector<std::byte> snapshot() = 0;
  virtual void restore(std::span<const std::byte> state) = 0;
  virtual void on_final(ActionKind kind) = 0;               // kLeft, kRemoved, kCutOff
  virtual void on_peer_failed(NodeId node) { (void)node; }  // the transport saw it die
  // Point-to-point (protocol/NOTES.md, "Point-to-point"): a request to this member, and the one
  // answer to each request submitted (failed: the target left, or was never in the view, or
  // this member left or was removed; no payload then). The payload is valid during the call.
  virtual void on_request(const P2pMessage& request) { (void)request; }
  virtual void on_reply(const P2pMessage& reply, bool failed) {
    (void)reply;
    (void)failed;
  }
};

struct EngineOptions {
  ProtocolConfig protocol;
  bool dedicated = false;  // a control thread calls poll_control_core() (see above)
  bool bootstrap = false;
  uint32_t incarnation = 0;  // 0: chosen from the clock, higher than any earlier one here
};

struct EngineCounters {
  uint64_t polls = 0;
  uint64_t idle_polls = 0;
  uint64_t records_in = 0;
  uint64_t records_out = 0;
  uint64_t append_backpressure = 0;
  uint64_t control_in = 0;
  uint64_t control_out = 0;
  uint64_t control_send_failed = 0;
  uint64_t installs = 0;
  uint64_t delivered_bytes = 0;
  uint64_t submit_full = 0;
  uint64_t control_ring_full = 0;  // dedicated mode: a datagram the ring between cores refused
  uint64_t send_held = 0;          // the Member said kFull: the send waits at the head
  uint64_t replies_dropped = 0;    // a reply whose requester is no longer in the view
  uint64_t sends_inline = 0;       // sends the data thread made straight to the Member (kOk)
};

class GroupEngine {
 public:
  // Takes the transport (engine_transport.h: make_shm_engine_transport(), ...).
  static Result<std::unique_ptr<GroupEngine>> create(const EngineOptions& options,
                                                     std::unique_ptr<EngineTransport> transport,
                                                     EngineListener* listener);
  ~GroupEngine();

  // One iteration of the loop; returns the work done. Data-core thread only. Called from inside
  // one of the listener's callbacks it does nothing and returns 0.
  uint32_t poll();
  // Dedicated mode: one iteration of the control core's loop (control datagrams in and out,
  // the liveness beat); returns the work done. Control thread only.
  uint32_t poll_control_core();
  // Dedicated mode: the control loop's waker; the data core wakes it when it queues a datagram.
  void set_control_waker(Waker* waker) noexcept { control_waker_ = waker; }
  bool dedicated() const noexcept { return options_.dedicated; }
  const EngineTransport& transport() const noexcept { return *transport_; }
  // The loop's waker (runtime/idle.h): submit() ends its park early. When the transport has a
  // doorbell (shm), the waker is bound to it (Waker::bind_shared), so a peer's append ends the
  // park too: call it before the loop starts, and stop the loop before the engine goes (the
  // word lies in the transport's mapping).
  void set_waker(Waker* waker) noexcept;

  // From any thread: a message (or a leave) for the data core. From the data thread itself
  // (the one that calls poll(), outside a listener callback) a send goes straight to the
  // Member: no queue, no copy into a slot; its record is in the log when submit() returns if
  // the poll cycle before had no send (a paced sender), else it leaves with the next poll, in
  // one record with the cycle's other sends (append_early()). From any other thread, or from
  // inside a callback, it is queued.
  SendResult submit(Mode mode, std::span<const std::byte> payload);
  void submit_leave();
  // From any thread: queues a point-to-point request (`id` is the caller's, unique among its
  // outstanding requests) or a reply. A request submitted with kOk gets exactly one
  // EngineListener::on_reply, a failed one included (a target not in the view when the data
  // core takes it).
  SendResult submit_request(Uid to, uint64_t id, std::span<const std::byte> payload);
  SendResult submit_reply(Uid to, uint64_t id, std::span<const std::byte> payload);

  const Member& member() const noexcept { return *member_; }
  const EngineCounters& counters() const noexcept { return counters_; }
  Uid self() const noexcept { return member_->self(); }

  struct Submission {
    enum class Kind : uint8_t { kSend, kLeave, kRequest, kReply };
    Kind kind = Kind::kSend;
    Mode mode = Mode::kTotal;       // kSend
    Uid target;                     // kRequest, kReply
    uint64_t id = 0;                // kRequest, kReply
    bool from_data_thread = false;  // queued by the data thread (from a callback)
    uint32_t length = 0;
    std::byte bytes[4096];
  };

 private:
  GroupEngine(const EngineOptions& options, std::unique_ptr<EngineTransport> transport,
              EngineListener* listener);
  Status setup();
  uint32_t poll_logs(TimeNs now);
  uint32_t poll_control(TimeNs now);
  uint32_t drain_submissions(TimeNs now);
  SendResult offer(const Submission& s, TimeNs now);
  SendResult enqueue(Submission::Kind kind, Mode mode, Uid target, uint64_t id,
                     std::span<const std::byte> payload);
  void maintain(TimeNs now);
  void send_control(NodeId to, std::span<const std::byte> bytes);
  uint32_t drain_control_in(TimeNs now);
  void carry_out();
  bool try_append(std::span<const std::byte> record);
  void append_early();
  void answer(const P2pMessage& m, bool failed);
  bool flush_appends();
  bool on_data_thread() const noexcept;
  uint32_t poll_once();

  EngineOptions options_;
  EngineListener* listener_;
  std::unique_ptr<EngineTransport> transport_;
  NodeId self_ = 0;
  uint32_t nodes_ = 0;
  std::unique_ptr<Member> member_;
  Waker* waker_ = nullptr;
  Waker* control_waker_ = nullptr;
  // Dedicated mode: datagrams between the cores in fixed slots; the index rings carry slots
  // filled (in, out) and give them back (in_free, out_free), each one producer and one consumer.
  struct ControlSlot {
    NodeId peer = 0;
    uint32_t length = 0;
    std::byte bytes[transport::kMaxControlBytes];
  };
  std::unique_ptr<ControlSlot[]> in_slots_, out_slots_;
  std::unique_ptr<SpscRing<uint32_t>> in_, in_free_, out_, out_free_;
  TimeNs control_next_beat_ns_ = 0;
  std::unique_ptr<MpscRing<Submission*>> submissions_;
  std::vector<std::unique_ptr<Submission>> submission_slots_;
  // Free slots go back from the data thread alone, but are taken by every submitting thread:
  // the ring has one consumer only (runtime/mpsc_ring.h), so taking is serialised. (Without
  // this, two threads could take one slot: the cache service, which submits from its
  // application, loader, timer and data threads, hit it as a slot returned twice.)
  std::unique_ptr<MpscRing<Submission*>> free_slots_;
  std::mutex take_mu_;
  Submission* take_free_slot() noexcept;
  // Requests submitted and not yet answered (submit_request: kFull at the protocol's limit).
  std::atomic<uint32_t> requests_in_flight_{0};
  Submission* held_ = nullptr;  // refused with kFull by the Member: offered again first
  std::deque<std::vector<std::byte>> pending_appends_;  // back-pressured records, in order
  // Copies of polled records the Member may point into: 1 MiB chunks filled in arrival order,
  // each given back (4 kept as spares) once the Member holds nothing in it.
  RecordStore store_;
  // One burst of a peer's records and their copies (poll_logs). Members, not locals: an array
  // of 64 views is 2 KiB that a local would zero on every poll (the spans' constructors), which
  // perf showed as four fifths of an idle poll_logs.
  static constexpr uint32_t kPollBurst = 64;
  transport::RecordView burst_[kPollBurst];
  std::span<const std::byte> burst_copies_[kPollBurst];
  // The thread that polls (set by poll()), and whether it is inside carry_out(): a send from
  // there must not reach the Member, whose actions carry_out() is walking.
  std::atomic<std::thread::id> data_thread_{};
  bool carrying_out_ = false;
  bool polling_ = false;          // inside poll(): a poll from a callback returns at once
  size_t early_appended_ = 0;     // leading actions append_early() carried out already
  bool sent_this_cycle_ = false;  // the data thread tried a send since this poll began
  bool sent_last_cycle_ = false;  // ... and in the cycle before it (append_early)
  // Submissions the data thread queued that are still in the ring: its next send must queue
  // behind them. (The ring cannot tell: its head may be another thread's slot, claimed and not
  // yet filled, with this thread's behind it.)
  uint32_t own_queued_ = 0;
  bool leave_requested_ = false;  // submit_leave() on the data thread: done by the next poll
  TimeNs last_poll_ns_ = 0;
  TimeNs next_tick_ns_ = 0;
  TimeNs next_control_poll_ns_ = 0;
  TimeNs next_maintain_ns_ = 0;
  EngineCounters counters_{};
};

}  // namespace cohort::membership
