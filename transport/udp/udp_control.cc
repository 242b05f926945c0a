// UdpControlChannel (udp_control_channel.h): the control channel of the udp and rdma
// transports, owned by the control core.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "runtime/assert.h"
#include "runtime/clock.h"
#include "transport/dgram/port.h"
#include "transport/udp/udp_control_channel.h"

namespace cohort::transport::udp {

void set_socket_buffers(int fd, uint32_t bytes) noexcept {
  const int n = static_cast<int>(bytes);
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &n, sizeof n) != 0) {
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &n, sizeof n);
  }
  if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &n, sizeof n) != 0) {
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &n, sizeof n);
  }
}

void UdpControlChannel::open(int fd, std::span<const sockaddr_in> addrs, MemberId self,
                             uint64_t group_id) {
  COHORT_ASSERT(fd >= 0 && fd_ < 0);
  COHORT_ASSERT(addrs.size() <= kMaxMembers && self < addrs.size());
  fd_ = fd;
  set_socket_buffers(fd_, kSocketBufferBytes);
  members_ = static_cast<uint32_t>(addrs.size());
  self_ = self;
  group_id_ = group_id;
  for (MemberId m = 0; m < members_; ++m) peers_[m] = control_address(addrs[m]);
  tx_.reset(new std::byte[kFrameBytes]());
  rx_.reset(new std::byte[static_cast<size_t>(kBatch) * (kFrameBytes + 1)]());
}

void UdpControlChannel::close() noexcept {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

MemberId UdpControlChannel::member_of(const sockaddr_in& addr) const noexcept {
  for (MemberId m = 0; m < members_; ++m) {
    if (peers_[m].sin_addr.s_addr == addr.sin_addr.s_addr && peers_[m].sin_port == addr.sin_port) {
      return m;
    }
  }
  return dgram::kUnknownPeer;
}

// The fault decorator's partition holds for the control channel too (fault_port.h); counted
// here, on the control core's own counters.
bool UdpControlChannel::cut_off(MemberId peer) noexcept {
  if (faults_ == nullptr || faults_->options().partition_peers == 0) return false;
  if (!faults_->cut(peer, cohort::clock().now_ns())) return false;
  ++stats_.partitioned;
  return true;
}

SendStatus UdpControlChannel::send(MemberId to, std::span<const std::byte> bytes) noexcept {
  if (bytes.size() > kMaxControlBytes) return SendStatus::kTooLarge;
  if (to >= members_ || to == self_) return SendStatus::kNoPeer;
  if (cut_off(to)) return SendStatus::kOk;  // as lost
  // position: a per-sender sequence number of control frames, for people reading a capture.
  const wire::FrameFields fields{wire::FrameType::kControl, 0, group_id_, 0, self_, seq_++};
  const std::size_t size = wire::encode_frame(fields, bytes, {tx_.get(), kFrameBytes});
  const ssize_t n = sendto(fd_, tx_.get(), size, MSG_DONTWAIT,
                           reinterpret_cast<const sockaddr*>(&peers_[to]), sizeof peers_[to]);
  if (n >= 0) {
    ++stats_.sent;
    return SendStatus::kOk;
  }
  switch (errno) {
    case EAGAIN:
    case ENOBUFS: return SendStatus::kWouldBlock;
    default: return SendStatus::kNoPeer;  // ECONNREFUSED from an earlier ICMP, unreachable
  }
}

uint32_t UdpControlChannel::poll(ControlMessage* out, uint32_t max) noexcept {
  if (max > kBatch) max = kBatch;
  mmsghdr msgs[kBatch];
  iovec iovs[kBatch];
  sockaddr_in addrs[kBatch];
  for (uint32_t i = 0; i < max; ++i) {
    // One byte more than the largest frame: a datagram that fills it was too large.
    iovs[i] = iovec{rx_.get() + static_cast<size_t>(i) * (kFrameBytes + 1), kFrameBytes + 1};
    msgs[i] = mmsghdr{};
    msgs[i].msg_hdr.msg_iov = &iovs[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
    msgs[i].msg_hdr.msg_name = &addrs[i];
    msgs[i].msg_hdr.msg_namelen = sizeof addrs[i];
  }
  const int got = recvmmsg(fd_, msgs, max, MSG_DONTWAIT, nullptr);
  if (got <= 0) return 0;
  uint32_t n = 0;
  for (int i = 0; i < got; ++i) {
    const std::span<const std::byte> bytes{static_cast<const std::byte*>(iovs[i].iov_base),
                                           msgs[i].msg_len};
    if ((msgs[i].msg_hdr.msg_flags & MSG_TRUNC) != 0 || bytes.size() > kFrameBytes) {
      ++stats_.truncated;
      continue;
    }
    wire::FrameView f;
    const wire::DecodeStatus status = wire::decode_frame(bytes, group_id_, &f);
    stats_.decode.count(status);
    if (status != wire::DecodeStatus::kOk) continue;
    const MemberId from = msgs[i].msg_hdr.msg_namelen == sizeof(sockaddr_in) ? member_of(addrs[i])
                                                                             : dgram::kUnknownPeer;
    if (from == dgram::kUnknownPeer || from == self_) {
      ++stats_.non_member;
      continue;
    }
    if (f.fields.sender != from) {
      ++stats_.sender_mismatch;
      continue;
    }
    if (f.fields.type != wire::FrameType::kControl) {
      ++stats_.wrong_type;
      continue;
    }
    if (cut_off(from)) continue;
    ++stats_.received;
    out[n++] = ControlMessage{from, f.payload};
  }
  return n;
}

}  // namespace cohort::transport::udp
