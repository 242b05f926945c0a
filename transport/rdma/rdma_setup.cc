// Setup and teardown of the rdma transport: the device and port, the GID, the protection
// domain, registered memory (our log; an inbox per peer: its words and the replica of its
// log), the completion queue, one RC queue pair per peer (left in INIT until the handshake),
// the TCP listener and the control socket. Control path only.
#include <arpa/inet.h>
#include <fcntl.h>
#include <infiniband/verbs.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <random>
#include <string>

#include "transport/dgram/dgram_log.h"
#include "transport/rdma/rdma_transport.h"
#include "transport/udp/udp_transport.h"

namespace cohort::transport::rdma {

namespace {

const char* port_state_name(ibv_port_state s) {
  switch (s) {
    case IBV_PORT_ACTIVE: return "ACTIVE";
    case IBV_PORT_DOWN: return "DOWN";
    case IBV_PORT_INIT: return "INIT";
    case IBV_PORT_ARMED: return "ARMED";
    case IBV_PORT_ACTIVE_DEFER: return "ACTIVE_DEFER";
    default: return "NOP";
  }
}

std::string gid_text(const ibv_gid& g) {
  char buf[INET6_ADDRSTRLEN] = {};
  inet_ntop(AF_INET6, g.raw, buf, sizeof buf);
  return buf;
}

bool gid_zero(const ibv_gid& g) {
  for (uint8_t b : g.raw) {
    if (b != 0) return false;
  }
  return true;
}

bool gid_ipv4_mapped(const ibv_gid& g) {
  for (int i = 0; i < 10; ++i) {
    if (g.raw[i] != 0) return false;
  }
  return g.raw[10] == 0xff && g.raw[11] == 0xff;
}

// CAP_IPC_LOCK in the effective set: registered memory is then not counted against memlock.
bool can_lock_unlimited() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("CapEff:", 0) == 0) {
      const unsigned long long caps = std::strtoull(line.c_str() + 7, nullptr, 16);
      return ((caps >> 14) & 1u) != 0;  // CAP_IPC_LOCK is capability 14
    }
  }
  return false;
}

uint64_t memlock_limit() {
  rlimit r{};
  if (getrlimit(RLIMIT_MEMLOCK, &r) != 0) return ~uint64_t{0};
  return r.rlim_cur == RLIM_INFINITY ? ~uint64_t{0} : static_cast<uint64_t>(r.rlim_cur);
}

}  // namespace

RdmaTransport::RdmaTransport(const RdmaOptions& options) : options_(options) {
  for (int& fd : pending_fds_) fd = -1;
}

RdmaTransport::~RdmaTransport() {
  teardown();
}

Result<std::unique_ptr<RdmaTransport>> RdmaTransport::create(const RdmaOptions& options) {
  std::unique_ptr<RdmaTransport> t(new RdmaTransport(options));
  COHORT_TRY(t->setup());
  return t;
}

Status RdmaTransport::setup() {
  COHORT_TRY(check_options(options_));
  for (MemberId m = 0; m < members(); ++m) addrs_[m] = *udp::parse_endpoint(options_.members[m]);
  group_id_ = dgram::group_id_of(options_.group.c_str());
  std::random_device rd;
  incarnation_ = (static_cast<uint64_t>(rd()) << 32 | rd()) | 1u;
  // Check memlock before touching the device: the error then names the fix, not an ENOMEM.
  const uint64_t needed =
      options_.log_bytes + (members() - 1) * (kInboxHeaderBytes + options_.log_bytes);
  COHORT_TRY(check_memlock(needed, memlock_limit(), can_lock_unlimited()));
  COHORT_TRY(open_device());
  COHORT_TRY(register_memory());
  COHORT_TRY(create_queue_pairs());
  COHORT_TRY(open_sockets());
  return {};
}

