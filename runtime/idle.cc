#include "runtime/idle.h"

#include <linux/futex.h>
#include <sched.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <climits>
#include <string>

namespace cohort {

Result<IdleKind> parse_idle_kind(std::string_view name) {
  if (name == "busy") return IdleKind::kBusy;
  if (name == "spin_yield") return IdleKind::kSpinYield;
  if (name == "backoff") return IdleKind::kBackoff;
  return Error(Errc::kInvalidArgument, "idle policy '" + std::string(name) +
                                           "' is unknown; use busy, spin_yield or backoff");
}

const char* idle_kind_name(IdleKind kind) noexcept {
  switch (kind) {
    case IdleKind::kBusy: return "busy";
    case IdleKind::kSpinYield: return "spin_yield";
    case IdleKind::kBackoff: return "backoff";
  }
  return "unknown";
}

Status validate(const IdleOptions& options) {
  if (options.min_park_ns == 0 || options.min_park_ns > options.max_park_ns) {
    return Error(Errc::kInvalidArgument, "idle: min_park_ns " +
                                             std::to_string(options.min_park_ns) +
                                             " must be at least 1 and at most max_park_ns " +
                                             std::to_string(options.max_park_ns));
  }
  if (options.max_park_ns > 1'000'000'000) {
    return Error(Errc::kInvalidArgument,
                 "idle: max_park_ns " + std::to_string(options.max_park_ns) +
                     " is over one second; timers would fire late. Use at most 1000000000");
  }
  return {};
}

IdleStrategy::Action IdleStrategy::next() noexcept {
  ++idle_iterations_;
  switch (options_.kind) {
    case IdleKind::kBusy: return Action::kSpin;
    case IdleKind::kSpinYield:
      return idle_iterations_ <= options_.spin_iterations ? Action::kSpin : Action::kYield;
    case IdleKind::kBackoff:
      if (idle_iterations_ <= options_.spin_iterations) return Action::kSpin;
      if (idle_iterations_ <= uint64_t{options_.spin_iterations} + options_.yield_iterations) {
        return Action::kYield;
      }
      return Action::kPark;
  }
  return Action::kSpin;
}

uint32_t Waker::prepare_wait() noexcept {
  // seq_cst: the announcement and the waker's fence in wake() are totally ordered, so either
  // the waker sees us and bumps the epoch, or our recheck sees the work it published.
  waiters_.fetch_add(1, std::memory_order_seq_cst);
  return epoch_.load(std::memory_order_seq_cst);
}

void Waker::cancel_wait() noexcept {
  waiters_.fetch_sub(1, std::memory_order_relaxed);
}

void Waker::wait(uint32_t epoch, uint64_t timeout_ns) noexcept {
  timespec ts{};
  ts.tv_sec = static_cast<time_t>(timeout_ns / 1'000'000'000);
  ts.tv_nsec = static_cast<long>(timeout_ns % 1'000'000'000);
  // Returns at once (EAGAIN) if the epoch already moved; EINTR and timeouts just return:
  // the poll loop rechecks its work either way.
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(&epoch_), FUTEX_WAIT_PRIVATE, epoch, &ts, nullptr,
          0);
  waiters_.fetch_sub(1, std::memory_order_relaxed);
}

void Waker::wake() noexcept {
  // seq_cst fence: pairs with the seq_cst announcement in prepare_wait() (see there).
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (waiters_.load(std::memory_order_relaxed) == 0) return;
  epoch_.fetch_add(1, std::memory_order_seq_cst);
  wakes_sent_.fetch_add(1, std::memory_order_relaxed);
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(&epoch_), FUTEX_WAKE_PRIVATE, INT_MAX, nullptr,
          nullptr, 0);
}

}  // namespace cohort
