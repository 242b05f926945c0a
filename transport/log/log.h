// The data path of every log: LogWriter appends records to a ring of bytes (a member's
// publication), LogReader reads them back (a subscription). Both are transport-neutral: the
// shm transport puts the ring in a shared file, and a datagram transport puts the writer's
// ring in private memory and rebuilds a replica of it at each reader. Everything here is
// inline, noexcept, allocation-free and lock-free; transports do their setup elsewhere.
//
// Reader positions: each reader publishes how far it has released in a 64-bit word that the
// writer can read (shm: in the reader's control page; datagram transports: a word the
// network code updates from the reader's status frames). The writer never overwrites bytes
// below the minimum over the readers it counts.
//
// Record protocol (NOTES.md): a record's header length is written last with release; before
// that, the writer zeroes the header at the position after the record, so a reader that
// moves on from a record finds either zero (nothing yet) or a complete newer record, never a
// leftover from an earlier lap. The writer keeps one header's worth of headroom free for that
// zero.
#pragma once

#include <atomic>
#include <cstdint>

#include "runtime/assert.h"
#include "transport/log/log_format.h"
#include "transport/transport.h"

namespace cohort::transport {

class LogWriter {
 public:
  LogWriter() = default;
  // `committed`, when given, receives the committed position after each commit, for tools.
  LogWriter(std::byte* log, uint64_t capacity, std::atomic<uint64_t>* committed) noexcept
      : log_(log), capacity_(capacity), mask_(capacity - 1), committed_(committed) {}

  // Reserves room for a record of `length` payload bytes. On kOk, write out->data and then
  // commit(*out). One claim at a time.
  ClaimStatus try_claim(uint32_t length, uint16_t type, Claim* out) noexcept {
    COHORT_DASSERT(!claimed_);
    if (closed_) [[unlikely]]
      return ClaimStatus::kClosed;
    if (length > max_record_bytes()) return ClaimStatus::kTooLarge;
    const uint64_t record_bytes = align_up(sizeof(RecordHeader) + length, kRecordAlign);
    const uint64_t offset = tail_ & mask_;
    const uint64_t pad = offset + record_bytes > capacity_ ? capacity_ - offset : 0;
    // The record, any padding before it, and one header of headroom for the zero marker.
    const uint64_t needed = pad + record_bytes + sizeof(RecordHeader);
    if (tail_ + needed > limit_ && !refresh_limit(tail_ + needed)) {
      ++stats_.back_pressure;
      return ClaimStatus::kBackPressure;
    }
    if (pad != 0) write_padding(pad);
    RecordHeader& h = header(tail_);
    COHORT_DASSERT(h.length.load(std::memory_order_relaxed) == 0);
    h.type = type;
    h.reserved = 0;
    h.position = tail_;
    out->data = reinterpret_cast<std::byte*>(&h) + sizeof(RecordHeader);
    out->length = length;
    out->position = tail_;
    out->type = type;
    out->reserved_bytes = static_cast<uint32_t>(record_bytes);
    claimed_ = true;
    return ClaimStatus::kOk;
  }

  // Makes a claimed record visible to every reader.
  void commit(const Claim& claim) noexcept {
    COHORT_DASSERT(claimed_ && claim.position == tail_);
    const uint64_t next = tail_ + claim.reserved_bytes;
    // relaxed: ordered before the readers can see it by the release store just below.
    header(next).length.store(0, std::memory_order_relaxed);
    // release: pairs with the acquire load of length in LogReader::poll(); the payload,
    // the header fields and the zero above are visible before the record is.
    header(tail_).length.store(static_cast<uint32_t>(sizeof(RecordHeader) + claim.length),
                               std::memory_order_release);
    tail_ = next;
    claimed_ = false;
    ++stats_.records;
    stats_.bytes += claim.length;
    // relaxed: for tools and stats only; readers poll the records themselves.
    if (committed_ != nullptr) committed_->store(tail_, std::memory_order_relaxed);
  }

  uint64_t position() const noexcept { return tail_; }
  uint64_t capacity() const noexcept { return capacity_; }
  // A quarter of the log: big enough for any message cohort sends in one record, small
  // enough that one record never holds the whole log hostage.
  uint32_t max_record_bytes() const noexcept {
    return static_cast<uint32_t>(capacity_ / 4 - sizeof(RecordHeader));
  }

