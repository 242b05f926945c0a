#include "runtime/result.h"

#include <cstring>

namespace cohort {

const char* errc_name(Errc code) noexcept {
  switch (code) {
    case Errc::kInvalidArgument: return "invalid argument";
    case Errc::kNotFound: return "not found";
    case Errc::kUnavailable: return "unavailable";
    case Errc::kSystem: return "system error";
    case Errc::kParse: return "parse error";
    case Errc::kUnsupported: return "unsupported";
  }
  return "unknown";
}

Error system_error(const std::string& what, int errno_value) {
  char buf[256];
  // GNU strerror_r returns the message, which may or may not live in buf.
  const char* text = strerror_r(errno_value, buf, sizeof buf);
  return Error(Errc::kSystem, what + ": " + text);
}

}  // namespace cohort
