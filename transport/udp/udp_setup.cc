// Setup of the udp transport: options, addresses, the two sockets, the engine and the fault
// decorator. Control path only.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>

#include "transport/fault/fault_engine.h"
#include "transport/udp/udp_transport.h"

namespace cohort::transport::udp {

namespace {

std::string to_string(const sockaddr_in& a) {
  char ip[INET_ADDRSTRLEN] = {};
  inet_ntop(AF_INET, &a.sin_addr, ip, sizeof ip);
  return std::string(ip) + ":" + std::to_string(ntohs(a.sin_port));
}

// Opens a non-blocking UDP socket bound to `addr`; `what` names it in errors.
Result<int> bind_socket(const sockaddr_in& addr, const std::string& what) {
  const int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return system_error("udp: cannot create a socket for " + what, errno);
  if (bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0) return fd;
  const int err = errno;
  close(fd);
  const std::string where = to_string(addr);
  switch (err) {
    case EADDRINUSE:
      return Error(Errc::kUnavailable,
                   "udp: " + where + " (" + what +
                       ") is in use; is this member already running, or another program on "
                       "that port? choose other ports in members");
    case EADDRNOTAVAIL:
      return Error(Errc::kInvalidArgument, "udp: " + where + " (" + what +
                                               ") is not an address of this host; check members");
    case EACCES:
      return Error(Errc::kUnavailable,
                   "udp: binding " + where + " (" + what +
                       ") needs privileges (ports below 1024); choose a port above 1023");
    default: return system_error("udp: cannot bind " + where + " (" + what + ")", err);
  }
}

}  // namespace

Result<sockaddr_in> parse_endpoint(const std::string& text) {
  const auto colon = text.rfind(':');
  sockaddr_in a{};
  a.sin_family = AF_INET;
  const std::string host = colon == std::string::npos ? text : text.substr(0, colon);
  const std::string port = colon == std::string::npos ? "" : text.substr(colon + 1);
  char* end = nullptr;
  const unsigned long p = port.empty() ? 0 : std::strtoul(port.c_str(), &end, 10);
  if (colon == std::string::npos || inet_pton(AF_INET, host.c_str(), &a.sin_addr) != 1 ||
      port.empty() || *end != '\0' || port.size() > 5) {
    return Error(Errc::kInvalidArgument,
                 "address '" + text +
                     "' is not an IPv4 address:port such as 127.0.0.1:7000; fix it in members");
  }
  if (p == 0) {
    return Error(
        Errc::kInvalidArgument,
        "address '" + text + "': port 0 is not allowed, peers must know the port; use 1..65534");
  }
  if (p > 65534) {
    return Error(Errc::kInvalidArgument,
                 "address '" + text +
                     "': the control channel takes the next port, so the port must be 1..65534");
  }
  a.sin_port = htons(static_cast<uint16_t>(p));
  return a;
}

UdpPort::~UdpPort() {
  if (fd_ >= 0) close(fd_);
}

Status UdpPort::open(const sockaddr_in& self, uint32_t buffer_bytes, const std::string& what) {
  auto fd = bind_socket(self, what);
  if (!fd.ok()) return std::move(fd).error();
  fd_ = *fd;
  // Big buffers absorb a burst of the whole window.
  set_socket_buffers(fd_, buffer_bytes);

  tx_msgs_.reset(new mmsghdr[kTxChunk]());
  tx_iovs_.reset(new iovec[kTxChunk]());
  rx_mem_.reset(new std::byte[static_cast<size_t>(dgram::kRxBurst) * kRxSlotBytes]());
  rx_msgs_.reset(new mmsghdr[dgram::kRxBurst]());
  rx_iovs_.reset(new iovec[dgram::kRxBurst]());
  rx_addrs_.reset(new sockaddr_in[dgram::kRxBurst]());
  for (uint32_t i = 0; i < kTxChunk; ++i) {
    tx_msgs_[i].msg_hdr.msg_iov = &tx_iovs_[i];
    tx_msgs_[i].msg_hdr.msg_iovlen = 1;
    tx_msgs_[i].msg_hdr.msg_namelen = sizeof(sockaddr_in);
  }
  for (uint32_t i = 0; i < dgram::kRxBurst; ++i) {
    rx_iovs_[i] = iovec{rx_mem_.get() + static_cast<size_t>(i) * kRxSlotBytes, kRxSlotBytes};
    rx_msgs_[i].msg_hdr.msg_iov = &rx_iovs_[i];
    rx_msgs_[i].msg_hdr.msg_iovlen = 1;
    rx_msgs_[i].msg_hdr.msg_name = &rx_addrs_[i];
  }
  return {};
}

UdpTransport::UdpTransport(const UdpOptions& options) : options_(options) {}

UdpTransport::~UdpTransport() = default;

Result<std::unique_ptr<UdpTransport>> UdpTransport::create(const UdpOptions& options) {
  std::unique_ptr<UdpTransport> t(new UdpTransport(options));
  COHORT_TRY(t->setup());
  return t;
}

Status UdpTransport::setup() {
  const UdpOptions& o = options_;
  const auto n = static_cast<uint32_t>(o.members.size());
  COHORT_TRY(check_group_and_self("udp", o.group, o.self, n));
  for (MemberId m = 0; m < n; ++m) {
    auto a = parse_endpoint(o.members[m]);
    if (!a.ok()) return std::move(a).error().with_context("udp: member " + std::to_string(m) + " ");
    addrs_[m] = *a;
  }
  // Each member takes port and port + 1 on its address: no two may overlap.
  for (MemberId i = 0; i < n; ++i) {
    for (MemberId j = i + 1; j < n; ++j) {
      const int di = ntohs(addrs_[i].sin_port);
      const int dj = ntohs(addrs_[j].sin_port);
      if (addrs_[i].sin_addr.s_addr == addrs_[j].sin_addr.s_addr && di - dj <= 1 && dj - di <= 1) {
        return Error(Errc::kInvalidArgument,
                     "udp: members " + std::to_string(i) + " (" + o.members[i] + ") and " +
                         std::to_string(j) + " (" + o.members[j] +
                         ") overlap: each member takes its port and the next one (control); "
                         "space the ports at least 2 apart");
      }
    }
  }
  group_id_ = dgram::group_id_of(o.group.c_str());

  port_.members_ = n;
  for (MemberId m = 0; m < n; ++m) port_.peers_[m] = addrs_[m];
  COHORT_TRY(port_.open(addrs_[o.self], o.socket_buffer_bytes,
                        "member " + std::to_string(o.self) + "'s data port"));
  COHORT_TRY(open_control_socket());

  COHORT_TRY(
      fault::start_engine_behind_faults("udp", o, group_id_, &port_, &fault_port_, &engine_));
  control_.cut_by(&fault_port_->injector());
  return {};
}

Status UdpTransport::open_control_socket() {
  auto fd = bind_socket(UdpControlChannel::control_address(addrs_[options_.self]),
                        "member " + std::to_string(options_.self) + "'s control port");
  if (!fd.ok()) return std::move(fd).error();
  control_.open(*fd, {addrs_, members()}, options_.self, group_id_);
  return {};
}

std::string UdpTransport::describe() const {
  const dgram::DgramStats& s = log().stats();
  const fault::FaultStats& f = faults().stats();
  const UdpPort::Stats& p = port_stats();
  auto u = [](uint64_t v) { return std::to_string(v); };
  return "tx data " + u(s.tx_data_frames) + " repairs " + u(s.tx_repair_frames) + " nacks " +
         u(s.tx_nacks) + " status " + u(s.tx_status) + " heartbeats " + u(s.tx_heartbeats) +
         " refused " + u(s.tx_refused) + "; rx data " + u(s.rx_data_frames) + " duplicates " +
         u(s.rx_duplicate) + " nacks " + u(s.rx_nacks) + " decode drops " + u(s.decode.dropped()) +
         " beyond window " + u(s.rx_beyond_window) + " ranges full " + u(s.rx_ranges_full) +
         "; faults seed " + u(faults().seed()) + " dropped " + u(f.dropped) + " duplicated " +
         u(f.duplicated) + " reordered " + u(f.reordered) + " delayed " + u(f.delayed) +
         " partitioned " + u(f.partitioned + control_stats().partitioned) +
         "; socket would-block " + u(p.tx_would_block) + " errors " + u(p.tx_errors + p.rx_errors);
}

}  // namespace cohort::transport::udp
