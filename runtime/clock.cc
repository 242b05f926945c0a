#include "runtime/clock.h"

#include <cpuid.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cmath>
#include <optional>
#include <string>

namespace cohort {
namespace {

constexpr uint64_t kMinWindowNs = 1'000'000;       // below ~1 ms the rate error passes 0.01%
constexpr uint64_t kMaxWindowNs = 10'000'000'000;  // setup should not stall longer than this
constexpr int kPoints = 16;                        // calibration points spread over the window
constexpr int kAttemptsPerPoint = 5;               // keep the tightest of these brackets
// 50 MHz to 20 GHz: anything outside is a broken measurement (or a hypervisor lying), not a CPU.
constexpr double kMinTicksPerNs = 0.05;
constexpr double kMaxTicksPerNs = 20.0;

constexpr const char* kSourceTsc = "tsc";
constexpr const char* kSourceForced = "clock_gettime(CLOCK_MONOTONIC): fallback forced by options";
constexpr const char* kSourceNotInvariant =
    "clock_gettime(CLOCK_MONOTONIC): the TSC is not invariant (cpuid 0x80000007 EDX bit 8 clear)";
constexpr const char* kSourceImplausible =
    "clock_gettime(CLOCK_MONOTONIC): TSC calibration gave an implausible rate";
constexpr const char* kSourceNoisy =
    "clock_gettime(CLOCK_MONOTONIC): TSC calibration too noisy (most samples disturbed)";

// An invariant TSC ticks at a constant rate in every P-, C- and T-state, so one calibration
// holds for the life of the process. Linux's constant_tsc and nonstop_tsc flags come from the
// same bit.
bool tsc_is_invariant() {
  unsigned eax = 0;
  unsigned ebx = 0;
  unsigned ecx = 0;
  unsigned edx = 0;
  // __get_cpuid checks the highest extended leaf first and fails if 0x80000007 is absent.
  if (__get_cpuid(0x80000007U, &eax, &ebx, &ecx, &edx) == 0) return false;
  return (edx & (1U << 8)) != 0;
}

// lfence before rdtsc waits for earlier instructions; lfence after keeps later ones (the
// clock_gettime being bracketed) from starting before the TSC is read.
uint64_t tsc_ordered() noexcept {
  __builtin_ia32_lfence();
  const uint64_t tsc = __builtin_ia32_rdtsc();
  __builtin_ia32_lfence();
  return tsc;
}

struct Sample {
  uint64_t tsc = 0;    // midpoint of the bracket
  uint64_t ns = 0;     // CLOCK_MONOTONIC inside the bracket
  uint64_t width = 0;  // bracket width in ticks: the reading's uncertainty is half of it
};

// One CLOCK_MONOTONIC reading bracketed by two TSC reads, the tightest of a few attempts: an
// interrupt or a preemption inside the bracket widens it, and the tightest one missed them.
Sample take_sample() {
  Sample best;
  best.width = UINT64_MAX;
  for (int i = 0; i < kAttemptsPerPoint; i++) {
    const uint64_t before = tsc_ordered();
    const uint64_t ns = TscClock::monotonic_ns();
    const uint64_t after = tsc_ordered();
    if (after < before) continue;  // migrated between unsynchronized cores: useless
    if (after - before < best.width) {
      best = Sample{before + (after - before) / 2, ns, after - before};
    }
  }
  return best;
}

void sleep_until_ns(uint64_t deadline_ns) {
  timespec ts{};
  ts.tv_sec = static_cast<time_t>(deadline_ns / 1'000'000'000ULL);
  ts.tv_nsec = static_cast<long>(deadline_ns % 1'000'000'000ULL);
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr) == EINTR) {
  }
}

struct Fit {
  double ticks_per_ns = 0;
  uint64_t anchor_tsc = 0;
  uint64_t anchor_ns = 0;
};

// Least-squares line of ticks against ns through the usable samples. Values are taken relative
// to the first sample and centred before multiplying, so doubles lose nothing that matters.
// The anchor is the centroid, a point on the fitted line where the readings' noise averages out.
Fit least_squares(const std::array<Sample, kPoints>& samples, int count) {
  const Sample& origin = samples[0];
  double mean_x = 0;
  double mean_y = 0;
  for (int i = 0; i < count; i++) {
    mean_x += static_cast<double>(samples[i].ns - origin.ns);
    mean_y += static_cast<double>(static_cast<int64_t>(samples[i].tsc - origin.tsc));
  }
  mean_x /= count;
  mean_y /= count;
  double sxx = 0;
  double sxy = 0;
  for (int i = 0; i < count; i++) {
    const double dx = static_cast<double>(samples[i].ns - origin.ns) - mean_x;
    const double dy =
        static_cast<double>(static_cast<int64_t>(samples[i].tsc - origin.tsc)) - mean_y;
    sxx += dx * dx;
    sxy += dx * dy;
  }
  Fit fit;
  fit.ticks_per_ns = sxx > 0 ? sxy / sxx : 0;
  fit.anchor_ns = origin.ns + static_cast<uint64_t>(std::llround(mean_x));
  fit.anchor_tsc = origin.tsc + static_cast<uint64_t>(std::llround(mean_y));
  return fit;
}

// Samples spread evenly over the window; sleeping between them keeps a 2-core machine usable.
// Points whose bracket is much wider than the median were disturbed and are dropped. Empty
// when too few points survive to trust a rate.
std::optional<Fit> calibrate(uint64_t window_ns) {
  std::array<Sample, kPoints> samples{};
  const uint64_t start_ns = TscClock::monotonic_ns();
  for (int i = 0; i < kPoints; i++) {
    if (i > 0) sleep_until_ns(start_ns + window_ns * static_cast<uint64_t>(i) / (kPoints - 1));
    samples[i] = take_sample();
  }
  std::array<uint64_t, kPoints> widths{};
  for (int i = 0; i < kPoints; i++) widths[i] = samples[i].width;
  std::nth_element(widths.begin(), widths.begin() + kPoints / 2, widths.end());
  const uint64_t limit = std::max<uint64_t>(widths[kPoints / 2] * 4, 1000);

  std::array<Sample, kPoints> usable{};
  int count = 0;
  for (const Sample& s : samples) {
    if (s.width <= limit) usable[count++] = s;
  }
  // The fit needs points at both ends of the window to measure a rate at all.
  const bool spans_window = count >= 4 && usable[count - 1].ns - usable[0].ns >= window_ns / 2;
  if (!spans_window) return std::nullopt;
  return least_squares(usable, count);
}

}  // namespace

TscClock::TscClock(bool uses_tsc, const char* source, double ticks_per_ns, uint64_t base_ticks,
                   uint64_t base_ns)
    : base_ticks_(base_ticks),
      base_ns_(base_ns),
      mult_(static_cast<uint64_t>(std::llround(std::ldexp(1.0, kShift) / ticks_per_ns))),
      uses_tsc_(uses_tsc),
      ticks_per_ns_(ticks_per_ns),
      source_(source) {
  COHORT_ASSERT(ticks_per_ns >= kMinTicksPerNs && ticks_per_ns <= kMaxTicksPerNs);
  COHORT_ASSERT(mult_ > 0);
  COHORT_ASSERT(source_ != nullptr);
}

Result<TscClock> TscClock::create(const ClockOptions& options) {
  if (options.calibration_window_ns < kMinWindowNs ||
      options.calibration_window_ns > kMaxWindowNs) {
    return Error(Errc::kInvalidArgument,
                 "clock: calibration_window_ns " + std::to_string(options.calibration_window_ns) +
                     " is outside [" + std::to_string(kMinWindowNs) + ", " +
                     std::to_string(kMaxWindowNs) + "]; use the default of 20000000 (20 ms)");
  }
  // The fallback's ticks are CLOCK_MONOTONIC nanoseconds: rate 1, and no anchor needed.
  if (options.force_fallback) return TscClock(false, kSourceForced, 1.0, 0, 0);
  if (!tsc_is_invariant()) return TscClock(false, kSourceNotInvariant, 1.0, 0, 0);

  // A correct clock beats a fast wrong one: when calibration cannot be trusted, fall back
  // and let source() tell whoever looks.
  const std::optional<Fit> fit = calibrate(options.calibration_window_ns);
  if (!fit) return TscClock(false, kSourceNoisy, 1.0, 0, 0);
  if (!(fit->ticks_per_ns >= kMinTicksPerNs && fit->ticks_per_ns <= kMaxTicksPerNs)) {
    return TscClock(false, kSourceImplausible, 1.0, 0, 0);
  }
  return TscClock(true, kSourceTsc, fit->ticks_per_ns, fit->anchor_tsc, fit->anchor_ns);
}

const TscClock& clock() {
  // C++ runs this initializer once even when threads race into it; the others wait.
  // Default options are in range, so create() cannot fail; it falls back on its own.
  static const TscClock instance = [] {
    Result<TscClock> created = TscClock::create(ClockOptions{});
    COHORT_ASSERT(created.ok());
    return std::move(created).value();
  }();
  return instance;
}

}  // namespace cohort