Status RdmaTransport::open_device() {
  int n = 0;
  errno = 0;
  ibv_device** list = ibv_get_device_list(&n);
  if (list == nullptr) {
    if (errno == ENOSYS) {
      return Error(Errc::kUnsupported,
                   "rdma: this kernel has no RDMA support (ibv_get_device_list: ENOSYS; no "
                   "/sys/class/infiniband_verbs); load ib_uverbs and a driver, or run inside "
                   "scripts/rdma-vm");
    }
    return system_error("rdma: ibv_get_device_list", errno);
  }
  std::vector<PortInfo> found;
  std::vector<ibv_context*> opened(static_cast<size_t>(n), nullptr);
  for (int i = 0; i < n; ++i) {
    ibv_context* c = ibv_open_device(list[i]);
    if (c == nullptr) continue;
    opened[static_cast<size_t>(i)] = c;
    ibv_device_attr da{};
    if (ibv_query_device(c, &da) != 0) continue;
    for (uint32_t p = 1; p <= da.phys_port_cnt; ++p) {
      ibv_port_attr pa{};
      if (ibv_query_port(c, static_cast<uint8_t>(p), &pa) != 0) continue;
      PortInfo info;
      info.device = ibv_get_device_name(list[i]);
      info.port = p;
      info.active = pa.state == IBV_PORT_ACTIVE;
      info.state = port_state_name(pa.state);
      info.link_layer = pa.link_layer == IBV_LINK_LAYER_ETHERNET ? "Ethernet" : "InfiniBand";
      found.push_back(info);
    }
  }
  auto chosen = choose_port(found, options_.device, options_.port);
  for (int i = 0; i < n; ++i) {
    ibv_context* c = opened[static_cast<size_t>(i)];
    if (c == nullptr) continue;
    if (chosen.ok() && ctx_ == nullptr && chosen->device == ibv_get_device_name(list[i])) {
      ctx_ = c;
    } else {
      ibv_close_device(c);
    }
  }
  ibv_free_device_list(list);
  if (!chosen.ok()) return std::move(chosen).error();
  port_num_ = chosen->port;

  ibv_port_attr pa{};
  if (ibv_query_port(ctx_, static_cast<uint8_t>(port_num_), &pa) != 0) {
    return system_error("rdma: ibv_query_port " + chosen->device, errno);
  }
  roce_ = pa.link_layer == IBV_LINK_LAYER_ETHERNET;
  lid_ = pa.lid;
  mtu_ = static_cast<uint8_t>(pa.active_mtu);
  // The GID: RoCE needs one (every packet carries a GRH); InfiniBand routes by LID in a subnet.
  std::string gids;
  int32_t pick = -1;
  for (int i = 0; i < pa.gid_tbl_len && i < 256; ++i) {
    ibv_gid g{};
    if (ibv_query_gid(ctx_, static_cast<uint8_t>(port_num_), i, &g) != 0 || gid_zero(g)) continue;
    ibv_gid_entry e{};
    const bool v2 = ibv_query_gid_ex(ctx_, port_num_, static_cast<uint32_t>(i), &e, 0) == 0 &&
                    e.gid_type == IBV_GID_TYPE_ROCE_V2;
    gids += (gids.empty() ? "" : ", ") + std::to_string(i) + " " + gid_text(g) +
            (roce_ ? (v2 ? " (RoCE v2)" : " (RoCE v1)") : "");
    if (options_.gid_index < 0 && pick < 0 && (!roce_ || (gid_ipv4_mapped(g) && v2))) pick = i;
  }
  if (options_.gid_index >= 0) {
    ibv_gid g{};
    if (ibv_query_gid(ctx_, static_cast<uint8_t>(port_num_), options_.gid_index, &g) != 0 ||
        gid_zero(g)) {
      return Error(Errc::kNotFound,
                   "rdma: " + chosen->device + " port " + std::to_string(port_num_) +
                       " has no GID at index " + std::to_string(options_.gid_index) +
                       "; GIDs there: " + (gids.empty() ? "none" : gids) +
                       "; choose one with gid_index (-1 picks the IPv4-mapped RoCE v2 one), or "
                       "give the netdev an IP address (RoCE GIDs come from its addresses)");
    }
    pick = options_.gid_index;
  }
  if (pick < 0 && !roce_) pick = 0;
  if (pick < 0) {
    return Error(
        Errc::kNotFound,
        "rdma: " + chosen->device + " port " + std::to_string(port_num_) +
            " has no IPv4-mapped RoCE v2 GID; GIDs there: " + (gids.empty() ? "none" : gids) +
            "; give its netdev an IPv4 address, or set gid_index to one of those");
  }
  ibv_gid g{};
  if (ibv_query_gid(ctx_, static_cast<uint8_t>(port_num_), pick, &g) != 0) {
    return system_error("rdma: ibv_query_gid " + std::to_string(pick), errno);
  }
  gid_index_ = pick;
  std::memcpy(gid_, g.raw, sizeof gid_);
  static const char* kMtu[] = {"?", "256", "512", "1024", "2048", "4096"};
  device_description_ = chosen->device + " port " + std::to_string(port_num_) + " gid " +
                        std::to_string(pick) + " (" + gid_text(g) + ") mtu " +
                        kMtu[mtu_ <= 5 ? mtu_ : 0] + (roce_ ? " RoCE" : " InfiniBand");
  pd_ = ibv_alloc_pd(ctx_);
  if (pd_ == nullptr) return system_error("rdma: ibv_alloc_pd on " + chosen->device, errno);
  return {};
}

