// DpdkTransport: cohort's logs over a DPDK port (DESIGN.md, "Transports"), kernel bypass. It
// runs the same engine as the udp transport (transport/dgram) over DpdkPort, which wraps each
// datagram in Ethernet + IPv4 + UDP itself, so the frames on the wire are exactly the udp
// transport's: a dpdk member and a udp member of one group interoperate. Members are the same
// "a.b.c.d:port" list as UdpOptions; this member's entry is the address the port answers for
// (ARP included). NOTES.md beside this file gives the EAL arguments, ARP and the limits.
//
// DPDK headers stay out of this header (they are not clean under our warnings): the port
// keeps its mbufs and pool behind forward declarations.
//
// The control channel answers on port + 1, as the udp transport's second socket does, so
// control datagrams go both ways between a dpdk member and a udp member. There is one RX and
// one TX queue, and the data core owns both: it hands received control datagrams to the control
// core through a ControlQueue (control_queue.h), and sends the control core's datagrams, handed
// over through another, on its next flush(). Neither side takes a lock; a data frame costs
// nothing more than before, and each flush() one look at a ring slot.
//
// Threads: create() and the destructor on the control path. The data core alone calls
// publication(), subscription(), poll(), flush(), declare_gone() and the data stats; the control
// core alone calls send_control(), poll_control() and control_stats(), as with UdpTransport.
// One thread may call both sets. The EAL is started once per process, by the first create();
// later ones reuse it.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "runtime/cache_line.h"
#include "runtime/result.h"
#include "transport/dgram/dgram_engine.h"
#include "transport/dgram/port.h"
#include "transport/dpdk/control_queue.h"
#include "transport/dpdk/ipv4_reassembly.h"
#include "transport/fault/fault_port.h"
#include "transport/log/log.h"
#include "transport/transport.h"
#include "transport/wire/frame.h"

struct rte_mbuf;
struct rte_mempool;

namespace cohort::transport::dpdk {

struct DpdkOptions {
  // Passed to rte_eal_init after argv[0], e.g. {"--no-huge", "--no-pci", "-m", "256",
  // "--file-prefix", "m0", "--vdev=net_memif0,role=server,socket=/tmp/x.sock"}. Used only by
  // the first create() of the process (the EAL starts once); the --file-prefix must differ
  // between the processes of one host.
  std::vector<std::string> eal_args;
  uint16_t port_index = 0;  // among the ports the EAL found (rte_eth_dev_count_avail)
  // "a.b.c.d:port" for each member, as UdpOptions::members; member i is entry i.
  std::vector<std::string> members;
  MemberId self = 0;
  std::string group;                // [A-Za-z0-9_.-], 1..64 characters
  uint64_t log_bytes = 1ull << 20;  // a power of two, the same for every member
  uint32_t mtu_payload = 1400;      // log bytes per DATA frame; the Ethernet frame must fit an mbuf
  uint32_t mbufs = 4096;            // the pool, allocated at create(): RX ring + TX in flight
  // Data bytes of each mbuf (DPDK's default, 2048, holds a 1514-byte frame). net_af_packet
  // hands over IPv4 datagrams the kernel has already reassembled (PACKET_FANOUT_FLAG_DEFRAG),
  // cut at its framesz: to receive a kernel peer's control datagrams over ~1.9 KB through it,
  // give the vdev framesz=16384,blocksz=16384 and this 16384 (NOTES.md).
  uint32_t mbuf_bytes = 2048;
  uint16_t rx_descriptors = 1024;
  uint16_t tx_descriptors = 1024;
  // create() waits this long for the link (memif: until the peer process connects). 0: no wait.
  uint64_t link_wait_ms = 10'000;
  uint64_t arp_retry_ns = 20'000'000;  // ARP request again for a peer still unresolved
  dgram::DgramTimers timers;
  fault::FaultOptions fault;  // all rates 0 (off) by default; as UdpOptions::fault
};

// One DPDK port, one RX and one TX queue, as a datagram port (transport/dgram/port.h).
class DpdkPort {
 public:
  struct Stats {
    uint64_t tx_datagrams = 0;
    uint64_t tx_full = 0;    // the TX ring or the pool was full: the engine sends again
    uint64_t tx_no_arp = 0;  // peer's MAC not yet known: dropped, an ARP request went out
    uint64_t tx_arp_requests = 0;
    uint64_t tx_arp_replies = 0;
    uint64_t tx_arp_lost = 0;    // an ARP frame the TX ring did not take (retried by timer)
    uint64_t rx_frames = 0;      // everything rte_eth_rx_burst returned
    uint64_t rx_datagrams = 0;   // UDP to our address and data port, handed to the engine
    uint64_t rx_arp = 0;         // ARP frames processed
    uint64_t rx_not_for_us = 0;  // other MACs, ethertypes, IPs, ports, protocols (IPv6 noise)
    uint64_t rx_malformed = 0;   // bad IPv4 checksum or lengths, chains
    uint64_t rx_truncated = 0;   // IPv4 longer than the frame: a PMD cut it (af_packet framesz)
    // The control channel's frames, as the data core sees them (the control core's own counts
    // are DpdkTransport::ControlStats).
    uint64_t rx_control = 0;             // control datagrams handed to the control core
    uint64_t rx_control_queue_full = 0;  // the control core had every slot: dropped
    uint64_t rx_control_too_large = 0;   // over a control frame (48 + kMaxControlBytes): dropped
    uint64_t rx_fragments = 0;           // IPv4 fragments to our address (control datagrams)
    uint64_t rx_fragmented_data = 0;     // a reassembled datagram not to our control port
    uint64_t tx_control = 0;             // control datagrams put on the wire
    uint64_t tx_control_frames = 0;      // their Ethernet frames (fragments count one each)
    uint64_t tx_control_no_arp = 0;      // the peer's MAC not yet known: dropped, ARP asked
    uint64_t tx_control_full = 0;        // the TX ring or the pool was full: retried next flush
  };

