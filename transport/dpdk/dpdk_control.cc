// The dpdk transport's control channel: kControl frames to and from port + 1, exactly as the
// udp transport's control socket sends and receives them (udp_control.cc), IPv4 fragments
// included (a kernel sends a control datagram over 1472 bytes as fragments, and takes ours).
//
// Two threads meet here, and each function says which one it runs on. The data core owns the
// port's only RX and TX queue: it copies received control datagrams (reassembled if they came
// in fragments) into the control core's ControlQueue, and on flush() sends what the control
// core queued in the other one. The control core encodes and decodes the frames. They share
// only the two queues (SPSC rings of slot indices; control_queue.h).
#include <netinet/in.h>
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
// IPv4 payload per frame at the 1500-byte MTU the kernel uses on a veth: a multiple of 8, as
// fragment offsets must be. A control datagram of 8 + 48 + 8192 bytes takes 6 fragments.
constexpr uint32_t kFragmentBytes = 1480;
static_assert(kFragmentBytes % 8 == 0 && kEthBytes + kIpBytes + kFragmentBytes == 1514);
constexpr uint32_t kMaxFragments =
    (Ipv4Reassembly::kMaxBytes + kFragmentBytes - 1) / kFragmentBytes;
static_assert(kMaxFragments == 6);

}  // namespace

// ---- Data core: receive.

MemberId DpdkPort::control_member_of(uint32_t ip_be, uint16_t port_be) const noexcept {
  for (MemberId m = 0; m < members_; ++m) {
    if (peers_[m].ip_be == ip_be && peers_[m].control_port_be == port_be) return m;
  }
  return dgram::kUnknownPeer;
}

// `ip` is an IPv4 header (checked by accept_ipv4) of a fragment to our address.
void DpdkPort::accept_fragment(const std::byte* ip, uint32_t ip_len, uint64_t now_ns) noexcept {
  ++stats_.rx_fragments;
  const auto* h = reinterpret_cast<const rte_ipv4_hdr*>(ip);
  const uint16_t frag = rte_be_to_cpu_16(h->fragment_offset);
  const uint32_t offset = static_cast<uint32_t>(frag & RTE_IPV4_HDR_OFFSET_MASK) * 8;
  const bool more = (frag & RTE_IPV4_HDR_MF_FLAG) != 0;
  std::span<const std::byte> whole;
  const Ipv4Reassembly::Outcome outcome = reassembly_.add(
      h->src_addr, h->packet_id, offset, more, {ip + kIpBytes, ip_len - kIpBytes}, now_ns, &whole);
  if (outcome != Ipv4Reassembly::Outcome::kComplete) return;  // pending, or counted there
  const auto* udp = reinterpret_cast<const rte_udp_hdr*>(whole.data());
  const uint32_t udp_len = whole.size() < kUdpBytes ? 0 : rte_be_to_cpu_16(udp->dgram_len);
  if (udp_len < kUdpBytes || udp_len > whole.size()) {
    ++stats_.rx_malformed;
    return;
  }
  if (udp->dst_port != self_control_port_be_) {
    // Data frames are never fragmented (mtu_payload keeps them under the MTU): a peer with a
    // larger mtu_payload than ours, or a stranger.
    ++stats_.rx_fragmented_data;
    return;
  }
  accept_control(h->src_addr, whole.first(udp_len));
}

// A UDP datagram (header first) to our control port: copied into a slot of the control core's
// queue with the member it came from (kUnknownPeer for a stranger: the control core counts it,
// as the udp transport counts a stranger on its control socket).
void DpdkPort::accept_control(uint32_t src_ip_be, std::span<const std::byte> udp) noexcept {
  COHORT_ASSERT(udp.size() >= kUdpBytes);  // accept_ipv4() and accept_fragment() checked
  if (udp.size() - kUdpBytes > control_rx_->slot_bytes()) {
    // A large mbuf (mbuf_bytes) holds a whole datagram the kernel reassembled: it may exceed
    // what the udp transport would take too (it counts those as truncated).
    ++stats_.rx_control_too_large;
    return;
  }
  std::byte* slot = control_rx_->claim();
  if (slot == nullptr) {
    ++stats_.rx_control_queue_full;  // the control core is behind: a lost datagram
    return;
  }
  const auto* h = reinterpret_cast<const rte_udp_hdr*>(udp.data());
  const std::span<const std::byte> bytes = udp.subspan(kUdpBytes);
  std::memcpy(slot, bytes.data(), bytes.size());
  control_rx_->publish(static_cast<uint32_t>(bytes.size()),
                       control_member_of(src_ip_be, h->src_port));
  ++stats_.rx_control;
}

