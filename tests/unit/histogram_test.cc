#include "runtime/histogram.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <random>
#include <regex>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

namespace cohort {
namespace {

constexpr uint64_t kOneHourNs = 3'600'000'000'000;
constexpr double kPercentiles[] = {0, 1, 10, 50, 90, 99, 99.9, 99.99, 100};

Histogram make_histogram(uint64_t highest = kOneHourNs, int digits = 3) {
  auto created = Histogram::create(highest, digits);
  EXPECT_TRUE(created.ok()) << (created.ok() ? "" : created.error().message());
  return std::move(created).value();
}

// Latency-like values: lognormal around 10 us with a heavy tail, clamped to [1, 1e9]. Seeded, so
// a failure reproduces.
std::vector<uint64_t> lognormal_values(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::lognormal_distribution<double> dist(std::log(1e4), 3.0);
  std::vector<uint64_t> values(n);
  for (auto& v : values) v = static_cast<uint64_t>(std::llround(std::clamp(dist(rng), 1.0, 1e9)));
  return values;
}

// The value of the rank value_at_percentile() promises: round(p/100 * n), at least 1.
uint64_t exact_percentile(const std::vector<uint64_t>& sorted, double p) {
  const auto rank =
      static_cast<size_t>(std::llround(p / 100.0 * static_cast<double>(sorted.size())));
  return sorted[std::clamp<size_t>(rank, 1, sorted.size()) - 1];
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

TEST(Histogram, CreateRefusesImpossibleLayouts) {
  for (uint64_t highest : {uint64_t{0}, uint64_t{1}}) {
    auto h = Histogram::create(highest);
    ASSERT_FALSE(h.ok());
    EXPECT_EQ(h.error().code(), Errc::kInvalidArgument);
    EXPECT_NE(h.error().message().find("highest_trackable"), std::string::npos);
  }
  for (int digits : {-1, 0, 6, 20}) {
    auto h = Histogram::create(kOneHourNs, digits);
    ASSERT_FALSE(h.ok());
    EXPECT_EQ(h.error().code(), Errc::kInvalidArgument);
    EXPECT_NE(h.error().message().find("significant_digits " + std::to_string(digits)),
              std::string::npos)
        << h.error().message();
  }
  EXPECT_TRUE(Histogram::create(2).ok());
  EXPECT_TRUE(Histogram::create(std::numeric_limits<uint64_t>::max(), 1).ok());
  EXPECT_TRUE(Histogram::create(kOneHourNs, 5).ok());
}

TEST(Histogram, DefaultLayoutMatchesHdrHistogram) {
  Histogram h = make_histogram();
  EXPECT_EQ(h.sub_bucket_count(), 2048u);
  EXPECT_EQ(h.bucket_count(), 32);  // 2048 * 2^31 is the first power past one hour in ns
  EXPECT_EQ(h.highest_trackable(), kOneHourNs);
  EXPECT_EQ(h.significant_digits(), 3);
  EXPECT_EQ(make_histogram(kOneHourNs, 1).sub_bucket_count(), 32u);
  EXPECT_EQ(make_histogram(kOneHourNs, 2).sub_bucket_count(), 256u);
  EXPECT_EQ(make_histogram(kOneHourNs, 5).sub_bucket_count(), 262144u);
}

TEST(Histogram, EquivalentRangesStayWithinResolution) {
  Histogram h = make_histogram();
  // Below 2048 every value has its own counter.
  for (uint64_t v : {0u, 1u, 2u, 1000u, 2047u}) {
    EXPECT_EQ(h.lowest_equivalent(v), v);
    EXPECT_EQ(h.highest_equivalent(v), v);
  }
  EXPECT_EQ(h.lowest_equivalent(2049), 2048u);
  EXPECT_EQ(h.highest_equivalent(2048), 2049u);
  EXPECT_EQ(h.lowest_equivalent(4096 + 7), 4096u + 4);
  EXPECT_EQ(h.highest_equivalent(4096 + 7), 4096u + 7);
  for (uint64_t v : lognormal_values(100'000, 7)) {
    const uint64_t lo = h.lowest_equivalent(v);
    const uint64_t hi = h.highest_equivalent(v);
    ASSERT_LE(lo, v);
    ASSERT_GE(hi, v);
    ASSERT_EQ(h.lowest_equivalent(hi), lo);
    ASSERT_LE(static_cast<double>(hi - lo), static_cast<double>(lo) / 1000.0) << v;
  }
  // The top of a full 64-bit range must not wrap.
  Histogram wide = make_histogram(std::numeric_limits<uint64_t>::max());
  EXPECT_EQ(wide.highest_equivalent(std::numeric_limits<uint64_t>::max()),
            std::numeric_limits<uint64_t>::max());
  wide.record(std::numeric_limits<uint64_t>::max());
  EXPECT_EQ(wide.value_at_percentile(100), std::numeric_limits<uint64_t>::max());
}

TEST(Histogram, EmptyHistogramReportsZeros) {
  Histogram h = make_histogram();
  EXPECT_EQ(h.count(), 0u);
  EXPECT_EQ(h.min(), 0u);
  EXPECT_EQ(h.max(), 0u);
  EXPECT_EQ(h.mean(), 0.0);
  EXPECT_EQ(h.stddev(), 0.0);
  EXPECT_EQ(h.value_at_percentile(50), 0u);
}

TEST(Histogram, PercentilesMatchSortedArray) {
  constexpr size_t kValues = 1'000'000;
  std::vector<uint64_t> values = lognormal_values(kValues, 42);
  Histogram h = make_histogram();
  for (uint64_t v : values) h.record(v);
  std::sort(values.begin(), values.end());

  ASSERT_EQ(h.count(), kValues);
  EXPECT_EQ(h.saturated(), 0u);
  EXPECT_EQ(h.min(), values.front());
  EXPECT_EQ(h.max(), values.back());
  for (double p : kPercentiles) {
    const uint64_t exact = exact_percentile(values, p);
    const uint64_t got = h.value_at_percentile(p);
    // The rank falls in exactly one sub-bucket; the answer is that sub-bucket's top.
    EXPECT_EQ(got, h.highest_equivalent(exact)) << "p" << p;
    const double error = std::abs(static_cast<double>(got) - static_cast<double>(exact)) /
                         static_cast<double>(exact);
    EXPECT_LE(error, 0.001) << "p" << p << " exact " << exact << " got " << got;
  }

  long double sum = 0;
  for (uint64_t v : values) sum += static_cast<long double>(v);
  const auto exact_mean = static_cast<double>(sum / static_cast<long double>(kValues));
  EXPECT_NEAR(h.mean(), exact_mean, exact_mean * 0.001);
  long double squares = 0;
  for (uint64_t v : values) {
    const long double d = static_cast<long double>(v) - static_cast<long double>(exact_mean);
    squares += d * d;
  }
  const auto exact_stddev = static_cast<double>(std::sqrt(squares / kValues));
  EXPECT_NEAR(h.stddev(), exact_stddev, exact_stddev * 0.001);
}

TEST(Histogram, OutOfRangePercentilesClamp) {
  Histogram h = make_histogram();
  h.record(10);
  h.record(5000);
  EXPECT_EQ(h.value_at_percentile(-5), 10u);
  EXPECT_EQ(h.value_at_percentile(250), h.highest_equivalent(5000));
}

TEST(Histogram, RecordNEqualsRepeatedRecord) {
  Histogram once = make_histogram();
  Histogram repeated = make_histogram();
  once.record_n(123'456, 1000);
  once.record_n(7, 0);  // records nothing, min included
  for (int i = 0; i < 1000; ++i) repeated.record(123'456);
  EXPECT_EQ(once.count(), 1000u);
  EXPECT_EQ(once.min(), 123'456u);
  EXPECT_EQ(once.percentile_text(), repeated.percentile_text());
}

TEST(Histogram, ValuesAboveHighestClampAndCount) {
  constexpr uint64_t kHighest = 1'000'000;
  Histogram h = make_histogram(kHighest);
  h.record(10);
  h.record(kHighest);
  h.record(kHighest + 1);
  h.record_n(std::numeric_limits<uint64_t>::max(), 3);
  EXPECT_EQ(h.count(), 6u);
  EXPECT_EQ(h.saturated(), 4u);
  EXPECT_EQ(h.min(), 10u);
  EXPECT_EQ(h.max(), kHighest);
  EXPECT_EQ(h.value_at_percentile(100), h.highest_equivalent(kHighest));
  EXPECT_EQ(h.value_at_percentile(50), h.highest_equivalent(kHighest));
  EXPECT_EQ(h.value_at_percentile(0), 10u);
}

TEST(Histogram, MergeEqualsOneHistogramFedBothStreams) {
  const std::vector<uint64_t> a = lognormal_values(200'000, 1);
  const std::vector<uint64_t> b = lognormal_values(300'000, 2);
  Histogram left = make_histogram();
  Histogram right = make_histogram();
  Histogram both = make_histogram();
  for (uint64_t v : a) {
    left.record(v);
    both.record(v);
  }
  for (uint64_t v : b) {
    right.record(v);
    both.record(v);
  }
  right.record(kOneHourNs * 2);
  both.record(kOneHourNs * 2);

  ASSERT_TRUE(left.merge(right).ok());
  EXPECT_EQ(left.count(), both.count());
  EXPECT_EQ(left.saturated(), 1u);
  EXPECT_EQ(left.min(), both.min());
  EXPECT_EQ(left.max(), both.max());
  EXPECT_EQ(left.mean(), both.mean());
  EXPECT_EQ(left.stddev(), both.stddev());
  for (double p : kPercentiles) EXPECT_EQ(left.value_at_percentile(p), both.value_at_percentile(p));
  EXPECT_EQ(left.percentile_text(), both.percentile_text());

  Histogram empty = make_histogram();
  ASSERT_TRUE(left.merge(empty).ok());
  EXPECT_EQ(left.percentile_text(), both.percentile_text());
  ASSERT_TRUE(empty.merge(both).ok());
  EXPECT_EQ(empty.min(), both.min());
  EXPECT_EQ(empty.percentile_text(), both.percentile_text());
}

TEST(Histogram, MergeRefusesDifferentLayouts) {
  Histogram h = make_histogram();
  h.record(42);
  const std::string before = h.percentile_text();
  Histogram other_digits = make_histogram(kOneHourNs, 2);
  Histogram other_range = make_histogram(kOneHourNs / 2);
  other_digits.record(7);
  other_range.record(7);
  for (const Histogram* other : {&other_digits, &other_range}) {
    const Status merged = h.merge(*other);
    ASSERT_FALSE(merged.ok());
    EXPECT_EQ(merged.error().code(), Errc::kInvalidArgument);
    EXPECT_NE(merged.error().message().find("same parameters"), std::string::npos);
  }
  EXPECT_EQ(h.count(), 1u);
  EXPECT_EQ(h.percentile_text(), before);
}

TEST(Histogram, ResetClearsCountsAndKeepsLayout) {
  Histogram h = make_histogram(1'000'000);
  for (uint64_t v : lognormal_values(10'000, 3)) h.record(v);
  ASSERT_GT(h.saturated(), 0u);
  h.reset();
  EXPECT_EQ(h.count(), 0u);
  EXPECT_EQ(h.saturated(), 0u);
  EXPECT_EQ(h.min(), 0u);
  EXPECT_EQ(h.max(), 0u);
  EXPECT_EQ(h.mean(), 0.0);
  EXPECT_EQ(h.value_at_percentile(99), 0u);
  EXPECT_EQ(h.highest_trackable(), 1'000'000u);
  EXPECT_EQ(lines_of(h.percentile_text()).size(), 5u);  // header, blank line, footer
  h.record(500);
  EXPECT_EQ(h.min(), 500u);
  EXPECT_EQ(h.max(), 500u);
  EXPECT_EQ(h.value_at_percentile(0), 500u);
  EXPECT_EQ(h.value_at_percentile(100), 500u);
}

TEST(Histogram, MovedHistogramKeepsItsCounts) {
  Histogram h = make_histogram();
  h.record(1234);
  Histogram moved = std::move(h);
  EXPECT_EQ(moved.count(), 1u);
  moved.record(99);
  EXPECT_EQ(moved.min(), 99u);
  h = make_histogram();  // a moved-from histogram may be assigned to
  EXPECT_EQ(h.count(), 0u);
}

// Two values below 2048 are recorded exactly, so every figure can be worked out by hand: rows every
// 10% to 50%, then 5% steps, and the 100% row without its infinite last column.
TEST(Histogram, PercentileTextMatchesHdrHistogramFormat) {
  Histogram h = make_histogram();
  h.record(1000);
  h.record(2000);
  const std::string expected =
      "       Value     Percentile TotalCount 1/(1-Percentile)\n"
      "\n"
      "    1000.000 0.000000000000          1           1.00\n"
      "    1000.000 0.100000000000          1           1.11\n"
      "    1000.000 0.200000000000          1           1.25\n"
      "    1000.000 0.300000000000          1           1.43\n"
      "    1000.000 0.400000000000          1           1.67\n"
      "    1000.000 0.500000000000          1           2.00\n"
      "    2000.000 0.550000000000          2           2.22\n"
      "    2000.000 1.000000000000          2\n"
      "#[Mean    =     1500.000, StdDeviation   =      500.000]\n"
      "#[Max     =     2000.000, Total count    =            2]\n"
      "#[Buckets =           32, SubBuckets     =         2048]\n";
  EXPECT_EQ(h.percentile_text(), expected);
}

struct Row {
  double value = 0;
  double percentile = 0;
  uint64_t total = 0;
  double inverse = 0;  // absent (0) on the 100% row
  bool has_inverse = false;
};

// One row in `%12.3f %2.12f %10d %14.2f` (the last column absent on the 100% row); nullopt if the
// line does not have that shape.
std::optional<Row> parse_row(const std::string& line) {
  static const std::regex kRow(R"(^ *(\d+\.\d{3}) ([01]\.\d{12}) +(\d+)(?: +(\d+\.\d{2}))?$)");
  std::smatch m;
  if (!std::regex_match(line, m, kRow)) return std::nullopt;
  Row r;
  r.value = std::stod(m[1].str());
  r.percentile = std::stod(m[2].str());
  r.total = std::stoull(m[3].str());
  r.has_inverse = m[4].matched;
  if (r.has_inverse) r.inverse = std::stod(m[4].str());
  return r;
}

// The two numbers of a footer line `<prefix> %12.3f, <middle> %12d]` (or %12d / %12.3f pairs).
std::optional<std::pair<double, double>> parse_footer(const std::string& line,
                                                      const std::string& pattern) {
  std::smatch m;
  if (!std::regex_match(line, m, std::regex(pattern))) return std::nullopt;
  return std::make_pair(std::stod(m[1].str()), std::stod(m[2].str()));
}

TEST(Histogram, PercentileTextParsesBack) {
  constexpr double kScale = 1000.0;  // ns printed as us
  const std::vector<uint64_t> values = lognormal_values(100'000, 9);
  Histogram h = make_histogram();
  for (uint64_t v : values) h.record(v);
  const std::vector<std::string> lines = lines_of(h.percentile_text(kScale));
  ASSERT_GT(lines.size(), 6u);
  EXPECT_EQ(lines[0], "       Value     Percentile TotalCount 1/(1-Percentile)");
  EXPECT_EQ(lines[1], "");

  std::vector<Row> rows;
  size_t i = 2;
  for (; i < lines.size() && lines[i].rfind("#[", 0) != 0; ++i) {
    const std::optional<Row> row = parse_row(lines[i]);
    ASSERT_TRUE(row.has_value()) << "not a percentile row: '" << lines[i] << "'";
    rows.push_back(*row);
    // Fixed columns: 12 + 1 + 14 + 1 + 10, then 1 + 14 for 1/(1-Percentile).
    EXPECT_EQ(lines[i].size(), row->has_inverse ? 53u : 38u) << lines[i];
  }
  ASSERT_GT(rows.size(), 20u);
  for (size_t r = 0; r < rows.size(); ++r) {
    const bool last = r + 1 == rows.size();
    ASSERT_EQ(rows[r].has_inverse, !last) << lines[2 + r];
    if (!last) {
      EXPECT_NEAR(rows[r].inverse, 1.0 / (1.0 - rows[r].percentile), 0.006);
    }
    if (r == 0) continue;
    EXPECT_GE(rows[r].value, rows[r - 1].value);
    EXPECT_GT(rows[r].percentile, rows[r - 1].percentile);
    EXPECT_GE(rows[r].total, rows[r - 1].total);
  }
  EXPECT_EQ(rows.front().percentile, 0.0);
  EXPECT_NEAR(rows.front().value, static_cast<double>(h.highest_equivalent(h.min())) / kScale,
              0.0005);
  EXPECT_EQ(rows.back().percentile, 1.0);
  EXPECT_EQ(rows.back().total, h.count());
  EXPECT_NEAR(rows.back().value, static_cast<double>(h.highest_equivalent(h.max())) / kScale,
              0.0005);

  ASSERT_EQ(lines.size(), i + 3) << "three footer lines end the text";
  const auto mean_line =
      parse_footer(lines[i], R"(^#\[Mean    = +(\d+\.\d{3}), StdDeviation   = +(\d+\.\d{3})\]$)");
  const auto max_line =
      parse_footer(lines[i + 1], R"(^#\[Max     = +(\d+\.\d{3}), Total count    = +(\d+)\]$)");
  const auto layout_line =
      parse_footer(lines[i + 2], R"(^#\[Buckets = +(\d+), SubBuckets     = +(\d+)\]$)");
  ASSERT_TRUE(mean_line.has_value()) << lines[i];
  ASSERT_TRUE(max_line.has_value()) << lines[i + 1];
  ASSERT_TRUE(layout_line.has_value()) << lines[i + 2];
  for (size_t f = i; f < i + 3; ++f) EXPECT_EQ(lines[f].size(), 56u) << lines[f];
  EXPECT_NEAR(mean_line->first, h.mean() / kScale, 0.0005);
  EXPECT_NEAR(mean_line->second, h.stddev() / kScale, 0.0005);
  EXPECT_NEAR(max_line->first, static_cast<double>(h.max()) / kScale, 0.0005);
  EXPECT_EQ(max_line->second, static_cast<double>(h.count()));
  EXPECT_EQ(layout_line->first, 32.0);
  EXPECT_EQ(layout_line->second, 2048.0);
}

TEST(Histogram, PercentileTextTicksControlRowDensity) {
  Histogram h = make_histogram();
  for (uint64_t v : lognormal_values(100'000, 11)) h.record(v);
  const size_t coarse = lines_of(h.percentile_text(1.0, 1)).size();
  const size_t fine = lines_of(h.percentile_text(1.0, 10)).size();
  EXPECT_GT(fine, coarse * 5);
}

}  // namespace
}  // namespace cohort
