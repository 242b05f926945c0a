// TscClock: a monotonic nanosecond clock read from the TSC in a few ns, for timestamps,
// timeouts and latency figures on the hot path (STYLE.md: the clock is read once per loop
// iteration). It is calibrated once against CLOCK_MONOTONIC and then never makes a syscall.
//
// Epoch: now_ns() counts from CLOCK_MONOTONIC's epoch, matched at calibration, so its values
// can be compared with clock_gettime(CLOCK_MONOTONIC) readings. Afterwards the two drift apart
// by the calibration error (a few ppm for the default 20 ms window, i.e. microseconds per
// second at worst), and the TSC clock does not follow NTP slewing. Use it for intervals and
// deadlines inside one process, never for wall time.
//
// When the CPU lacks an invariant TSC (one that ticks at a constant rate through frequency
// changes and deep sleep states), when calibration cannot be trusted, or when asked to, it
// falls back to clock_gettime(CLOCK_MONOTONIC) through the vDSO (about 20-50 ns a read) and
// says so in uses_tsc() and source().
#pragma once

#include <cstdint>
#include <ctime>

#include "runtime/result.h"

namespace cohort {

struct ClockOptions {
  // Use clock_gettime(CLOCK_MONOTONIC) even when the TSC is invariant (tests, suspect VMs).
  bool force_fallback = false;
  // How long calibration watches the TSC against CLOCK_MONOTONIC. The rate error is about the
  // error of one reading pair (~100 ns) over the window: ~5 ppm at 20 ms, ~0.1 ppm at 1 s.
  uint64_t calibration_window_ns = 20'000'000;
};

// Immutable after create(): any thread may read it concurrently, and copies are cheap.
class TscClock {
 public:
  // Calibrates (blocking for about options.calibration_window_ns) or sets up the fallback.
  // Fails only for options out of range; a TSC that cannot be used gives the fallback.
  static Result<TscClock> create(const ClockOptions& options = {});

  // Nanoseconds since CLOCK_MONOTONIC's epoch. rdtsc, a subtraction and a 64x64->128 multiply
  // and shift: no division, and no overflow for 584 years of uptime. Not ordered against the
  // loads and stores around it (rdtsc may run early); see now_ns_ordered().
  uint64_t now_ns() const noexcept {
    if (!uses_tsc_) return monotonic_ns();
    return tsc_to_ns(__builtin_ia32_rdtsc());
  }

  // Like now_ns(), but lfence keeps the read from running before earlier loads complete.
  // For comparing a timestamp with one another thread published (a cross-core latency, a
  // monotonicity check); costs a pipeline drain, roughly 10-30 ns more.
  uint64_t now_ns_ordered() const noexcept {
    if (!uses_tsc_) return monotonic_ns();
    __builtin_ia32_lfence();
    return tsc_to_ns(__builtin_ia32_rdtsc());
  }

  // The raw counter: TSC ticks, or CLOCK_MONOTONIC nanoseconds in the fallback. Differences
  // of ticks() turn into durations with ticks_to_ns().
  uint64_t ticks() const noexcept {
    if (!uses_tsc_) return monotonic_ns();
    return __builtin_ia32_rdtsc();
  }

  // Converts a tick count (a difference of ticks(), not an absolute reading) to nanoseconds.
  uint64_t ticks_to_ns(uint64_t ticks) const noexcept { return scale(ticks); }

  // The calibrated rate; exactly 1.0 in the fallback.
  double ticks_per_ns() const noexcept { return ticks_per_ns_; }

  bool uses_tsc() const noexcept { return uses_tsc_; }
  // A static string naming the source and, for the fallback, why: "tsc" or
  // "clock_gettime(CLOCK_MONOTONIC): <reason>".
  const char* source() const noexcept { return source_; }

  // clock_gettime(CLOCK_MONOTONIC) in nanoseconds; the reference the TSC is calibrated on.
  static uint64_t monotonic_ns() noexcept {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ULL + static_cast<uint64_t>(ts.tv_nsec);
  }

 private:
  // ns = ticks * mult_ / 2^kShift. With a 128-bit product and mult_ < 2^40 (any TSC faster
  // than 1/256 GHz), nothing overflows until the result itself passes 2^64 ns. A 32-bit shift
  // gives the rate to 2^-32 relative, far finer than calibration can measure.
  static constexpr int kShift = 32;
  __extension__ typedef unsigned __int128 Uint128;

  TscClock(bool uses_tsc, const char* source, double ticks_per_ns, uint64_t base_ticks,
           uint64_t base_ns);

  uint64_t scale(uint64_t ticks) const noexcept {
    return static_cast<uint64_t>((static_cast<Uint128>(ticks) * mult_) >> kShift);
  }

  uint64_t tsc_to_ns(uint64_t tsc) const noexcept {
    // A read can land before the calibration anchor: the anchor sits mid-window, and a core
    // whose TSC trails by a few ticks may read below it. Handle that instead of wrapping.
    if (tsc >= base_ticks_) return base_ns_ + scale(tsc - base_ticks_);
    return base_ns_ - scale(base_ticks_ - tsc);
  }

  // Hot fields first: now_ns() touches only base_ticks_, base_ns_, mult_ and uses_tsc_, which
  // sit together in the first 25 bytes.
  uint64_t base_ticks_ = 0;  // a TSC reading taken at calibration...
  uint64_t base_ns_ = 0;     // ...and the CLOCK_MONOTONIC time that matches it
  uint64_t mult_ = 0;        // 2^kShift / ticks_per_ns_, rounded
  bool uses_tsc_ = false;
  double ticks_per_ns_ = 1.0;
  const char* source_ = "";
};

static_assert(sizeof(TscClock) <= 64, "a clock copied into a per-core object stays one line");

// The process-wide clock, calibrated on first use (thread-safe: a function-local static) with
// default options, so it is the TSC when the machine allows. The first call blocks
// for the calibration window (~20 ms), so setup code should call it early, before any thread
// enters its hot loop; later calls cost a guard check, and hot loops can keep the reference.
// Outside namespace cohort, write cohort::clock(): ::clock() from <ctime> is another function.
const TscClock& clock();

}  // namespace cohort