Status RdmaTransport::register_memory() {
  const uint64_t log_bytes = options_.log_bytes;
  auto map = [](size_t bytes) -> std::byte* {
    void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? nullptr : static_cast<std::byte*>(p);
  };
  auto reg_error = [&](const std::string& what, int err) -> Error {
    if (err == ENOMEM || err == EPERM || err == EAGAIN) {
      return Error(Errc::kUnavailable,
                   "rdma: registering " + what + " failed (" + std::strerror(err) +
                       "); the locked-memory limit is the usual cause: raise it (`ulimit -l "
                       "unlimited`, LimitMEMLOCK=infinity in a systemd unit, memlock in "
                       "/etc/security/limits.conf) or make log_bytes smaller");
    }
    return system_error("rdma: ibv_reg_mr for " + what, err);
  };
  log_mem_ = map(log_bytes);
  if (log_mem_ == nullptr) return system_error("rdma: mmap of the log", errno);
  // The source of our WRITEs: local access only; nobody writes into our log.
  log_mr_ = ibv_reg_mr(pd_, log_mem_, log_bytes, IBV_ACCESS_LOCAL_WRITE);
  if (log_mr_ == nullptr)
    return reg_error("the log (" + std::to_string(log_bytes) + " bytes)", errno);
  publication_ = LogWriter(log_mem_, log_bytes, nullptr);

  inbox_stride_ = static_cast<size_t>(kInboxHeaderBytes + log_bytes);
  mapped_bytes_ = inbox_stride_ * members();
  inbox_mem_ = map(mapped_bytes_);
  if (inbox_mem_ == nullptr) return system_error("rdma: mmap of the replicas", errno);
  for (MemberId p = 0; p < members(); ++p) {
    if (p == self()) continue;
    Peer& peer = peers_[p];
    peer.inbox = inbox_mem_ + inbox_stride_ * p;
    peer.words = new (peer.inbox) InboxWords{};
    // One region per peer, writable by remote writes: a peer's rkey reaches its inbox alone.
    peer.inbox_mr = ibv_reg_mr(pd_, peer.inbox, inbox_stride_,
                               IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE);
    if (peer.inbox_mr == nullptr) {
      return reg_error("member " + std::to_string(p) + "'s replica (" +
                           std::to_string(inbox_stride_) + " bytes)",
                       errno);
    }
    peer.sub = dgram::ReplicaSubscription(peer.inbox + kInboxHeaderBytes, log_bytes, &peer.released,
                                          &peer.received);
    // Expected from the start: our log is held for it until it connects and reads from 0.
    publication_.expect_reader(p);
  }
  return {};
}

