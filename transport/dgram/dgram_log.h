// DgramLog: a member's replicated logs over an unreliable datagram network, as a state machine
// with no clock, socket or thread inside (STYLE.md, etcd raft): datagrams and the time come in
// through on_datagram(), datagrams to send come out of prepare_tx(). DgramEngine (dgram_engine.h)
// connects it to a concrete port. The protocol, its frames and timers are in NOTES.md here.
//
// Writer side: the member's own LogWriter over a private ring. Newly committed bytes go to every
// live peer as DATA frames of up to mtu_payload bytes, each a raw range of the log at its
// position (a record larger than a frame spans several: that is the fragmentation). NACKed
// ranges are served again from the ring. Peers' STATUS frames feed the LogWriter's reader
// positions, so a slow reader slows the writer (kBackPressure) instead of losing data.
//
// Reader side, one Replica per peer: frames are copied into a replica ring at their positions;
// holes are NACKed; the application reads records zero copy up to the contiguous position.
//
// Threads: one thread (the data core) calls everything here, the application's claims, commits,
// polls and releases included.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

#include "runtime/assert.h"
#include "runtime/cache_line.h"
#include "runtime/result.h"
#include "transport/dgram/port.h"
#include "transport/dgram/replica.h"
#include "transport/log/log.h"
#include "transport/transport.h"
#include "transport/wire/frame.h"

namespace cohort::transport::dgram {

// Timers of the protocol, in the caller's clock (nanoseconds). The defaults suit a LAN or
// loopback; NOTES.md gives the reasoning.
struct DgramTimers {
  // A hole waits this long before its first NACK: a reordered frame usually fills it sooner.
  uint64_t nack_delay_ns = 100'000;
  // A NACKed hole still open after this is NACKed again (the NACK or its repair was lost).
  uint64_t nack_timeout_ns = 2'000'000;
  // A reader sends STATUS at least this often, and whenever its released position has moved
  // by a quarter of the log since the last one.
  uint64_t status_interval_ns = 1'000'000;
  // After its last DATA frame the writer sends a heartbeat (its sent position) this soon, then
  // at doubling intervals up to heartbeat_max_ns; and at least every heartbeat_max_ns when busy.
  uint64_t heartbeat_min_ns = 100'000;
  uint64_t heartbeat_max_ns = 10'000'000;
};

struct DgramOptions {
  uint64_t group_id = 0;  // FNV-1a of the group name (group_id_of())
  uint64_t view_id = 0;   // frames of another view are dropped; 0 until views exist
  MemberId self = 0;
  uint32_t members = 0;             // the group is members 0..members-1
  uint64_t log_bytes = 1ull << 20;  // every member's log and replicas; a power of two
  uint32_t mtu_payload = 1400;      // log bytes per DATA frame: 1400 + 48 + 28 fits in 1500
  DgramTimers timers;
};

// FNV-1a, 64 bits, of the group name: the frames' group_id (the shm control page's hash too).
uint64_t group_id_of(const char* group) noexcept;

// Counters of one DgramLog, kept on its own cache lines. "Frames" count frames prepared for
// the port; tx_refused counts datagrams the port could not take (they are sent again later).
struct alignas(kCacheLine) DgramStats {
  uint64_t rx_datagrams = 0;
  wire::DecodeCounters decode;      // decode_frame() outcomes by reason
  uint64_t rx_non_member = 0;       // source address or sender id not a member, or ourselves
  uint64_t rx_sender_mismatch = 0;  // the frame's sender is not the member at that address
  uint64_t rx_wrong_view = 0;
  uint64_t rx_from_gone = 0;        // from a peer declared gone
  uint64_t rx_unexpected_type = 0;  // kControl on the data port
  uint64_t rx_bad_payload = 0;      // a NACK, STATUS or heartbeat of the wrong payload size
  uint64_t rx_bad_position = 0;     // a position no correct peer can send
  uint64_t rx_log_size_mismatch = 0;
  uint64_t rx_data_frames = 0;    // DATA frames with new bytes
  uint64_t rx_data_bytes = 0;     // new bytes copied into replicas
  uint64_t rx_duplicate = 0;      // DATA frames with nothing new
  uint64_t rx_beyond_window = 0;  // DATA past released + capacity: the writer ignored us
  uint64_t rx_ranges_full = 0;    // DATA that needed a 65th out-of-order range
  uint64_t rx_empty = 0;          // DATA with no payload
  uint64_t rx_heartbeats = 0;
  uint64_t rx_status = 0;
  uint64_t rx_nacks = 0;         // NACKs queued for repair
  uint64_t rx_nack_stale = 0;    // NACKs for bytes below the peer's released position
  uint64_t rx_nack_unsent = 0;   // NACKs for bytes not sent yet (they go out as new data)
  uint64_t rx_nack_dropped = 0;  // NACKs refused because the repair queue was full
  uint64_t tx_data_frames = 0;   // new-data frames (each to every live peer)
  uint64_t tx_data_bytes = 0;
  uint64_t tx_repair_frames = 0;  // NACKs served, in frames
  uint64_t tx_repair_bytes = 0;
  uint64_t tx_nacks = 0;
  uint64_t tx_status = 0;
  uint64_t tx_heartbeats = 0;
  uint64_t tx_refused = 0;
};

// Payload sizes of the control frames of the log protocol (NOTES.md).
inline constexpr uint32_t kNackPayload = 8;       // end position (LE); position = begin
inline constexpr uint32_t kStatusPayload = 16;    // log size, received position (LE)
inline constexpr uint32_t kHeartbeatPayload = 8;  // log size (LE); position = sent position

inline constexpr uint64_t kMinLogBytes = 4096;
inline constexpr uint64_t kMaxLogBytes = 1ull << 30;
inline constexpr uint32_t kMinMtuPayload = 64;
inline constexpr uint32_t kMaxMtuPayload = 65000;  // a UDP datagram holds 65507 bytes

// At most this many datagrams in one prepare_tx(): kTxSlots frames, each to every peer.
inline constexpr uint32_t kTxSlots = 128;
inline constexpr uint32_t kMaxTxDatagrams = kTxSlots * (kMaxMembers - 1);
static_assert(kMaxTxDatagrams <= kMaxTxBurst);

class DgramLog {
 public:
  // Checks the options (sizes, ids, timers) and allocates every ring and buffer.
  static Result<std::unique_ptr<DgramLog>> create(const DgramOptions& options);
  ~DgramLog();
  DgramLog(const DgramLog&) = delete;
  DgramLog& operator=(const DgramLog&) = delete;

