// An in-memory datagram network for tests and the simulator: members' ports exchange copies
// of datagrams through bounded queues, in one thread, with no loss of its own beyond a full
// queue (dropped and counted, as a kernel drops on a full socket buffer). Faults come from
// the decorator in transport/fault, as they would over real sockets.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

#include "runtime/result.h"
#include "transport/dgram/port.h"
#include "transport/transport.h"

namespace cohort::transport::dgram {

class MemoryNetwork;

class MemoryPort {
 public:
  uint32_t send_burst(const TxDatagram* tx, uint32_t n, uint64_t now_ns) noexcept;
  uint32_t recv_burst(RxDatagram* rx, uint32_t max, uint64_t now_ns) noexcept;
  MemberId self() const noexcept { return self_; }

 private:
  friend class MemoryNetwork;
  MemoryNetwork* net_ = nullptr;
  MemberId self_ = 0;
};

static_assert(DatagramPort<MemoryPort>);

class MemoryNetwork {
 public:
  // `queue_depth` datagrams (a power of two) of up to `max_datagram_bytes` per member.
  static Result<std::unique_ptr<MemoryNetwork>> create(uint32_t members, uint32_t queue_depth,
                                                       uint32_t max_datagram_bytes);
  MemoryNetwork(const MemoryNetwork&) = delete;
  MemoryNetwork& operator=(const MemoryNetwork&) = delete;

  MemoryPort& port(MemberId m) noexcept { return queues_[m].port; }
  // Queues raw bytes for `to` as if they came from `from` (kUnknownPeer: a stranger). For
  // tests of garbage and of misdirected frames. False when the queue was full or too small.
  bool inject(MemberId to, MemberId from, std::span<const std::byte> bytes) noexcept;
  // Datagrams dropped because m's queue was full, too large, or addressed to no member.
  uint64_t drops(MemberId m) const noexcept { return queues_[m].drops; }
  uint64_t delivered(MemberId m) const noexcept { return queues_[m].delivered; }

 private:
  friend class MemoryPort;
  MemoryNetwork() = default;

  struct Queue {
    MemoryPort port;
    std::unique_ptr<std::byte[]> mem;  // depth x max_bytes
    std::unique_ptr<uint32_t[]> sizes;
    std::unique_ptr<MemberId[]> froms;
    uint64_t head = 0;    // next to hand out; free-running
    uint64_t tail = 0;    // next free; free-running
    uint64_t handed = 0;  // handed out by the last recv_burst, freed by the next
    uint64_t drops = 0;
    uint64_t delivered = 0;
  };

  bool deliver(MemberId to, MemberId from, std::span<const std::byte> bytes) noexcept;
  uint32_t receive(MemberId m, RxDatagram* rx, uint32_t max) noexcept;

  uint32_t members_ = 0;
  uint32_t depth_ = 0;
  uint32_t max_bytes_ = 0;
  std::unique_ptr<Queue[]> queues_;
};

}  // namespace cohort::transport::dgram
