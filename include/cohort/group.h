// cohort's embedding API: a process joins a group and, in each view, delivers the same messages
// in the same order as every other surviving member (DESIGN.md).
//
//   struct Counter : cohort::GroupListener {
//     void on_deliver(const cohort::Message& m) override { ++count; }
//     uint64_t count = 0;
//   };
//   Counter app;
//   cohort::GroupOptions options;
//   options.name = "orders";
//   options.node = 1;                       // this process's slot, 0..slots-1
//   auto group = cohort::Group::create(options, &app);
//   if (!group) { fprintf(stderr, "%s\n", group.error().message().c_str()); return 1; }
//   (*group)->start();                      // the member's thread; or call poll() yourself
//   (*group)->send(bytes, cohort::DeliveryMode::kTotal);
//
// Point-to-point request/reply. Besides multicasts, a member may ask one member of its view and
// get exactly one answer back: the reply, or kPeerLeft when that member left the view first
// (or this member left or was removed). Requests and replies are not ordered against
// multicasts, nor part of any view's cut: they are the member-to-member RPC of a cache or a
// coordinator, not replicated state.
//
//   struct Echo : cohort::GroupListener {
//     void on_deliver(const cohort::Message&) override {}
//     void on_request(const cohort::PeerMessage& r) override {
//       group->reply(r.peer, r.id, r.bytes);  // now, or later from any thread
//     }
//     void on_reply(const cohort::PeerMessage& r, cohort::ReplyStatus status) override {
//       if (status == cohort::ReplyStatus::kPeerLeft) { /* ask another member */ }
//     }
//     cohort::Group* group = nullptr;
//   };
//   uint64_t id = 0;
//   if (group->request(view.members[1], bytes, &id) == cohort::SendStatus::kOk) {
//     // exactly one on_reply with this id follows
//   }
//
// Threading. A Group's *data core* is either its own thread (start(), pinned when a cpu is
// given) or the caller's, calling poll() in a loop. Every GroupListener callback runs on that
// thread, to completion, one at a time; a callback must not block. send() and leave() may be
// called from any thread: from another thread they go through a bounded multi-producer queue
// to the data core. Two modes, as Aeron's (GroupOptions::threading):
//   shared     one thread does everything (small machines; one core per member in benchmarks)
//   dedicated  a second, *control* thread owns the control channel (the view-change and
//              heartbeat datagrams: their system calls) and the liveness beat, and talks to the
//              data core through SPSC rings. The protocol's decisions (suspicion, the view
//              change's state machine) stay on the data core: membership/NOTES.md, "Threads".
//
// Transports: "shm" (every member on this host; the default), "udp", "dpdk" and "rdma"
// (members at fixed addresses, GroupOptions::peers).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "runtime/result.h"

