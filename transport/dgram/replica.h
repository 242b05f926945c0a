// The reader side of one peer's log over datagrams: a replica ring the size of the writer's
// log, into which DATA frames are copied at their positions, the GapTracker of what arrived,
// and the subscription that the application reads from. Data path only; the memory is
// allocated by DgramLog::create().
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

#include "transport/dgram/gap_tracker.h"
#include "transport/log/log.h"
#include "transport/transport.h"

namespace cohort::transport::dgram {

// A subscription to a peer's replica: a LogReader that never reads at or past the contiguous
// received position, where bytes may be stale (an earlier lap) or incomplete (out of order).
// It satisfies LogSubscription, so code written for shm reads a udp log the same way. Owned by
// its DgramLog; the data core's thread only, the same thread that runs poll() and flush().
class ReplicaSubscription {
 public:
  ReplicaSubscription() = default;
  ReplicaSubscription(const std::byte* log, uint64_t capacity, std::atomic<uint64_t>* released,
                      const uint64_t* received) noexcept
      : reader_(log, capacity, released), received_(received) {}

  // Up to max records, zero copy; views valid until release(). See LogReader::poll().
  uint32_t poll(RecordView* out, uint32_t max) noexcept {
    return reader_.poll(out, max, *received_);
  }
  // Gives the polled records back; the next status frame tells the writer.
  void release() noexcept { reader_.release(); }
  uint64_t position() const noexcept { return reader_.position(); }
  // Bytes below this position have arrived (what poll() may read up to).
  uint64_t received() const noexcept { return *received_; }
  LogFault fault() const noexcept { return reader_.fault(); }
  LogReader& reader() noexcept { return reader_; }

 private:
  LogReader reader_;
  const uint64_t* received_ = nullptr;
};

static_assert(LogSubscription<ReplicaSubscription>);

// Why a peer's log stopped being read or counted, beyond LogFault.
enum class PeerFault : uint8_t {
  kNone,
  kLogSizeMismatch,  // its heartbeat or status names another log size: a config mix-up
};
const char* peer_fault_name(PeerFault fault) noexcept;

struct Replica {
  std::byte* mem = nullptr;
  uint64_t capacity = 0;
  GapTracker gaps;
  // The application's released position in this replica: LogReader::release() stores it
  // (release), the status frames carry it, and the window check reads it. All on the data core.
  std::atomic<uint64_t> released{0};
  ReplicaSubscription sub;
  uint64_t status_sent_ns = GapTracker::kNever;
  uint64_t status_sent_released = 0;
  PeerFault fault = PeerFault::kNone;

  // Copies [position, position + bytes.size()) into the ring, in two pieces if it wraps.
  void copy_in(uint64_t position, std::span<const std::byte> bytes) noexcept {
    const uint64_t offset = position & (capacity - 1);
    const uint64_t first = bytes.size() < capacity - offset ? bytes.size() : capacity - offset;
    std::memcpy(mem + offset, bytes.data(), first);
    if (first < bytes.size()) std::memcpy(mem, bytes.data() + first, bytes.size() - first);
  }
};

}  // namespace cohort::transport::dgram
