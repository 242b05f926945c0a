// RdmaTransport: cohort's logs over RDMA verbs (DESIGN.md, "Transports"): RC queue pairs, one
// per peer, and one-sided RDMA WRITEs of committed log bytes straight into each peer's replica
// of our log. Members are IPv4 address:port pairs, member i being the i-th; each member uses
//   port      TCP: the out-of-band exchange that connects the queue pairs (QP numbers, GIDs,
//             rkeys), then kept open as a liveness signal (the kernel closes it when the
//             process dies, SIGKILL included)
//   port + 1  UDP: the control channel (kControl frames, as the udp transport sends them)
// The data path is the same log format as every transport (transport/log): our publication is
// a LogWriter on a registered ring; each peer's log arrives in a registered replica of the
// same size, with a tail word the writer RDMA-writes after the bytes, and a ReplicaSubscription
// reads it up to that tail, exactly as the udp transport's readers read theirs. Readers write
// their released position back into the writer's memory with an RDMA WRITE; a heartbeat word
// is written the same way. NOTES.md beside this file gives the memory layout, the ordering
// argument, the choice of TCP over librdmacm, and the limits.
//
// Threads: create() and the destructor on the control path. The data core alone calls
// publication(), subscription(), poll(), flush(), declare_gone() and the data stats; the
// control core alone calls send_control() and poll_control(). peer_alive() and heartbeat_of()
// may be called from either (they read words the data core keeps up to date).
#pragma once

#include <netinet/in.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "runtime/result.h"
#include "transport/dgram/replica.h"
#include "transport/log/log.h"
#include "transport/transport.h"
#include "transport/udp/udp_control_channel.h"
#include "transport/wire/frame.h"

struct ibv_context;
struct ibv_pd;
struct ibv_cq;
struct ibv_qp;
struct ibv_mr;

namespace cohort::transport::rdma {

struct RdmaOptions {
  // "a.b.c.d:port" for each member; member i is entry i. TCP on port (queue-pair setup and
  // liveness), UDP on port + 1 (control channel): a member takes two consecutive ports.
  std::vector<std::string> members;
  MemberId self = 0;
  std::string group;                // [A-Za-z0-9_.-], 1..64 characters
  uint64_t log_bytes = 1ull << 20;  // a power of two, 64 KiB..1 GiB, the same for every member
  std::string device;               // e.g. "mlx5_0", "rxe0"; empty: the first with an active port
  uint32_t port = 0;                // the device's port; 0: its first active one
  int32_t gid_index = -1;           // -1: the first IPv4-mapped GID (RoCE v2), else index 0
  // Selective signalling: one WRITE in this many asks for a completion (the others are
  // reclaimed with it). Must leave room in the send queue: <= (send_queue_depth - 8) / 2.
  uint32_t signal_every = 32;
  uint32_t send_queue_depth = 256;
  uint64_t heartbeat_interval_ns = 1'000'000;  // our heartbeat word, written to every peer
  uint64_t connect_retry_ns = 20'000'000;      // between TCP connect attempts to a peer
};

// Exposed for tests: the checks that need no device.
Status check_options(const RdmaOptions& options);
// The memlock check: registering `needed` bytes with RLIMIT_MEMLOCK at `limit` (RLIM_INFINITY:
// ~0) without CAP_IPC_LOCK. The error names the numbers and the fix.
Status check_memlock(uint64_t needed, uint64_t limit, bool can_lock_unlimited);

// One port of one device, as discovery saw it (for the errors that list what was found).
struct PortInfo {
  std::string device;
  uint32_t port = 0;
  bool active = false;
  const char* state = "";
  const char* link_layer = "";
};
// Picks the device and port from what was found: `device` by name (empty: the first device
// with an active port), `port` (0: its first active port). The errors list everything found.
Result<PortInfo> choose_port(const std::vector<PortInfo>& found, const std::string& device,
                             uint32_t port);
// "rxe0 port 1 ACTIVE (Ethernet), mlx5_0 port 1 DOWN (InfiniBand)" or "none".
std::string describe_ports(const std::vector<PortInfo>& found);

class RdmaTransport {
 public:
  static constexpr uint64_t kNever = dgram::GapTracker::kNever;