namespace cohort {

enum class DeliveryMode : uint8_t {
  kFifo = 0,   // per sender, on receipt; not ordered against other senders
  kTotal = 1,  // one order for every member; non-uniform if the deliverer then crashes
  kSafe = 2,   // total, and only once every member holds it: uniform (use it for effects)
};

// A member: the slot (node) its process holds, and the incarnation of that process. A process
// that rejoins after it was removed comes back with a higher incarnation.
struct MemberUid {
  uint32_t node = 0;
  uint32_t incarnation = 0;
  friend bool operator==(MemberUid, MemberUid) = default;
};

// A delivered message. `bytes` points into the transport's memory (or the member's copy of
// it) and is valid only during the on_deliver() call.
struct Message {
  MemberUid sender;
  uint64_t view = 0;
  uint32_t sseq = 0;  // the sender's number for it in `view`, from 1
  uint64_t gseq = 0;  // its place in the view's total order (0 for FIFO messages)
  DeliveryMode mode = DeliveryMode::kTotal;
  std::span<const std::byte> bytes;
};

struct ViewInfo {
  uint64_t id = 0;
  std::vector<MemberUid> members;   // oldest first; members[0] is the sequencer
  std::vector<MemberUid> joined;    // new in this view
  std::vector<MemberUid> departed;  // in the previous view, not in this one
};

// A point-to-point request or reply (Group::request, Group::reply).
struct PeerMessage {
  MemberUid peer;  // on_request: the requester; on_reply: the member asked
  uint64_t id = 0;
  std::span<const std::byte> bytes;  // valid only during the callback (zero copy where it can)
};

enum class ReplyStatus : uint8_t {
  kOk,        // `bytes` is the reply
  kPeerLeft,  // the member asked left the view (or was never in it) before it replied; or
              // this member left or was removed
};

enum class GroupEvent : uint8_t {
  kCutOff,   // this member cannot reach a majority of its view: it delivers nothing meanwhile
  kLeft,     // leave() completed: this member delivered its last message
  kRemoved,  // the group removed this member (it was suspected, or gave up): final
};
const char* group_event_name(GroupEvent event) noexcept;

// The application's side. Every method runs on the data core; defaults do nothing.
class GroupListener {
 public:
  virtual ~GroupListener() = default;
  virtual void on_deliver(const Message& message) = 0;
  virtual void on_view(const ViewInfo& view) { (void)view; }
  // State transfer. snapshot() is called at the exact end of a view that adds members, and its
  // bytes are given to restore() at every joiner before it delivers anything of that view.
  // At most 64 MiB (send bulk state another way): a larger snapshot is not kept, counted in
  // GroupStats::snapshots_too_large, and the joiners of that view are removed.
  virtual std::vector<std::byte> snapshot() { return {}; }
  virtual void restore(std::span<const std::byte> state) { (void)state; }
  virtual void on_event(GroupEvent event) { (void)event; }
  // The transport saw the process on `node` die (shm: at once, SIGKILL included); the view
  // change that removes it follows.
  virtual void on_peer_failed(uint32_t node) { (void)node; }
  // A request from another member; answer with Group::reply(request.peer, request.id, ...),
  // during the callback or later, from any thread. A request that is never answered keeps the
  // requester waiting until this member leaves the view.
  virtual void on_request(const PeerMessage& request) { (void)request; }
  // The one answer to Group::request(): kOk with the reply's bytes, or kPeerLeft (no bytes).
  virtual void on_reply(const PeerMessage& reply, ReplyStatus status) {
    (void)reply;
    (void)status;
  }
};

struct GroupOptions {
  std::string name = "cohort";  // the group: [A-Za-z0-9_.-], 1..64 characters
  std::string transport = "shm";
  uint32_t node = 0;       // this process's slot, 0..slots-1; one live process per slot
  uint32_t slots = 8;      // the most members the group can have at once (<= 32)
  bool bootstrap = false;  // start a new group alone, rather than join a running one
  std::string shm_dir;     // shm: empty means /dev/shm/cohort-<uid>
  uint64_t log_bytes = 8ull << 20;
  uint64_t heartbeat_interval_us = 10'000;
  uint64_t suspect_timeout_us = 100'000;
  std::string idle = "backoff";  // busy | spin_yield | backoff (DESIGN.md principle 5)
  // Idle polls spent spinning before the first yield (spin_yield, backoff); -1: the policy's
  // own, 0 for spin_yield (it yields at once: it is the policy for members sharing cpus, where
  // a spinner holds a cpu that a member with work needs) and 2000 for backoff.
  int32_t idle_spins = -1;
  // shared | dedicated | auto: dedicated when the machine has at least 4 cores.
  std::string threading = "auto";
  // How total order is made: tickets (every sender takes its messages' places in the order from
  // a counter in shared memory and sends them once: one hop), sequencer (members[0] orders what
  // the others send: two hops but for its own messages), or auto (tickets where every member
  // shares memory, that is over shm; the sequencer elsewhere). Every member of a group must
  // choose alike.
  std::string order = "auto";
  // udp, dpdk, rdma: "a.b.c.d:port" of every member, member i being entry i; slots is their
  // count.
  // Each member uses two ports, port and port + 1 (the control channel). A member that dies
  // stays out until the group restarts (membership/NOTES.md: replicas are not reset for a new
  // incarnation on these transports).
  std::vector<std::string> peers;
  // dpdk: the EAL's arguments, e.g. {"--no-huge", "--no-pci", "--file-prefix", "m0",
  // "--vdev=net_memif0,role=server,socket=/tmp/m.sock"}; the first port the EAL finds is used.
  std::vector<std::string> dpdk_eal_args;
  // rdma: the verbs device ("mlx5_0", "rxe0"); empty: the first with an active port.
  std::string rdma_device;
  // udp, dpdk, for tests: faults injected below the log (transport/fault/fault_port.h).
  struct Faults {
    double drop_rate = 0;
    double duplicate_rate = 0;
    double reorder_rate = 0;
    uint64_t seed = 0;              // 0: random
    std::vector<uint32_t> cut_off;  // members this one is partitioned from ...
    uint64_t cut_after_ms = 0;      // ... from this long after create() ...
    uint64_t cut_for_ms = ~0ULL;    // ... for this long
  } faults;
};

enum class SendStatus : uint8_t {
  kOk,         // accepted: it will be delivered unless this member is removed first
  kFull,       // backpressure: the queue or the log is full; try again
  kTooLarge,   // over the largest message (4 KiB today)
  kNotMember,  // not in a view (joining, left or removed)
};

// sent, delivered, views and requests are counted as they happen; the data core's counters
// (records_malformed .. snapshots_too_large) are copied every 10 ms.
struct GroupStats {
  uint64_t sent = 0;
  uint64_t delivered = 0;
  uint64_t delivered_bytes = 0;
  uint64_t view_changes = 0;
  uint64_t view_id = 0;
  uint32_t view_members = 0;
  uint64_t records_malformed = 0;
  uint64_t control_malformed = 0;
  uint64_t dropped_stale = 0;
  uint64_t relayed = 0;
  uint64_t polls = 0;
  uint64_t idle_polls = 0;
  uint64_t requests_sent = 0;      // Group::request() said kOk
  uint64_t requests_received = 0;  // on_request calls
  uint64_t replies_received = 0;   // on_reply calls, kPeerLeft included
  uint64_t sent_inline = 0;        // of sent: sends the data thread made with no queue between
  // Order by tickets (GroupOptions::order): times a send found no ticket to take and waited (a
  // view not open yet, the window past the stable point full, the log full). Rising while
  // deliveries stall: a member took a ticket and has not sent it (it is being removed).
  uint64_t ticket_waits = 0;
  // snapshot() returned more than 64 MiB: not kept; the joiners it was for were removed.
  uint64_t snapshots_too_large = 0;
};

class Group {
 public:
  // Opens the transport and starts joining (or, with bootstrap, founds the group). `listener`
  // must outlive the Group. Errors name the option to fix.
  static Result<std::unique_ptr<Group>> create(const GroupOptions& options,
                                               GroupListener* listener);
  ~Group();
  Group(const Group&) = delete;
  Group& operator=(const Group&) = delete;