Status RdmaTransport::create_queue_pairs() {
  // One completion queue for every send queue (we post no receives): the data core reaps it.
  const int cqe = static_cast<int>(options_.send_queue_depth * (members() > 1 ? members() - 1 : 1));
  cq_ = ibv_create_cq(ctx_, cqe, nullptr, nullptr, 0);
  if (cq_ == nullptr) return system_error("rdma: ibv_create_cq of " + std::to_string(cqe), errno);
  for (MemberId p = 0; p < members(); ++p) {
    if (p == self()) continue;
    ibv_qp_init_attr init{};
    init.send_cq = cq_;
    init.recv_cq = cq_;
    init.qp_type = IBV_QPT_RC;
    init.sq_sig_all = 0;  // selective signalling
    init.cap.max_send_wr = options_.send_queue_depth;
    init.cap.max_recv_wr = 1;
    init.cap.max_send_sge = 1;
    init.cap.max_recv_sge = 1;
    init.cap.max_inline_data = 64;  // the position words go inline: no buffer to keep alive
    ibv_qp* qp = ibv_create_qp(pd_, &init);
    if (qp == nullptr) {
      return system_error("rdma: ibv_create_qp for member " + std::to_string(p) + " (send queue " +
                              std::to_string(options_.send_queue_depth) + ")",
                          errno);
    }
    peers_[p].qp = qp;
    peers_[p].psn = static_cast<uint32_t>((incarnation_ >> 8) + p * 0x9e37u) & 0xffffffu;
    max_inline_ = init.cap.max_inline_data;
    if (max_inline_ < 16) {
      return Error(Errc::kUnsupported,
                   "rdma: the device takes too little inline data "
                   "(max_inline_data " +
                       std::to_string(max_inline_) + "); cohort needs 16 bytes");
    }
    ibv_qp_attr a{};
    a.qp_state = IBV_QPS_INIT;
    a.pkey_index = 0;
    a.port_num = static_cast<uint8_t>(port_num_);
    a.qp_access_flags = IBV_ACCESS_REMOTE_WRITE;
    if (const int e = ibv_modify_qp(
            qp, &a, IBV_QP_STATE | IBV_QP_PKEY_INDEX | IBV_QP_PORT | IBV_QP_ACCESS_FLAGS);
        e != 0) {
      return system_error("rdma: queue pair for member " + std::to_string(p) + " to INIT", e);
    }
  }
  return {};
}

Status RdmaTransport::open_sockets() {
  const sockaddr_in self_addr = addrs_[self()];
  char ip[INET_ADDRSTRLEN] = {};
  inet_ntop(AF_INET, &self_addr.sin_addr, ip, sizeof ip);
  const std::string where = std::string(ip) + ":" + std::to_string(ntohs(self_addr.sin_port));
  listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (listen_fd_ < 0) return system_error("rdma: socket for the TCP listener", errno);
  const int one = 1;
  setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(listen_fd_, reinterpret_cast<const sockaddr*>(&self_addr), sizeof self_addr) != 0) {
    const int err = errno;
    if (err == EADDRINUSE) {
      return Error(Errc::kUnavailable, "rdma: TCP " + where +
                                           " (queue-pair setup) is in use; is this member "
                                           "already running? choose other ports in members");
    }
    if (err == EADDRNOTAVAIL) {
      return Error(Errc::kInvalidArgument,
                   "rdma: " + where + " is not an address of this host; check members");
    }
    return system_error("rdma: cannot bind TCP " + where, err);
  }
  if (listen(listen_fd_, static_cast<int>(kMaxMembers)) != 0) {
    return system_error("rdma: listen on " + where, errno);
  }
  const sockaddr_in c = udp::UdpControlChannel::control_address(self_addr);
  const int control_fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (control_fd < 0) return system_error("rdma: socket for the control channel", errno);
  if (bind(control_fd, reinterpret_cast<const sockaddr*>(&c), sizeof c) != 0) {
    const int err = errno;
    close(control_fd);
    return err == EADDRINUSE
               ? Error(Errc::kUnavailable, "rdma: UDP " + std::string(ip) + ":" +
                                               std::to_string(ntohs(c.sin_port)) +
                                               " (control channel) is in use; choose other "
                                               "ports in members")
               : system_error("rdma: cannot bind the control channel", err);
  }
  control_.open(control_fd, {addrs_, members()}, self(), group_id_);
  return {};
}

