// The rdma transport's connection setup: an out-of-band exchange over TCP (NOTES.md says why
// not librdmacm), as a non-blocking state machine that poll() advances on the data core.
//
// The member with the higher id connects to the lower one's TCP port; the lower one accepts
// and learns who called from the first message. Both sides then send a 128-byte *hello* (the
// group, both ids, the log size, the queue pair number and first PSN, GID, LID, MTU, and the
// address and rkey of the inbox the receiver of the hello is to write into), bring their
// queue pair to RTR and RTS with what came, and send an 8-byte *ready*. A side writes nothing
// over RDMA before it has the other's ready: by then the other's queue pair is in RTR and
// takes the writes. The TCP connection then stays open, silent: its end is the liveness
// signal (the kernel closes it when the process dies, SIGKILL included).
#include <arpa/inet.h>
#include <infiniband/verbs.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "transport/rdma/rdma_transport.h"

namespace cohort::transport::rdma {

namespace {

constexpr uint32_t kHelloMagic = 0x4D445243;  // "CRDM" stored little-endian
constexpr uint16_t kHelloVersion = 1;
constexpr uint64_t kReadyMagic = 0x5944414552445243;  // "CRDREADY"
constexpr uint64_t kManageEveryNs = 500'000;

// Hello field offsets; every field goes through memcpy, never a struct cast.
constexpr size_t kOffMagic = 0, kOffVersion = 4, kOffGroup = 8, kOffFrom = 16, kOffTo = 20,
                 kOffLogBytes = 24, kOffQpn = 32, kOffPsn = 36, kOffGid = 40, kOffLid = 56,
                 kOffMtu = 58, kOffRoce = 59, kOffRkey = 60, kOffInbox = 64, kOffIncarnation = 72;

template <typename T>
void put(std::byte* b, size_t off, T v) {
  std::memcpy(b + off, &v, sizeof v);
}
template <typename T>
T get(const std::byte* b, size_t off) {
  T v;
  std::memcpy(&v, b + off, sizeof v);
  return v;
}

void set_nodelay(int fd) {
  const int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

}  // namespace

void RdmaTransport::manage_connections(uint64_t now_ns) noexcept {
  if (now_ns < next_manage_ns_) return;
  next_manage_ns_ = now_ns + kManageEveryNs;
  accept_pending();
  for (uint32_t i = 0; i < kMaxPending; ++i) {
    if (pending_fds_[i] >= 0) read_pending_hello(i);
  }
  for (MemberId p = 0; p < members(); ++p) {
    if (p == self()) continue;
    switch (peers_[p].conn) {
      case Conn::kWaiting:
        if (self() > p && now_ns >= peers_[p].next_connect_ns) try_connect(p, now_ns);
        break;
      case Conn::kConnecting: {
        pollfd pfd{peers_[p].fd, POLLOUT, 0};
        if (::poll(&pfd, 1, 0) <= 0) break;
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(peers_[p].fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err != 0) {  // not listening yet: try again later
          close_fd(&peers_[p].fd);
          peers_[p].conn = Conn::kWaiting;
          break;
        }
        peers_[p].conn = Conn::kHandshake;
        advance_handshake(p);
        break;
      }
      case Conn::kHandshake: advance_handshake(p); break;
      case Conn::kConnected: check_connection(p); break;
      case Conn::kFailed:
      case Conn::kGone: break;
    }
  }
}

void RdmaTransport::try_connect(MemberId peer, uint64_t now_ns) noexcept {
  Peer& p = peers_[peer];
  p.next_connect_ns = now_ns + options_.connect_retry_ns;
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return;
  set_nodelay(fd);
  // From our own address, so the peer can check who calls.
  sockaddr_in from = addrs_[self()];
  from.sin_port = 0;
  bind(fd, reinterpret_cast<const sockaddr*>(&from), sizeof from);
  const int r = connect(fd, reinterpret_cast<const sockaddr*>(&addrs_[peer]), sizeof addrs_[peer]);
  if (r != 0 && errno != EINPROGRESS) {
    close(fd);
    return;
  }
  p.fd = fd;
  p.sent = 0;
  p.got = 0;
  p.conn = r == 0 ? Conn::kHandshake : Conn::kConnecting;
}

void RdmaTransport::accept_pending() noexcept {
  for (;;) {
    sockaddr_in a{};
    socklen_t len = sizeof a;
    const int fd =
        accept4(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;
    uint32_t slot = kMaxPending;
    for (uint32_t i = 0; i < kMaxPending; ++i) {
      if (pending_fds_[i] < 0) {
        slot = i;
        break;
      }
    }
    // Only members connect to us, and each at most once; a stranger's address is refused.
    bool member = false;
    for (MemberId m = 0; m < members(); ++m) {
      member |= addrs_[m].sin_addr.s_addr == a.sin_addr.s_addr && m > self();
    }
    if (slot == kMaxPending || !member) {
      ++stats_.handshake_errors;
      close(fd);
      continue;
    }
    set_nodelay(fd);
    pending_fds_[slot] = fd;
    pending_got_[slot] = 0;
  }
}

// An accepted connection: its hello says which member calls; it then continues as that peer's.
void RdmaTransport::read_pending_hello(uint32_t slot) noexcept {
  int& fd = pending_fds_[slot];
  const ssize_t n = recv(fd, pending_in_[slot] + pending_got_[slot],
                         kHelloBytes - pending_got_[slot], MSG_DONTWAIT);
  if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
    close_fd(&fd);
    return;
  }
  if (n < 0) return;
  pending_got_[slot] += static_cast<uint32_t>(n);
  if (pending_got_[slot] < kHelloBytes) return;
  const auto from = get<uint32_t>(pending_in_[slot], kOffFrom);
  std::string why;
  if (from >= members() || from <= self() || peers_[from].conn != Conn::kWaiting ||
      !check_hello(pending_in_[slot], from, &why)) {
    ++stats_.handshake_errors;
    if (from < members() && !why.empty()) peers_[from].error = why;
    close_fd(&fd);
    return;
  }
  Peer& p = peers_[from];
  p.fd = fd;
  fd = -1;
  std::memcpy(p.in, pending_in_[slot], kHelloBytes);
  p.got = kHelloBytes;
  p.sent = 0;
  p.conn = Conn::kHandshake;
  advance_handshake(from);
}

void RdmaTransport::advance_handshake(MemberId peer) noexcept {
  Peer& p = peers_[peer];
  std::byte out[kHandshakeBytes];
  fill_hello(peer, out);
  put<uint64_t>(out, kHelloBytes, kReadyMagic);
  // Our hello at once; our ready only once our queue pair is up (p.ready_sent).
  const uint32_t can_send = p.ready_sent ? kHandshakeBytes : kHelloBytes;
  if (p.sent < can_send) {
    const ssize_t n = send(p.fd, out + p.sent, can_send - p.sent, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
      fail_peer(peer, std::string("handshake: send: ") + std::strerror(errno));
      return;
    }
    if (n > 0) p.sent += static_cast<uint32_t>(n);
  }
  if (p.got < kHandshakeBytes) {
    const ssize_t n = recv(p.fd, p.in + p.got, kHandshakeBytes - p.got, MSG_DONTWAIT);
    if (n == 0) {
      fail_peer(peer, "handshake: the peer closed the connection");
      return;
    }
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
      fail_peer(peer, std::string("handshake: recv: ") + std::strerror(errno));
      return;
    }
    if (n > 0) p.got += static_cast<uint32_t>(n);
  }
  if (p.got >= kHelloBytes && !p.ready_sent) {
    std::string why;
    if (!check_hello(p.in, peer, &why) || !bring_up_qp(peer, p.in, &why)) {
      fail_peer(peer, why);
      return;
    }
    p.ready_sent = true;  // may be sent now; the next call (or this one's retry) does it
    advance_handshake(peer);
    return;
  }
  if (p.got == kHandshakeBytes && get<uint64_t>(p.in, kHelloBytes) != kReadyMagic) {
    fail_peer(peer, "handshake: garbled ready");
    return;
  }
  if (p.got == kHandshakeBytes && p.sent == kHandshakeBytes) {
    p.conn = Conn::kConnected;
    p.remote_rkey = get<uint32_t>(p.in, kOffRkey);
    p.remote_inbox = get<uint64_t>(p.in, kOffInbox);
    // It reads our log from 0 (expected since create(), so nothing of it was overwritten).
    publication_.attach_reader(peer, &p.position);
    p.alive.store(true, std::memory_order_release);  // release: pairs with peer_alive()
    ++connected_count_;
    ++stats_.connects;
  }
}

void RdmaTransport::fill_hello(MemberId peer, std::byte* out) const noexcept {
  const Peer& p = peers_[peer];
  std::memset(out, 0, kHelloBytes);
  put<uint32_t>(out, kOffMagic, kHelloMagic);
  put<uint16_t>(out, kOffVersion, kHelloVersion);
  put<uint64_t>(out, kOffGroup, group_id_);
  put<uint32_t>(out, kOffFrom, self());
  put<uint32_t>(out, kOffTo, peer);
  put<uint64_t>(out, kOffLogBytes, options_.log_bytes);
  put<uint32_t>(out, kOffQpn, p.qp->qp_num);
  put<uint32_t>(out, kOffPsn, p.psn);
  std::memcpy(out + kOffGid, gid_, sizeof gid_);
  put<uint16_t>(out, kOffLid, lid_);
  put<uint8_t>(out, kOffMtu, mtu_);
  put<uint8_t>(out, kOffRoce, roce_ ? 1 : 0);
  put<uint32_t>(out, kOffRkey, p.inbox_mr->rkey);
  put<uint64_t>(out, kOffInbox, reinterpret_cast<uint64_t>(p.inbox));
  put<uint64_t>(out, kOffIncarnation, incarnation_);
}

bool RdmaTransport::check_hello(const std::byte* in, MemberId expected, std::string* why) const {
  const std::string who = "member " + std::to_string(expected);
  if (get<uint32_t>(in, kOffMagic) != kHelloMagic ||
      get<uint16_t>(in, kOffVersion) != kHelloVersion) {
    *why = "handshake: " + who + " sent no cohort rdma hello (another program on its port?)";
  } else if (get<uint64_t>(in, kOffGroup) != group_id_) {
    *why = "handshake: " + who + " is in another group; check group";
  } else if (get<uint32_t>(in, kOffFrom) != expected || get<uint32_t>(in, kOffTo) != self()) {
    *why = "handshake: " + who + " calls itself member " +
           std::to_string(get<uint32_t>(in, kOffFrom)) + " and us member " +
           std::to_string(get<uint32_t>(in, kOffTo)) + "; the member lists differ";
  } else if (get<uint64_t>(in, kOffLogBytes) != options_.log_bytes) {
    *why = "handshake: " + who + " has log_bytes " +
           std::to_string(get<uint64_t>(in, kOffLogBytes)) + " and we " +
           std::to_string(options_.log_bytes) + "; every member needs the same log_bytes";
  } else if ((get<uint8_t>(in, kOffRoce) != 0) != roce_) {
    *why = "handshake: " + who + " is on another link layer (RoCE and InfiniBand do not mix)";
  } else {
    return true;
  }
  return false;
}

bool RdmaTransport::bring_up_qp(MemberId peer, const std::byte* hello, std::string* why) noexcept {
  Peer& p = peers_[peer];
  ibv_qp_attr a{};
  a.qp_state = IBV_QPS_RTR;
  const auto their_mtu = get<uint8_t>(hello, kOffMtu);
  a.path_mtu = static_cast<ibv_mtu>(their_mtu < mtu_ ? their_mtu : mtu_);
  a.dest_qp_num = get<uint32_t>(hello, kOffQpn);
  a.rq_psn = get<uint32_t>(hello, kOffPsn);
  a.max_dest_rd_atomic = 1;
  a.min_rnr_timer = 12;
  a.ah_attr.dlid = get<uint16_t>(hello, kOffLid);
  a.ah_attr.sl = 0;
  a.ah_attr.src_path_bits = 0;
  a.ah_attr.port_num = static_cast<uint8_t>(port_num_);
  if (roce_) {  // RoCE: every packet carries a GRH, addressed by GID
    a.ah_attr.is_global = 1;
    std::memcpy(a.ah_attr.grh.dgid.raw, hello + kOffGid, 16);
    a.ah_attr.grh.sgid_index = static_cast<uint8_t>(gid_index_);
    a.ah_attr.grh.hop_limit = 64;
  }
  int e = ibv_modify_qp(p.qp, &a,
                        IBV_QP_STATE | IBV_QP_AV | IBV_QP_PATH_MTU | IBV_QP_DEST_QPN |
                            IBV_QP_RQ_PSN | IBV_QP_MAX_DEST_RD_ATOMIC | IBV_QP_MIN_RNR_TIMER);
  if (e != 0) {
    *why = "queue pair to RTR: " + std::string(std::strerror(e)) + " (GID index " +
           std::to_string(gid_index_) +
           "; a RoCE GID that does not route to the peer, or no GID, " +
           "fails here: check gid_index)";
    return false;
  }
  ibv_qp_attr s{};
  s.qp_state = IBV_QPS_RTS;
  s.timeout = 14;  // 4.096 us * 2^14 = 67 ms per try
  s.retry_cnt = 7;
  s.rnr_retry = 7;
  s.sq_psn = p.psn;
  s.max_rd_atomic = 1;
  e = ibv_modify_qp(p.qp, &s,
                    IBV_QP_STATE | IBV_QP_TIMEOUT | IBV_QP_RETRY_CNT | IBV_QP_RNR_RETRY |
                        IBV_QP_SQ_PSN | IBV_QP_MAX_QP_RD_ATOMIC);
  if (e != 0) {
    *why = "queue pair to RTS: " + std::string(std::strerror(e));
    return false;
  }
  return true;
}

bool RdmaTransport::reset_qp(MemberId peer) noexcept {
  ibv_qp_attr r{};
  r.qp_state = IBV_QPS_RESET;
  if (ibv_modify_qp(peers_[peer].qp, &r, IBV_QP_STATE) != 0) return false;
  ibv_qp_attr a{};
  a.qp_state = IBV_QPS_INIT;
  a.pkey_index = 0;
  a.port_num = static_cast<uint8_t>(port_num_);
  a.qp_access_flags = IBV_ACCESS_REMOTE_WRITE;
  return ibv_modify_qp(peers_[peer].qp, &a,
                       IBV_QP_STATE | IBV_QP_PKEY_INDEX | IBV_QP_PORT | IBV_QP_ACCESS_FLAGS) == 0;
}

// A connected peer's TCP connection: silent while it lives; its end means the process died
// (or declared us gone and closed it).
void RdmaTransport::check_connection(MemberId peer) noexcept {
  std::byte b[16];
  const ssize_t n = recv(peers_[peer].fd, b, sizeof b, MSG_DONTWAIT);
  if (n == 0) {
    ++stats_.disconnects;
    fail_peer(peer, "its TCP connection closed (the process ended)");
  } else if (n > 0) {
    fail_peer(peer, "unexpected bytes on the TCP connection after the handshake");
  } else if (errno != EAGAIN && errno != EWOULDBLOCK) {
    ++stats_.disconnects;
    fail_peer(peer, std::string("its TCP connection failed: ") + std::strerror(errno));
  }
}

void RdmaTransport::fail_peer(MemberId peer, const std::string& why) noexcept {
  Peer& p = peers_[peer];
  close_fd(&p.fd);
  if (p.conn == Conn::kConnecting || p.conn == Conn::kHandshake) {
    // Not connected yet: start over (the caller may have been restarting, or a mismatch is
    // being fixed). The queue pair goes back to INIT; nothing was ever posted on it.
    ++stats_.handshake_errors;
    p.error = why;
    p.conn = Conn::kWaiting;
    p.sent = 0;
    p.got = 0;
    p.ready_sent = false;
    if (!reset_qp(peer)) {
      p.conn = Conn::kFailed;
      p.error = why + "; and its queue pair could not be reset";
    }
    return;
  }
  if (p.conn == Conn::kConnected) {
    --connected_count_;
    failed_bits_ |= 1u << peer;
  }
  if (p.conn != Conn::kGone) p.conn = Conn::kFailed;
  p.alive.store(false, std::memory_order_release);  // release: pairs with peer_alive()
  if (p.error.empty()) p.error = why;
}

void RdmaTransport::declare_gone(MemberId peer) noexcept {
  if (peer >= members() || peer == self() || peers_[peer].gone) return;
  Peer& p = peers_[peer];
  publication_.remove_reader(peer);
  if (p.conn == Conn::kConnected) --connected_count_;
  close_fd(&p.fd);
  p.conn = Conn::kGone;
  p.gone = true;
  p.alive.store(false, std::memory_order_release);  // release: pairs with peer_alive()
  // Its queue pair stays until teardown (destroying it while WRITEs are queued would only
  // flush them); nothing more is posted on it.
}

}  // namespace cohort::transport::rdma