  // Runs the member on a thread of its own (pinned to `cpu` when >= 0) until stop(); in
  // dedicated mode the control thread too (pinned to `control_cpu` when >= 0).
  Status start(int cpu = -1, int control_cpu = -1);
  void stop();
  // Or run it on the calling thread: one poll iteration (of both loops in dedicated mode);
  // returns the work done (0: idle). From inside a callback it does nothing and returns 0.
  uint32_t poll();
  bool dedicated() const noexcept;

  SendStatus send(std::span<const std::byte> bytes, DeliveryMode mode);
  void leave();

  // A request to the member `to` (point-to-point, above). From any thread. kOk sets *id (unique
  // in this Group) and exactly one on_reply follows. kFull / kTooLarge / kNotMember as for
  // send(), and kFull too while 4096 requests of this Group await their answer; a target that is
  // not in the view gives kOk and then on_reply(kPeerLeft) (another thread cannot know the view
  // exactly). A request to this member itself gets kPeerLeft.
  SendStatus request(MemberUid to, std::span<const std::byte> bytes, uint64_t* id);
  // The answer to on_request's `request` (to = request.peer, id = request.id). From any thread.
  // A reply to a requester that is gone is dropped. kOk / kFull / kTooLarge / kNotMember.
  SendStatus reply(MemberUid to, uint64_t id, std::span<const std::byte> bytes);

  MemberUid self() const noexcept;
  bool in_view() const noexcept;      // installed a view and not removed, left or cut off
  GroupStats stats() const noexcept;  // a copy; safe from any thread (relaxed counters)

  struct Impl;

 private:
  explicit Group(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace cohort