  const DgramOptions& options() const noexcept { return options_; }

  // The member's own log: claim, write, commit; flushes send what was committed.
  LogWriter& publication() noexcept { return writer_; }
  const LogWriter& publication() const noexcept { return writer_; }
  // A peer's replica; nullptr for self, out-of-range ids and peers declared gone.
  ReplicaSubscription* subscription(MemberId peer) noexcept {
    return peer < options_.members && peer != options_.self && !gone(peer) ? &replicas_[peer].sub
                                                                           : nullptr;
  }
  // Liveness hook for the membership layer: the peer stops counting as a reader of our log
  // (LogWriter::remove_reader), and its log is no longer read. Irrevocable.
  void declare_gone(MemberId peer) noexcept;
  bool gone(MemberId peer) const noexcept {
    return peer >= kMaxMembers || (live_ >> peer & 1u) == 0;
  }

  // Processes one received datagram. Anything malformed is counted and dropped.
  void on_datagram(MemberId from, std::span<const std::byte> bytes, uint64_t now_ns) noexcept;
  // Builds the datagrams due now: status and NACKs of the replicas, repairs, new data, the
  // heartbeat. Valid until the next call; then report with on_sent() how many the port took.
  std::span<const TxDatagram> prepare_tx(uint64_t now_ns) noexcept;
  // The port took the first `accepted` datagrams of the last prepare_tx(); new data it did not
  // take is sent again on the next one.
  void on_sent(uint32_t accepted) noexcept;

  // What a peer has told us: when we last heard any valid frame from it (GapTracker::kNever if
  // never), its released and received positions in our log, and why we refused it, if we did.
  uint64_t last_heard_ns(MemberId peer) const noexcept {
    COHORT_ASSERT(peer < options_.members);
    return peers_[peer].last_heard_ns;
  }
  uint64_t peer_released(MemberId peer) const noexcept {
    COHORT_ASSERT(peer < options_.members);
    // relaxed: the same thread stored it.
    return peers_[peer].released.load(std::memory_order_relaxed);
  }
  uint64_t peer_received(MemberId peer) const noexcept {
    COHORT_ASSERT(peer < options_.members);
    return peers_[peer].received;
  }
  PeerFault peer_fault(MemberId peer) const noexcept {
    COHORT_ASSERT(peer < options_.members);
    return replicas_[peer].fault;
  }
  // Our log bytes sent to the peers so far (the rest of publication().position() is queued).
  uint64_t sent_position() const noexcept { return sent_; }
  const GapTracker& gaps(MemberId peer) const noexcept {
    COHORT_ASSERT(peer < options_.members);
    return replicas_[peer].gaps;
  }
  const DgramStats& stats() const noexcept { return stats_; }

