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

namespace {
bool valid_group_name(const std::string& name) {
  if (name.empty() || name.size() > 64 || name == "." || name == "..") return false;
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '-' || c == '.';
    if (!ok) return false;
  }
  return true;
}
}  // namespace

Status check_group_and_self(const char* transport, const std::string& group, MemberId self,
                            uint32_t members) {
  if (!valid_group_name(group)) {
    return Error(Errc::kInvalidArgument,
                 std::string(transport) + ": group name '" + group +
                     "' must be 1-64 characters of letters, digits, '_', '-' and '.'");
  }
  if (members < 1 || members > kMaxMembers || self >= members) {
    return Error(Errc::kInvalidArgument,
                 std::string(transport) + ": member " + std::to_string(self) + " of " +
                     std::to_string(members) + " is not possible; a group has 1.." +
                     std::to_string(kMaxMembers) + " members and self is one of them (0.." +
                     std::to_string(members == 0 ? 0 : members - 1) + ")");
  }
  return {};
}

}  // namespace cohort::transport
