// Result<T>: the return type of everything on the control path that can fail for reasons
// outside the program (config, devices, files). The hot path returns counts or enums instead.
// An Error carries a code for programs and a message for people; the message names the thing,
// the value and the remedy ("dpdk: port 0 not found (...); check --dpdk-args").
#pragma once

#include <string>
#include <type_traits>
#include <utility>
#include <variant>

#include "runtime/assert.h"

namespace cohort {

enum class Errc {
  kInvalidArgument,  // the caller or the config asked for something impossible
  kNotFound,         // a file, device, key or core that is not there
  kUnavailable,      // a resource that exists but cannot be had now (busy, limit reached)
  kSystem,           // a system call failed; the message carries errno's text
  kParse,            // input text or bytes that do not parse
  kUnsupported,      // a feature this build or machine lacks
};

const char* errc_name(Errc code) noexcept;

class [[nodiscard]] Error {
 public:
  Error(Errc code, std::string message) : code_(code), message_(std::move(message)) {}

  Errc code() const noexcept { return code_; }
  const std::string& message() const noexcept { return message_; }

  // Adds context in front: "config: " + "key 'x' ..." reads as one sentence.
  Error with_context(const std::string& prefix) && {
    message_ = prefix + message_;
    return std::move(*this);
  }

 private:
  Errc code_;
  std::string message_;
};

// Builds an Error from errno after a failed system call: "<what>: <strerror(errno)>".
Error system_error(const std::string& what, int errno_value);

template <typename T>
class [[nodiscard]] Result {
 public:
  static_assert(!std::is_same_v<std::remove_cv_t<T>, Error>, "Result<Error> is ambiguous");

  Result(T value)
      : state_(std::in_place_index<0>, std::move(value)) {}  // NOLINT: implicit by design
  Result(Error error) : state_(std::in_place_index<1>, std::move(error)) {}  // NOLINT

  bool ok() const noexcept { return state_.index() == 0; }
  explicit operator bool() const noexcept { return ok(); }

  T& value() & {
    COHORT_ASSERT_MSG(ok(), "Result::value() on an error");
    return std::get<0>(state_);
  }
  const T& value() const& {
    COHORT_ASSERT_MSG(ok(), "Result::value() on an error");
    return std::get<0>(state_);
  }
  T&& value() && {
    COHORT_ASSERT_MSG(ok(), "Result::value() on an error");
    return std::get<0>(std::move(state_));
  }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

  const Error& error() const& {
    COHORT_ASSERT_MSG(!ok(), "Result::error() on a value");
    return std::get<1>(state_);
  }
  Error&& error() && {
    COHORT_ASSERT_MSG(!ok(), "Result::error() on a value");
    return std::get<1>(std::move(state_));
  }

 private:
  std::variant<T, Error> state_;
};

// Result<void>: success carries nothing.
template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : error_(std::move(error)), ok_(false) {}  // NOLINT: implicit by design

  bool ok() const noexcept { return ok_; }
  explicit operator bool() const noexcept { return ok_; }
  const Error& error() const& {
    COHORT_ASSERT_MSG(!ok_, "Result::error() on success");
    return error_;
  }
  Error&& error() && {
    COHORT_ASSERT_MSG(!ok_, "Result::error() on success");
    return std::move(error_);
  }

 private:
  Error error_{Errc::kInvalidArgument, {}};
  bool ok_ = true;
};

using Status = Result<void>;

}  // namespace cohort

// Returns early from a function returning Result<...> when `expr` (a Result) holds an error.
#define COHORT_TRY(expr)                                                        \
  do {                                                                          \
    auto cohort_try_result_ = (expr);                                           \
    if (!cohort_try_result_.ok()) return std::move(cohort_try_result_).error(); \
  } while (0)