  // Checks the options, opens the device, registers the log and the replicas, creates the
  // queue pairs, and binds the TCP listener and the control socket. Never waits for peers:
  // poll() connects them as they come. Errors name the device, the value and the fix.
  static Result<std::unique_ptr<RdmaTransport>> create(const RdmaOptions& options);
  // Tears down in order: sockets, queue pairs, completion queue, memory regions, protection
  // domain, device.
  ~RdmaTransport();
  RdmaTransport(const RdmaTransport&) = delete;
  RdmaTransport& operator=(const RdmaTransport&) = delete;

  MemberId self() const noexcept { return options_.self; }
  uint32_t members() const noexcept { return static_cast<uint32_t>(options_.members.size()); }

  // Data path (the data core).
  LogWriter& publication() noexcept { return publication_; }
  // nullptr for self, for ids out of range, and for peers declared gone. The subscription
  // reads up to what the last poll() saw arrive.
  dgram::ReplicaSubscription* subscription(MemberId peer) noexcept {
    return peer < members() && peer != self() && !peers_[peer].gone ? &peers_[peer].sub : nullptr;
  }
  // Connects peers (a few syscalls, every 500 us at most), reaps completions, and looks at
  // every peer's tail, read-position and heartbeat words; returns how many peers had news.
  uint32_t poll(uint64_t now_ns) noexcept;
  // Writes what is due to every connected peer, one doorbell per peer: committed log bytes
  // (one WRITE, two at the wrap) and then the tail word; our released position in its log
  // when it changed; our heartbeat every heartbeat_interval_ns. Returns work requests posted.
  uint32_t flush(uint64_t now_ns) noexcept;
  // Liveness hook: the peer stops holding our writer back, is no longer read or written, and
  // its connection is closed. It is never connected again (a new process in the slot is not
  // taken back: NOTES.md, limits).
  void declare_gone(MemberId peer) noexcept;
  // When the peer's words last changed (its heartbeat comes every heartbeat_interval_ns while
  // its data core runs); kNever before it connected.
  uint64_t last_heard_ns(MemberId peer) const noexcept {
    return peer < kMaxMembers ? peers_[peer].last_heard_ns : kNever;
  }
  // Connected, and neither its TCP connection closed nor a WRITE to it failed. False before
  // it connects, once it died or was declared gone.
  bool peer_alive(MemberId peer) const noexcept {
    // acquire: pairs with the release stores of `alive` on the data core.
    return peer < kMaxMembers && peers_[peer].alive.load(std::memory_order_acquire);
  }
  // The peers seen to fail since the last call, as a bit set (bit n: member n): their TCP
  // connection closed (the process died) or a WRITE to them completed in error. Data core.
  uint32_t take_failed() noexcept {
    const uint32_t f = failed_bits_;
    failed_bits_ = 0;
    return f;
  }
  // The peer's heartbeat counter as it last wrote it into our memory (0 before it connected).
  uint64_t heartbeat_of(MemberId peer) const noexcept;
  // Connected peers (handshake done both ways).
  uint32_t connected() const noexcept { return connected_count_; }

  // Control channel (the control core): small datagrams to one peer, never blocking; the udp
  // transport's (udp_control_channel.h), on UDP port + 1.
  SendStatus send_control(MemberId to, std::span<const std::byte> bytes) noexcept {
    return control_.send(to, bytes);
  }
  // Up to max datagrams that arrived; valid until the next call. Anything that is not an
  // intact kControl frame of this group from a member's control address is dropped, counted.
  uint32_t poll_control(ControlMessage* out, uint32_t max) noexcept {
    return control_.poll(out, max);
  }

