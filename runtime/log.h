// Logging: a thin layer over an asynchronous spdlog logger, so that a log call costs its caller
// the formatting and a short critical section, never disk or terminal I/O.
//
// The data path must not log per message. A log call formats text, may allocate for long
// messages and takes the queue's mutex: fine a few times a second, ruinous a few million times.
// Expected conditions on the data path (ring full, stale view, bad CRC) are counted in the
// core's stats block instead; the control path (setup, view changes, errors) logs.
//
// The queue is bounded and never blocks a caller: when it is full the oldest queued message is
// dropped and counted (log_dropped_count()), because a poll thread that waits for a slow
// terminal stalls the whole group.
//
// Threads: log_init(), log_shutdown() and log_flush() belong to the control thread, which calls
// log_init() before starting other threads and log_shutdown() after joining them. The
// COHORT_LOG_* macros may be used from any thread. Before log_init() and after log_shutdown(),
// messages at info and above are written to stderr synchronously, so early setup errors and
// tools that never start the logger still say what went wrong.
#pragma once

#include <fmt/format.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <string>
#include <string_view>
#include <utility>

#include "runtime/result.h"

namespace cohort {

class Config;
class ConfigSchema;

enum class LogLevel : int { kTrace, kDebug, kInfo, kWarn, kError, kOff };

// "trace", "debug", "info", "warn", "error", "off".
const char* log_level_name(LogLevel level) noexcept;

// The inverse of log_level_name(); anything else is refused with the accepted names.
Result<LogLevel> parse_log_level(std::string_view text);

// 8192 messages of ~250 bytes is about 2 MiB: a few seconds of a chatty control path.
inline constexpr size_t kLogDefaultQueueSize = 8192;
inline constexpr size_t kLogMinQueueSize = 16;
inline constexpr size_t kLogMaxQueueSize = size_t{1} << 20;

struct LogOptions {
  std::string level = "info";  // trace|debug|info|warn|error|off
  std::string file;            // appended to, missing directories created; empty: stderr
  size_t queue_size = kLogDefaultQueueSize;  // in [kLogMinQueueSize, kLogMaxQueueSize]
};

// Starts the logging thread and its sink. Replaces a logger started earlier, after draining it.
// Refuses an unknown level, a queue size out of range, or a file that cannot be opened.
Status log_init(const LogOptions& options);

// Drains the queue, flushes and closes the sink, and joins the logging thread. Idempotent.
void log_shutdown();

// Asks the logging thread to flush its sink. Returns before the flush is done; only
// log_shutdown() waits for every queued message to reach the sink.
void log_flush();

// Messages dropped because the queue was full since the last log_init(); after log_shutdown(),
// the final count of that logger.
uint64_t log_dropped_count();

// Adds log.level, log.file and log.queue_size to a schema, and reads them back.
void add_log_config_keys(ConfigSchema& schema);
LogOptions log_options_from_config(const Config& config);

namespace detail {

// The lowest level written. Relaxed: it changes only in log_init()/log_shutdown(), and a
// thread that sees the old level for a moment logs or skips one message, which is harmless.
inline std::atomic<int> log_min_level{static_cast<int>(LogLevel::kInfo)};

void log_write(LogLevel level, std::string_view message) noexcept;

// Formats on the caller's stack (fmt's 500-byte inline buffer) and hands the text to the
// queue. The format string is checked at compile time; a formatter that throws is caught here,
// because no exception may leave runtime/.
template <typename... Args>
void log_format(LogLevel level, fmt::format_string<Args...> format, Args&&... args) noexcept {
  try {
    fmt::memory_buffer buffer;
    fmt::format_to(std::back_inserter(buffer), format, std::forward<Args>(args)...);
    log_write(level, std::string_view(buffer.data(), buffer.size()));
  } catch (...) {
    log_write(LogLevel::kError, "log: a message failed to format and was dropped");
  }
}

}  // namespace detail

// True when a message at `level` would be written; lets callers skip building arguments.
inline bool log_enabled(LogLevel level) noexcept {
  return static_cast<int>(level) >= detail::log_min_level.load(std::memory_order_relaxed);
}

}  // namespace cohort

// fmt-style: COHORT_LOG_INFO("view {} installed with {} members", view_id, n). The arguments
// are evaluated only when the level is enabled.
#define COHORT_LOG_AT(level, ...)                                                         \
  do {                                                                                    \
    if (::cohort::log_enabled(level)) ::cohort::detail::log_format((level), __VA_ARGS__); \
  } while (0)

#define COHORT_LOG_TRACE(...) COHORT_LOG_AT(::cohort::LogLevel::kTrace, __VA_ARGS__)
#define COHORT_LOG_DEBUG(...) COHORT_LOG_AT(::cohort::LogLevel::kDebug, __VA_ARGS__)
#define COHORT_LOG_INFO(...) COHORT_LOG_AT(::cohort::LogLevel::kInfo, __VA_ARGS__)
#define COHORT_LOG_WARN(...) COHORT_LOG_AT(::cohort::LogLevel::kWarn, __VA_ARGS__)
#define COHORT_LOG_ERROR(...) COHORT_LOG_AT(::cohort::LogLevel::kError, __VA_ARGS__)
