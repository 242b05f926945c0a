// Setup of the fault injector: option checks, the seed, and the held datagrams' memory.
#include <random>
#include <string>

#include "transport/fault/fault_port.h"

namespace cohort::transport::fault {

namespace {

bool is_rate(double r) {
  return r >= 0 && r <= 1;
}

}  // namespace

Result<std::unique_ptr<FaultInjector>> FaultInjector::create(const FaultOptions& options) {
  const FaultOptions& o = options;
  if (!is_rate(o.drop_rate) || !is_rate(o.duplicate_rate) || !is_rate(o.reorder_rate) ||
      !is_rate(o.delay_rate) || o.reorder_rate + o.delay_rate > 1) {
    return Error(Errc::kInvalidArgument,
                 "fault: rates drop " + std::to_string(o.drop_rate) + ", duplicate " +
                     std::to_string(o.duplicate_rate) + ", reorder " +
                     std::to_string(o.reorder_rate) + ", delay " + std::to_string(o.delay_rate) +
                     " must each be in [0, 1], and reorder + delay at most 1");
  }
  if (o.reorder_depth == 0 || o.delay_max_ns == 0 || o.reorder_max_ns == 0 || o.max_held == 0 ||
      o.max_held > 65536 || o.max_datagram_bytes == 0 || o.max_datagram_bytes > 65536) {
    return Error(Errc::kInvalidArgument,
                 "fault: reorder depth " + std::to_string(o.reorder_depth) + ", delay max " +
                     std::to_string(o.delay_max_ns) + " ns, reorder max " +
                     std::to_string(o.reorder_max_ns) + " ns, " + std::to_string(o.max_held) +
                     " held datagrams of " + std::to_string(o.max_datagram_bytes) +
                     " bytes: each must be positive, at most 65536 held of at most 65536 bytes");
  }
  std::unique_ptr<FaultInjector> f(new FaultInjector(options));
  f->enabled_ = o.enabled();
  f->seed_ = o.seed;
  if (f->seed_ == 0) {
    std::random_device rd;
    while (f->seed_ == 0) f->seed_ = (static_cast<uint64_t>(rd()) << 32) ^ rd();
  }
  f->rng_.seed(f->seed_);
  f->held_.reset(new Held[o.max_held]());
  f->held_mem_.reset(new std::byte[static_cast<size_t>(o.max_held) * o.max_datagram_bytes]());
  f->free_.reset(new uint32_t[o.max_held]);
  for (uint32_t i = 0; i < o.max_held; ++i) f->free_[i] = o.max_held - 1 - i;
  f->free_count_ = o.max_held;
  // Every held datagram may be due at once, and each caller datagram may go out twice.
  const size_t out = o.max_held + 2 * static_cast<size_t>(dgram::kMaxTxBurst);
  f->out_.reset(new TxDatagram[out]());
  f->origin_.reset(new int32_t[out]());
  return f;
}

}  // namespace cohort::transport::fault
