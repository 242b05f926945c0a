// Fault injection for the lossy transports, since this machine has no `tc netem`: FaultPort
// decorates any datagram port (transport/dgram/port.h) and, on the way out, drops, duplicates,
// reorders (holds a datagram back until some later ones went, as a multipath network does) and
// delays (holds it for a while in the caller's clock) datagrams at configured rates. It is
// Aeron's loss generator and FoundationDB's BUGGIFY in one seam: the same engine code runs over
// it in the unit tests (in-memory port, fake clock) and in the integration tests (UDP sockets).
//
// All randomness comes from one PRNG seeded by FaultOptions::seed (or from random_device when
// it is 0); seed() says which, so a failing run can be replayed. With every rate at 0 the
// decorator passes bursts straight through: one predictable branch per burst.
//
// One thread (the one that owns the inner port) calls everything.
#pragma once

#include <cstdint>
#include <memory>
#include <random>
#include <span>
#include <utility>

#include "runtime/cache_line.h"
#include "runtime/result.h"
#include "transport/dgram/port.h"

namespace cohort::transport::fault {

using dgram::RxDatagram;
using dgram::TxDatagram;

struct FaultOptions {
  double drop_rate = 0;       // each datagram is lost with this probability,
  double duplicate_rate = 0;  // else sent twice with this one;
  double reorder_rate = 0;    // each copy is held until 1..reorder_depth later ones went,
  double delay_rate = 0;      // or held for 1..delay_max_ns, with these.
  uint32_t reorder_depth = 8;
  uint64_t reorder_max_ns = 1'000'000;  // a reordered datagram waits no longer than this
  uint64_t delay_max_ns = 200'000;
  uint64_t seed = 0;                   // 0: drawn from std::random_device at create(); see seed()
  uint32_t max_held = 128;             // datagrams held at once; beyond, they pass unharmed
  uint32_t max_datagram_bytes = 2048;  // larger datagrams are never held
  // A partition: while partition_from_ns <= now < partition_until_ns (the clock the owner
  // passes, runtime/clock.h's on every cohort transport), every datagram to or from a member
  // in partition_peers (bit n: member n) is dropped, data and control alike. Set on one side,
  // it cuts both directions: that side neither sends to them nor hears them.
  uint32_t partition_peers = 0;
  uint64_t partition_from_ns = 0;
  uint64_t partition_until_ns = ~uint64_t{0};
  bool enabled() const noexcept {
    return drop_rate > 0 || duplicate_rate > 0 || reorder_rate > 0 || delay_rate > 0 ||
           partition_peers != 0;
  }
};

// What the decorator did. "seen" counts the caller's datagrams.
struct alignas(kCacheLine) FaultStats {
  uint64_t seen = 0;
  uint64_t dropped = 0;
  uint64_t duplicated = 0;
  uint64_t reordered = 0;
  uint64_t delayed = 0;
  uint64_t released = 0;   // held datagrams sent at last
  uint64_t hold_full = 0;  // would have been held, but no slot was free or it was too large
  uint64_t partitioned = 0;  // dropped by the partition, either way (not in dropped)
};

// The decisions and the held datagrams; FaultPort below connects them to a port.
class FaultInjector {
 public:
  static Result<std::unique_ptr<FaultInjector>> create(const FaultOptions& options);
  FaultInjector(const FaultInjector&) = delete;
  FaultInjector& operator=(const FaultInjector&) = delete;

  bool enabled() const noexcept { return enabled_; }
  uint64_t seed() const noexcept { return seed_; }
  const FaultOptions& options() const noexcept { return options_; }
  const FaultStats& stats() const noexcept { return stats_; }
  uint32_t held() const noexcept { return held_count_; }

  // True when the partition cuts this member off from `peer` at now_ns.
  bool cut(MemberId peer, uint64_t now_ns) const noexcept {
    return peer < 32 && (options_.partition_peers >> peer & 1U) != 0 &&
           now_ns >= options_.partition_from_ns && now_ns < options_.partition_until_ns;
  }
  // Counts a datagram the partition dropped outside shape() (received ones, control ones).
  void count_partitioned() noexcept { ++stats_.partitioned; }

  // True when a held datagram may go out at now_ns.
  bool release_due(uint64_t now_ns) const noexcept {
    return held_count_ != 0 && now_ns >= next_release_ns_;
  }

