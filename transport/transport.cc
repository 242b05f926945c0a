#include "transport/transport.h"

namespace cohort::transport {

const char* claim_status_name(ClaimStatus status) noexcept {
  switch (status) {
    case ClaimStatus::kOk: return "ok";
    case ClaimStatus::kBackPressure: return "back pressure";
    case ClaimStatus::kTooLarge: return "too large";
    case ClaimStatus::kClosed: return "closed";
  }
  return "unknown";
}

const char* send_status_name(SendStatus status) noexcept {
  switch (status) {
    case SendStatus::kOk: return "ok";
    case SendStatus::kWouldBlock: return "would block";
    case SendStatus::kNoPeer: return "no peer";
    case SendStatus::kTooLarge: return "too large";
  }
  return "unknown";
}

}  // namespace cohort::transport