  struct Stats {
    uint64_t write_wrs = 0;  // RDMA WRITEs of log bytes
    uint64_t write_bytes = 0;
    uint64_t tail_wrs = 0;      // tail words written after the bytes
    uint64_t position_wrs = 0;  // our read positions written back to writers
    uint64_t heartbeat_wrs = 0;
    uint64_t doorbells = 0;  // ibv_post_send calls
    uint64_t signalled = 0;  // work requests that asked for a completion
    uint64_t completions = 0;
    uint64_t completion_errors = 0;
    uint64_t send_queue_full = 0;  // flushes to a peer put off because its send queue was full
    uint64_t post_errors = 0;
    uint64_t torn_words = 0;  // a peer's two copies of a position disagreed: looked again
    uint64_t connects = 0;    // handshakes completed
    uint64_t handshake_errors = 0;
    uint64_t disconnects = 0;  // TCP connections that closed under a connected peer
  };
  const Stats& stats() const noexcept { return stats_; }
  // The udp transport's counters (partitioned stays 0: rdma has no fault decorator).
  using ControlStats = udp::UdpControlChannel::Stats;
  const ControlStats& control_stats() const noexcept { return control_.stats(); }
  // Positions, in the shape of the udp transport's log() (dgram::DgramLog), for tools
  // written against it (tests/integration/dgram_member.h). Data core.
  class LogView {
   public:
    struct Contiguous {
      uint64_t value;
      uint64_t contiguous() const noexcept { return value; }
    };
    explicit LogView(const RdmaTransport* t) noexcept : t_(t) {}
    // The least of what was written to the connected peers.
    uint64_t sent_position() const noexcept;
    // The peer's log: bytes below this are in our replica.
    Contiguous gaps(MemberId peer) const noexcept {
      return {peer < kMaxMembers ? t_->peers_[peer].received : 0};
    }
    // How far the peer released our log.
    uint64_t peer_released(MemberId peer) const noexcept;

   private:
    const RdmaTransport* t_;
  };
  LogView log() const noexcept { return LogView(this); }

  // The device, port, GID index and MTU in use: "rxe0 port 1 gid 1 (::ffff:10.0.2.15) mtu 1024".
  const std::string& device_description() const noexcept { return device_description_; }
  // One line of counters for logs and tests (it allocates, and reads the data core's counters
  // and error texts: call it on the data core's thread, or once the data path is quiet).
  std::string describe() const;

 private:
  // What each peer writes into our memory: one cache line, one remote writer (that peer).
  // The two positions come as two equal copies in one 16-byte WRITE: nothing promises that a
  // WRITE places an 8-byte word in one piece (rxe copies with the kernel's memcpy, byte by
  // byte under emulation), so a reader takes a value only when both copies agree, and looks
  // again at its next poll otherwise (NOTES.md, "torn words").
  struct alignas(64) InboxWords {
    std::atomic<uint64_t> tail[2];           // its log: bytes below this are in our replica
    std::atomic<uint64_t> read_position[2];  // how far it released OUR log
    std::atomic<uint64_t> heartbeat;         // a counter: only a change matters
    uint64_t reserved[3];
  };
  static_assert(sizeof(InboxWords) == 64);
  // A peer's inbox: the words, then the replica of its log; registered for that peer alone.
  static constexpr uint64_t kInboxHeaderBytes = 4096;

  // The handshake: a 128-byte hello, then an 8-byte ready (rdma_connect.cc).
  static constexpr uint32_t kHelloBytes = 128;
  static constexpr uint32_t kHandshakeBytes = kHelloBytes + 8;

  enum class Conn : uint8_t { kWaiting, kConnecting, kHandshake, kConnected, kFailed, kGone };

