// The shm transport's control channel: AF_UNIX datagram sockets in the group directory,
// one per member. Heartbeats and view-change messages are a few per millisecond at most, so
// the kernel's path is cheap enough, and it gives each message a verified sender address.
#include <sys/socket.h>
#include <sys/un.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "transport/shm/shm_transport.h"

namespace cohort::transport::shm {

SendStatus ShmTransport::send_control(MemberId to, std::span<const std::byte> bytes) noexcept {
  if (bytes.size() > kMaxControlBytes) return SendStatus::kTooLarge;
  if (to >= options_.members || to == options_.self || sock_fd_ < 0) return SendStatus::kNoPeer;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  const std::string& path = peer_sock_paths_[to];
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  const ssize_t n = sendto(sock_fd_, bytes.data(), bytes.size(), MSG_DONTWAIT,
                           reinterpret_cast<const sockaddr*>(&addr), sizeof addr);
  if (n >= 0) return SendStatus::kOk;
  switch (errno) {
    case EAGAIN:
    case ENOBUFS: return SendStatus::kWouldBlock;
    default: return SendStatus::kNoPeer;  // ENOENT, ECONNREFUSED: nobody bound there
  }
}

uint32_t ShmTransport::poll_control(ControlMessage* out, uint32_t max) noexcept {
  if (sock_fd_ < 0) return 0;
  if (max > kControlBatch) max = kControlBatch;
  mmsghdr msgs[kControlBatch];
  iovec iovs[kControlBatch];
  sockaddr_un addrs[kControlBatch];
  for (uint32_t i = 0; i < max; ++i) {
    iovs[i] =
        iovec{control_buffers_.get() + static_cast<size_t>(i) * kMaxControlBytes, kMaxControlBytes};
    msgs[i] = mmsghdr{};
    msgs[i].msg_hdr.msg_iov = &iovs[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
    msgs[i].msg_hdr.msg_name = &addrs[i];
    msgs[i].msg_hdr.msg_namelen = sizeof addrs[i];
  }
  const int got = recvmmsg(sock_fd_, msgs, max, MSG_DONTWAIT, nullptr);
  if (got <= 0) return 0;
  uint32_t n = 0;
  for (int i = 0; i < got; ++i) {
    // The sender is known by the path it is bound to: m<id>.sock in our group directory.
    const MemberId from = sender_of(addrs[i], msgs[i].msg_hdr.msg_namelen);
    if (from == kNoMember || (msgs[i].msg_hdr.msg_flags & MSG_TRUNC) != 0) {
      ++control_drops_;
      continue;
    }
    out[n++] = ControlMessage{
        from,
        {static_cast<const std::byte*>(iovs[i].iov_base), static_cast<size_t>(msgs[i].msg_len)}};
  }
  return n;
}

MemberId ShmTransport::sender_of(const sockaddr_un& addr, socklen_t len) const noexcept {
  const size_t path_len = len > offsetof(sockaddr_un, sun_path)
                              ? strnlen(addr.sun_path, len - offsetof(sockaddr_un, sun_path))
                              : 0;
  for (MemberId m = 0; m < options_.members; ++m) {
    if (m == options_.self) continue;
    const std::string& p = peer_sock_paths_[m];
    if (p.size() == path_len && std::memcmp(p.data(), addr.sun_path, path_len) == 0) return m;
  }
  return kNoMember;
}

}  // namespace cohort::transport::shm