  DpdkPort() = default;
  DpdkPort(const DpdkPort&) = delete;
  DpdkPort& operator=(const DpdkPort&) = delete;
  ~DpdkPort();

  uint32_t send_burst(const dgram::TxDatagram* tx, uint32_t n, uint64_t now_ns) noexcept;
  uint32_t recv_burst(dgram::RxDatagram* rx, uint32_t max, uint64_t now_ns) noexcept;
  const Stats& stats() const noexcept { return stats_; }
  // The peer's MAC is known (ARP answered, or a frame seen from its address).
  bool resolved(MemberId peer) const noexcept { return peer < members_ && peers_[peer].mac_known; }
  uint16_t port_id() const noexcept { return port_id_; }
  const Ipv4Reassembly::Stats& reassembly_stats() const noexcept { return reassembly_.stats(); }

  // Control channel, data core side (dpdk_control.cc): sends up to a burst of the datagrams
  // the control core queued, in order; returns how many were done with. When the TX ring or
  // the pool is full, the datagram waits (its remaining fragments with it) for the next call.
  uint32_t send_control_queued(uint64_t now_ns) noexcept;

 private:
  friend class DpdkTransport;
  static constexpr uint32_t kTxChunk = 64;
  static constexpr uint32_t kRxMax = dgram::kRxBurst;
  // Control datagrams sent per flush: a few per millisecond arrive at most.
  static constexpr uint32_t kControlTxBurst = 16;

  struct Peer {
    uint32_t ip_be = 0;            // network order
    uint16_t udp_port_be = 0;      // network order
    uint16_t control_port_be = 0;  // udp_port + 1, network order
    uint8_t mac[6] = {};
    bool mac_known = false;
    uint64_t next_arp_ns = 0;
  };

  // Datapath helpers (dpdk_datapath.cc).
  MemberId member_of(uint32_t ip_be, uint16_t port_be) const noexcept;
  void learn(uint32_t ip_be, const uint8_t* mac) noexcept;
  void handle_arp(const std::byte* frame, uint32_t len) noexcept;
  void send_arp(uint16_t op, const uint8_t* dst_mac, uint32_t target_ip_be) noexcept;
  bool accept_ipv4(rte_mbuf* m, dgram::RxDatagram* out, uint64_t now_ns) noexcept;
  rte_mbuf* build_udp(const Peer& peer, const dgram::TxDatagram& d) noexcept;
  void request_arp(Peer* peer, uint64_t now_ns) noexcept;
  // Control channel helpers (dpdk_control.cc).
  MemberId control_member_of(uint32_t ip_be, uint16_t port_be) const noexcept;
  void accept_fragment(const std::byte* ip, uint32_t ip_len, uint64_t now_ns) noexcept;
  void accept_control(uint32_t src_ip_be, std::span<const std::byte> udp) noexcept;
  bool send_control_datagram(uint64_t now_ns) noexcept;

  bool started_ = false;
  uint16_t port_id_ = 0;
  rte_mempool* pool_ = nullptr;
  uint8_t self_mac_[6] = {};
  uint32_t self_ip_be_ = 0;
  uint16_t self_port_be_ = 0;
  uint16_t self_control_port_be_ = 0;
  uint16_t ip_id_ = 0;
  uint64_t arp_retry_ns_ = 0;
  uint32_t members_ = 0;
  MemberId self_ = 0;
  Peer peers_[kMaxMembers];
  rte_mbuf* rx_held_[kRxMax] = {};  // the last burst's datagrams: valid until the next recv
  uint32_t rx_held_n_ = 0;
  // The control channel's hand-over (owned by DpdkTransport): the data core produces into
  // control_rx_ and consumes control_tx_.
  ControlQueue* control_rx_ = nullptr;
  ControlQueue* control_tx_ = nullptr;
  // The datagram being sent (taken from control_tx_, not yet released): the byte of its UDP
  // datagram where the next fragment starts, and its IPv4 id, kept while it waits for room.
  bool control_pending_ = false;
  ControlQueue::Entry control_entry_ = {};
  uint32_t control_offset_ = 0;
  uint16_t control_ip_id_ = 0;
  Ipv4Reassembly reassembly_;
  Stats stats_;
};

static_assert(dgram::DatagramPort<DpdkPort>);

class DpdkTransport {
 public:
  using Port = fault::FaultPort<DpdkPort>;
  using Engine = dgram::DgramEngine<Port>;

