// The rdma transport's control channel: kControl frames over UDP on port + 1, owned by the
// control core, the same frames the udp transport sends (NOTES.md says why not RDMA SEND/RECV).
// Heartbeats and view-change messages are a few per millisecond at most, so one sendto per
// message is cheap enough; receiving takes a burst with recvmmsg.
#include <netinet/in.h>
#include <sys/socket.h>

#include <cerrno>

#include "transport/dgram/port.h"
#include "transport/rdma/rdma_transport.h"

namespace cohort::transport::rdma {

namespace {
MemberId control_member_of(const sockaddr_in* addrs, uint32_t n, const sockaddr_in& a) noexcept {
  for (MemberId m = 0; m < n; ++m) {
    if (addrs[m].sin_addr.s_addr == a.sin_addr.s_addr &&
        ntohs(addrs[m].sin_port) + 1 == ntohs(a.sin_port)) {
      return m;
    }
  }
  return dgram::kUnknownPeer;
}
}  // namespace

SendStatus RdmaTransport::send_control(MemberId to, std::span<const std::byte> bytes) noexcept {
  if (bytes.size() > kMaxControlBytes) return SendStatus::kTooLarge;
  if (to >= members() || to == self()) return SendStatus::kNoPeer;
  // position: a per-sender sequence number of control frames, for people reading a capture.
  const wire::FrameFields fields{
      wire::FrameType::kControl, 0, group_id_, 0, self(), control_seq_++};
  const std::size_t size =
      wire::encode_frame(fields, bytes, {control_tx_.get(), kControlFrameBytes});
  sockaddr_in a = addrs_[to];
  a.sin_port = htons(static_cast<uint16_t>(ntohs(a.sin_port) + 1));
  const ssize_t n = sendto(control_fd_, control_tx_.get(), size, MSG_DONTWAIT,
                           reinterpret_cast<const sockaddr*>(&a), sizeof a);
  if (n >= 0) {
    ++control_stats_.sent;
    return SendStatus::kOk;
  }
  switch (errno) {
    case EAGAIN:
    case ENOBUFS: return SendStatus::kWouldBlock;
    default: return SendStatus::kNoPeer;  // ECONNREFUSED from an earlier ICMP, unreachable
  }
}

uint32_t RdmaTransport::poll_control(ControlMessage* out, uint32_t max) noexcept {
  if (max > kControlBatch) max = kControlBatch;
  mmsghdr msgs[kControlBatch];
  iovec iovs[kControlBatch];
  sockaddr_in addrs[kControlBatch];
  for (uint32_t i = 0; i < max; ++i) {
    // One byte more than the largest frame: a datagram that fills it was too large.
    iovs[i] = iovec{control_rx_.get() + static_cast<size_t>(i) * (kControlFrameBytes + 1),
                    kControlFrameBytes + 1};
    msgs[i] = mmsghdr{};
    msgs[i].msg_hdr.msg_iov = &iovs[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
    msgs[i].msg_hdr.msg_name = &addrs[i];
    msgs[i].msg_hdr.msg_namelen = sizeof addrs[i];
  }
  const int got = recvmmsg(control_fd_, msgs, max, MSG_DONTWAIT, nullptr);
  if (got <= 0) return 0;
  uint32_t n = 0;
  for (int i = 0; i < got; ++i) {
    const std::span<const std::byte> bytes{static_cast<const std::byte*>(iovs[i].iov_base),
                                           msgs[i].msg_len};
    if ((msgs[i].msg_hdr.msg_flags & MSG_TRUNC) != 0 || bytes.size() > kControlFrameBytes) {
      ++control_stats_.truncated;
      continue;
    }
    wire::FrameView f;
    const wire::DecodeStatus status = wire::decode_frame(bytes, group_id_, &f);
    control_stats_.decode.count(status);
    if (status != wire::DecodeStatus::kOk) continue;
    const MemberId from = msgs[i].msg_hdr.msg_namelen == sizeof(sockaddr_in)
                              ? control_member_of(addrs_, members(), addrs[i])
                              : dgram::kUnknownPeer;
    if (from == dgram::kUnknownPeer || from == self()) {
      ++control_stats_.non_member;
      continue;
    }
    if (f.fields.sender != from) {
      ++control_stats_.sender_mismatch;
      continue;
    }
    if (f.fields.type != wire::FrameType::kControl) {
      ++control_stats_.wrong_type;
      continue;
    }
    ++control_stats_.received;
    out[n++] = ControlMessage{from, f.payload};
  }
  return n;
}

}  // namespace cohort::transport::rdma