  // The readers the writer waits for. A reader expected but not yet attached counts as
  // position 0, so the writer cannot lap it before it arrives.
  void expect_reader(MemberId m) noexcept {
    COHORT_ASSERT(m < kMaxMembers);
    expected_ |= 1u << m;
  }
  // `position` is the reader's published position in this log.
  void attach_reader(MemberId m, const std::atomic<uint64_t>* position) noexcept {
    COHORT_ASSERT(m < kMaxMembers);
    readers_[m] = Reader{position, nullptr, 0, 0};
  }
  // A reader that joins a log already being written, and starts counting now. It reads from
  // `start` on, a record boundary the writer chose (normally position()); the writer keeps
  // every byte from `start` on until the reader releases it. `position` is the reader's
  // published word, but the reader may still have it about another log (an earlier
  // incarnation of this writer, after a restart): the writer believes it only once `*tag`
  // equals `tag_value`, and counts the reader at `start` until then. The reader stores its
  // start into `*position`, then `tag_value` into `*tag` with release.
  void attach_reader_at(MemberId m, const std::atomic<uint64_t>* position, uint64_t start,
                        const std::atomic<uint64_t>* tag, uint64_t tag_value) noexcept {
    COHORT_ASSERT(m < kMaxMembers && position != nullptr && tag != nullptr);
    COHORT_ASSERT(start % kRecordAlign == 0 && start <= tail_);
    // Nothing from `start` on was overwritten yet: the writer's next zero marker still lies
    // within one lap of it.
    COHORT_ASSERT(tail_ + sizeof(RecordHeader) <= start + capacity_);
    expected_ |= 1u << m;
    readers_[m] = Reader{position, tag, tag_value, start};
    // The cached limit may have been computed without this reader: never write past what it
    // has yet to read.
    if (limit_ > start + capacity_) limit_ = start + capacity_;
  }
  // The hook for the membership layer: stop counting a reader that was declared gone, so a
  // dead reader cannot hold the writer back forever.
  void remove_reader(MemberId m) noexcept {
    COHORT_ASSERT(m < kMaxMembers);
    expected_ &= ~(1u << m);
    readers_[m] = Reader{};
  }
  bool counts_reader(MemberId m) const noexcept { return (expected_ >> m) & 1u; }
  // Where a reader attached with attach_reader_at() starts reading; 0 for the others.
  uint64_t reader_start(MemberId m) const noexcept {
    return m < kMaxMembers ? readers_[m].start : 0;
  }

  // The slowest live reader's position; the writer may write up to it plus the capacity.
  uint64_t min_reader_position() const noexcept {
    uint64_t min = tail_;
    for (uint32_t bits = expected_; bits != 0; bits &= bits - 1) {
      const auto m = static_cast<uint32_t>(__builtin_ctz(bits));
      const Reader& r = readers_[m];
      uint64_t p = r.start;  // expected, or attached but not yet reading this log
      // acquire: pairs with the reader's release store of the tag, made after it stored its
      // start into the position word; so the position loaded below is about this log.
      if (r.position != nullptr &&
          (r.tag == nullptr || r.tag->load(std::memory_order_acquire) == r.tag_value)) {
        // acquire: pairs with the release store of the reader's position in
        // LogReader::release(); it finished with every record below that position.
        p = r.position->load(std::memory_order_acquire);
      }
      if (p < min) min = p;
    }
    return min;
  }

  void close() noexcept { closed_ = true; }

  struct Stats {
    uint64_t records = 0;
    uint64_t bytes = 0;
    uint64_t back_pressure = 0;  // claims refused because the log was full
    uint64_t paddings = 0;
  };
  const Stats& stats() const noexcept { return stats_; }

 private:
  RecordHeader& header(uint64_t position) noexcept {
    return *reinterpret_cast<RecordHeader*>(log_ + (position & mask_));
  }

  bool refresh_limit(uint64_t want) noexcept {
    limit_ = min_reader_position() + capacity_;
    return want <= limit_;
  }

  void write_padding(uint64_t pad) noexcept {
    RecordHeader& h = header(tail_);
    h.type = kRecordPadding;
    h.reserved = 0;
    h.position = tail_;
    header(tail_ + pad).length.store(0, std::memory_order_relaxed);  // see commit()
    // release: pairs with the acquire in LogReader::poll(), as in commit().
    h.length.store(static_cast<uint32_t>(pad), std::memory_order_release);
    tail_ += pad;
    ++stats_.paddings;
  }

