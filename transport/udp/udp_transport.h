// UdpTransport: cohort's logs over kernel UDP (DESIGN.md, "Transports"). Members are IPv4
// address:port pairs, member i being the i-th; each member binds two sockets:
//   port      the data socket: DATA, NACK, STATUS and heartbeat frames of the replicated logs,
//             in bursts with sendmmsg/recvmmsg; owned by the data core
//   port + 1  the control channel: kControl frames (heartbeats of the membership layer,
//             view-change messages); owned by the control core
// The reliable log itself (fragmentation, NACK repair, flow control) is transport/dgram, the
// same engine the dpdk transport runs, so both put identical frames on the wire. NOTES.md
// beside this file gives the frames, the timers and the reasons for two sockets.
//
// Threads: create() and the destructor on the control path. The data core alone calls
// publication(), subscription(), poll(), flush(), declare_gone() and the data stats; the
// control core alone calls send_control() and poll_control(). The two share no mutable state.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "runtime/result.h"
#include "transport/dgram/dgram_engine.h"
#include "transport/dgram/port.h"
#include "transport/fault/fault_port.h"
#include "transport/log/log.h"
#include "transport/transport.h"
#include "transport/udp/udp_control_channel.h"
#include "transport/wire/frame.h"

namespace cohort::transport::udp {

struct UdpOptions {
  // "a.b.c.d:port" for each member; member i is entry i. The control channel listens on
  // port + 1, so a member takes two consecutive ports.
  std::vector<std::string> members;
  MemberId self = 0;
  std::string group;                // [A-Za-z0-9_.-], 1..64 characters; frames carry its hash
  uint64_t log_bytes = 1ull << 20;  // a power of two, the same for every member
  uint32_t mtu_payload = 1400;      // log bytes per DATA frame
  // Asked of the kernel for each data socket (it caps them at net.core.rmem_max/wmem_max).
  uint32_t socket_buffer_bytes = 4u << 20;
  dgram::DgramTimers timers;
  fault::FaultOptions fault;  // all rates 0 (off) by default
};

// Parses "a.b.c.d:port" (port 1..65534). The error names the text and what is expected; the
// caller puts the member in front ("udp: member 2 address 'x' is not ...").
Result<sockaddr_in> parse_endpoint(const std::string& text);

// The data socket as a datagram port (transport/dgram/port.h).
class UdpPort {
 public:
  struct Stats {
    uint64_t tx_datagrams = 0;
    uint64_t tx_would_block = 0;  // the socket buffer was full: the engine sends again later
    uint64_t tx_errors = 0;       // a datagram the kernel refused for good (counted, skipped)
    uint64_t rx_datagrams = 0;
    uint64_t rx_truncated = 0;
    uint64_t rx_errors = 0;
  };

  UdpPort() = default;
  UdpPort(const UdpPort&) = delete;
  UdpPort& operator=(const UdpPort&) = delete;
  ~UdpPort();

  uint32_t send_burst(const dgram::TxDatagram* tx, uint32_t n, uint64_t now_ns) noexcept;
  uint32_t recv_burst(dgram::RxDatagram* rx, uint32_t max, uint64_t now_ns) noexcept;
  const Stats& stats() const noexcept { return stats_; }

 private:
  friend class UdpTransport;
  // sendmmsg takes at most UIO_MAXIOV (1024) messages; 256 keeps the arrays small.
  static constexpr uint32_t kTxChunk = 256;
  // Room for the largest UDP payload, so no datagram is ever truncated.
  static constexpr uint32_t kRxSlotBytes = 65536;

  Status open(const sockaddr_in& self, uint32_t buffer_bytes, const std::string& what);
  MemberId member_of(const sockaddr_in& addr) const noexcept;

  int fd_ = -1;
  uint32_t members_ = 0;
  sockaddr_in peers_[kMaxMembers] = {};
  std::unique_ptr<mmsghdr[]> tx_msgs_;
  std::unique_ptr<iovec[]> tx_iovs_;
  std::unique_ptr<std::byte[]> rx_mem_;
  std::unique_ptr<mmsghdr[]> rx_msgs_;
  std::unique_ptr<iovec[]> rx_iovs_;
  std::unique_ptr<sockaddr_in[]> rx_addrs_;
  Stats stats_;
};

static_assert(dgram::DatagramPort<UdpPort>);

class UdpTransport {
 public:
  using Port = fault::FaultPort<UdpPort>;
  using Engine = dgram::DgramEngine<Port>;

  // Checks the options, binds both sockets, allocates every buffer. Errors say which member,
  // which address and what to change.
  static Result<std::unique_ptr<UdpTransport>> create(const UdpOptions& options);
  ~UdpTransport();
  UdpTransport(const UdpTransport&) = delete;
  UdpTransport& operator=(const UdpTransport&) = delete;

  MemberId self() const noexcept { return options_.self; }
  uint32_t members() const noexcept { return static_cast<uint32_t>(options_.members.size()); }

  // Data path (the data core).
  LogWriter& publication() noexcept { return engine_->publication(); }
  // nullptr for self, for ids out of range, and for peers declared gone.
  dgram::ReplicaSubscription* subscription(MemberId peer) noexcept {
    return engine_->subscription(peer);
  }
  // Receives and processes one burst; returns the datagrams that arrived.
  uint32_t poll(uint64_t now_ns) noexcept { return engine_->poll(now_ns); }
  // Sends what is due (call once per loop iteration, after the commits); returns datagrams.
  uint32_t flush(uint64_t now_ns) noexcept { return engine_->flush(now_ns); }
  // Liveness hook: the peer stops holding our writer back and is no longer read.
  void declare_gone(MemberId peer) noexcept { engine_->declare_gone(peer); }
  // When a valid frame last came from the peer's data port (GapTracker::kNever: never).
  uint64_t last_heard_ns(MemberId peer) const noexcept {
    return engine_->log().last_heard_ns(peer);
  }

  const dgram::DgramLog& log() const noexcept { return engine_->log(); }
  const fault::FaultInjector& faults() const noexcept { return fault_port_->injector(); }
  const UdpPort::Stats& port_stats() const noexcept { return port_.stats(); }

  // Control channel (the control core): small datagrams to one peer, never blocking.
  SendStatus send_control(MemberId to, std::span<const std::byte> bytes) noexcept {
    return control_.send(to, bytes);
  }
  // Up to max datagrams that arrived; valid until the next call. Anything that is not an
  // intact kControl frame of this group from a member's control address is dropped, counted.
  uint32_t poll_control(ControlMessage* out, uint32_t max) noexcept {
    return control_.poll(out, max);
  }
  using ControlStats = UdpControlChannel::Stats;
  const ControlStats& control_stats() const noexcept { return control_.stats(); }

  // One line of counters for logs and tests (control path: it allocates).
  std::string describe() const;

 private:
  explicit UdpTransport(const UdpOptions& options);
  Status setup();
  Status open_control_socket();

  UdpOptions options_;
  uint64_t group_id_ = 0;
  sockaddr_in addrs_[kMaxMembers] = {};  // data ports; control ports are one above

  UdpPort port_;
  std::optional<Port> fault_port_;
  std::optional<Engine> engine_;

  UdpControlChannel control_;  // the control core's
};

}  // namespace cohort::transport::udp
