// A deterministic simulated network for the protocol simulator (tests/sim): it moves bytes and
// knows nothing of what they mean. Nodes 0..N-1 (N <= kMaxMembers) each write one log per
// incarnation and read every other node's current log; beside the logs runs a lossy datagram
// channel for control messages. Time is whatever the caller says it is (`now`), and every
// random choice comes from one generator seeded at construction, so a run replays exactly.
//
// Logs (DESIGN.md principle 2, modelled): append() keeps the record in stable storage for the
// life of the SimNet (records are never moved or freed: the protocol holds spans into them).
// A (writer, reader) link is FIFO and reliable while connected: a record becomes visible to a
// reader at its append time plus the link's delay, with jitter that never reorders within the
// link. A disconnected link stalls (what was in flight waits) and resumes after the heal. When
// a writer crashes, each reader keeps a random prefix (0..all) of what was still in flight to
// it; the rest is lost ("DATA held by only one survivor"). A node's new incarnation starts a
// new log at position 0, and a node that starts reads every live node's current log from its
// beginning.
//
// Datagrams: each is lost, duplicated and delayed (reordered) by its link's LinkFaults; a
// disconnected link, a dead destination, or a destination that restarted since the send drops
// it.
//
// Paused nodes receive nothing: what becomes due for them is held and handed over, in order,
// on resume(). (The driver also runs no timers of a paused node.) One node may be slow: the
// delays of every link to and from it are multiplied.
//
// The driver asks next_due() for the time of the next thing to hand over and takes them with
// pop(now), in (time, order of scheduling) order.
//
// Threading: one SimNet belongs to one thread. No exceptions; misuse asserts.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <queue>
#include <span>
#include <vector>

#include "transport/sim/rng.h"
#include "transport/transport.h"

namespace cohort::transport::sim {

using NodeId = MemberId;
using TimeNs = uint64_t;
inline constexpr TimeNs kNever = ~TimeNs{0};

// The faults of one directed link (from -> to). Delays are drawn uniformly in [min, max].
struct LinkFaults {
  double loss = 0;  // datagrams: probability that one is lost
  double dup = 0;   // datagrams: probability that one arrives twice
  TimeNs dgram_delay_min_ns = 50'000;
  TimeNs dgram_delay_max_ns = 400'000;  // a spread wider than the gap between sends reorders
  TimeNs log_delay_min_ns = 50'000;
  TimeNs log_delay_max_ns = 300'000;  // jitter; FIFO within the link regardless
};

enum class ItemKind : uint8_t { kRecord, kDatagram };

// One thing handed to a node by pop().
struct Item {
  ItemKind kind = ItemKind::kRecord;
  NodeId from = 0;
  NodeId to = 0;
  TimeNs at = 0;       // when it became due (for held items: the resume)
  uint64_t index = 0;  // kRecord: the record's index in the writer's log, from 0
  // kRecord: stable for the life of the SimNet. kDatagram: valid until the next pop().
  std::span<const std::byte> bytes;
};

struct NetCounters {
  uint64_t appended = 0;
  uint64_t records_delivered = 0;
  uint64_t records_lost_in_crash = 0;  // in flight to a reader when their writer crashed
  uint64_t datagrams_sent = 0;
  uint64_t datagrams_delivered = 0;
  uint64_t datagrams_lost = 0;  // the loss probability
  uint64_t datagrams_duplicated = 0;
  uint64_t datagrams_partitioned = 0;  // dropped by a disconnected link
  uint64_t datagrams_dead = 0;         // dropped at a dead or restarted destination
  uint64_t held_for_pause = 0;         // items held while their destination was paused
};

class SimNet {
 public:
  // `self_read`: a node also reads its own log (as a shm reader may); off by default.
  SimNet(uint32_t nodes, uint64_t seed, bool self_read = false);
  SimNet(const SimNet&) = delete;
  SimNet& operator=(const SimNet&) = delete;

  uint32_t nodes() const noexcept { return node_count_; }

  // --- the life of a node ------------------------------------------------------------------
  // A new incarnation: a new log at position 0; reads every live node's current log from its
  // beginning. The node must not be alive.
  void start(NodeId node, TimeNs now);
  // Dies: each reader keeps a random prefix of what was in flight to it from this node; what
  // was in flight to it, or held for it, is gone.
  void crash(NodeId node, TimeNs now);
  // Ends cleanly (a member that left or was removed exits): every reader still gets the whole
  // log; what was in flight to the node is gone.
  void stop(NodeId node, TimeNs now);
  void pause(NodeId node, TimeNs now);
  // Hands over, in order and before anything else, what became due while paused.
  void resume(NodeId node, TimeNs now);
  bool alive(NodeId node) const noexcept { return nodes_[node].alive; }
  bool paused(NodeId node) const noexcept { return nodes_[node].paused; }
  uint32_t generation(NodeId node) const noexcept { return nodes_[node].generation; }

