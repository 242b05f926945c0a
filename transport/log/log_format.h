// The record format of every cohort log: the shm transport's shared files, and the replicas
// that the datagram transports rebuild from frames. A log is a ring of `capacity` bytes (a
// power of two) holding records at kRecordAlign-aligned positions; see NOTES.md beside this
// file for the protocol that makes records visible.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace cohort::transport {

// 16, the header size: every record starts on a 16-byte boundary, so a header always fits
// before the end of the log and never straddles the wrap.
inline constexpr uint32_t kRecordAlign = 16;

// Every record starts with this header at a kRecordAlign-aligned position.
struct RecordHeader {
  // Total bytes of the record (header + payload, before alignment). Written last, with
  // release: nonzero means the record is complete. Zero means "nothing here yet".
  std::atomic<uint32_t> length;
  uint16_t type;
  uint16_t reserved;
  uint64_t position;  // the record's own log position: a reader checks it against its own
};

static_assert(sizeof(RecordHeader) == 16);
static_assert(offsetof(RecordHeader, position) == 8);

inline constexpr uint64_t align_up(uint64_t n, uint64_t a) noexcept {
  return (n + a - 1) & ~(a - 1);
}

}  // namespace cohort::transport
