#include "runtime/log.h"

#include <pthread.h>
#include <spdlog/async_logger.h>
#include <spdlog/details/thread_pool.h>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>

#include <cstdio>
#include <exception>
#include <memory>
#include <mutex>

#include "runtime/config.h"

namespace cohort {

namespace {

constexpr const char* kLevelNames[] = {"trace", "debug", "info", "warn", "error", "off"};

// Timestamp to the microsecond, level, thread id: enough to line logs of several members up.
constexpr const char* kPattern = "[%Y-%m-%d %H:%M:%S.%f] [%l] [%t] %v";

spdlog::level::level_enum to_spdlog(LogLevel level) noexcept {
  switch (level) {
    case LogLevel::kTrace: return spdlog::level::trace;
    case LogLevel::kDebug: return spdlog::level::debug;
    case LogLevel::kInfo: return spdlog::level::info;
    case LogLevel::kWarn: return spdlog::level::warn;
    case LogLevel::kError: return spdlog::level::err;
    case LogLevel::kOff: return spdlog::level::off;
  }
  return spdlog::level::off;
}

struct LogState {
  std::shared_ptr<spdlog::details::thread_pool> pool;
  std::shared_ptr<spdlog::async_logger> logger;
};

std::mutex state_mutex;            // serializes log_init/log_shutdown/log_dropped_count
LogState state;                    // guarded by state_mutex
uint64_t dropped_at_shutdown = 0;  // guarded by state_mutex

// What log_write() reads without the mutex. The control thread sets it before other threads
// start and clears it after they stop (see log.h), so the pointee outlives every reader.
std::atomic<spdlog::logger*> current_logger{nullptr};

// Order matters: queued messages hold their own reference to the logger, so dropping ours
// first and then the pool makes the pool's destructor drain the queue into the sink and join
// the thread; the last message released closes the sink, which flushes the file.
void stop(LogState& s) noexcept {
  s.logger.reset();
  s.pool.reset();
}

}  // namespace

const char* log_level_name(LogLevel level) noexcept {
  const auto i = static_cast<size_t>(level);
  return i < std::size(kLevelNames) ? kLevelNames[i] : "unknown";
}

Result<LogLevel> parse_log_level(std::string_view text) {
  for (size_t i = 0; i < std::size(kLevelNames); ++i) {
    if (text == kLevelNames[i]) return static_cast<LogLevel>(i);
  }
  return Error(Errc::kInvalidArgument,
               fmt::format("log: level '{}' is not one of trace, debug, info, warn, error, off; "
                           "check log.level",
                           text));
}

Status log_init(const LogOptions& options) {
  Result<LogLevel> level = parse_log_level(options.level);
  if (!level.ok()) return std::move(level).error();
  if (options.queue_size < kLogMinQueueSize || options.queue_size > kLogMaxQueueSize) {
    return Error(Errc::kInvalidArgument,
                 fmt::format("log: queue size {} is outside [{}, {}]; check log.queue_size",
                             options.queue_size, kLogMinQueueSize, kLogMaxQueueSize));
  }
  const std::string sink_name = options.file.empty() ? "stderr" : "'" + options.file + "'";
  LogState fresh;
  // spdlog reports a file it cannot open, or a thread it cannot start, by throwing.
  try {
    spdlog::sink_ptr sink;
    if (options.file.empty()) {
      sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
    } else {
      sink = std::make_shared<spdlog::sinks::basic_file_sink_mt>(options.file, /*truncate=*/false);
    }
    // One thread: the sink writes in order, and a second thread would only contend for it.
    fresh.pool = std::make_shared<spdlog::details::thread_pool>(
        options.queue_size, 1, [] { pthread_setname_np(pthread_self(), "cohort-log"); });
    fresh.logger = std::make_shared<spdlog::async_logger>(
        "cohort", std::move(sink), fresh.pool, spdlog::async_overflow_policy::overrun_oldest);
    fresh.logger->set_pattern(kPattern);
    fresh.logger->set_level(to_spdlog(*level));
    // Warnings and errors reach the disk promptly: they are the lines read after a crash.
    fresh.logger->flush_on(spdlog::level::warn);
  } catch (const std::exception& e) {
    stop(fresh);
    return Error(Errc::kSystem, fmt::format("log: cannot start logging to {}: {}; check log.file",
                                            sink_name, e.what()));
  }

  std::lock_guard<std::mutex> lock(state_mutex);
  LogState old = std::exchange(state, std::move(fresh));
  // release: pairs with the acquire in log_write(), so a thread that sees the pointer sees a
  // fully built logger.
  current_logger.store(state.logger.get(), std::memory_order_release);
  detail::log_min_level.store(static_cast<int>(*level), std::memory_order_relaxed);
  dropped_at_shutdown = 0;
  stop(old);
  return {};
}

void log_shutdown() {
  std::lock_guard<std::mutex> lock(state_mutex);
  if (state.pool == nullptr) return;
  current_logger.store(nullptr, std::memory_order_release);
  detail::log_min_level.store(static_cast<int>(LogLevel::kInfo), std::memory_order_relaxed);
  std::shared_ptr<spdlog::details::thread_pool> pool = state.pool;
  stop(state);
  // No thread logs any more (see log.h), so the count is final before the drain below.
  dropped_at_shutdown = pool->overrun_counter();
  pool.reset();
}

void log_flush() {
  std::lock_guard<std::mutex> lock(state_mutex);
  if (state.logger != nullptr) state.logger->flush();
}

uint64_t log_dropped_count() {
  std::lock_guard<std::mutex> lock(state_mutex);
  if (state.pool == nullptr) return dropped_at_shutdown;
  return state.pool->overrun_counter();
}

void add_log_config_keys(ConfigSchema& schema) {
  schema.add_string("log.level", "info", "Lowest level of message written.",
                    {"trace", "debug", "info", "warn", "error", "off"});
  schema.add_string("log.file", "", "File the log is appended to; empty writes to stderr.");
  schema.add_int("log.queue_size", static_cast<int64_t>(kLogDefaultQueueSize),
                 "Messages the log queue holds; when full the oldest is dropped and counted.",
                 static_cast<int64_t>(kLogMinQueueSize), static_cast<int64_t>(kLogMaxQueueSize));
}

LogOptions log_options_from_config(const Config& config) {
  LogOptions options;
  options.level = config.get_string("log.level");
  options.file = config.get_string("log.file");
  // The schema's range keeps this positive and small, so the cast is exact.
  options.queue_size = static_cast<size_t>(config.get_int("log.queue_size"));
  return options;
}

namespace detail {

void log_write(LogLevel level, std::string_view message) noexcept {
  // acquire: pairs with the release in log_init()/log_shutdown().
  spdlog::logger* logger = current_logger.load(std::memory_order_acquire);
  if (logger == nullptr) {
    std::fprintf(stderr, "[%s] %.*s\n", log_level_name(level), static_cast<int>(message.size()),
                 message.data());
    return;
  }
  // spdlog catches sink errors itself; this catches what it lets through (bad_alloc), since
  // losing one log line is better than terminating the process.
  try {
    logger->log(to_spdlog(level), spdlog::string_view_t(message.data(), message.size()));
  } catch (...) {
  }
}

}  // namespace detail

}  // namespace cohort