  // --- traffic -----------------------------------------------------------------------------
  // Appends a record to `node`'s current log; returns its index. The node must be alive.
  uint64_t append(NodeId node, std::span<const std::byte> bytes, TimeNs now);
  void send(NodeId from, NodeId to, std::span<const std::byte> bytes, TimeNs now);
  uint64_t log_size(NodeId node) const noexcept;

  // --- faults ------------------------------------------------------------------------------
  void set_link_faults(NodeId from, NodeId to, const LinkFaults& faults) noexcept;
  void set_all_faults(const LinkFaults& faults) noexcept;
  const LinkFaults& link_faults(NodeId from, NodeId to) const noexcept {
    return link(from, to).faults;
  }
  // One-way: `from`'s log and datagrams stop reaching `to` (stall), or resume.
  void set_connected(NodeId from, NodeId to, bool connected, TimeNs now);
  bool connected(NodeId from, NodeId to) const noexcept { return link(from, to).connected; }
  // Reconnects every link.
  void heal(TimeNs now);
  // Multiplies the delays of every link to and from `node` (1 = normal).
  void set_slow(NodeId node, uint32_t factor) noexcept;

  // --- handing over ------------------------------------------------------------------------
  // The time of the next item to hand over (kNever when nothing is in flight). It may lie in
  // the past of an earlier pop's `now` only for items released by resume().
  TimeNs next_due() const noexcept;
  // Takes the next item due at or before `now`; false when none is.
  bool pop(TimeNs now, Item* out);

  const NetCounters& counters() const noexcept { return counters_; }
  Rng& rng() noexcept { return rng_; }

 private:
  static constexpr uint64_t kNoLimit = ~uint64_t{0};
  static constexpr uint32_t kNoLog = ~0U;

  struct Log {
    std::deque<std::vector<std::byte>> records;  // never moved or freed: spans point here
  };
  struct Node {
    bool alive = false;
    bool paused = false;
    uint32_t generation = 0;  // incarnations started here
    uint32_t log = kNoLog;    // index of the current log in logs_
    uint32_t slow = 1;
  };
  struct Link {
    bool connected = true;
    uint64_t epoch = 0;         // bumped to cancel what is scheduled (partition, crash, restart)
    uint32_t log = kNoLog;      // the writer's log this reader reads
    uint64_t delivered = 0;     // records handed to the reader (or held for it)
    uint64_t scheduled = 0;     // records with an event in the queue
    uint64_t limit = kNoLimit;  // the writer crashed: the reader gets records below this only
    TimeNs last_at = 0;         // FIFO: no record is due before the one ahead of it
    LinkFaults faults{};
  };
  struct Event {
    TimeNs at;
    uint64_t seq;
    uint64_t epoch;    // kRecord: the link's epoch; kDatagram: the destination's generation
    uint64_t payload;  // kRecord: record index; kDatagram: slot in dgram_slab_
    ItemKind kind;
    NodeId from;
    NodeId to;
  };
  struct Later {
    bool operator()(const Event& a, const Event& b) const noexcept {
      return a.at != b.at ? a.at > b.at : a.seq > b.seq;
    }
  };
  // An item due while its destination was paused.
  struct Held {
    ItemKind kind;
    NodeId from;
    uint64_t index;  // kRecord: record index; kDatagram: slot in dgram_slab_
    std::span<const std::byte> record;
  };

  Link& link(NodeId from, NodeId to) noexcept { return links_[from * node_count_ + to]; }
  const Link& link(NodeId from, NodeId to) const noexcept {
    return links_[from * node_count_ + to];
  }
  bool reads(NodeId writer, NodeId reader) const noexcept { return self_read_ || writer != reader; }
  TimeNs draw_delay(NodeId from, NodeId to, TimeNs lo, TimeNs hi) noexcept;
  void schedule_link(NodeId writer, NodeId reader, TimeNs now);
  void cancel_link(Link& l) noexcept;
  void end_writer(NodeId node, bool keep_all);
  void end_reader(NodeId node);
  void push(TimeNs at, ItemKind kind, NodeId from, NodeId to, uint64_t epoch, uint64_t payload);
  uint32_t slab_put(std::span<const std::byte> bytes);
  void slab_free(uint64_t slot);
  bool pop_ready(NodeId node, TimeNs now, Item* out);

  uint32_t node_count_;
  bool self_read_;
  Rng rng_;
  uint64_t seq_ = 0;
  std::vector<Node> nodes_;
  std::vector<Link> links_;  // [from * N + to]
  std::deque<Log> logs_;     // every log ever written, kept whole
  std::priority_queue<Event, std::vector<Event>, Later> queue_;
  std::vector<std::vector<std::byte>> dgram_slab_;
  std::vector<uint32_t> dgram_free_;
  std::vector<std::deque<Held>> held_;  // per node, while paused
  // Held items released by resume(): handed over before the queue.
  std::deque<std::pair<NodeId, TimeNs>> ready_;
  std::vector<std::byte> current_dgram_;  // the bytes of the last datagram popped
  NetCounters counters_;
};

}  // namespace cohort::transport::sim
