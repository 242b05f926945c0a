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
// Threads: create() and the destructor on the control path; everything else on the data core.
// The EAL is started once per process, by the first create(); later ones reuse it.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "runtime/result.h"
#include "transport/dgram/dgram_engine.h"
#include "transport/dgram/port.h"
#include "transport/log/log.h"
#include "transport/transport.h"

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
  uint16_t rx_descriptors = 1024;
  uint16_t tx_descriptors = 1024;
  // create() waits this long for the link (memif: until the peer process connects). 0: no wait.
  uint64_t link_wait_ms = 10'000;
  uint64_t arp_retry_ns = 20'000'000;  // ARP request again for a peer still unresolved
  dgram::DgramTimers timers;
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
    uint64_t tx_arp_lost = 0;      // an ARP frame the TX ring did not take (retried by timer)
    uint64_t rx_frames = 0;        // everything rte_eth_rx_burst returned
    uint64_t rx_datagrams = 0;     // UDP to our address and data port, handed to the engine
    uint64_t rx_arp = 0;           // ARP frames processed
    uint64_t rx_not_for_us = 0;    // other MACs, ethertypes, IPs, ports, protocols (IPv6 noise)
    uint64_t rx_control_port = 0;  // UDP to our port + 1: the control channel, not served here
    uint64_t rx_malformed = 0;     // truncated, bad IPv4 checksum or lengths, fragments, chains
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

 private:
  friend class DpdkTransport;
  static constexpr uint32_t kTxChunk = 64;
  static constexpr uint32_t kRxMax = dgram::kRxBurst;

  struct Peer {
    uint32_t ip_be = 0;        // network order
    uint16_t udp_port_be = 0;  // network order
    uint8_t mac[6] = {};
    bool mac_known = false;
    uint64_t next_arp_ns = 0;
  };

  // Datapath helpers (dpdk_datapath.cc).
  MemberId member_of(uint32_t ip_be, uint16_t port_be) const noexcept;
  void learn(uint32_t ip_be, const uint8_t* mac) noexcept;
  void handle_arp(const std::byte* frame, uint32_t len) noexcept;
  void send_arp(uint16_t op, const uint8_t* dst_mac, uint32_t target_ip_be) noexcept;
  bool accept_udp(rte_mbuf* m, dgram::RxDatagram* out) noexcept;
  rte_mbuf* build_udp(const Peer& peer, const dgram::TxDatagram& d) noexcept;

  bool started_ = false;
  uint16_t port_id_ = 0;
  rte_mempool* pool_ = nullptr;
  uint8_t self_mac_[6] = {};
  uint32_t self_ip_be_ = 0;
  uint16_t self_port_be_ = 0;
  uint16_t ip_id_ = 0;
  uint64_t arp_retry_ns_ = 0;
  uint32_t members_ = 0;
  MemberId self_ = 0;
  Peer peers_[kMaxMembers];
  rte_mbuf* rx_held_[kRxMax] = {};  // the last burst's datagrams: valid until the next recv
  uint32_t rx_held_n_ = 0;
  Stats stats_;
};

static_assert(dgram::DatagramPort<DpdkPort>);

class DpdkTransport {
 public:
  using Engine = dgram::DgramEngine<DpdkPort>;

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
  uint32_t poll(uint64_t now_ns) noexcept { return engine_->poll(now_ns); }
  uint32_t flush(uint64_t now_ns) noexcept { return engine_->flush(now_ns); }
  void declare_gone(MemberId peer) noexcept { engine_->declare_gone(peer); }
  uint64_t last_heard_ns(MemberId peer) const noexcept {
    return engine_->log().last_heard_ns(peer);
  }

  const dgram::DgramLog& log() const noexcept { return engine_->log(); }
  const DpdkPort::Stats& port_stats() const noexcept { return port_.stats(); }
  const DpdkPort& port() const noexcept { return port_; }

  // One line of counters for logs and tests (control path: it allocates).
  std::string describe() const;

 private:
  explicit DpdkTransport(const DpdkOptions& options) : options_(options) {}
  Status setup();
  Status open_port();

  DpdkOptions options_;
  DpdkPort port_;
  std::optional<Engine> engine_;
};

}  // namespace cohort::transport::dpdk