void RdmaTransport::teardown() noexcept {
  for (int& fd : pending_fds_) close_fd(&fd);
  close_fd(&listen_fd_);
  control_.close();
  publication_.close();
  for (MemberId p = 0; p < kMaxMembers; ++p) {
    Peer& peer = peers_[p];
    close_fd(&peer.fd);
    peer.alive.store(false, std::memory_order_release);
    if (peer.qp != nullptr) ibv_destroy_qp(peer.qp);  // flushes what is still queued
    peer.qp = nullptr;
  }
  if (cq_ != nullptr) ibv_destroy_cq(cq_);
  cq_ = nullptr;
  for (MemberId p = 0; p < kMaxMembers; ++p) {
    if (peers_[p].inbox_mr != nullptr) ibv_dereg_mr(peers_[p].inbox_mr);
    peers_[p].inbox_mr = nullptr;
  }
  if (log_mr_ != nullptr) ibv_dereg_mr(log_mr_);
  log_mr_ = nullptr;
  if (pd_ != nullptr) ibv_dealloc_pd(pd_);
  pd_ = nullptr;
  if (ctx_ != nullptr) ibv_close_device(ctx_);
  ctx_ = nullptr;
  if (inbox_mem_ != nullptr) munmap(inbox_mem_, mapped_bytes_);
  inbox_mem_ = nullptr;
  if (log_mem_ != nullptr) munmap(log_mem_, options_.log_bytes);
  log_mem_ = nullptr;
}

void RdmaTransport::close_fd(int* fd) noexcept {
  if (*fd >= 0) close(*fd);
  *fd = -1;
}

uint64_t RdmaTransport::heartbeat_of(MemberId peer) const noexcept {
  if (peer >= members() || peer == self() || peers_[peer].words == nullptr) return 0;
  // relaxed: a counter for liveness only; nothing is read through it.
  return peers_[peer].words->heartbeat.load(std::memory_order_relaxed);
}

uint64_t RdmaTransport::LogView::sent_position() const noexcept {
  uint64_t min = t_->publication_.position();
  for (MemberId p = 0; p < t_->members(); ++p) {
    const Peer& peer = t_->peers_[p];
    if (p != t_->self() && peer.conn == Conn::kConnected && peer.pushed < min) min = peer.pushed;
  }
  return min;
}

uint64_t RdmaTransport::LogView::peer_released(MemberId peer) const noexcept {
  if (peer >= t_->members() || peer == t_->self()) return 0;
  // acquire: as the writer's own loads of the word (LogWriter::min_reader_position).
  // relaxed: the data core's own store in poll(); read on the same thread.
  return t_->peers_[peer].position.load(std::memory_order_relaxed);
}

std::string RdmaTransport::describe() const {
  const Stats& s = stats_;
  auto u = [](uint64_t v) { return std::to_string(v); };
  std::string out = device_description_ + "; writes " + u(s.write_wrs) + " bytes " +
                    u(s.write_bytes) + " tails " + u(s.tail_wrs) + " positions " +
                    u(s.position_wrs) + " heartbeats " + u(s.heartbeat_wrs) + " doorbells " +
                    u(s.doorbells) + " signalled " + u(s.signalled) + " completions " +
                    u(s.completions) + " errors " + u(s.completion_errors + s.post_errors) +
                    " sq-full " + u(s.send_queue_full) + " torn " + u(s.torn_words) +
                    "; connects " + u(s.connects) + " handshake errors " + u(s.handshake_errors) +
                    " disconnects " + u(s.disconnects) + "; control sent " +
                    u(control_stats().sent) + " received " + u(control_stats().received);
  for (MemberId p = 0; p < members(); ++p) {
    if (!peers_[p].error.empty()) out += "; member " + u(p) + ": " + peers_[p].error;
  }
  return out;
}

}  // namespace cohort::transport::rdma
