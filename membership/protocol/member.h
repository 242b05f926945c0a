// The group protocol as a pure state machine (PROTOCOL.md): one Member per process. It never
// reads a clock, opens a socket or starts a thread; the driver (the engine on real cores, or
// the simulator) feeds it events with the current time and carries out the actions it answers
// with, in order.
//
// Events:
//   - a record from a member's log (on_record): DATA, ORDER, ACK and RELAY records;
//   - a control datagram (on_control): heartbeats and the view-change messages;
//   - an application send (send), a leave (leave);
//   - a point-to-point request or reply to one member (send_request, send_reply);
//   - time passing (tick), and the end of a poll burst (end_burst), where the sequencer orders
//     what it has received with one ORDER record and every member acknowledges what it holds;
//   - the application's snapshot, asked for by a kTakeSnapshot action (snapshot_taken).
//
// Actions (actions(), valid until clear_actions() or the next call into the Member; the
// payloads of own messages may be reused from clear_actions() on):
//   - kAppend: append `bytes` to this member's own log (the transport carries it to all);
//   - kSend: send the control datagram `bytes` to node `to`;
//   - kDeliver: hand `delivery` to the application (payload bytes lie in some member's log);
//   - kInstall: the view `view` is installed (the view-change callback);
//   - kTakeSnapshot: call the application's snapshot() now, then snapshot_taken();
//   - kRestore: apply the snapshot `bytes` (a joiner, before anything of its first view);
//   - kLeft / kRemoved / kCutOff: this member left, was removed from the group, or cannot
//     reach a majority of its view (it delivers nothing until that changes);
//   - kRequest / kReply: hand `p2p` to the application (a request to this member, or the reply
//     to one of its requests; the payload lies in the requester's or replier's log record);
//   - kRequestFailed: the request `p2p.id` to `p2p.peer` gets no reply (the target left the
//     view, or this member left or was removed).
//
// Record lifetime: the bytes of a record given to on_record() must stay valid for as long as
// the member may point into them. A driver that keeps copies (the engine, the simulator) notes
// each record in a RecordTag of the chunk that holds it and frees the chunk once holds(tag) is
// false (record_store.h does this); the member releases a message once it is delivered here and
// stable (NOTES.md, "Releasing what no member needs").
//
// Threading: a Member belongs to one thread; nothing inside is shared.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "membership/protocol/types.h"

namespace cohort::membership {

enum class ActionKind : uint8_t {
  kAppend,
  kSend,
  kDeliver,
  kInstall,
  kTakeSnapshot,
  kRestore,
  kLeft,
  kRemoved,
  kCutOff,
  kRequest,
  kReply,
  kRequestFailed,
};
const char* action_kind_name(ActionKind kind) noexcept;

struct Delivery {
  Uid sender;
  ViewId view = 0;
  uint32_t sseq = 0;  // the sender's sequence number in `view`, from 1
  uint64_t gseq = 0;  // the position in the view's total order; 0 for FIFO messages
  Mode mode = Mode::kTotal;
  std::span<const std::byte> payload;
};

// A point-to-point message (NOTES.md, "Point-to-point"). Not ordered against multicasts, not
// relayed in a flush, not part of any cut.
struct P2pMessage {
  Uid peer;         // kRequest/kReply: who sent it; kRequestFailed: the target asked
  uint64_t id = 0;  // the requester's id for the request (the reply carries the same id)
  std::span<const std::byte> payload;  // valid like a kDeliver payload (until clear_actions)
};

struct Action {
  ActionKind kind;
  NodeId to = 0;                     // kSend
  std::span<const std::byte> bytes;  // kAppend, kSend, kRestore
  Delivery delivery{};               // kDeliver
  // kInstall, kTakeSnapshot: the view being installed; valid like the spans (a pointer, not a
  // copy: an Action is made for every delivery, and a View is 270 bytes).
  const View* view = nullptr;
  P2pMessage p2p{};  // kRequest, kReply, kRequestFailed
};

enum class MemberState : uint8_t {
  kIdle,     // not started
  kJoining,  // asked to join, no view yet
  kActive,   // in a view, sending and delivering
  kWedged,   // in a view change: holds sends, delivers nothing until the next view
  kLeft,     // left voluntarily (final)
  kRemoved,  // removed from the group, or gave up (final): rejoin as a new incarnation
};
const char* member_state_name(MemberState state) noexcept;

enum class SendResult : uint8_t {
  kOk,         // appended, or held: for the next view while wedged, or (tickets) until a
               // ticket can be taken
  kFull,       // max_pending_sends held already: back off
  kTooLarge,   // over max_payload_bytes
  kNotMember,  // joining, left or removed (send_request: or the target is not in the view)
};

// What a batch of records (a driver's chunk of copies) may hold that a Member points at: a
// message's payload lies in the DATA or RELAY_DATA record that brought it, and a record of a view
// not installed yet is kept whole until then. note() reads the record head and the DATA body;
// garbage is noted by what it claims, which can only hold a chunk longer, never free it early.
struct RecordTag {
  ViewId view = 0;                           // the highest view of a record noted
  std::array<uint32_t, kMaxMembers> sseq{};  // per sender rank: the highest DATA sseq in `view`
  ViewId older = 0;                          // the highest view below `view` of a record noted
  void note(std::span<const std::byte> record) noexcept;
};

// Counters a driver or `cohort stat` may read; updated on the member's thread.
struct MemberCounters {
  uint64_t sent = 0;
  uint64_t delivered = 0;
  uint64_t records_dropped_stale = 0;  // from an old view or a non-member
  uint64_t records_malformed = 0;
  uint64_t control_dropped_stale = 0;
  uint64_t control_malformed = 0;
  uint64_t view_changes_started = 0;  // as leader
  uint64_t attempts = 0;              // PROPOSE attempts started as leader
  uint64_t relayed_records = 0;
  uint64_t cut_off = 0;
  // Point-to-point (NOTES.md, "Point-to-point").
  uint64_t p2p_requests_sent = 0;
  uint64_t p2p_requests_received = 0;
  uint64_t p2p_replies_sent = 0;
  uint64_t p2p_replies_received = 0;
  uint64_t p2p_failed = 0;    // kRequestFailed emitted
  uint64_t p2p_dropped = 0;   // a reply to no outstanding request, or a request from a non-member
  uint64_t ticket_waits = 0;  // a send found no ticket to take (types.h, TicketCounter) and waited
  uint64_t snapshots_too_large = 0;  // snapshot_taken() over kMaxSnapshotBytes: not kept
};

class Member {
 public:
  Member(const ProtocolConfig& config, Uid self, uint32_t node_count);
  ~Member();
  Member(const Member&) = delete;
  Member& operator=(const Member&) = delete;

