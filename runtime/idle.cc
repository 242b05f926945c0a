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

namespace {

long futex(std::atomic<uint32_t>& word, int op, uint32_t value, const timespec* timeout) noexcept {
  return syscall(SYS_futex, reinterpret_cast<uint32_t*>(&word), op, value, timeout, nullptr, 0);
}

}  // namespace

bool wake_announced(WakeWord& word, bool shared) noexcept {
  // relaxed: ordered after the caller's publication by its seq_cst fence; pairs with the
  // announcement and fence in prepare_wait() (see there).
  if (word.waiters.load(std::memory_order_relaxed) == 0) return false;
  // seq_cst (a release at least): a sleeper that loads the new epoch in prepare_wait() sees the
  // work published before it.
  word.epoch.fetch_add(1, std::memory_order_seq_cst);
  futex(word.epoch, shared ? FUTEX_WAKE : FUTEX_WAKE_PRIVATE, INT_MAX, nullptr);
  return true;
}

void Waker::bind_shared(WakeWord* word) noexcept {
  word_ = word != nullptr ? word : &own_;
}

uint32_t Waker::prepare_wait() noexcept {
  // The announcement, then a seq_cst fence before the recheck for work: it pairs with the
  // waker's fence between publishing work and loading the count (wake(), or the caller's in
  // wake_announced()). Either the waker sees us and bumps the epoch, or our recheck sees the
  // work it published (Dekker's pattern; the fence also orders it across processes).
  word_->waiters.fetch_add(1, std::memory_order_seq_cst);
  std::atomic_thread_fence(std::memory_order_seq_cst);
  // acquire: pairs with the epoch bump in wake_announced(); a bump seen here comes with the
  // work published before it.
  return word_->epoch.load(std::memory_order_acquire);
}

void Waker::cancel_wait() noexcept {
  word_->waiters.fetch_sub(1, std::memory_order_relaxed);
}

void Waker::wait(uint32_t epoch, uint64_t timeout_ns) noexcept {
  timespec ts{};
  ts.tv_sec = static_cast<time_t>(timeout_ns / 1'000'000'000);
  ts.tv_nsec = static_cast<long>(timeout_ns % 1'000'000'000);
  // Returns at once (EAGAIN) if the epoch already moved; EINTR and timeouts just return:
  // the poll loop rechecks its work either way.
  futex(word_->epoch, shared() ? FUTEX_WAIT : FUTEX_WAIT_PRIVATE, epoch, &ts);
  word_->waiters.fetch_sub(1, std::memory_order_relaxed);
}

void Waker::wake() noexcept {
  // seq_cst fence: pairs with the fence in prepare_wait() (see there).
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (wake_announced(*word_, shared())) wakes_sent_.fetch_add(1, std::memory_order_relaxed);
}

}  // namespace cohort
