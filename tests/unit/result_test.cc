#include "runtime/result.h"

#include <gtest/gtest.h>

#include <cerrno>
#include <string>

namespace cohort {
namespace {

Result<int> parse_positive(int v) {
  if (v <= 0)
    return Error(Errc::kInvalidArgument, "value " + std::to_string(v) + " is not positive");
  return v;
}

Result<int> doubled(int v) {
  auto r = parse_positive(v);
  COHORT_TRY(r);
  return *r * 2;
}

Status check(bool good) {
  if (!good) return Error(Errc::kNotFound, "missing");
  return {};
}

TEST(Result, CarriesValueOrError) {
  auto good = parse_positive(3);
  ASSERT_TRUE(good.ok());
  EXPECT_EQ(*good, 3);

  auto bad = parse_positive(-1);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code(), Errc::kInvalidArgument);
  EXPECT_EQ(bad.error().message(), "value -1 is not positive");
}

TEST(Result, TryPropagatesTheError) {
  EXPECT_EQ(*doubled(4), 8);
  auto bad = doubled(0);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().message(), "value 0 is not positive");
}

TEST(Result, StatusAndContext) {
  EXPECT_TRUE(check(true).ok());
  Status s = check(false);
  ASSERT_FALSE(s.ok());
  Error e = std::move(s).error();
  Error with = std::move(e).with_context("config: ");
  EXPECT_EQ(with.message(), "config: missing");
  EXPECT_STREQ(errc_name(with.code()), "not found");
}

TEST(Result, SystemErrorNamesErrno) {
  Error e = system_error("open /nope", ENOENT);
  EXPECT_EQ(e.code(), Errc::kSystem);
  EXPECT_EQ(e.message(), "open /nope: No such file or directory");
}

TEST(ResultDeathTest, ValueOfAnErrorAborts) {
  auto bad = parse_positive(-5);
  EXPECT_DEATH((void)bad.value(), "Result::value\\(\\) on an error");
}

TEST(AssertDeathTest, AlwaysOnAssertAbortsWithTheExpression) {
  volatile int x = 1;
  EXPECT_DEATH(COHORT_ASSERT(x == 2), "assertion failed: x == 2");
}

}  // namespace
}  // namespace cohort

// The public header's version and the build's (meson.build) must not drift apart.
#include "cohort/version.h"
#include "cohort_build_config.h"

namespace cohort {
namespace {
TEST(Version, PublicHeaderMatchesTheBuild) {
  EXPECT_STREQ(kVersion, COHORT_VERSION);
}
}  // namespace
}  // namespace cohort