  // Starts a new group with this member alone in view 1.
  void start_group(TimeNs now);
  // Asks to join: JOIN goes to every seed node until a view including this member arrives.
  void start_join(std::span<const NodeId> seeds, TimeNs now);
  // Asks to leave: the leader runs a view change without this member; kLeft follows.
  void leave(TimeNs now);

  SendResult send(Mode mode, std::span<const std::byte> payload, TimeNs now);

  // A request to `to`, a member of the installed view. kOk: appended (to this member's own
  // log, a P2P record read only by `to`; every other member skips it). Exactly one of kReply
  // (from `to`, same id) or kRequestFailed (to left the view, or this member left/was removed
  // before the reply arrived) follows for every kOk. `id` is the caller's, unique among this
  // member's outstanding requests. kNotMember when this member is not active in a view or `to`
  // is not in its installed view (or is this member); kTooLarge over max_payload_bytes; kFull
  // when the member holds max_outstanding_requests outstanding requests already.
  SendResult send_request(Uid to, uint64_t id, std::span<const std::byte> payload, TimeNs now);
  // The answer to a kRequest action; `to`/`id` from that action. A reply to a requester that is
  // gone is dropped, harmlessly. kOk / kNotMember / kTooLarge.
  SendResult send_reply(Uid to, uint64_t id, std::span<const std::byte> payload, TimeNs now);
  // Requests sent and not yet answered or failed (tests, stats).
  size_t outstanding_requests() const noexcept;

  void on_record(NodeId from, std::span<const std::byte> record, TimeNs now);
  void on_control(NodeId from, std::span<const std::byte> bytes, TimeNs now);
  void tick(TimeNs now);
  // The transport knows that the process on `node` is gone (shm: its flock was dropped): the
  // member there is suspected now rather than after the heartbeat timeout.
  void peer_failed(NodeId node, TimeNs now);
  void end_burst(TimeNs now);
  // The driver holds appended records back because its log is full (back-pressure). With
  // tickets no gseq is taken meanwhile: a gseq whose DATA waits for room is a hole that stops
  // every member's total-order delivery, not only this sender's (NOTES.md, "Tickets").
  void set_log_backlog(bool backlog) noexcept;
  void snapshot_taken(ViewId view, std::span<const std::byte> snapshot);

  std::span<const Action> actions() const noexcept;
  void clear_actions() noexcept;

  // Whether this member may still point into a record noted in `tag` (a payload it holds, a
  // record kept for a view not installed yet, a delivery a joiner holds back). False means the
  // driver may free or reuse those bytes. Ask only between calls, after carrying out the
  // actions, and never for records not yet handed to on_record().
  bool holds(const RecordTag& tag) const noexcept;
  // Changes whenever holds() may answer false where it answered true before (a release, a
  // view installed, a snapshot applied, the end): a driver need not ask again until it does,
  // or until it has new records.
  uint64_t release_epoch() const noexcept;

  // What the member keeps now (tests, `cohort stat`): messages and order entries not released
  // in the installed view, and the chunks of its own payloads.
  struct Footprint {
    uint64_t msgs = 0;
    uint64_t order = 0;
    uint64_t own_chunks = 0;
    uint64_t released_gseq = 0;  // the release frontier of the installed view
  };
  Footprint footprint() const noexcept;

  Uid self() const noexcept;
  MemberState state() const noexcept;
  const View& view() const noexcept;  // the installed view (id 0 before the first)
  bool restored() const noexcept;     // false for a joiner until its snapshot is applied
  const MemberCounters& counters() const noexcept;
  bool leading_change() const noexcept;  // this member leads a view change now
  bool is_sequencer() const noexcept;    // rank 0 of its installed view, and active or wedged
  // The next view of the cut this member accepted or was told to install, while it has not
  // installed it yet (nullptr otherwise): a view that may already be decided elsewhere.
  const View* accepted_next_view() const noexcept;

  // For the simulator's coverage counts: what this member has lived through.
  struct Coverage {
    uint64_t leader_failed_in_flush = 0;      // took over a view change another leader began
    uint64_t sequencer_failed_in_flight = 0;  // a cut with DATA the old sequencer never ordered
    uint64_t cut_adopted = 0;                 // a leader re-used an accepted cut
    uint64_t relays_served = 0;
  };
  const Coverage& coverage() const noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace cohort::membership
