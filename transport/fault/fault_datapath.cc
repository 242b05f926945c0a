// The fault injector's data path: the dice, the held datagrams, the shaped burst. Bounded by
// max_held + 2 x the burst, allocation-free.
#include <cstring>

#include "runtime/assert.h"
#include "transport/fault/fault_port.h"

namespace cohort::transport::fault {

std::byte* FaultInjector::held_bytes(uint32_t i) noexcept {
  return held_mem_.get() + static_cast<size_t>(i) * options_.max_datagram_bytes;
}

void FaultInjector::push(const TxDatagram& d, int32_t origin) noexcept {
  out_[out_count_] = d;
  origin_[out_count_] = origin;
  ++out_count_;
}

bool FaultInjector::hold(const TxDatagram& d, uint64_t release_ns, uint64_t release_seq) noexcept {
  if (free_count_ == 0 || d.bytes.size() > options_.max_datagram_bytes) {
    ++stats_.hold_full;
    return false;
  }
  const uint32_t i = free_[--free_count_];
  if (!d.bytes.empty()) std::memcpy(held_bytes(i), d.bytes.data(), d.bytes.size());
  held_[i] = Held{release_ns, release_seq, d.to, static_cast<uint32_t>(d.bytes.size()), true};
  if (held_count_ == 0 || release_ns < next_release_ns_) next_release_ns_ = release_ns;
  ++held_count_;
  return true;
}

std::span<const TxDatagram> FaultInjector::shape(const TxDatagram* tx, uint32_t n,
                                                 uint64_t now_ns) noexcept {
  COHORT_ASSERT(n <= dgram::kMaxTxBurst);
  out_count_ = 0;
  caller_count_ = n;
  // Held datagrams whose time or turn came go first: they are the older ones.
  if (held_count_ != 0) {
    uint64_t next = ~uint64_t{0};
    for (uint32_t i = 0; i < options_.max_held; ++i) {
      const Held& h = held_[i];
      if (!h.used) continue;
      if (now_ns >= h.release_ns || seq_ >= h.release_seq) {
        push(TxDatagram{h.to, {held_bytes(i), h.size}}, -1 - static_cast<int32_t>(i));
      } else if (h.release_ns < next) {
        next = h.release_ns;
      }
    }
    next_release_ns_ = next;
  }
  for (uint32_t i = 0; i < n; ++i) {
    ++stats_.seen;
    if (cut(tx[i].to, now_ns)) {
      ++stats_.partitioned;
      continue;
    }
    if (uniform() < options_.drop_rate) {
      ++stats_.dropped;
      continue;
    }
    const bool twice = uniform() < options_.duplicate_rate;
    if (twice) ++stats_.duplicated;
    for (int copy = twice ? 2 : 1; copy > 0; --copy) {
      const double r = uniform();
      if (r < options_.reorder_rate) {
        const uint64_t later = 1 + below(options_.reorder_depth);
        if (hold(tx[i], now_ns + options_.reorder_max_ns, seq_ + later)) {
          ++stats_.reordered;
          continue;
        }
      } else if (r < options_.reorder_rate + options_.delay_rate) {
        if (hold(tx[i], now_ns + 1 + below(options_.delay_max_ns), ~uint64_t{0})) {
          ++stats_.delayed;
          continue;
        }
      }
      push(tx[i], static_cast<int32_t>(i));
      ++seq_;
    }
  }
  return {out_.get(), out_count_};
}

uint32_t FaultInjector::settle(uint32_t accepted) noexcept {
  COHORT_ASSERT(accepted <= out_count_);
  for (uint32_t k = 0; k < accepted; ++k) {
    if (origin_[k] >= 0) continue;
    const auto i = static_cast<uint32_t>(-1 - origin_[k]);
    held_[i].used = false;
    free_[free_count_++] = i;
    --held_count_;
    ++stats_.released;
  }
  // Held datagrams the port refused stay held, due at once on the next call.
  if (accepted < out_count_ && held_count_ != 0) next_release_ns_ = 0;
  for (uint32_t k = accepted; k < out_count_; ++k) {
    if (origin_[k] >= 0) return static_cast<uint32_t>(origin_[k]);
  }
  return caller_count_;
}

}  // namespace cohort::transport::fault
