#include "runtime/log.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace cohort {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// A fresh log file per test, removed afterwards; the logger appends, so reuse would mix runs.
class LogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    path_ = std::filesystem::path(::testing::TempDir()) /
            ("cohort_log_test_" + std::to_string(getpid()) + "_" + info->name() + ".log");
    std::filesystem::remove(path_);
  }
  void TearDown() override {
    log_shutdown();
    std::filesystem::remove(path_);
  }

  LogOptions options(const std::string& level) const {
    LogOptions o;
    o.level = level;
    o.file = path_.string();
    return o;
  }

  std::string contents() const {
    std::ifstream in(path_);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
  }

  std::filesystem::path path_;
};

TEST_F(LogTest, BadLevelRefused) {
  Status status = log_init(options("verbose"));
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.error().code(), Errc::kInvalidArgument);
  EXPECT_EQ(status.error().message(),
            "log: level 'verbose' is not one of trace, debug, info, warn, error, off; check "
            "log.level");
  EXPECT_FALSE(log_init(options("INFO")).ok());  // the names are exact
  EXPECT_FALSE(std::filesystem::exists(path_));  // nothing was started
}

TEST_F(LogTest, BadQueueSizeAndUnopenableFileRefused) {
  LogOptions o = options("info");
  o.queue_size = 1;
  Status status = log_init(o);
  ASSERT_FALSE(status.ok());
  EXPECT_THAT(status.error().message(), HasSubstr("queue size 1 is outside"));

  // spdlog creates missing directories, so the parent here is a regular file: that fails.
  std::ofstream(path_) << "not a directory";
  o.queue_size = kLogDefaultQueueSize;
  o.file = (path_ / "cohort.log").string();
  status = log_init(o);
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.error().code(), Errc::kSystem);
  EXPECT_THAT(status.error().message(), HasSubstr("'" + o.file + "'"));
  EXPECT_THAT(status.error().message(), HasSubstr("check log.file"));
}

TEST_F(LogTest, MessagesReachTheFileSinkAfterShutdown) {
  ASSERT_TRUE(log_init(options("info")).ok());
  COHORT_LOG_INFO("view {} installed with {} members", 7, 3);
  COHORT_LOG_WARN("member {} suspected", std::string("n2"));
  COHORT_LOG_ERROR("plain text");
  log_shutdown();
  const std::string text = contents();
  EXPECT_THAT(text, HasSubstr("[info] "));
  EXPECT_THAT(text, HasSubstr("view 7 installed with 3 members\n"));
  EXPECT_THAT(text, HasSubstr("[warning] "));
  EXPECT_THAT(text, HasSubstr("member n2 suspected\n"));
  EXPECT_THAT(text, HasSubstr("plain text\n"));
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 3);
  EXPECT_EQ(log_dropped_count(), 0u);
}

TEST_F(LogTest, LevelFiltering) {
  ASSERT_TRUE(log_init(options("warn")).ok());
  EXPECT_FALSE(log_enabled(LogLevel::kDebug));
  EXPECT_FALSE(log_enabled(LogLevel::kInfo));
  EXPECT_TRUE(log_enabled(LogLevel::kWarn));
  int evaluated = 0;
  auto count = [&evaluated] { return ++evaluated; };
  COHORT_LOG_DEBUG("debug {}", count());
  COHORT_LOG_INFO("info {}", count());
  COHORT_LOG_WARN("warn {}", count());
  COHORT_LOG_ERROR("error {}", count());
  EXPECT_EQ(evaluated, 2);  // arguments of disabled levels are never evaluated
  log_shutdown();
  const std::string text = contents();
  EXPECT_THAT(text, Not(HasSubstr("debug ")));
  EXPECT_THAT(text, Not(HasSubstr("info ")));
  EXPECT_THAT(text, HasSubstr("warn 1\n"));
  EXPECT_THAT(text, HasSubstr("error 2\n"));

  ASSERT_TRUE(log_init(options("off")).ok());
  EXPECT_FALSE(log_enabled(LogLevel::kError));
  ASSERT_TRUE(log_init(options("trace")).ok());  // re-init replaces the logger
  EXPECT_TRUE(log_enabled(LogLevel::kTrace));
  COHORT_LOG_TRACE("trace {}", 3);
  log_shutdown();
  EXPECT_THAT(contents(), HasSubstr("trace 3\n"));
}

// Whether the tiny queue overflows depends on scheduling, so the test checks the accounting
// that holds either way: every message is either in the file or counted as dropped.
TEST_F(LogTest, OverflowDropsAndCountsRatherThanBlocking) {
  LogOptions o = options("info");
  o.queue_size = kLogMinQueueSize;
  ASSERT_TRUE(log_init(o).ok());
  constexpr int kMessages = 20000;
  for (int i = 0; i < kMessages; ++i) COHORT_LOG_INFO("message {}", i);
  log_shutdown();
  const std::string text = contents();
  const auto written = static_cast<uint64_t>(std::count(text.begin(), text.end(), '\n'));
  EXPECT_EQ(written + log_dropped_count(), static_cast<uint64_t>(kMessages))
      << "written " << written << ", dropped " << log_dropped_count();
  EXPECT_THAT(text, HasSubstr("message 19999\n"));  // the newest survive; the oldest go
}

TEST_F(LogTest, WithoutALoggerMessagesGoToStderr) {
  log_shutdown();
  EXPECT_TRUE(log_enabled(LogLevel::kInfo));
  EXPECT_FALSE(log_enabled(LogLevel::kDebug));
  ::testing::internal::CaptureStderr();
  COHORT_LOG_WARN("early {}", 1);
  COHORT_LOG_DEBUG("hidden {}", 2);
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(err, "[warn] early 1\n");
}

TEST(LogLevelTest, NamesRoundTrip) {
  for (LogLevel level : {LogLevel::kTrace, LogLevel::kDebug, LogLevel::kInfo, LogLevel::kWarn,
                         LogLevel::kError, LogLevel::kOff}) {
    Result<LogLevel> parsed = parse_log_level(log_level_name(level));
    ASSERT_TRUE(parsed.ok());
    EXPECT_EQ(*parsed, level);
  }
}

}  // namespace
}  // namespace cohort