  // Starts the EAL (first call in the process), configures and starts the port, creates the
  // mbuf pool and the engine, waits for the link. Errors name the option, value and fix.
  static Result<std::unique_ptr<DpdkTransport>> create(const DpdkOptions& options);
  ~DpdkTransport() = default;
  DpdkTransport(const DpdkTransport&) = delete;
  DpdkTransport& operator=(const DpdkTransport&) = delete;

  MemberId self() const noexcept { return options_.self; }
  uint32_t members() const noexcept { return static_cast<uint32_t>(options_.members.size()); }

  // Data path (the data core), as UdpTransport's.
  LogWriter& publication() noexcept { return engine_->publication(); }
  dgram::ReplicaSubscription* subscription(MemberId peer) noexcept {
    return engine_->subscription(peer);
  }
  // Receives and processes one burst (control datagrams in it go to the control core).
  uint32_t poll(uint64_t now_ns) noexcept { return engine_->poll(now_ns); }
  // Sends what is due, and the control datagrams the control core queued since the last call.
  uint32_t flush(uint64_t now_ns) noexcept {
    return engine_->flush(now_ns) + port_.send_control_queued(now_ns);
  }
  void declare_gone(MemberId peer) noexcept { engine_->declare_gone(peer); }
  uint64_t last_heard_ns(MemberId peer) const noexcept {
    return engine_->log().last_heard_ns(peer);
  }

  const dgram::DgramLog& log() const noexcept { return engine_->log(); }
  const DpdkPort::Stats& port_stats() const noexcept { return port_.stats(); }
  const DpdkPort& port() const noexcept { return port_; }
  const fault::FaultInjector& faults() const noexcept { return fault_port_->injector(); }

  // Control channel (the control core): small datagrams to one peer, never blocking. The
  // datagram is a kControl frame to the peer's port + 1, as UdpTransport sends it; it goes on
  // the wire at the data core's next flush(). kWouldBlock: every TX slot is queued (the data
  // core is not flushing); kNoPeer: self or no such member. A peer whose MAC is not known yet
  // loses it (counted in port_stats().tx_control_no_arp; ARP is asked), as a lost datagram.
  SendStatus send_control(MemberId to, std::span<const std::byte> bytes) noexcept;
  // Up to max datagrams that arrived; valid until the next call. Anything that is not an
  // intact kControl frame of this group from a member's control address is dropped, counted.
  uint32_t poll_control(ControlMessage* out, uint32_t max) noexcept;
  // Written by the control core only, on its own cache lines.
  struct alignas(kCacheLine) ControlStats {
    uint64_t sent = 0;         // queued for the data core to send
    uint64_t would_block = 0;  // every TX slot was queued
    uint64_t received = 0;
    uint64_t non_member = 0;
    uint64_t sender_mismatch = 0;
    uint64_t wrong_type = 0;
    wire::DecodeCounters decode;
  };
  const ControlStats& control_stats() const noexcept { return control_stats_; }

  // One line of counters for logs and tests (control path: it allocates; call it when neither
  // core runs, or accept counters a little stale).
  std::string describe() const;

 private:
  explicit DpdkTransport(const DpdkOptions& options) : options_(options) {}
  Status setup();
  Status open_port();
  Status setup_control();

  static constexpr uint32_t kControlBatch = 32;  // datagrams per poll_control()
  // Slots in each direction: a power of two (the rings'), and at least a batch.
  static constexpr uint32_t kControlRxSlots = 64;
  static constexpr uint32_t kControlTxSlots = 32;
  static constexpr uint32_t kControlFrameBytes =
      static_cast<uint32_t>(wire::kFrameHeaderSize) + kMaxControlBytes;
  static_assert(kControlRxSlots >= kControlBatch);

  DpdkOptions options_;
  uint64_t group_id_ = 0;
  DpdkPort port_;
  std::optional<Port> fault_port_;
  std::optional<Engine> engine_;

  // The control core's: the hand-over queues (the port holds pointers for the data core's
  // side), the frame sequence, and the slots handed out by the last poll_control().
  std::unique_ptr<ControlQueue> control_rx_;
  std::unique_ptr<ControlQueue> control_tx_;
  alignas(kCacheLine) uint64_t control_seq_ = 0;  // off the data core's lines
  ControlQueue::Entry control_held_[kControlBatch] = {};
  uint32_t control_held_n_ = 0;
  ControlStats control_stats_;
};

}  // namespace cohort::transport::dpdk
