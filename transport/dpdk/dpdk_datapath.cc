// The dpdk port's bursts: rte_eth_rx_burst and rte_eth_tx_burst, one call per burst (ARP frames
// aside, which are rare). Each datagram goes out as Ethernet + IPv4 (header checksum computed
// here, in software) + UDP (checksum 0, "none", which IPv4 allows) around exactly the bytes the
// udp transport would hand to sendmmsg. Never blocks, never allocates: mbufs come from the pool
// made at setup. Frames not for us are counted and freed at once.
#include <netinet/in.h>
#include <rte_arp.h>
#include <rte_byteorder.h>
#include <rte_ethdev.h>
#include <rte_ether.h>
#include <rte_ip.h>
#include <rte_mbuf.h>
#include <rte_udp.h>

#include <cstring>

#include "runtime/assert.h"
#include "transport/dpdk/dpdk_transport.h"

namespace cohort::transport::dpdk {

namespace {

constexpr uint32_t kEthBytes = sizeof(rte_ether_hdr);
constexpr uint32_t kIpBytes = sizeof(rte_ipv4_hdr);
constexpr uint32_t kUdpBytes = sizeof(rte_udp_hdr);
static_assert(kEthBytes == 14 && kIpBytes == 20 && kUdpBytes == 8);
static_assert(sizeof(rte_arp_hdr) == 28);

const uint8_t kBroadcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

bool mac_is(const uint8_t* a, const uint8_t* b) noexcept {
  return std::memcmp(a, b, 6) == 0;
}

}  // namespace

MemberId DpdkPort::member_of(uint32_t ip_be, uint16_t port_be) const noexcept {
  // At most 32 members: a linear scan beats any hash at this size.
  for (MemberId m = 0; m < members_; ++m) {
    if (peers_[m].ip_be == ip_be && peers_[m].udp_port_be == port_be) return m;
  }
  return dgram::kUnknownPeer;
}

// Every member at that IPv4 address (a udp host may run several) gets the MAC.
void DpdkPort::learn(uint32_t ip_be, const uint8_t* mac) noexcept {
  for (MemberId m = 0; m < members_; ++m) {
    if (m == self_ || peers_[m].ip_be != ip_be) continue;
    std::memcpy(peers_[m].mac, mac, 6);
    peers_[m].mac_known = true;
  }
}

void DpdkPort::send_arp(uint16_t op, const uint8_t* dst_mac, uint32_t target_ip_be) noexcept {
  rte_mbuf* m = rte_pktmbuf_alloc(pool_);
  if (m == nullptr) {
    ++stats_.tx_arp_lost;
    return;
  }
  auto* eth = rte_pktmbuf_mtod(m, rte_ether_hdr*);
  std::memcpy(eth->dst_addr.addr_bytes, dst_mac, 6);
  std::memcpy(eth->src_addr.addr_bytes, self_mac_, 6);
  eth->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_ARP);
  auto* arp = reinterpret_cast<rte_arp_hdr*>(eth + 1);
  arp->arp_hardware = rte_cpu_to_be_16(RTE_ARP_HRD_ETHER);
  arp->arp_protocol = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4);
  arp->arp_hlen = 6;
  arp->arp_plen = 4;
  arp->arp_opcode = rte_cpu_to_be_16(op);
  std::memcpy(arp->arp_data.arp_sha.addr_bytes, self_mac_, 6);
  arp->arp_data.arp_sip = self_ip_be_;
  // A request asks for the target's MAC: zeros; a reply names the requester.
  if (op == RTE_ARP_OP_REQUEST) {
    std::memset(arp->arp_data.arp_tha.addr_bytes, 0, 6);
  } else {
    std::memcpy(arp->arp_data.arp_tha.addr_bytes, dst_mac, 6);
  }
  arp->arp_data.arp_tip = target_ip_be;
  // 42 bytes; the PMD or the wire pads to the 60-byte minimum.
  m->data_len = kEthBytes + sizeof(rte_arp_hdr);
  m->pkt_len = m->data_len;
  if (rte_eth_tx_burst(port_id_, 0, &m, 1) != 1) {
    rte_pktmbuf_free(m);
    ++stats_.tx_arp_lost;
    return;
  }
  if (op == RTE_ARP_OP_REQUEST) {
    ++stats_.tx_arp_requests;
  } else {
    ++stats_.tx_arp_replies;
  }
}

// Learns the sender's MAC from any ARP frame about a member's address, and answers requests
// for our own address.
void DpdkPort::handle_arp(const std::byte* frame, uint32_t len) noexcept {
  if (len < kEthBytes + sizeof(rte_arp_hdr)) {
    ++stats_.rx_malformed;
    return;
  }
  const auto* eth = reinterpret_cast<const rte_ether_hdr*>(frame);
  const auto* arp = reinterpret_cast<const rte_arp_hdr*>(eth + 1);
  if (arp->arp_hardware != rte_cpu_to_be_16(RTE_ARP_HRD_ETHER) ||
      arp->arp_protocol != rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4) || arp->arp_hlen != 6 ||
      arp->arp_plen != 4) {
    ++stats_.rx_not_for_us;
    return;
  }
  // af_packet hands us our own broadcasts back: they teach nothing.
  if (mac_is(arp->arp_data.arp_sha.addr_bytes, self_mac_)) {
    ++stats_.rx_not_for_us;
    return;
  }
  ++stats_.rx_arp;
  learn(arp->arp_data.arp_sip, arp->arp_data.arp_sha.addr_bytes);
  if (arp->arp_opcode == rte_cpu_to_be_16(RTE_ARP_OP_REQUEST) &&
      arp->arp_data.arp_tip == self_ip_be_) {
    send_arp(RTE_ARP_OP_REPLY, arp->arp_data.arp_sha.addr_bytes, arp->arp_data.arp_sip);
  }
}