// ---- Data core: send.

// The pending control datagram: Ethernet + IPv4 + UDP from our control port to the peer's, in
// one frame if it fits the MTU, else in IPv4 fragments of kFragmentBytes (UDP header in the
// first), each in its own mbuf, all in one rte_eth_tx_burst. When the ring or the pool takes
// only some, the rest go on the next call with the same IPv4 id, as a kernel would queue them.
// Returns true when the datagram is done with (sent, or dropped for want of the peer's MAC).
bool DpdkPort::send_control_datagram(uint64_t now_ns) noexcept {
  const ControlQueue::Entry& e = control_entry_;
  COHORT_ASSERT(e.peer < members_ && e.peer != self_);  // send_control() checked it
  Peer& peer = peers_[e.peer];
  if (!peer.mac_known) {
    ++stats_.tx_control_no_arp;
    request_arp(&peer, now_ns);
    return true;
  }
  const std::byte* frame = control_tx_->bytes(e);
  const uint32_t udp_len = kUdpBytes + e.bytes;
  const bool fragmented = udp_len > kFragmentBytes;
  rte_mbuf* mbufs[kMaxFragments];
  uint32_t built = 0;
  uint32_t offset = control_offset_;
  for (; offset < udp_len; ++built) {
    COHORT_ASSERT(built < kMaxFragments);
    rte_mbuf* m = rte_pktmbuf_alloc(pool_);
    if (m == nullptr) break;
    mbufs[built] = m;
    const uint32_t part = udp_len - offset < kFragmentBytes ? udp_len - offset : kFragmentBytes;
    COHORT_ASSERT(kEthBytes + kIpBytes + part <= rte_pktmbuf_tailroom(m));
    auto* eth = rte_pktmbuf_mtod(m, rte_ether_hdr*);
    std::memcpy(eth->dst_addr.addr_bytes, peer.mac, 6);
    std::memcpy(eth->src_addr.addr_bytes, self_mac_, 6);
    eth->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4);
    auto* ip = reinterpret_cast<rte_ipv4_hdr*>(eth + 1);
    ip->version_ihl = RTE_IPV4_VHL_DEF;
    ip->type_of_service = 0;
    ip->total_length = rte_cpu_to_be_16(static_cast<uint16_t>(kIpBytes + part));
    ip->packet_id = rte_cpu_to_be_16(control_ip_id_);
    // As the kernel sends them: DF on a whole datagram, MF and the offset on fragments.
    const uint32_t flags = !fragmented               ? uint32_t{RTE_IPV4_HDR_DF_FLAG}
                           : offset + part < udp_len ? uint32_t{RTE_IPV4_HDR_MF_FLAG}
                                                     : 0u;
    ip->fragment_offset = rte_cpu_to_be_16(static_cast<uint16_t>(flags | (offset / 8)));
    ip->time_to_live = 64;
    ip->next_proto_id = IPPROTO_UDP;
    ip->hdr_checksum = 0;
    ip->src_addr = self_ip_be_;
    ip->dst_addr = peer.ip_be;
    ip->hdr_checksum = rte_ipv4_cksum(ip);
    auto* payload = reinterpret_cast<std::byte*>(ip + 1);
    if (offset == 0) {
      auto* udp = reinterpret_cast<rte_udp_hdr*>(payload);
      udp->src_port = self_control_port_be_;
      udp->dst_port = peer.control_port_be;
      udp->dgram_len = rte_cpu_to_be_16(static_cast<uint16_t>(udp_len));
      udp->dgram_cksum = 0;  // none, which IPv4 allows: the frame's CRC32C covers the bytes
      std::memcpy(payload + kUdpBytes, frame, part - kUdpBytes);
    } else {
      std::memcpy(payload, frame + (offset - kUdpBytes), part);
    }
    m->data_len = static_cast<uint16_t>(kEthBytes + kIpBytes + part);
    m->pkt_len = m->data_len;
    offset += part;
  }
  const uint16_t sent =
      built == 0 ? 0 : rte_eth_tx_burst(port_id_, 0, mbufs, static_cast<uint16_t>(built));
  stats_.tx_control_frames += sent;
  control_offset_ += sent * kFragmentBytes;  // every frame but the last carries kFragmentBytes
  if (sent < built) rte_pktmbuf_free_bulk(mbufs + sent, built - sent);
  if (control_offset_ < udp_len) {
    ++stats_.tx_control_full;
    return false;
  }
  ++stats_.tx_control;
  return true;
}

