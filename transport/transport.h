// The transport interface: replicated single-writer logs and a control channel.
//
// Every member appends to its own log (its *publication*) and reads every other member's log
// (a *subscription* per peer); DESIGN.md principle 2. Appending is zero copy: try_claim()
// reserves space in the log, the caller writes the record in place, commit() makes it
// visible. Reading is zero copy too: poll() hands out views of records where they already
// lie, in bursts, and release() gives the space back, publishing the reader's position to
// the writer. The writer never overwrites what a live reader has not released: when the log
// is full, try_claim() says kBackPressure, and the caller backs off.
//
// Shape: transports are concrete classes that satisfy the concepts below, and the engine
// above is a template over its transport (as eRPC's Rpc is over its Transport), so a record
// costs no indirect call at all; the transport is chosen once, at start.
//
// A separate, small control channel carries datagrams (heartbeats, view-change messages)
// between members; it is for the control core, not the data path.
#pragma once

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "runtime/result.h"

namespace cohort::transport {

using MemberId = uint32_t;

// Members of one group on one transport: ids are 0..kMaxMembers-1. A limit on everything.
inline constexpr uint32_t kMaxMembers = 32;

// Record types in a log. The transport reserves 0 (never written) and kPadding; the layers
// above use the rest.
enum RecordType : uint16_t {
  kRecordNone = 0,
  kRecordPadding = 1,  // fills the end of the log before a wrap; poll() skips it
  kRecordUser = 16,    // first type free for the layers above
};

// A record as poll() hands it out: valid until the subscription's next release().
struct RecordView {
  uint64_t position;  // log position of the record (bytes since the log began)
  uint16_t type;
  std::span<const std::byte> payload;
};

// Space reserved by try_claim(): write `data[0..length)` and then commit() it.
struct Claim {
  std::byte* data = nullptr;
  uint32_t length = 0;
  uint64_t position = 0;
  uint16_t type = 0;
  uint32_t reserved_bytes = 0;  // header, payload and alignment: what commit() publishes
};

enum class ClaimStatus : uint8_t {
  kOk,
  kBackPressure,  // the log is full up to the slowest live reader: try again later
  kTooLarge,      // bigger than the largest record this log takes (max_record_bytes())
  kClosed,        // the publication was closed
};

const char* claim_status_name(ClaimStatus status) noexcept;

// A single-writer log. One thread (the data core) owns it.
template <typename P>
concept LogPublication = requires(P p, const P cp, uint32_t n, uint16_t type, Claim c) {
  { p.try_claim(n, type, &c) }
  noexcept->std::same_as<ClaimStatus>;
  { p.commit(c) }
  noexcept;
  { cp.position() }
  noexcept->std::same_as<uint64_t>;
  { cp.max_record_bytes() }
  noexcept->std::same_as<uint32_t>;
};

// A reader of one peer's log. One thread (the data core) owns it.
template <typename S>
concept LogSubscription = requires(S s, const S cs, RecordView* out, uint32_t max) {
  { s.poll(out, max) }
  noexcept->std::same_as<uint32_t>;
  { s.release() }
  noexcept;
  { cs.position() }
  noexcept->std::same_as<uint64_t>;
};

// A control datagram as poll_control() hands it out: valid until the next poll_control().
struct ControlMessage {
  MemberId from;
  std::span<const std::byte> bytes;
};

enum class SendStatus : uint8_t {
  kOk,
  kWouldBlock,  // the peer's queue is full: the control core retries on its next tick
  kNoPeer,      // nobody listens at that member's address (not started, or gone)
  kTooLarge,    // over kMaxControlBytes
};

inline constexpr uint32_t kMaxControlBytes = 8192;

const char* send_status_name(SendStatus status) noexcept;

// Checks what every transport is given at setup: a group name of 1-64 letters, digits, '_',
// '-' and '.', and a member id inside a group of 1..kMaxMembers. Errors start with
// "<transport>: " and name the fix.
Status check_group_and_self(const char* transport, const std::string& group, MemberId self,
                            uint32_t members);

}  // namespace cohort::transport