// An IPv4 frame to our address: a UDP datagram to our data port is handed to the engine (true);
// one to our control port, and fragments (which only control datagrams make), go to the control
// channel (dpdk_control.cc); everything else is counted and dropped.
bool DpdkPort::accept_ipv4(rte_mbuf* m, dgram::RxDatagram* out, uint64_t now_ns) noexcept {
  const uint32_t len = rte_pktmbuf_data_len(m);
  const auto* base = rte_pktmbuf_mtod(m, const std::byte*);
  if (m->nb_segs != 1 || len < kEthBytes + kIpBytes) {
    ++stats_.rx_malformed;
    return false;
  }
  const auto* ip = reinterpret_cast<const rte_ipv4_hdr*>(base + kEthBytes);
  if (ip->version_ihl != RTE_IPV4_VHL_DEF || ip->next_proto_id != IPPROTO_UDP ||
      ip->dst_addr != self_ip_be_) {
    ++stats_.rx_not_for_us;
    return false;
  }
  const uint32_t ip_len = rte_be_to_cpu_16(ip->total_length);
  if (ip_len <= kIpBytes || rte_ipv4_cksum(ip) != 0) {
    ++stats_.rx_malformed;
    return false;
  }
  if (ip_len > len - kEthBytes) {
    // Longer than what the PMD handed over: af_packet cuts what exceeds its framesz, and the
    // kernel under it reassembles fragments first (NOTES.md, mbuf_bytes).
    ++stats_.rx_truncated;
    return false;
  }
  // Any IPv4 frame from a member's address tells us its MAC.
  const auto* eth = reinterpret_cast<const rte_ether_hdr*>(base);
  learn(ip->src_addr, eth->src_addr.addr_bytes);
  const uint16_t frag = rte_be_to_cpu_16(ip->fragment_offset);
  if ((frag & (RTE_IPV4_HDR_MF_FLAG | RTE_IPV4_HDR_OFFSET_MASK)) != 0) {
    accept_fragment(base + kEthBytes, ip_len, now_ns);
    return false;
  }
  const auto* udp = reinterpret_cast<const rte_udp_hdr*>(ip + 1);
  const uint32_t udp_len = ip_len < kIpBytes + kUdpBytes ? 0 : rte_be_to_cpu_16(udp->dgram_len);
  if (udp_len < kUdpBytes || udp_len > ip_len - kIpBytes) {
    ++stats_.rx_malformed;
    return false;
  }
  if (udp->dst_port != self_port_be_) {
    if (udp->dst_port == self_control_port_be_) {
      accept_control(ip->src_addr, {base + kEthBytes + kIpBytes, udp_len});
    } else {
      ++stats_.rx_not_for_us;
    }
    return false;
  }
  // The UDP checksum is not checked: the frame's own CRC32C covers header and payload, and a
  // kernel peer on a veth may leave a partial (offload) checksum in the field.
  out->from = member_of(ip->src_addr, udp->src_port);
  out->bytes = {base + kEthBytes + kIpBytes + kUdpBytes, udp_len - kUdpBytes};
  return true;
}

uint32_t DpdkPort::recv_burst(dgram::RxDatagram* rx, uint32_t max, uint64_t now_ns) noexcept {
  // The previous burst's datagrams were valid until now.
  if (rx_held_n_ != 0) {
    rte_pktmbuf_free_bulk(rx_held_, rx_held_n_);
    rx_held_n_ = 0;
  }
  if (max > kRxMax) max = kRxMax;
  rte_mbuf* burst[kRxMax];
  const uint16_t got = rte_eth_rx_burst(port_id_, 0, burst, static_cast<uint16_t>(max));
  stats_.rx_frames += got;
  uint32_t n = 0;
  for (uint16_t i = 0; i < got; ++i) {
    rte_mbuf* m = burst[i];
    const uint32_t len = rte_pktmbuf_data_len(m);
    const auto* eth = rte_pktmbuf_mtod(m, const rte_ether_hdr*);
    if (len < kEthBytes || (!mac_is(eth->dst_addr.addr_bytes, self_mac_) &&
                            !mac_is(eth->dst_addr.addr_bytes, kBroadcast))) {
      ++stats_.rx_not_for_us;  // multicast (the kernel's IPv6 noise) and other hosts' frames
      rte_pktmbuf_free(m);
      continue;
    }
    const uint16_t type = rte_be_to_cpu_16(eth->ether_type);
    if (type == RTE_ETHER_TYPE_ARP) {
      handle_arp(rte_pktmbuf_mtod(m, const std::byte*), len);
      rte_pktmbuf_free(m);
    } else if (type == RTE_ETHER_TYPE_IPV4 && accept_ipv4(m, &rx[n], now_ns)) {
      rx_held_[rx_held_n_++] = m;
      ++n;
    } else {
      if (type != RTE_ETHER_TYPE_IPV4) ++stats_.rx_not_for_us;
      rte_pktmbuf_free(m);
    }
  }
  stats_.rx_datagrams += n;
  return n;
}

