// The protocol's records (in members' logs) and control datagrams, and their little-endian
// encoding. Every decoder checks every length and field and answers false on anything
// malformed: a frame from outside never crashes a member (DESIGN.md, principle 6).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

#include "membership/protocol/types.h"

namespace cohort::membership {

inline constexpr uint16_t kProtocolMagic = 0xC0E5;
inline constexpr uint8_t kProtocolVersion = 2;  // 2: DATA carries a batch

enum class RecordKind : uint8_t {
  kData = 1,        // one or more consecutive messages of the writer (a batch per burst)
  kOrder = 2,       // the sequencer orders (sender, sseq range)s from gseq_first on
  kAck = 3,         // the writer holds every gseq up to `held` with its DATA
  kRelayData = 4,   // a message of another sender, relayed for the flush
  kRelayOrder = 5,  // ORDER entries, relayed for the flush
  kP2p = 6,         // a point-to-point request or reply, read only by its target
};

enum class ControlKind : uint8_t {
  kHeartbeat = 1,
  kJoin = 2,
  kLeave = 3,
  kPropose = 4,
  kFlushState = 5,
  kCut = 6,
  kHaveCut = 7,
  kInstall = 8,
  kNotMember = 9,
  kFetch = 10,
  kSnapRequest = 11,
  kSnapChunk = 12,
  kSnapNone = 13,
};

// Bounds on what a decoder accepts (a limit on everything).
inline constexpr uint32_t kMaxOrderRanges = 256;
inline constexpr uint32_t kMaxDataBatch = 1024;         // messages in one DATA record
inline constexpr uint32_t kDataBatchBytes = 16U << 10;  // no DATA batch grows past this
inline constexpr uint32_t kRecordHeadBytes = 20;        // magic, version, kind, writer, view
inline constexpr uint32_t kDataEntryHeadBytes = 18;     // rank, mode, sseq, gseq, length
inline constexpr uint32_t kMaxSnapChunk = 4096;
inline constexpr uint32_t kMaxSnapshotBytes = 64U << 20;

struct OrderRange {
  uint8_t rank = 0;
  uint32_t sseq_from = 0;  // inclusive
  uint32_t sseq_to = 0;    // inclusive
};

struct RecordHead {
  RecordKind kind{};
  Uid writer;
  ViewId view = 0;
};

struct DataBody {
  uint8_t rank = 0;  // the original sender's rank (relays); the writer's own rank for kData
  Mode mode = Mode::kTotal;
  uint32_t sseq = 0;
  uint64_t gseq_inline = 0;  // the sequencer's own messages carry their gseq
  std::span<const std::byte> payload;
};

// The body of a P2P record (NOTES.md, "Point-to-point"): type, target, id, payload. The target
// and id are fixed fields: every member but the target drops the record after reading them,
// without touching the payload.
enum class P2pType : uint8_t {
  kRequest = 1,
  kReply = 2,
};

struct P2pBody {
  P2pType type = P2pType::kRequest;
  Uid target;       // the one member that reads it (with its incarnation)
  uint64_t id = 0;  // the requester's id, echoed by the reply
  std::span<const std::byte> payload;
};

struct OrderBody {
  uint64_t gseq_first = 0;
  uint32_t count = 0;
  OrderRange ranges[kMaxOrderRanges];
};

// The value a view change agrees on: the cut of view `from` and the next view.
struct CutValue {
  uint64_t attempt = 0;  // the attempt that proposed it first (adopting keeps it)
  ViewId from = 0;
  uint32_t senders = 0;            // = members of `from`
  uint32_t cut[kMaxMembers] = {};  // per rank of `from`: the messages up to cut[s] are in
  uint64_t ordered = 0;            // G: ORDER entries 1..G are in the cut's order
  View next{};
  uint32_t joiners_mask = 0;  // bit r: next.members[r] is new in `next`
};

struct FlushState {
  uint64_t attempt = 0;
  uint32_t senders = 0;
  uint32_t recv[kMaxMembers] = {};
  uint64_t ordered = 0;
  bool has_accepted = false;
  uint64_t accepted_attempt = 0;
  CutValue accepted{};
};

struct FetchBody {
  uint32_t count = 0;
  OrderRange ranges[kMaxMembers];
  uint64_t order_from = 0;  // inclusive; 0 = none
  uint64_t order_to = 0;
};

struct ControlHead {
  ControlKind kind{};
  Uid from;
  ViewId view = 0;  // the sender's installed view (0 while joining)
};

// A growing byte buffer with little-endian writers.
class Writer {
 public:
  explicit Writer(std::vector<std::byte>* out) : out_(out) {}
  void u8(uint8_t v) { raw(&v, 1); }
  void u16(uint16_t v) { raw(&v, 2); }
  void u32(uint32_t v) { raw(&v, 4); }
  void u64(uint64_t v) { raw(&v, 8); }
  void bytes(std::span<const std::byte> b) { raw(b.data(), b.size()); }
  size_t size() const { return out_->size(); }
  // `n` more bytes at the end, to be filled by the caller (one growth for a whole entry on
  // the send path, rather than one per field).
  std::byte* grow(size_t n) {
    const size_t at = out_->size();
    out_->resize(at + n);
    return out_->data() + at;
  }

