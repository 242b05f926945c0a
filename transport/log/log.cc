#include "transport/log/log.h"

namespace cohort::transport {

const char* log_fault_name(LogFault fault) noexcept {
  switch (fault) {
    case LogFault::kNone: return "none";
    case LogFault::kBadLength: return "record length out of bounds";
    case LogFault::kBadPosition: return "record position does not match the reader's";
    case LogFault::kBadPadding: return "padding that does not end at the end of the log";
  }
  return "unknown";
}

}  // namespace cohort::transport
