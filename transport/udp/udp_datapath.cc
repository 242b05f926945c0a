// The data socket's bursts: sendmmsg and recvmmsg, one system call per burst. Never blocks,
// never allocates; a datagram from an address that is not a member's comes out with
// from = kUnknownPeer and the engine counts and drops it.
#include <netinet/in.h>
#include <sys/socket.h>

#include <cerrno>

#include "runtime/assert.h"
#include "transport/udp/udp_transport.h"

namespace cohort::transport::udp {

MemberId UdpPort::member_of(const sockaddr_in& addr) const noexcept {
  // At most 32 members: a linear scan of two words each beats any hash at this size.
  for (MemberId m = 0; m < members_; ++m) {
    if (peers_[m].sin_addr.s_addr == addr.sin_addr.s_addr && peers_[m].sin_port == addr.sin_port) {
      return m;
    }
  }
  return dgram::kUnknownPeer;
}

uint32_t UdpPort::send_burst(const dgram::TxDatagram* tx, uint32_t n, uint64_t) noexcept {
  uint32_t done = 0;
  while (done < n) {
    const uint32_t chunk = n - done < kTxChunk ? n - done : kTxChunk;
    for (uint32_t i = 0; i < chunk; ++i) {
      const dgram::TxDatagram& d = tx[done + i];
      COHORT_ASSERT(d.to < members_);  // the engine only addresses members
      tx_iovs_[i] = iovec{const_cast<std::byte*>(d.bytes.data()), d.bytes.size()};
      tx_msgs_[i].msg_hdr.msg_name = &peers_[d.to];
    }
    const int sent = sendmmsg(fd_, tx_msgs_.get(), chunk, MSG_DONTWAIT);
    if (sent > 0) {
      done += static_cast<uint32_t>(sent);
      stats_.tx_datagrams += static_cast<uint64_t>(sent);
      continue;  // a short count: the next call reports what stopped it
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS) {
      ++stats_.tx_would_block;
      break;  // the engine keeps the rest and sends it again on its next flush
    }
    // Any other error belongs to the first datagram alone (ICMP unreachable reported late,
    // EPERM from a firewall...): skip it, as a lost datagram, and go on.
    ++stats_.tx_errors;
    ++done;
  }
  return done;
}

uint32_t UdpPort::recv_burst(dgram::RxDatagram* rx, uint32_t max, uint64_t) noexcept {
  if (max > dgram::kRxBurst) max = dgram::kRxBurst;
  for (uint32_t i = 0; i < max; ++i) {
    rx_msgs_[i].msg_hdr.msg_namelen = sizeof(sockaddr_in);
    rx_msgs_[i].msg_hdr.msg_flags = 0;
  }
  const int got = recvmmsg(fd_, rx_msgs_.get(), max, MSG_DONTWAIT, nullptr);
  if (got <= 0) {
    if (got < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) ++stats_.rx_errors;
    return 0;
  }
  uint32_t n = 0;
  for (int i = 0; i < got; ++i) {
    const msghdr& h = rx_msgs_[i].msg_hdr;
    if ((h.msg_flags & MSG_TRUNC) != 0) {
      ++stats_.rx_truncated;
      continue;
    }
    const MemberId from =
        h.msg_namelen == sizeof(sockaddr_in) ? member_of(rx_addrs_[i]) : dgram::kUnknownPeer;
    rx[n++] = dgram::RxDatagram{
        from, {static_cast<const std::byte*>(rx_iovs_[i].iov_base), rx_msgs_[i].msg_len}};
  }
  stats_.rx_datagrams += static_cast<uint64_t>(got);
  return n;
}

}  // namespace cohort::transport::udp
