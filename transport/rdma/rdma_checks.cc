// The rdma transport's checks that need no device: options, the memlock limit, and the choice
// of device and port from what discovery found. Pure functions, so the unit tests run them on
// a host without an RDMA device. Control path only.
#include <string>

#include "transport/rdma/rdma_transport.h"
#include "transport/udp/udp_transport.h"

namespace cohort::transport::rdma {

namespace {
std::string mib(uint64_t bytes) {
  return std::to_string((bytes + (1u << 20) - 1) >> 20) + " MiB";
}
}  // namespace

Status check_options(const RdmaOptions& o) {
  const auto n = static_cast<uint32_t>(o.members.size());
  COHORT_TRY(check_group_and_self("rdma", o.group, o.self, n));
  sockaddr_in addrs[kMaxMembers];
  for (MemberId m = 0; m < n; ++m) {
    auto a = udp::parse_endpoint(o.members[m]);
    if (!a.ok()) {
      return std::move(a).error().with_context("rdma: member " + std::to_string(m) + " ");
    }
    addrs[m] = *a;
  }
  for (MemberId i = 0; i < n; ++i) {
    for (MemberId j = i + 1; j < n; ++j) {
      const int di = ntohs(addrs[i].sin_port);
      const int dj = ntohs(addrs[j].sin_port);
      if (addrs[i].sin_addr.s_addr == addrs[j].sin_addr.s_addr && di - dj <= 1 && dj - di <= 1) {
        return Error(Errc::kInvalidArgument,
                     "rdma: members " + std::to_string(i) + " (" + o.members[i] + ") and " +
                         std::to_string(j) + " (" + o.members[j] +
                         ") overlap: each member takes its port (TCP, queue-pair setup) and the "
                         "next one (UDP, control); space the ports at least 2 apart");
      }
    }
  }
  const uint64_t b = o.log_bytes;
  if (b < (64u << 10) || b > (1ull << 30) || (b & (b - 1)) != 0) {
    return Error(Errc::kInvalidArgument,
                 "rdma: log size " + std::to_string(b) +
                     " must be a power of two from 64 KiB to 1 GiB; fix log_bytes");
  }
  if (o.send_queue_depth < 32 || o.send_queue_depth > 16384) {
    return Error(
        Errc::kInvalidArgument,
        "rdma: send_queue_depth " + std::to_string(o.send_queue_depth) + " must be 32..16384");
  }
  if (o.signal_every < 1 || o.signal_every > (o.send_queue_depth - 8) / 2) {
    return Error(Errc::kInvalidArgument,
                 "rdma: signal_every " + std::to_string(o.signal_every) + " must be 1.." +
                     std::to_string((o.send_queue_depth - 8) / 2) +
                     " (half the send queue less one flush), so a signalled write is always "
                     "queued when the queue fills");
  }
  if (o.heartbeat_interval_ns == 0 || o.connect_retry_ns == 0) {
    return Error(Errc::kInvalidArgument,
                 "rdma: heartbeat_interval_ns and connect_retry_ns must be above 0");
  }
  if (o.gid_index < -1 || o.gid_index > 255) {
    return Error(Errc::kInvalidArgument, "rdma: gid_index " + std::to_string(o.gid_index) +
                                             " must be -1 (automatic) or 0..255");
  }
  return {};
}

Status check_memlock(uint64_t needed, uint64_t limit, bool can_lock_unlimited) {
  if (can_lock_unlimited || limit >= needed) return {};
  return Error(Errc::kUnavailable,
               "rdma: registering the log and the peers' replicas pins " + mib(needed) +
                   ", but the locked-memory limit (RLIMIT_MEMLOCK) is " +
                   (limit < (1u << 20) ? std::to_string(limit >> 10) + " KiB" : mib(limit)) +
                   "; raise it: `ulimit -l unlimited` in the shell that starts the member, "
                   "LimitMEMLOCK=infinity in its systemd unit, `* - memlock unlimited` in "
                   "/etc/security/limits.conf, or --ulimit memlock=-1 for a container; or "
                   "make log_bytes smaller");
}

std::string describe_ports(const std::vector<PortInfo>& found) {
  if (found.empty()) return "none";
  std::string s;
  for (const PortInfo& p : found) {
    if (!s.empty()) s += ", ";
    s += p.device + " port " + std::to_string(p.port) + " " + p.state + " (" + p.link_layer + ")";
  }
  return s;
}

Result<PortInfo> choose_port(const std::vector<PortInfo>& found, const std::string& device,
                             uint32_t port) {
  if (found.empty()) {
    return Error(Errc::kNotFound,
                 "rdma: no RDMA device found (ibv_get_device_list() returned none); load the "
                 "driver of the NIC, or for Soft-RoCE `modprobe rdma_rxe && rdma link add rxe0 "
                 "type rxe netdev <netdev>`, or run inside scripts/rdma-vm");
  }
  bool named = false;
  for (const PortInfo& p : found) {
    if (!device.empty() && p.device != device) continue;
    named = true;
    if (port != 0 && p.port != port) continue;
    if (p.active) return p;
  }
  const std::string all = describe_ports(found);
  if (!device.empty() && !named) {
    return Error(Errc::kNotFound,
                 "rdma: device '" + device + "' not found; devices found: " + all + "; fix device");
  }
  if (port != 0) {
    for (const PortInfo& p : found) {
      if ((device.empty() || p.device == device) && p.port == port) {
        return Error(Errc::kUnavailable,
                     "rdma: " + p.device + " port " + std::to_string(port) + " is " + p.state +
                         "; bring its link up (RoCE: `ip link set <netdev> up`; InfiniBand: "
                         "check the cable and that a subnet manager runs), or choose another "
                         "port; found: " +
                         all);
      }
    }
    return Error(Errc::kNotFound, "rdma: no port " + std::to_string(port) +
                                      (device.empty() ? "" : " on " + device) + "; found: " + all +
                                      "; fix port");
  }
  return Error(Errc::kUnavailable,
               "rdma: no active port" + (device.empty() ? std::string() : " on " + device) +
                   "; found: " + all +
                   "; bring a link up (RoCE: `ip link set <netdev> up`; InfiniBand: check the "
                   "cable and that a subnet manager runs)");
}

}  // namespace cohort::transport::rdma
