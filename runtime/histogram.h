// Histogram: a log-linear latency histogram in the manner of HdrHistogram, written here from the
// published algorithm. Values are grouped into buckets that double in width; each bucket is split
// into sub_bucket_count linear sub-buckets, so every recorded value is kept to within one part in
// 10^significant_digits (3 digits: 2048 sub-buckets, a quantum of at most 1/1024 of the value).
//
// All memory is allocated once, in create(): for the default range (1 ns .. 1 hour, 3 digits)
// that is 32 buckets, 33'792 counters, 264 KiB. record() allocates nothing, takes no lock and has
// no loop: one count-leading-zeros, two shifts and an add find the counter.
//
// Ownership and threads: a Histogram belongs to the one core that records into it and is not
// thread-safe. To report across cores, each core keeps its own and the reporter merge()s them
// when the cores are quiescent (or merges histograms the cores hand over and replace).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>

#include "runtime/assert.h"
#include "runtime/result.h"

namespace cohort {

class Histogram {
 public:
  static constexpr uint64_t kDefaultHighestTrackable = 3'600'000'000'000;  // one hour in ns
  static constexpr int kDefaultSignificantDigits = 3;
  static constexpr int kMinSignificantDigits = 1;
  // Five digits already need 262'144 sub-buckets, 1 MiB of counters per bucket (26 MiB for the
  // default range); more buys nothing for latencies measured by a clock that is itself no better.
  static constexpr int kMaxSignificantDigits = 5;

  // Tracks values in [0, highest_trackable] with significant_digits decimal digits of resolution
  // (the lowest discernible value is 1). Fails with kInvalidArgument if highest_trackable < 2 or
  // significant_digits is outside 1..5, and with kUnavailable if the counters cannot be allocated.
  [[nodiscard]] static Result<Histogram> create(
      uint64_t highest_trackable = kDefaultHighestTrackable,
      int significant_digits = kDefaultSignificantDigits);

  // Move-only: the counters are large, and a silent copy on a reporting path would allocate. A
  // moved-from Histogram may only be destroyed or assigned to.
  Histogram(Histogram&&) noexcept = default;
  Histogram& operator=(Histogram&&) noexcept = default;
  Histogram(const Histogram&) = delete;
  Histogram& operator=(const Histogram&) = delete;
  ~Histogram() = default;

  // Records one value. A value above highest_trackable() is recorded as highest_trackable() and
  // counted in saturated(), so a stalled request still lands in the tail instead of vanishing.
  void record(uint64_t value) noexcept { record_n(value, 1); }

  // Records `value` `count` times (count == 0 records nothing).
  void record_n(uint64_t value, uint64_t count) noexcept {
    COHORT_DASSERT(counts_ != nullptr);
    if (count == 0) return;
    if (value > highest_trackable_) {
      value = highest_trackable_;
      saturated_ += count;
    }
    counts_[index_of(value)] += count;
    total_count_ += count;
    min_ = std::min(min_, value);
    max_ = std::max(max_, value);
  }

  // Clears every count; keeps the layout and the memory.
  void reset() noexcept;

  // Adds other's counts to this one. Both must have been created with the same highest_trackable
  // and significant_digits; otherwise nothing changes and the error names both layouts.
  [[nodiscard]] Status merge(const Histogram& other);

  uint64_t count() const noexcept { return total_count_; }
  // Values recorded above highest_trackable() (and clamped to it).
  uint64_t saturated() const noexcept { return saturated_; }
  // The exact smallest and largest values recorded (after clamping); 0 when empty.
  uint64_t min() const noexcept { return total_count_ == 0 ? 0 : min_; }
  uint64_t max() const noexcept { return max_; }
  // Mean and population standard deviation, taking each count at the middle of its sub-bucket, as
  // HdrHistogram does: within the histogram's resolution, and 0 when empty.
  double mean() const noexcept;
  double stddev() const noexcept;

  // The highest value equivalent to the sub-bucket that holds the value of rank
  // round(p / 100 * count()) (at least rank 1), like HdrHistogram's getValueAtPercentile.
  // p is clamped to [0, 100]; returns 0 when empty.
  uint64_t value_at_percentile(double p) const noexcept;

  // The smallest and largest values that share value's sub-bucket; record(v) for any v in
  // [lowest_equivalent(value), highest_equivalent(value)] is indistinguishable.
  uint64_t lowest_equivalent(uint64_t value) const noexcept {
    const int bucket = bucket_of(value);
    return (value >> bucket) << bucket;
  }
  uint64_t highest_equivalent(uint64_t value) const noexcept {
    // Adding (width - 1) rather than width keeps the top sub-bucket of a 64-bit range from
    // wrapping to zero.
    return lowest_equivalent(value) + ((uint64_t{1} << bucket_of(value)) - 1);
  }

  // The percentile distribution in HdrHistogram's text format (outputPercentileDistribution):
  // a header, one row per percentile step (ticks_per_half_distance rows each time the distance
  // to 100% halves), and a footer with mean, standard deviation, max, count and the layout.
  // Values are divided by value_scale (1000.0 prints ns as us) and printed with
  // significant_digits() decimals. Allocates: for reports, not for the data path.
  std::string percentile_text(double value_scale = 1.0, int ticks_per_half_distance = 5) const;

  uint64_t highest_trackable() const noexcept { return highest_trackable_; }
  int significant_digits() const noexcept { return significant_digits_; }
  int bucket_count() const noexcept { return bucket_count_; }
  uint64_t sub_bucket_count() const noexcept { return sub_bucket_half_count_ * 2; }

 private:
  Histogram(uint64_t highest_trackable, int significant_digits, int sub_bucket_half_count_magnitude,
            int bucket_count, std::unique_ptr<uint64_t[]> counts, size_t counts_length) noexcept;

  // The bucket whose sub-buckets are 2^bucket wide. OR-ing in the mask sends every value below
  // sub_bucket_count to bucket 0 and keeps clz's argument non-zero (clz(0) is undefined).
  int bucket_of(uint64_t value) const noexcept {
    return leading_zero_count_base_ - __builtin_clzll(value | sub_bucket_mask_);
  }

  // Bucket 0 holds sub-buckets 0 .. sub_bucket_count-1; every later bucket holds only its upper
  // half (its lower half would repeat the previous bucket's range at half the resolution). Laid
  // end to end that makes the index bucket * half_count + (value >> bucket).
  size_t index_of(uint64_t value) const noexcept {
    const int bucket = bucket_of(value);
    return (static_cast<size_t>(bucket) << sub_bucket_half_count_magnitude_) +
           static_cast<size_t>(value >> bucket);
  }

  uint64_t value_from_index(size_t index) const noexcept;
  uint64_t median_equivalent(uint64_t value) const noexcept;
  void append_percentile_rows(std::string& out, double value_scale,
                              int ticks_per_half_distance) const;

  // Read by every record(): kept together at the front.
  std::unique_ptr<uint64_t[]> counts_;
  uint64_t sub_bucket_mask_ = 0;
  int leading_zero_count_base_ = 0;
  int sub_bucket_half_count_magnitude_ = 0;
  uint64_t highest_trackable_ = 0;
  uint64_t total_count_ = 0;
  uint64_t saturated_ = 0;
  uint64_t min_ = std::numeric_limits<uint64_t>::max();  // the sentinel for "nothing yet"
  uint64_t max_ = 0;

  // Layout, read only off the data path.
  uint64_t sub_bucket_half_count_ = 0;
  size_t counts_length_ = 0;
  int bucket_count_ = 0;
  int significant_digits_ = 0;
};

}  // namespace cohort