  // The burst to hand the inner port instead of tx[0..n): the held datagrams now due, then the
  // caller's, less those dropped or held, with duplicates. Valid until the next call.
  std::span<const TxDatagram> shape(const TxDatagram* tx, uint32_t n, uint64_t now_ns) noexcept;
  // The inner port took the first `accepted` datagrams of the last shape(): frees the held ones
  // it took and returns how many of the caller's datagrams count as sent. A caller datagram
  // after the first one refused is sent again by the caller, so a datagram already held by
  // then goes out twice: one more duplicate, which is what this decorator is for anyway.
  uint32_t settle(uint32_t accepted) noexcept;

 private:
  struct Held {
    uint64_t release_ns = 0;   // goes out at this time at the latest
    uint64_t release_seq = 0;  // or once seq_ reaches this (reordering)
    MemberId to = 0;
    uint32_t size = 0;
    bool used = false;
  };

  explicit FaultInjector(const FaultOptions& options) noexcept : options_(options) {}
  double uniform() noexcept { return static_cast<double>(rng_() >> 11) * 0x1.0p-53; }
  uint64_t below(uint64_t n) noexcept { return rng_() % n; }
  bool hold(const TxDatagram& d, uint64_t release_ns, uint64_t release_seq) noexcept;
  std::byte* held_bytes(uint32_t i) noexcept;
  void push(const TxDatagram& d, int32_t origin) noexcept;

  FaultOptions options_;
  bool enabled_ = false;
  uint64_t seed_ = 0;
  std::mt19937_64 rng_;
  uint64_t seq_ = 0;  // caller datagrams passed on so far: the clock of reordering
  std::unique_ptr<Held[]> held_;
  std::unique_ptr<std::byte[]> held_mem_;
  std::unique_ptr<uint32_t[]> free_;  // a stack of free held slots
  uint32_t free_count_ = 0;
  uint32_t held_count_ = 0;
  uint64_t next_release_ns_ = 0;  // the earliest release_ns among the held ones
  // The shaped burst: datagrams and where each came from (caller index, or -1 - held slot).
  std::unique_ptr<TxDatagram[]> out_;
  std::unique_ptr<int32_t[]> origin_;
  uint32_t out_count_ = 0;
  uint32_t caller_count_ = 0;
  FaultStats stats_;
};

template <dgram::DatagramPort Inner>
class FaultPort {
 public:
  // `inner` is not owned and must outlive the decorator.
  static Result<FaultPort> create(Inner* inner, const FaultOptions& options) {
    auto injector = FaultInjector::create(options);
    if (!injector.ok()) return std::move(injector).error();
    return FaultPort(inner, std::move(injector).value());
  }

  uint32_t send_burst(const TxDatagram* tx, uint32_t n, uint64_t now_ns) noexcept {
    if (!injector_->enabled()) return inner_->send_burst(tx, n, now_ns);
    const std::span<const TxDatagram> shaped = injector_->shape(tx, n, now_ns);
    const uint32_t accepted =
        shaped.empty()
            ? 0
            : inner_->send_burst(shaped.data(), static_cast<uint32_t>(shaped.size()), now_ns);
    return injector_->settle(accepted);
  }

  // Held datagrams whose time came also go out when the owner only receives. Datagrams from a
  // member the partition cuts off are dropped here.
  uint32_t recv_burst(RxDatagram* rx, uint32_t max, uint64_t now_ns) noexcept {
    if (injector_->release_due(now_ns)) send_burst(nullptr, 0, now_ns);
    const uint32_t n = inner_->recv_burst(rx, max, now_ns);
    if (injector_->options().partition_peers == 0) return n;
    uint32_t kept = 0;
    for (uint32_t i = 0; i < n; ++i) {
      if (injector_->cut(rx[i].from, now_ns)) {
        injector_->count_partitioned();
      } else {
        rx[kept++] = rx[i];
      }
    }
    return kept;
  }

  const FaultInjector& injector() const noexcept { return *injector_; }
  FaultInjector& injector() noexcept { return *injector_; }
  Inner& inner() noexcept { return *inner_; }

 private:
  FaultPort(Inner* inner, std::unique_ptr<FaultInjector> injector) noexcept
      : inner_(inner), injector_(std::move(injector)) {}

  Inner* inner_;
  std::unique_ptr<FaultInjector> injector_;
};

}  // namespace cohort::transport::fault