 private:
  void raw(const void* p, size_t n) {
    if (n != 0) std::memcpy(grow(n), p, n);
  }
  std::vector<std::byte>* out_;
};

// Reads little-endian fields; any read past the end sets !ok() and returns zeros.
class Reader {
 public:
  explicit Reader(std::span<const std::byte> in) : in_(in) {}
  uint8_t u8() { return get<uint8_t>(); }
  uint16_t u16() { return get<uint16_t>(); }
  uint32_t u32() { return get<uint32_t>(); }
  uint64_t u64() { return get<uint64_t>(); }
  std::span<const std::byte> bytes(size_t n) {
    if (!ok_ || in_.size() - pos_ < n) {
      ok_ = false;
      return {};
    }
    auto s = in_.subspan(pos_, n);
    pos_ += n;
    return s;
  }
  bool ok() const { return ok_; }
  bool at_end() const { return ok_ && pos_ == in_.size(); }

 private:
  template <typename T>
  T get() {
    T v{};
    if (!ok_ || in_.size() - pos_ < sizeof(T)) {
      ok_ = false;
      return v;
    }
    std::memcpy(&v, in_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  std::span<const std::byte> in_;
  size_t pos_ = 0;
  bool ok_ = true;
};

// Records.
void put_record_head(Writer& w, RecordKind kind, Uid writer, ViewId view);
// One message: the body of a RELAY_DATA, and each entry of a DATA record, whose body is
//   u16 count (1..kMaxDataBatch), then `count` entries, each of the writer's rank, sseqs
//   consecutive.
void put_data(Writer& w, const DataBody& d);
void put_order(Writer& w, uint64_t gseq_first, std::span<const OrderRange> ranges);
bool get_record_head(Reader& r, RecordHead* head);
bool get_data(Reader& r, DataBody* d);        // one message, the whole rest of `r`
bool get_data_entry(Reader& r, DataBody* d);  // one message; more may follow
bool get_order(Reader& r, OrderBody* o);
void put_p2p(Writer& w, const P2pBody& p);
bool get_p2p(Reader& r, P2pBody* p);

// Control datagrams.
void put_control_head(Writer& w, ControlKind kind, Uid from, ViewId view);
bool get_control_head(Reader& r, ControlHead* head);
void put_view(Writer& w, const View& v);
bool get_view(Reader& r, View* v);
void put_cut_value(Writer& w, const CutValue& c);
bool get_cut_value(Reader& r, CutValue* c);
void put_flush_state(Writer& w, const FlushState& f);
bool get_flush_state(Reader& r, FlushState* f);
void put_fetch(Writer& w, const FetchBody& f);
bool get_fetch(Reader& r, FetchBody* f);

}  // namespace cohort::membership