uint32_t DpdkPort::send_control_queued(uint64_t now_ns) noexcept {
  if (control_tx_ == nullptr) return 0;
  uint32_t done = 0;
  for (; done < kControlTxBurst; ++done) {
    if (!control_pending_) {
      if (control_tx_->take(&control_entry_, 1) == 0) break;
      control_pending_ = true;
      control_offset_ = 0;
      control_ip_id_ = ip_id_++;
    }
    if (!send_control_datagram(now_ns)) break;  // no room now: the rest on the next flush
    // The bytes are in mbufs now (or dropped): the slot goes back to the control core.
    control_tx_->release(&control_entry_, 1);
    control_pending_ = false;
  }
  return done;
}

// ---- Control core.

SendStatus DpdkTransport::send_control(MemberId to, std::span<const std::byte> bytes) noexcept {
  if (bytes.size() > kMaxControlBytes) return SendStatus::kTooLarge;
  if (to >= members() || to == options_.self) return SendStatus::kNoPeer;
  std::byte* slot = control_tx_->claim();
  if (slot == nullptr) {
    ++control_stats_.would_block;  // the data core has not flushed the last kControlTxSlots
    return SendStatus::kWouldBlock;
  }
  // position: a per-sender sequence number of control frames, as the udp transport's.
  const wire::FrameFields fields{
      wire::FrameType::kControl, 0, group_id_, 0, options_.self, control_seq_++};
  const std::size_t size = wire::encode_frame(fields, bytes, {slot, control_tx_->slot_bytes()});
  COHORT_ASSERT(size == wire::frame_size(bytes.size()));
  control_tx_->publish(static_cast<uint32_t>(size), to);
  ++control_stats_.sent;
  return SendStatus::kOk;
}

uint32_t DpdkTransport::poll_control(ControlMessage* out, uint32_t max) noexcept {
  // The last call's datagrams were valid until now.
  control_rx_->release(control_held_, control_held_n_);
  control_held_n_ = 0;
  if (max > kControlBatch) max = kControlBatch;
  control_held_n_ = control_rx_->take(control_held_, max);
  uint32_t n = 0;
  for (uint32_t i = 0; i < control_held_n_; ++i) {
    const ControlQueue::Entry& e = control_held_[i];
    wire::FrameView f;
    const wire::DecodeStatus status =
        wire::decode_frame({control_rx_->bytes(e), e.bytes}, group_id_, &f);
    control_stats_.decode.count(status);
    if (status != wire::DecodeStatus::kOk) continue;
    if (e.peer == dgram::kUnknownPeer || e.peer == options_.self) {
      ++control_stats_.non_member;
      continue;
    }
    if (f.fields.sender != e.peer) {
      ++control_stats_.sender_mismatch;
      continue;
    }
    if (f.fields.type != wire::FrameType::kControl) {
      ++control_stats_.wrong_type;
      continue;
    }
    ++control_stats_.received;
    out[n++] = ControlMessage{e.peer, f.payload};
  }
  return n;
}

}  // namespace cohort::transport::dpdk