  struct Peer {
    Conn conn = Conn::kWaiting;
    bool gone = false;
    std::atomic<bool> alive{false};
    int fd = -1;
    uint64_t next_connect_ns = 0;
    // The handshake: what was sent and what came.
    uint32_t sent = 0;
    uint32_t got = 0;
    std::byte in[kHandshakeBytes];
    bool ready_sent = false;
    // Our side.
    ibv_qp* qp = nullptr;
    uint32_t psn = 0;  // our first packet sequence number on it (24 bits)
    ibv_mr* inbox_mr = nullptr;
    std::byte* inbox = nullptr;  // kInboxHeaderBytes + log_bytes
    InboxWords* words = nullptr;
    uint64_t received = 0;  // the tail word as poll() last loaded it: the subscription's limit
    std::atomic<uint64_t> released{0};  // our released position in its log (the subscription's)
    // Its released position in our log, once both copies agreed: what our LogWriter counts.
    std::atomic<uint64_t> position{0};
    dgram::ReplicaSubscription sub;
    // The peer's side, from its hello.
    uint64_t remote_inbox = 0;
    uint32_t remote_rkey = 0;
    // The send queue: posted and completed work requests (free-running).
    uint64_t posted = 0;
    uint64_t completed = 0;
    uint64_t last_signalled = 0;
    uint64_t pushed = 0;         // our log: bytes below this were written to the peer
    uint64_t position_sent = 0;  // our released position in its log, as last written
    uint64_t heartbeat_sent_ns = 0;
    uint64_t seen_tail = 0, seen_position = 0, seen_heartbeat = 0;
    uint64_t last_heard_ns = kNever;
    std::string error;  // why it failed, for describe()
  };

  explicit RdmaTransport(const RdmaOptions& options);
  Status setup();
  Status open_device();
  Status register_memory();
  Status create_queue_pairs();
  Status open_sockets();
  void teardown() noexcept;

  // rdma_connect.cc: the out-of-band TCP handshake, as a non-blocking state machine.
  void manage_connections(uint64_t now_ns) noexcept;
  void try_connect(MemberId peer, uint64_t now_ns) noexcept;
  void accept_pending() noexcept;
  void advance_handshake(MemberId peer) noexcept;
  void read_pending_hello(uint32_t slot) noexcept;
  void fill_hello(MemberId peer, std::byte* out) const noexcept;
  bool check_hello(const std::byte* in, MemberId expected, std::string* why) const;
  bool bring_up_qp(MemberId peer, const std::byte* hello, std::string* why) noexcept;
  void check_connection(MemberId peer) noexcept;
  void fail_peer(MemberId peer, const std::string& why) noexcept;
  bool reset_qp(MemberId peer) noexcept;
  void close_fd(int* fd) noexcept;

  // rdma_datapath.cc
  uint32_t reap_completions() noexcept;
  uint32_t push(MemberId peer, uint64_t now_ns) noexcept;

  RdmaOptions options_;
  uint64_t group_id_ = 0;
  uint64_t incarnation_ = 0;
  sockaddr_in addrs_[kMaxMembers] = {};

  ibv_context* ctx_ = nullptr;
  ibv_pd* pd_ = nullptr;
  ibv_cq* cq_ = nullptr;
  uint32_t port_num_ = 0;
  int32_t gid_index_ = 0;
  std::byte gid_[16] = {};
  uint16_t lid_ = 0;
  uint8_t mtu_ = 0;  // enum ibv_mtu
  bool roce_ = false;
  uint32_t max_inline_ = 0;
  std::string device_description_;

  std::byte* log_mem_ = nullptr;
  ibv_mr* log_mr_ = nullptr;
  LogWriter publication_;
  std::byte* inbox_mem_ = nullptr;  // every peer's inbox, each page-aligned
  size_t inbox_stride_ = 0;
  size_t mapped_bytes_ = 0;
  std::atomic<uint64_t> heartbeat_{0};

  Peer peers_[kMaxMembers];
  int listen_fd_ = -1;
  static constexpr uint32_t kMaxPending = kMaxMembers;
  int pending_fds_[kMaxPending];
  uint32_t pending_got_[kMaxPending] = {};
  std::byte pending_in_[kMaxPending][kHelloBytes];
  uint64_t next_manage_ns_ = 0;
  uint32_t connected_count_ = 0;
  uint32_t failed_bits_ = 0;

  udp::UdpControlChannel control_;  // the control core's

  Stats stats_;
};

}  // namespace cohort::transport::rdma
