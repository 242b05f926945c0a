// TscClock: monotonic within and across threads, in step with CLOCK_MONOTONIC, cheap to read,
// and correct on the fallback path. Bounds are generous: this checks behavior, not speed.
#include "runtime/clock.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

namespace cohort {
namespace {

TscClock make_clock(bool force_fallback = false) {
  ClockOptions options;
  options.force_fallback = force_fallback;
  Result<TscClock> created = TscClock::create(options);
  EXPECT_TRUE(created.ok()) << (created.ok() ? "" : created.error().message());
  return std::move(created).value();
}

uint64_t abs_diff(uint64_t a, uint64_t b) {
  return a > b ? a - b : b - a;
}

// Elapsed times over ~200 ms must agree within 0.5% or 200 us, whichever is larger.
void expect_tracks_monotonic(const TscClock& clk) {
  const uint64_t mono_start = TscClock::monotonic_ns();
  const uint64_t clk_start = clk.now_ns();
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  const uint64_t clk_end = clk.now_ns();
  const uint64_t mono_end = TscClock::monotonic_ns();
  const uint64_t mono_elapsed = mono_end - mono_start;
  const uint64_t clk_elapsed = clk_end - clk_start;
  const uint64_t tolerance = std::max<uint64_t>(mono_elapsed / 200, 200'000);
  EXPECT_GE(mono_elapsed, 200'000'000U);
  EXPECT_LE(abs_diff(clk_elapsed, mono_elapsed), tolerance)
      << "clock " << clk.source() << " measured " << clk_elapsed << " ns, CLOCK_MONOTONIC "
      << mono_elapsed << " ns";
  // Same epoch as CLOCK_MONOTONIC: readings line up, not just intervals.
  EXPECT_LE(abs_diff(clk_end, mono_end), tolerance) << "source " << clk.source();
}

TEST(Clock, CreateReportsItsSource) {
  const TscClock clk = make_clock();
  const std::string source = clk.source();
  if (clk.uses_tsc()) {
    EXPECT_EQ(source, "tsc");
    // Any x86-64 of this century: between 50 MHz and 20 GHz.
    EXPECT_GT(clk.ticks_per_ns(), 0.05);
    EXPECT_LT(clk.ticks_per_ns(), 20.0);
  } else {
    EXPECT_NE(source.find("clock_gettime(CLOCK_MONOTONIC)"), std::string::npos) << source;
  }
}

TEST(Clock, RejectsCalibrationWindowOutOfRange) {
  for (uint64_t window_ns : {uint64_t{0}, uint64_t{999}, uint64_t{60'000'000'000}}) {
    ClockOptions options;
    options.calibration_window_ns = window_ns;
    Result<TscClock> created = TscClock::create(options);
    ASSERT_FALSE(created.ok()) << window_ns;
    EXPECT_EQ(created.error().code(), Errc::kInvalidArgument);
    const std::string& message = created.error().message();
    EXPECT_NE(message.find("calibration_window_ns " + std::to_string(window_ns)), std::string::npos)
        << message;
    EXPECT_NE(message.find("20000000"), std::string::npos) << message;  // the remedy
  }
}

TEST(Clock, MonotonicWithinEachThreadAndAcrossThreads) {
  const TscClock clk = make_clock();
  const unsigned threads = std::clamp(std::thread::hardware_concurrency(), 2U, 8U);
  constexpr int kReads = 500'000;
  // The latest reading any thread has published. A reader that loads it and then reads the
  // clock (ordered, so the read cannot run before the load) must not see time go back.
  std::atomic<uint64_t> published{0};
  std::atomic<int> backwards_own{0};
  std::atomic<int> backwards_cross{0};
  std::vector<std::thread> workers;
  for (unsigned t = 0; t < threads; t++) {
    workers.emplace_back([&] {
      uint64_t last = clk.now_ns();
      int own = 0;
      int cross = 0;
      for (int i = 0; i < kReads; i++) {
        const uint64_t now = clk.now_ns();
        if (now < last) own++;
        last = now;
        if (i % 64 == 0) {
          // acquire: pairs with the release below in another thread.
          const uint64_t seen = published.load(std::memory_order_acquire);
          const uint64_t after = clk.now_ns_ordered();
          if (after < seen) cross++;
          uint64_t expected = seen;
          // release: pairs with the acquire load above in another thread.
          while (expected < after &&
                 !published.compare_exchange_weak(expected, after, std::memory_order_release,
                                                  std::memory_order_relaxed)) {
          }
        }
      }
      backwards_own += own;
      backwards_cross += cross;
    });
  }
  for (std::thread& w : workers) w.join();
  EXPECT_EQ(backwards_own.load(), 0) << "source " << clk.source();
  EXPECT_EQ(backwards_cross.load(), 0) << "source " << clk.source();
}

TEST(Clock, AgreesWithClockMonotonic) {
  expect_tracks_monotonic(make_clock());
}

TEST(Clock, FallbackWhenForced) {
  const TscClock clk = make_clock(/*force_fallback=*/true);
  EXPECT_FALSE(clk.uses_tsc());
  EXPECT_NE(std::string(clk.source()).find("forced"), std::string::npos) << clk.source();
  EXPECT_EQ(clk.ticks_per_ns(), 1.0);
  // Ticks are nanoseconds, so the conversion is the identity, even for huge values.
  for (uint64_t ticks :
       {uint64_t{0}, uint64_t{1}, uint64_t{123'456'789}, uint64_t{1} << 62, UINT64_MAX / 2}) {
    EXPECT_EQ(clk.ticks_to_ns(ticks), ticks);
  }
  uint64_t last = clk.now_ns();
  for (int i = 0; i < 100'000; i++) {
    const uint64_t now = clk.now_ns();
    ASSERT_GE(now, last);
    last = now;
  }
  expect_tracks_monotonic(clk);
}

TEST(Clock, TicksToNsIsConsistent) {
  const TscClock clk = make_clock();
  EXPECT_EQ(clk.ticks_to_ns(0), 0U);

  // One second's worth of ticks is one second, to the rounding of the fixed-point rate.
  const double per_ns = clk.ticks_per_ns();
  const auto one_second = static_cast<uint64_t>(std::llround(per_ns * 1e9));
  EXPECT_LE(abs_diff(clk.ticks_to_ns(one_second), 1'000'000'000), 2U);

  // Ten years of ticks neither overflow nor lose precision (the 128-bit product).
  const double ten_years_ns = 10.0 * 365.25 * 86400.0 * 1e9;
  const auto ten_years_ticks = static_cast<uint64_t>(ten_years_ns * per_ns);
  const double converted = static_cast<double>(clk.ticks_to_ns(ten_years_ticks));
  EXPECT_NEAR(converted / ten_years_ns, 1.0, 1e-6);

  // Additive to within rounding.
  const uint64_t a = 987'654'321;
  const uint64_t b = 123'456'789'012;
  EXPECT_LE(abs_diff(clk.ticks_to_ns(a + b), clk.ticks_to_ns(a) + clk.ticks_to_ns(b)), 1U);

  // An interval measured in ticks matches the same interval from now_ns().
  const uint64_t ticks_start = clk.ticks();
  const uint64_t ns_start = clk.now_ns();
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  const uint64_t ns_elapsed = clk.now_ns() - ns_start;
  const uint64_t ticks_elapsed = clk.ticks() - ticks_start;
  // Two reads sit between each pair; a preemption there is the only source of difference.
  EXPECT_LE(abs_diff(clk.ticks_to_ns(ticks_elapsed), ns_elapsed), 100'000U);
}

TEST(Clock, ReadIsCheap) {
  const TscClock& clk = clock();
  constexpr int kReads = 200'000;
  uint64_t sink = 0;
  // The best of five batches: tests run in parallel, and one batch may lose the cpu.
  double per_read_ns = 1e9;
  for (int batch = 0; batch < 5; ++batch) {
    const uint64_t start = TscClock::monotonic_ns();
    for (int i = 0; i < kReads; i++) sink += clk.now_ns();
    const uint64_t elapsed = TscClock::monotonic_ns() - start;
    per_read_ns = std::min(per_read_ns, static_cast<double>(elapsed) / kReads);
  }
  EXPECT_NE(sink, 0U);
  // A TSC read takes a few ns (tens under some hypervisors), the vDSO about 20-50 ns.
  EXPECT_LT(per_read_ns, 200.0) << "source " << clk.source();
  std::printf("clock: %s, %.1f ns per now_ns(), the best of 5 batches of %d reads\n", clk.source(),
              per_read_ns, kReads);
}

TEST(Clock, ProcessClockIsCalibratedOnceForAllThreads) {
  std::vector<const TscClock*> seen(4, nullptr);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < seen.size(); i++) {
    threads.emplace_back([&seen, i] { seen[i] = &clock(); });
  }
  for (std::thread& t : threads) t.join();
  for (const TscClock* c : seen) EXPECT_EQ(c, &clock());
  const uint64_t before = clock().now_ns();
  EXPECT_LE(before, clock().now_ns());
}

}  // namespace
}  // namespace cohort