  std::byte* log_ = nullptr;
  uint64_t capacity_ = 0;
  uint64_t mask_ = 0;
  std::atomic<uint64_t>* committed_ = nullptr;
  uint64_t tail_ = 0;
  uint64_t limit_ = 0;  // cached: min reader position + capacity, refreshed when reached
  uint32_t expected_ = 0;
  struct Reader {
    const std::atomic<uint64_t>* position = nullptr;  // nullptr: expected, not attached
    const std::atomic<uint64_t>* tag = nullptr;       // nullptr: position is always ours
    uint64_t tag_value = 0;
    uint64_t start = 0;  // counted here until position is about this log
  };
  Reader readers_[kMaxMembers] = {};
  bool claimed_ = false;
  bool closed_ = false;
  Stats stats_;
};

// Why a subscription stopped reading a log it found malformed.
enum class LogFault : uint8_t { kNone, kBadLength, kBadPosition, kBadPadding };
const char* log_fault_name(LogFault fault) noexcept;

class LogReader {
 public:
  LogReader() = default;
  // Reads from `start` on: 0 for a log read from its beginning, or the position the writer
  // chose for a reader that joined later (LogWriter::attach_reader_at). A record boundary;
  // the caller checks that when it comes from another process.
  LogReader(const std::byte* log, uint64_t capacity, std::atomic<uint64_t>* my_position,
            uint64_t start = 0) noexcept
      : log_(log),
        capacity_(capacity),
        mask_(capacity - 1),
        my_position_(my_position),
        polled_(start),
        released_(start) {
    COHORT_ASSERT(start % kRecordAlign == 0);
  }

  // Hands out up to max complete records after the last one polled; their views stay valid
  // until release(). Padding is skipped. A malformed record stops this subscription for good
  // (fault() says why): the bytes come from another process and are not trusted.
  uint32_t poll(RecordView* out, uint32_t max) noexcept { return poll(out, max, ~uint64_t{0}); }

  // The same, reading nothing at or past `limit`: for a replica rebuilt from frames, where
  // the bytes past the contiguous received position may be stale or out of order.
  uint32_t poll(RecordView* out, uint32_t max, uint64_t limit) noexcept {
    uint32_t n = 0;
    uint64_t pos = polled_;
    while (n < max && fault_ == LogFault::kNone && pos + sizeof(RecordHeader) <= limit) {
      const uint64_t offset = pos & mask_;
      const auto& h = *reinterpret_cast<const RecordHeader*>(log_ + offset);
      // acquire: pairs with the release store of length in LogWriter::commit().
      const uint32_t length = h.length.load(std::memory_order_acquire);
      if (length == 0) break;
      const uint64_t record_bytes = align_up(length, kRecordAlign);
      if (length < sizeof(RecordHeader) && h.type != kRecordPadding) {
        fault_ = LogFault::kBadLength;
      } else if (record_bytes > capacity_ - offset || record_bytes > capacity_ / 2) {
        fault_ = LogFault::kBadLength;
      } else if (h.position != pos) {
        fault_ = LogFault::kBadPosition;
      } else if (pos + length > limit) {
        break;  // the header is here but not all of the record has arrived yet
      } else if (h.type == kRecordPadding) {
        if (offset + record_bytes != capacity_)
          fault_ = LogFault::kBadPadding;
        else
          pos += record_bytes;
      } else {
        out[n++] = RecordView{
            pos, h.type, {log_ + offset + sizeof(RecordHeader), length - sizeof(RecordHeader)}};
        pos += record_bytes;
      }
    }
    polled_ = pos;
    return n;
  }

  // Gives back every record polled so far, publishing the position to the writer.
  void release() noexcept {
    if (polled_ == released_) return;
    released_ = polled_;
    // release: pairs with the acquire load in LogWriter::min_reader_position(); our reads
    // of the records below this position are done before the writer may reuse their bytes.
    my_position_->store(released_, std::memory_order_release);
  }

  uint64_t position() const noexcept { return polled_; }
  LogFault fault() const noexcept { return fault_; }
  bool attached() const noexcept { return log_ != nullptr; }

 private:
  const std::byte* log_ = nullptr;
  uint64_t capacity_ = 0;
  uint64_t mask_ = 0;
  std::atomic<uint64_t>* my_position_ = nullptr;
  uint64_t polled_ = 0;
  uint64_t released_ = 0;
  LogFault fault_ = LogFault::kNone;
};

static_assert(LogPublication<LogWriter>);
static_assert(LogSubscription<LogReader>);

}  // namespace cohort::transport