// Asks for an unresolved peer's MAC, at most every arp_retry_ns.
void DpdkPort::request_arp(Peer* peer, uint64_t now_ns) noexcept {
  if (now_ns < peer->next_arp_ns) return;
  peer->next_arp_ns = now_ns + arp_retry_ns_;
  send_arp(RTE_ARP_OP_REQUEST, kBroadcast, peer->ip_be);
}

rte_mbuf* DpdkPort::build_udp(const Peer& peer, const dgram::TxDatagram& d) noexcept {
  rte_mbuf* m = rte_pktmbuf_alloc(pool_);
  if (m == nullptr) return nullptr;
  const auto payload = static_cast<uint32_t>(d.bytes.size());
  const uint32_t total = kEthBytes + kIpBytes + kUdpBytes + payload;
  // setup() bounds mtu_payload so that every frame fits one mbuf.
  COHORT_ASSERT(total <= rte_pktmbuf_tailroom(m));
  auto* eth = rte_pktmbuf_mtod(m, rte_ether_hdr*);
  std::memcpy(eth->dst_addr.addr_bytes, peer.mac, 6);
  std::memcpy(eth->src_addr.addr_bytes, self_mac_, 6);
  eth->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4);
  auto* ip = reinterpret_cast<rte_ipv4_hdr*>(eth + 1);
  ip->version_ihl = RTE_IPV4_VHL_DEF;
  ip->type_of_service = 0;
  ip->total_length = rte_cpu_to_be_16(static_cast<uint16_t>(kIpBytes + kUdpBytes + payload));
  ip->packet_id = rte_cpu_to_be_16(ip_id_++);
  ip->fragment_offset = rte_cpu_to_be_16(RTE_IPV4_HDR_DF_FLAG);
  ip->time_to_live = 64;
  ip->next_proto_id = IPPROTO_UDP;
  ip->hdr_checksum = 0;
  ip->src_addr = self_ip_be_;
  ip->dst_addr = peer.ip_be;
  ip->hdr_checksum = rte_ipv4_cksum(ip);
  auto* udp = reinterpret_cast<rte_udp_hdr*>(ip + 1);
  udp->src_port = self_port_be_;
  udp->dst_port = peer.udp_port_be;
  udp->dgram_len = rte_cpu_to_be_16(static_cast<uint16_t>(kUdpBytes + payload));
  udp->dgram_cksum = 0;
  std::memcpy(udp + 1, d.bytes.data(), payload);
  m->data_len = static_cast<uint16_t>(total);
  m->pkt_len = total;
  return m;
}

uint32_t DpdkPort::send_burst(const dgram::TxDatagram* tx, uint32_t n, uint64_t now_ns) noexcept {
  uint32_t done = 0;
  while (done < n) {
    rte_mbuf* chunk[kTxChunk];
    uint32_t built = 0;
    uint32_t consumed = 0;  // datagrams of this chunk: built ones and ones dropped for ARP
    bool pool_empty = false;
    while (built < kTxChunk && done + consumed < n) {
      const dgram::TxDatagram& d = tx[done + consumed];
      COHORT_ASSERT(d.to < members_ && d.to != self_);  // the engine only addresses peers
      Peer& peer = peers_[d.to];
      if (!peer.mac_known) {
        // Dropped like a lost datagram: the engine repairs it once the peer is resolved.
        ++stats_.tx_no_arp;
        request_arp(&peer, now_ns);
        ++consumed;
        continue;
      }
      rte_mbuf* m = build_udp(peer, d);
      if (m == nullptr) {
        pool_empty = true;
        break;
      }
      chunk[built++] = m;
      ++consumed;
    }
    const uint16_t sent =
        built == 0 ? 0 : rte_eth_tx_burst(port_id_, 0, chunk, static_cast<uint16_t>(built));
    stats_.tx_datagrams += sent;
    if (sent < built) {
      // The TX ring is full: free what it did not take. The datagrams consumed so far include
      // ARP drops interleaved with built ones, so count up to the first unsent built frame.
      rte_pktmbuf_free_bulk(chunk + sent, built - sent);
      uint32_t kept = 0;
      uint32_t i = 0;
      for (; i < consumed; ++i) {
        if (!peers_[tx[done + i].to].mac_known) continue;  // an ARP drop, already consumed
        if (kept == sent) break;
        ++kept;
      }
      ++stats_.tx_full;
      return done + i;
    }
    done += consumed;
    if (pool_empty) {
      ++stats_.tx_full;
      break;
    }
  }
  return done;
}

}  // namespace cohort::transport::dpdk