 private:
  explicit DgramLog(const DgramOptions& options) noexcept;

  enum class SlotKind : uint8_t { kControl, kRepair, kNewData };

  struct SlotMeta {
    SlotKind kind = SlotKind::kControl;
    uint32_t size = 0;      // frame bytes in the slot
    uint64_t position = 0;  // the frame's position field
  };

  // What a peer says about our log, and when we last heard from it.
  struct PeerState {
    // Its released position in our log, from STATUS frames; the LogWriter reads it through
    // attach_reader(). Stored with release in on_status(), loaded with acquire by the writer:
    // both on this thread, the orders keep LogWriter's contract.
    std::atomic<uint64_t> released{0};
    uint64_t received = 0;
    uint64_t last_heard_ns = GapTracker::kNever;
  };

  // A NACKed range of our log still to be sent again to one peer.
  struct Repair {
    MemberId peer = 0;
    uint64_t next = 0;
    uint64_t end = 0;
  };
  // 64 pending repairs: each peer has at most a few holes NACKed at a time (kMaxNacksPerFlush).
  static constexpr uint32_t kMaxRepairs = 64;
  static constexpr uint32_t kRepairSlotsPerFlush = 32;
  static constexpr uint32_t kMaxNacksPerFlush = 32;
  static constexpr uint32_t kMaxNacksPerPeer = 4;

  void on_data(MemberId peer, const wire::FrameView& frame, uint64_t now_ns) noexcept;
  void on_heartbeat(MemberId peer, const wire::FrameView& frame, uint64_t now_ns) noexcept;
  void on_status(MemberId peer, const wire::FrameView& frame) noexcept;
  void on_nack(MemberId peer, const wire::FrameView& frame) noexcept;
  bool log_size_matches(MemberId peer, uint64_t log_bytes) noexcept;

  void prepare_replica_frames(uint64_t now_ns) noexcept;
  void prepare_repairs() noexcept;
  void prepare_new_data(uint64_t now_ns) noexcept;
  void prepare_heartbeat(uint64_t now_ns) noexcept;
  // Frames in TX slots: each build_* returns its slot. The per-flush budgets guarantee that
  // one is free (asserted in build_control() and build_data()).
  std::byte* slot_bytes(uint32_t slot) noexcept;
  uint32_t build_control(wire::FrameType type, uint64_t position,
                         std::span<const std::byte> payload) noexcept;
  uint32_t build_data(uint64_t position, uint64_t end, SlotKind kind) noexcept;
  uint64_t chunk_end(uint64_t position, uint64_t limit) const noexcept;
  void add_tx(MemberId to, uint32_t slot) noexcept;
  void add_tx_all(uint32_t slot) noexcept;

  DgramOptions options_;
  uint64_t capacity_ = 0;
  uint32_t live_ = 0;  // bit m: member m is a peer not declared gone

  // Writer side.
  std::unique_ptr<std::byte[]> log_mem_;
  LogWriter writer_;
  uint64_t sent_ = 0;  // our log is sent to the live peers below this position
  uint64_t last_heartbeat_ns_ = 0;
  uint64_t next_heartbeat_ns_ = 0;
  uint64_t heartbeat_gap_ns_ = 0;
  Repair repairs_[kMaxRepairs];
  uint32_t repair_head_ = 0;  // free-running indices of a ring of kMaxRepairs
  uint32_t repair_tail_ = 0;
  PeerState peers_[kMaxMembers];

  // Reader side: one replica per peer (self's unused).
  std::unique_ptr<std::byte[]> replica_mem_;
  std::unique_ptr<Replica[]> replicas_;

  // Transmit: kTxSlots frame buffers and the datagrams that point at them.
  uint32_t slot_stride_ = 0;
  std::unique_ptr<std::byte[]> slot_mem_;
  SlotMeta slot_meta_[kTxSlots];
  uint32_t slot_count_ = 0;
  std::unique_ptr<TxDatagram[]> tx_;
  std::unique_ptr<uint16_t[]> tx_slot_;
  uint32_t tx_count_ = 0;

  DgramStats stats_;
};

}  // namespace cohort::transport::dgram
