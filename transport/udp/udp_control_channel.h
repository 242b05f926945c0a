// UdpControlChannel: the control channel of the transports that reach their peers over kernel
// UDP for it (udp, rdma): kControl frames (transport/wire) on a socket of its own at each
// member's port + 1. udp/NOTES.md says why the control channel has its own socket, and
// rdma/NOTES.md why rdma sends its control datagrams this way and not with RDMA SEND/RECV.
// Heartbeats and view-change messages are a few per millisecond at most, so one sendto per
// message is cheap enough; receiving takes a burst with recvmmsg.
//
// Ownership and threads: the transport binds the socket (in its own words for the errors) on
// the control path and hands it over with open(); from then on the control core alone calls
// send(), poll() and stats(), and the channel shares no mutable state with the data core. The
// fault decorator's partition, when given, is only read (its options are fixed at create()).
#pragma once

#include <netinet/in.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

#include "transport/fault/fault_port.h"
#include "transport/transport.h"
#include "transport/wire/frame.h"

namespace cohort::transport::udp {

// Asks for `bytes` of kernel receive and send buffer on a UDP socket: past net.core.rmem_max /
// wmem_max when the process may (SO_RCVBUFFORCE, CAP_NET_ADMIN), else up to them. Never an
// error: a smaller buffer only means more loss for the protocol to repair.
void set_socket_buffers(int fd, uint32_t bytes) noexcept;

class UdpControlChannel {
 public:
  struct Stats {
    uint64_t sent = 0;
    uint64_t received = 0;
    uint64_t non_member = 0;
    uint64_t sender_mismatch = 0;
    uint64_t wrong_type = 0;
    uint64_t truncated = 0;
    uint64_t partitioned = 0;  // sent or received across the fault decorator's partition
    wire::DecodeCounters decode;
  };

  // The control address of the member whose data (udp) or TCP (rdma) address is `addr`: the
  // next port. Ports are 1..65534 (parse_endpoint), so it never wraps.
  static sockaddr_in control_address(const sockaddr_in& addr) noexcept {
    sockaddr_in a = addr;
    a.sin_port = htons(static_cast<uint16_t>(ntohs(a.sin_port) + 1));
    return a;
  }

  UdpControlChannel() = default;
  UdpControlChannel(const UdpControlChannel&) = delete;
  UdpControlChannel& operator=(const UdpControlChannel&) = delete;
  ~UdpControlChannel() { close(); }

  // Takes `fd`, a non-blocking UDP socket bound to control_address(addrs[self]), gives it
  // kSocketBufferBytes of kernel buffer, and allocates the buffers. `addrs` are the members'
  // addresses (their control ports are one above). Control path, before the control core starts.
  void open(int fd, std::span<const sockaddr_in> addrs, MemberId self, uint64_t group_id);
  // The fault decorator whose partition holds for the control channel too (udp; the injector
  // outlives the channel). Control path, before the control core starts.
  void cut_by(const fault::FaultInjector* faults) noexcept { faults_ = faults; }
  // Closes the socket (teardown; also done by the destructor).
  void close() noexcept;

  // A small datagram to one peer, never blocking.
  SendStatus send(MemberId to, std::span<const std::byte> bytes) noexcept;
  // Up to max datagrams that arrived; valid until the next call. Anything that is not an
  // intact kControl frame of this group from a member's control address is dropped, counted.
  uint32_t poll(ControlMessage* out, uint32_t max) noexcept;
  const Stats& stats() const noexcept { return stats_; }

 private:
  static constexpr uint32_t kBatch = 32;
  // A control core descheduled for a while (a loaded VM) finds its peers' datagrams waiting
  // here rather than dropped: at the kernel's default (~208 KiB) a guest lost a quarter of a
  // test's 200 datagrams of up to 8 KiB (rdma_guest, under a load average of 8).
  static constexpr uint32_t kSocketBufferBytes = 4u << 20;
  static constexpr uint32_t kFrameBytes =
      static_cast<uint32_t>(wire::kFrameHeaderSize) + kMaxControlBytes;

  MemberId member_of(const sockaddr_in& addr) const noexcept;
  bool cut_off(MemberId peer) noexcept;

  int fd_ = -1;
  uint32_t members_ = 0;
  MemberId self_ = 0;
  uint64_t group_id_ = 0;
  const fault::FaultInjector* faults_ = nullptr;
  sockaddr_in peers_[kMaxMembers] = {};  // control ports
  uint64_t seq_ = 0;
  std::unique_ptr<std::byte[]> tx_;  // one frame
  std::unique_ptr<std::byte[]> rx_;  // kBatch frames, + 1 byte each to see truncation
  Stats stats_;
};

}  // namespace cohort::transport::udp
