// Setup of the dpdk transport: the EAL (once per process), the port with one RX and one TX
// queue, the mbuf pool, the addresses, the control channel's queues, the fault decorator and the
// engine. Control path only.
#include <arpa/inet.h>
#include <rte_arp.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_ether.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>

#include <chrono>
#include <cstring>
#include <string>
#include <thread>

#include "runtime/log.h"
#include "transport/dpdk/dpdk_transport.h"
#include "transport/fault/fault_engine.h"
#include "transport/udp/udp_transport.h"
#include "transport/wire/frame.h"

namespace cohort::transport::dpdk {

namespace {

const uint8_t kBroadcastMac[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

// Ethernet 14 + IPv4 20 + UDP 8 around each datagram.
constexpr uint32_t kHeadersBytes = 42;

// The EAL can start once per process; the first create() starts it and later ones reuse it.
// Control path, one thread: no lock (create() is documented as such).
bool g_eal_started = false;
std::string g_eal_args;

std::string joined(const std::vector<std::string>& args) {
  std::string s;
  for (const auto& a : args) s += (s.empty() ? "" : " ") + a;
  return s;
}

Status start_eal(const std::vector<std::string>& args) {
  if (g_eal_started) return {};
  // rte_eal_init may keep pointers into argv (and permutes it): the strings live as long as
  // the process, in storage made once.
  static std::vector<std::string> storage;
  static std::vector<char*> argv;
  storage.clear();
  storage.push_back("cohort");
  storage.insert(storage.end(), args.begin(), args.end());
  argv.clear();
  for (auto& s : storage) argv.push_back(s.data());
  argv.push_back(nullptr);
  const int rc = rte_eal_init(static_cast<int>(storage.size()), argv.data());
  if (rc < 0) {
    return Error(Errc::kUnavailable, "dpdk: EAL init failed (" +
                                         std::string(rte_strerror(rte_errno)) + ") with args '" +
                                         joined(args) +
                                         "'; check eal_args (here: --no-huge --no-pci -m 256 "
                                         "--file-prefix NAME --vdev=...) and run as root");
  }
  g_eal_started = true;
  g_eal_args = joined(args);
  return {};
}

// The ports' ids in order (RTE_ETH_FOREACH_DEV's macro is not clean under our warnings).
std::vector<uint16_t> port_ids() {
  std::vector<uint16_t> ids;
  for (uint32_t id = 0; id < RTE_MAX_ETHPORTS; ++id) {
    if (rte_eth_dev_is_valid_port(static_cast<uint16_t>(id)) != 0) {
      ids.push_back(static_cast<uint16_t>(id));
    }
  }
  return ids;
}

std::string port_list() {
  std::string s;
  for (const uint16_t id : port_ids()) {
    char name[RTE_ETH_NAME_MAX_LEN] = {};
    rte_eth_dev_get_name_by_port(id, name);
    s += (s.empty() ? "" : ", ") + std::to_string(id) + " " + name;
  }
  return s.empty() ? "none" : s;
}

// Starts the port and waits up to wait_ms for its link (0: start only). Frames sent before the
// link is up are lost. A memif client fails to start while the server's socket does not exist
// yet (EPERM), and is disconnected for good when it connects in the instant before the server
// registered its interface ("ID 0 not found"): so a failed start is retried, and a link still
// down is restarted (stop, start: the client connects again) at growing intervals.
Status start_and_wait_link(uint16_t id, uint64_t wait_ms, const std::string& what) {
  using Clock = std::chrono::steady_clock;
  const auto begin = Clock::now();
  const auto deadline = begin + std::chrono::milliseconds(wait_ms);
  auto restart_at = begin;
  uint64_t restart_ms = 250;
  auto retry_at = begin;
  bool started = false;
  for (;;) {
    const auto now = Clock::now();
    if (!started && now >= retry_at) {
      const int rc = rte_eth_dev_start(id);
      started = rc == 0;
      if (started) restart_at = now + std::chrono::milliseconds(restart_ms);
      if (!started && now >= deadline) {
        return Error(Errc::kUnavailable,
                     what + ": start failed: " + rte_strerror(-rc) +
                         " (memif client: no server on the socket yet); start the peer, or raise "
                         "link_wait_ms");
      }
      // Not faster than this: a memif server of DPDK 22.11 was seen to panic in its interrupt
      // thread when a client connected and went away again within milliseconds.
      retry_at = now + std::chrono::milliseconds(200);
    }
    rte_eth_link link{};
    if (started && (wait_ms == 0 || (rte_eth_link_get_nowait(id, &link) == 0 &&
                                     link.link_status == RTE_ETH_LINK_UP))) {
      return {};
    }
    if (now >= deadline) {
      if (started) rte_eth_dev_stop(id);
      return Error(Errc::kUnavailable,
                   what + ": link still down after " + std::to_string(wait_ms) +
                       " ms; is the peer running (memif: the other role on the same socket; "
                       "af_packet: the interface up)? raise link_wait_ms if it starts later");
    }
    if (started && now >= restart_at) {
      rte_eth_dev_stop(id);
      started = false;
      restart_ms = restart_ms < 2000 ? restart_ms * 2 : restart_ms;
      retry_at = now + std::chrono::milliseconds(50);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

}  // namespace

DpdkPort::~DpdkPort() {
  for (uint32_t i = 0; i < rx_held_n_; ++i) rte_pktmbuf_free(rx_held_[i]);
  rx_held_n_ = 0;
  if (started_) {
    rte_eth_dev_stop(port_id_);
    rte_eth_dev_close(port_id_);
  }
  if (pool_ != nullptr) rte_mempool_free(pool_);
}

Result<std::unique_ptr<DpdkTransport>> DpdkTransport::create(const DpdkOptions& options) {
  std::unique_ptr<DpdkTransport> t(new DpdkTransport(options));
  COHORT_TRY(t->setup());
  return t;
}

Status DpdkTransport::setup() {
  const DpdkOptions& o = options_;
  const auto n = static_cast<uint32_t>(o.members.size());
  COHORT_TRY(check_group_and_self("dpdk", o.group, o.self, n));
  const uint64_t frame_bytes = wire::frame_size(o.mtu_payload) + kHeadersBytes;
  // 1514: the largest frame we send (data, or a control fragment); DPDK's data room is 16 bits.
  if (o.mbuf_bytes < RTE_ETHER_MAX_LEN - 4 || o.mbuf_bytes > UINT16_MAX - RTE_PKTMBUF_HEADROOM) {
    return Error(Errc::kInvalidArgument,
                 "dpdk: mbuf_bytes " + std::to_string(o.mbuf_bytes) +
                     " cannot hold a 1514-byte frame or is over DPDK's 16-bit data room; use "
                     "2048 (the default), or 16384 for af_packet with framesz=16384");
  }
  if (frame_bytes > o.mbuf_bytes || frame_bytes > RTE_ETHER_MAX_LEN - 4) {
    return Error(Errc::kInvalidArgument,
                 "dpdk: mtu_payload " + std::to_string(o.mtu_payload) + " makes " +
                     std::to_string(frame_bytes) +
                     "-byte Ethernet frames, over the 1514 a port takes; use at most 1400");
  }
  port_.members_ = n;
  port_.self_ = o.self;
  for (MemberId m = 0; m < n; ++m) {
    auto a = udp::parse_endpoint(o.members[m]);
    if (!a.ok())
      return std::move(a).error().with_context("dpdk: member " + std::to_string(m) + " ");
    port_.peers_[m].ip_be = a->sin_addr.s_addr;
    port_.peers_[m].udp_port_be = a->sin_port;
    // parse_endpoint() takes ports up to 65534 only, so port + 1 exists.
    port_.peers_[m].control_port_be = htons(static_cast<uint16_t>(ntohs(a->sin_port) + 1));
  }
  port_.self_ip_be_ = port_.peers_[o.self].ip_be;
  port_.self_port_be_ = port_.peers_[o.self].udp_port_be;
  port_.self_control_port_be_ = port_.peers_[o.self].control_port_be;
  // Our own entry never needs ARP.
  port_.peers_[o.self].mac_known = true;

  if (o.mbufs < static_cast<uint32_t>(o.rx_descriptors) + 2 * DpdkPort::kTxChunk + 512) {
    return Error(Errc::kInvalidArgument,
                 "dpdk: mbufs " + std::to_string(o.mbufs) + " cannot fill " +
                     std::to_string(o.rx_descriptors) +
                     " RX descriptors and leave room to send; raise mbufs or lower rx_descriptors");
  }
  port_.arp_retry_ns_ = o.arp_retry_ns;
  group_id_ = dgram::group_id_of(o.group.c_str());
  COHORT_TRY(setup_control());
  COHORT_TRY(start_eal(o.eal_args));
  COHORT_TRY(open_port());

  COHORT_TRY(
      fault::start_engine_behind_faults("dpdk", o, group_id_, &port_, &fault_port_, &engine_));
  return {};
}

// The control channel's two hand-over queues (control_queue.h): received datagrams for the
// control core, datagrams to send for the data core. All their memory is taken here.
Status DpdkTransport::setup_control() {
  auto rx = ControlQueue::create(kControlRxSlots, kControlFrameBytes);
  if (!rx.ok()) return std::move(rx).error().with_context("dpdk: control queue: ");
  auto tx = ControlQueue::create(kControlTxSlots, kControlFrameBytes);
  if (!tx.ok()) return std::move(tx).error().with_context("dpdk: control queue: ");
  control_rx_ = std::move(rx).value();
  control_tx_ = std::move(tx).value();
  port_.control_rx_ = control_rx_.get();
  port_.control_tx_ = control_tx_.get();
  return {};
}

Status DpdkTransport::open_port() {
  const DpdkOptions& o = options_;
  const std::vector<uint16_t> ids = port_ids();
  if (o.port_index >= ids.size()) {
    return Error(Errc::kNotFound, "dpdk: port " + std::to_string(o.port_index) +
                                      " not found after EAL init (ports: " + port_list() +
                                      "; EAL args: '" + g_eal_args +
                                      "'); check --vdev in eal_args and port_index");
  }
  const uint16_t id = ids[o.port_index];
  DpdkPort& p = port_;
  p.port_id_ = id;
  const std::string what = "dpdk: port " + std::to_string(id) + " (" + port_list() + ")";

  const std::string pool_name = "cohort_pool_" + std::to_string(id);
  p.pool_ = rte_pktmbuf_pool_create(pool_name.c_str(), o.mbufs, 256, 0,
                                    static_cast<uint16_t>(RTE_PKTMBUF_HEADROOM + o.mbuf_bytes),
                                    static_cast<int>(rte_socket_id()));
  if (p.pool_ == nullptr) {
    return Error(Errc::kUnavailable, "dpdk: cannot create a pool of " + std::to_string(o.mbufs) +
                                         " mbufs (" + rte_strerror(rte_errno) +
                                         "); give the EAL more memory (-m) or lower mbufs");
  }
  rte_eth_conf conf{};
  int rc = rte_eth_dev_configure(id, 1, 1, &conf);
  if (rc < 0) return Error(Errc::kUnavailable, what + ": configure failed: " + rte_strerror(-rc));
  uint16_t rxd = o.rx_descriptors;
  uint16_t txd = o.tx_descriptors;
  rte_eth_dev_adjust_nb_rx_tx_desc(id, &rxd, &txd);
  const int socket = rte_eth_dev_socket_id(id);
  const unsigned sock = socket < 0 ? 0u : static_cast<unsigned>(socket);
  rc = rte_eth_rx_queue_setup(id, 0, rxd, sock, nullptr, p.pool_);
  if (rc < 0)
    return Error(Errc::kUnavailable, what + ": RX queue setup failed: " + rte_strerror(-rc));
  rc = rte_eth_tx_queue_setup(id, 0, txd, sock, nullptr);
  if (rc < 0)
    return Error(Errc::kUnavailable, what + ": TX queue setup failed: " + rte_strerror(-rc));
  COHORT_TRY(start_and_wait_link(id, o.link_wait_ms, what));
  p.started_ = true;
  // Promiscuous, so a port whose MAC is not the one a peer learned still hears it; our own
  // filter decides what is for us. Not every PMD has it (memif): that is fine.
  (void)rte_eth_promiscuous_enable(id);
  rte_ether_addr mac{};
  rte_eth_macaddr_get(id, &mac);
  std::memcpy(p.self_mac_, mac.addr_bytes, 6);
  // Ask for every peer's MAC now, so the first data frames need not wait for a send to ask;
  // send_burst() asks again every arp_retry_ns while a peer stays unresolved.
  for (MemberId m = 0; m < p.members_; ++m) {
    if (!p.peers_[m].mac_known) p.send_arp(RTE_ARP_OP_REQUEST, kBroadcastMac, p.peers_[m].ip_be);
  }
  char ip[INET_ADDRSTRLEN] = {};
  inet_ntop(AF_INET, &p.self_ip_be_, ip, sizeof ip);
  COHORT_LOG_INFO("dpdk: member {} on port {} mac {:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x} ip {}",
                  o.self, id, p.self_mac_[0], p.self_mac_[1], p.self_mac_[2], p.self_mac_[3],
                  p.self_mac_[4], p.self_mac_[5], ip);
  return {};
}

std::string DpdkTransport::describe() const {
  const dgram::DgramStats& s = log().stats();
  const DpdkPort::Stats& p = port_stats();
  auto u = [](uint64_t v) { return std::to_string(v); };
  const fault::FaultStats& f = faults().stats();
  const Ipv4Reassembly::Stats& r = port_.reassembly_stats();
  const ControlStats& c = control_stats_;
  return "tx data " + u(s.tx_data_frames) + " repairs " + u(s.tx_repair_frames) + " nacks " +
         u(s.tx_nacks) + " status " + u(s.tx_status) + " heartbeats " + u(s.tx_heartbeats) +
         " refused " + u(s.tx_refused) + "; rx data " + u(s.rx_data_frames) + " duplicates " +
         u(s.rx_duplicate) + " nacks " + u(s.rx_nacks) + " decode drops " + u(s.decode.dropped()) +
         "; faults seed " + u(faults().seed()) + " dropped " + u(f.dropped) + " duplicated " +
         u(f.duplicated) + " reordered " + u(f.reordered) + " delayed " + u(f.delayed) +
         "; port tx " + u(p.tx_datagrams) + " full " + u(p.tx_full) + " no-arp " + u(p.tx_no_arp) +
         " arp req " + u(p.tx_arp_requests) + " arp rep " + u(p.tx_arp_replies) + " arp lost " +
         u(p.tx_arp_lost) + "; rx frames " + u(p.rx_frames) + " datagrams " + u(p.rx_datagrams) +
         " arp " + u(p.rx_arp) + " not-for-us " + u(p.rx_not_for_us) + " malformed " +
         u(p.rx_malformed) + " truncated " + u(p.rx_truncated) + "; control sent " + u(c.sent) +
         " would-block " + u(c.would_block) + " wire " + u(p.tx_control) + " frames " +
         u(p.tx_control_frames) + " no-arp " + u(p.tx_control_no_arp) + " full " +
         u(p.tx_control_full) + "; control rx " + u(p.rx_control) + " received " + u(c.received) +
         " queue-full " + u(p.rx_control_queue_full) + " too-large " + u(p.rx_control_too_large) +
         " non-member " + u(c.non_member) + " mismatch " + u(c.sender_mismatch) + " wrong-type " +
         u(c.wrong_type) + " decode drops " + u(c.decode.dropped()) + "; fragments " +
         u(p.rx_fragments) + " reassembled " + u(r.completed) + " malformed " + u(r.malformed) +
         " too-large " + u(r.too_large) + " expired " + u(r.expired) + " evicted " + u(r.evicted) +
         " data " + u(p.rx_fragmented_data);
}

}  // namespace cohort::transport::dpdk
