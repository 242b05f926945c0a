#include "runtime/histogram.h"

#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <new>
#include <utility>

namespace cohort {

namespace {

// Appends printf-formatted text. Reports are built with printf formats because the format of
// HdrHistogram's text output is defined by them (and tools that parse .hgrm files expect it to the
// column). cohort never calls setlocale, so the decimal point is always '.'.
__attribute__((format(printf, 2, 3))) void appendf(std::string& out, const char* format, ...) {
  char line[256];
  va_list args;
  va_start(args, format);
  va_list retry;
  va_copy(retry, args);
  const int length = std::vsnprintf(line, sizeof line, format, args);
  va_end(args);
  COHORT_ASSERT(length >= 0);
  const auto size = static_cast<size_t>(length);
  if (size < sizeof line) {
    out.append(line, size);
  } else {
    // Only a tiny value_scale makes a number this long; format again straight into the string.
    const size_t start = out.size();
    out.resize(start + size + 1);
    std::vsnprintf(out.data() + start, size + 1, format, retry);
    out.resize(start + size);
  }
  va_end(retry);
}

// The next percentile level of the text report: ticks_per_half_distance steps between 0% and
// 50%, as many again between 50% and 75%, and so on, so the tail gets rows where it matters. The
// arithmetic (natural logs, truncation) follows HdrHistogram's so the rows land on the same
// levels as its output does.
double next_percentile_level(double level, int ticks_per_half_distance) {
  const double halvings = std::floor(std::log(100.0 / (100.0 - level)) / std::log(2.0));
  const double reporting_ticks =
      ticks_per_half_distance * std::ldexp(1.0, static_cast<int>(halvings) + 1);
  const double next = level + 100.0 / reporting_ticks;
  // Within a few ulps of 100% the step rounds away; jumping to 100% ends the walk instead of
  // spinning on one level forever.
  return next > level ? next : 100.0;
}

}  // namespace

Result<Histogram> Histogram::create(uint64_t highest_trackable, int significant_digits) {
  if (highest_trackable < 2) {
    return Error(Errc::kInvalidArgument,
                 "histogram: highest_trackable " + std::to_string(highest_trackable) +
                     " is below 2 (the lowest discernible value is 1); pass the largest value "
                     "to track, e.g. 3600000000000 for one hour in ns");
  }
  if (significant_digits < kMinSignificantDigits || significant_digits > kMaxSignificantDigits) {
    return Error(Errc::kInvalidArgument,
                 "histogram: significant_digits " + std::to_string(significant_digits) +
                     " is outside " + std::to_string(kMinSignificantDigits) + ".." +
                     std::to_string(kMaxSignificantDigits) + "; use 3 for 0.1% resolution");
  }

  // A sub-bucket of width 1 must hold every value up to 2 * 10^digits for the quantum to stay
  // below one part in 10^digits; the sub-bucket count is that, rounded up to a power of two
  // (3 digits: 2000 -> 2048).
  uint64_t largest_single_unit = 2;
  for (int digit = 0; digit < significant_digits; ++digit) largest_single_unit *= 10;
  const int sub_bucket_count_magnitude = 64 - __builtin_clzll(largest_single_unit - 1);
  const int half_magnitude = sub_bucket_count_magnitude - 1;
  const uint64_t sub_bucket_mask = (uint64_t{1} << sub_bucket_count_magnitude) - 1;

  // The bucket of highest_trackable is the last one needed (bucket_of() computed ahead of the
  // object); one extra half-bucket of counters covers bucket 0's lower half.
  const int leading_zero_count_base = 64 - half_magnitude - 1;
  const int bucket_count =
      leading_zero_count_base - __builtin_clzll(highest_trackable | sub_bucket_mask) + 1;
  const size_t counts_length = static_cast<size_t>(bucket_count + 1) << half_magnitude;

  // nothrow: running out of memory at setup is an operating error to report, not an exception.
  std::unique_ptr<uint64_t[]> counts(new (std::nothrow) uint64_t[counts_length]());
  if (counts == nullptr) {
    return Error(Errc::kUnavailable, "histogram: cannot allocate " +
                                         std::to_string(counts_length * sizeof(uint64_t)) +
                                         " bytes of counters for highest_trackable " +
                                         std::to_string(highest_trackable) + " at " +
                                         std::to_string(significant_digits) +
                                         " significant digits; lower either or free memory");
  }
  return Histogram(highest_trackable, significant_digits, half_magnitude, bucket_count,
                   std::move(counts), counts_length);
}

Histogram::Histogram(uint64_t highest_trackable, int significant_digits,
                     int sub_bucket_half_count_magnitude, int bucket_count,
                     std::unique_ptr<uint64_t[]> counts, size_t counts_length) noexcept
    : counts_(std::move(counts)),
      sub_bucket_mask_((uint64_t{1} << (sub_bucket_half_count_magnitude + 1)) - 1),
      leading_zero_count_base_(64 - sub_bucket_half_count_magnitude - 1),
      sub_bucket_half_count_magnitude_(sub_bucket_half_count_magnitude),
      highest_trackable_(highest_trackable),
      sub_bucket_half_count_(uint64_t{1} << sub_bucket_half_count_magnitude),
      counts_length_(counts_length),
      bucket_count_(bucket_count),
      significant_digits_(significant_digits) {
  // Every value record() can see, the clamp included, must index inside the counters.
  COHORT_ASSERT(index_of(highest_trackable_) < counts_length_);
  COHORT_ASSERT(bucket_of(highest_trackable_) == bucket_count_ - 1);
}

void Histogram::reset() noexcept {
  COHORT_ASSERT(counts_ != nullptr);
  std::fill(counts_.get(), counts_.get() + counts_length_, uint64_t{0});
  total_count_ = 0;
  saturated_ = 0;
  min_ = std::numeric_limits<uint64_t>::max();
  max_ = 0;
}

Status Histogram::merge(const Histogram& other) {
  COHORT_ASSERT(counts_ != nullptr && other.counts_ != nullptr);
  if (other.highest_trackable_ != highest_trackable_ ||
      other.significant_digits_ != significant_digits_) {
    return Error(Errc::kInvalidArgument,
                 "histogram: cannot merge a histogram of highest_trackable " +
                     std::to_string(other.highest_trackable_) + ", significant_digits " +
                     std::to_string(other.significant_digits_) + " into one of highest_trackable " +
                     std::to_string(highest_trackable_) + ", significant_digits " +
                     std::to_string(significant_digits_) +
                     "; create both with the same parameters");
  }
  COHORT_ASSERT(other.counts_length_ == counts_length_);
  for (size_t i = 0; i < counts_length_; ++i) counts_[i] += other.counts_[i];
  total_count_ += other.total_count_;
  saturated_ += other.saturated_;
  // An empty other holds the sentinels (max for min_, 0 for max_), which change nothing here.
  min_ = std::min(min_, other.min_);
  max_ = std::max(max_, other.max_);
  return {};
}

uint64_t Histogram::value_from_index(size_t index) const noexcept {
  COHORT_DASSERT(index < counts_length_);
  // The inverse of index_of(): index / half_count is bucket + 1 for every bucket after 0, whose
  // sub-bucket index is the low bits with the (implicit) top bit put back.
  const auto half_index = static_cast<int>(index >> sub_bucket_half_count_magnitude_);
  if (half_index == 0) return index;
  const uint64_t sub_bucket = (index & (sub_bucket_half_count_ - 1)) + sub_bucket_half_count_;
  return sub_bucket << (half_index - 1);
}

uint64_t Histogram::median_equivalent(uint64_t value) const noexcept {
  return lowest_equivalent(value) + ((uint64_t{1} << bucket_of(value)) >> 1);
}

double Histogram::mean() const noexcept {
  if (total_count_ == 0) return 0.0;
  double total = 0.0;
  for (size_t i = 0; i < counts_length_; ++i) {
    if (counts_[i] == 0) continue;
    total += static_cast<double>(median_equivalent(value_from_index(i))) *
             static_cast<double>(counts_[i]);
  }
  return total / static_cast<double>(total_count_);
}

double Histogram::stddev() const noexcept {
  if (total_count_ == 0) return 0.0;
  const double average = mean();
  double squares = 0.0;
  for (size_t i = 0; i < counts_length_; ++i) {
    if (counts_[i] == 0) continue;
    const double deviation = static_cast<double>(median_equivalent(value_from_index(i))) - average;
    squares += deviation * deviation * static_cast<double>(counts_[i]);
  }
  return std::sqrt(squares / static_cast<double>(total_count_));
}

uint64_t Histogram::value_at_percentile(double p) const noexcept {
  COHORT_ASSERT_MSG(!std::isnan(p), "histogram: percentile is NaN");
  if (total_count_ == 0) return 0;
  const double clamped = std::clamp(p, 0.0, 100.0);
  // Rank by rounding to nearest, as HdrHistogram does: p/100 * count is often an integer that
  // floating point lands a hair above, and rounding up would then skip to the next value.
  const double rank_real = clamped / 100.0 * static_cast<double>(total_count_) + 0.5;
  uint64_t rank = rank_real >= static_cast<double>(total_count_) ? total_count_
                                                                 : static_cast<uint64_t>(rank_real);
  rank = std::max<uint64_t>(rank, 1);
  uint64_t cumulative = 0;
  for (size_t i = 0; i < counts_length_; ++i) {
    cumulative += counts_[i];
    if (cumulative >= rank) return highest_equivalent(value_from_index(i));
  }
  COHORT_ASSERT_MSG(false, "histogram: counters sum to less than count()");
  return 0;
}

std::string Histogram::percentile_text(double value_scale, int ticks_per_half_distance) const {
  COHORT_ASSERT(counts_ != nullptr);
  COHORT_ASSERT_MSG(value_scale > 0.0, "histogram: value_scale must be positive");
  COHORT_ASSERT_MSG(ticks_per_half_distance >= 1, "histogram: ticks_per_half_distance below 1");
  std::string out;
  appendf(out, "%12s %14s %10s %14s\n\n", "Value", "Percentile", "TotalCount", "1/(1-Percentile)");
  append_percentile_rows(out, value_scale, ticks_per_half_distance);
  const int decimals = significant_digits_;
  appendf(out, "#[Mean    = %12.*f, StdDeviation   = %12.*f]\n", decimals, mean() / value_scale,
          decimals, stddev() / value_scale);
  appendf(out, "#[Max     = %12.*f, Total count    = %12llu]\n", decimals,
          static_cast<double>(max()) / value_scale, static_cast<unsigned long long>(total_count_));
  appendf(out, "#[Buckets = %12d, SubBuckets     = %12llu]\n", bucket_count_,
          static_cast<unsigned long long>(sub_bucket_count()));
  return out;
}

// Walks the counters once, emitting a row each time the cumulative percentile reaches the next
// level; a sub-bucket that spans several levels yields several rows with the same value. The last
// row is always 100%, and (as in HdrHistogram) has no 1/(1-Percentile) column, being infinite.
void Histogram::append_percentile_rows(std::string& out, double value_scale,
                                       int ticks_per_half_distance) const {
  if (total_count_ == 0) return;
  const int decimals = significant_digits_;
  const auto total = static_cast<double>(total_count_);
  size_t index = 0;
  uint64_t cumulative = counts_[0];
  double level = 0.0;
  bool final_row = false;
  while (!final_row) {
    final_row = cumulative >= total_count_ || level >= 100.0;
    if (final_row) level = 100.0;
    // Bounded by counts_length_: the last non-empty counter brings cumulative to the total,
    // which satisfies every level.
    while (counts_[index] == 0 ||
           (final_row ? cumulative < total_count_
                      : 100.0 * static_cast<double>(cumulative) / total < level)) {
      ++index;
      COHORT_ASSERT(index < counts_length_);
      cumulative += counts_[index];
    }
    const double value =
        static_cast<double>(highest_equivalent(value_from_index(index))) / value_scale;
    const double fraction = level / 100.0;
    const auto count_to_here = static_cast<unsigned long long>(cumulative);
    if (final_row) {
      appendf(out, "%12.*f %2.12f %10llu\n", decimals, value, fraction, count_to_here);
    } else {
      appendf(out, "%12.*f %2.12f %10llu %14.2f\n", decimals, value, fraction, count_to_here,
              1.0 / (1.0 - fraction));
      level = next_percentile_level(level, ticks_per_half_distance);
    }
  }
}

}  // namespace cohort
