// The in-memory network: setup and its (test-only) data path, in one small file.
#include "transport/dgram/memory_port.h"

#include <cstring>
#include <string>

namespace cohort::transport::dgram {

Result<std::unique_ptr<MemoryNetwork>> MemoryNetwork::create(uint32_t members, uint32_t queue_depth,
                                                             uint32_t max_datagram_bytes) {
  if (members < 1 || members > kMaxMembers || queue_depth == 0 ||
      (queue_depth & (queue_depth - 1)) != 0 || max_datagram_bytes == 0) {
    return Error(Errc::kInvalidArgument,
                 "memory network: " + std::to_string(members) + " members, queue depth " +
                     std::to_string(queue_depth) + ", datagrams of " +
                     std::to_string(max_datagram_bytes) +
                     " bytes; members must be 1..32 and the depth a power of two");
  }
  std::unique_ptr<MemoryNetwork> net(new MemoryNetwork());
  net->members_ = members;
  net->depth_ = queue_depth;
  net->max_bytes_ = max_datagram_bytes;
  net->queues_.reset(new Queue[members]);
  for (MemberId m = 0; m < members; ++m) {
    Queue& q = net->queues_[m];
    q.port.net_ = net.get();
    q.port.self_ = m;
    q.mem.reset(new std::byte[static_cast<size_t>(queue_depth) * max_datagram_bytes]());
    q.sizes.reset(new uint32_t[queue_depth]());
    q.froms.reset(new MemberId[queue_depth]());
  }
  return net;
}

bool MemoryNetwork::deliver(MemberId to, MemberId from, std::span<const std::byte> bytes) noexcept {
  if (to >= members_) return false;
  Queue& q = queues_[to];
  // Slots [head, tail) are in use: handed out by the last burst, or queued.
  if (q.tail - q.head == depth_ || bytes.size() > max_bytes_) {
    ++q.drops;
    return false;
  }
  const auto slot = static_cast<size_t>(q.tail & (depth_ - 1));
  if (!bytes.empty()) std::memcpy(q.mem.get() + slot * max_bytes_, bytes.data(), bytes.size());
  q.sizes[slot] = static_cast<uint32_t>(bytes.size());
  q.froms[slot] = from;
  ++q.tail;
  ++q.delivered;
  return true;
}

bool MemoryNetwork::inject(MemberId to, MemberId from, std::span<const std::byte> bytes) noexcept {
  return deliver(to, from, bytes);
}

uint32_t MemoryNetwork::receive(MemberId m, RxDatagram* rx, uint32_t max) noexcept {
  Queue& q = queues_[m];
  q.head += q.handed;  // the views of the last burst expire now
  q.handed = 0;
  uint32_t n = 0;
  while (n < max && q.head + n != q.tail) {
    const auto slot = static_cast<size_t>((q.head + n) & (depth_ - 1));
    rx[n] = RxDatagram{q.froms[slot], {q.mem.get() + slot * max_bytes_, q.sizes[slot]}};
    ++n;
  }
  q.handed = n;
  return n;
}

uint32_t MemoryPort::send_burst(const TxDatagram* tx, uint32_t n, uint64_t) noexcept {
  for (uint32_t i = 0; i < n; ++i) {
    if (!net_->deliver(tx[i].to, self_, tx[i].bytes) && tx[i].to >= net_->members_) {
      // Addressed to no member: a bug in the caller, but a port only counts it.
      ++net_->queues_[self_].drops;
    }
  }
  return n;  // a full queue drops, as a socket buffer does: the caller never waits
}

uint32_t MemoryPort::recv_burst(RxDatagram* rx, uint32_t max, uint64_t) noexcept {
  return net_->receive(self_, rx, max);
}

}  // namespace cohort::transport::dgram
