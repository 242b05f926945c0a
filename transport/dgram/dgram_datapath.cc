// The data path of DgramLog: received frames in, frames to send out. Everything here is
// noexcept, allocation-free and bounded: a burst of datagrams costs a bounded amount of work
// whatever the network sends.
#include <bit>
#include <cstring>

#include "transport/dgram/dgram_log.h"

namespace cohort::transport::dgram {

namespace {

// The frame payloads of the log protocol are little-endian, like the frame header.
uint64_t to_le(uint64_t v) noexcept {
  if constexpr (std::endian::native == std::endian::little) {
    return v;
  } else {
    return __builtin_bswap64(v);
  }
}

void put_le64(std::byte* p, uint64_t v) noexcept {
  v = to_le(v);
  std::memcpy(p, &v, sizeof v);
}

uint64_t get_le64(const std::byte* p) noexcept {
  uint64_t v;
  std::memcpy(&v, p, sizeof v);
  return to_le(v);
}

}  // namespace

void DgramLog::on_datagram(MemberId from, std::span<const std::byte> bytes,
                           uint64_t now_ns) noexcept {
  ++stats_.rx_datagrams;
  wire::FrameView f;
  const wire::DecodeStatus status = wire::decode_frame(bytes, options_.group_id, &f);
  stats_.decode.count(status);
  if (status != wire::DecodeStatus::kOk) return;
  // Drop what is stale or misdirected first (STYLE.md): the address must be a peer's, and the
  // frame must name the member at that address.
  if (from >= options_.members || from == options_.self) {
    ++stats_.rx_non_member;
    return;
  }
  if (f.fields.sender != from) {
    ++stats_.rx_sender_mismatch;
    return;
  }
  if (f.fields.view_id != options_.view_id) {
    ++stats_.rx_wrong_view;
    return;
  }
  if (gone(from)) {
    ++stats_.rx_from_gone;
    return;
  }
  peers_[from].last_heard_ns = now_ns;
  switch (f.fields.type) {
    case wire::FrameType::kData: on_data(from, f, now_ns); break;
    case wire::FrameType::kHeartbeat: on_heartbeat(from, f, now_ns); break;
    case wire::FrameType::kStatus: on_status(from, f); break;
    case wire::FrameType::kNack: on_nack(from, f); break;
    case wire::FrameType::kControl: ++stats_.rx_unexpected_type; break;
  }
}

bool DgramLog::log_size_matches(MemberId peer, uint64_t log_bytes) noexcept {
  // Once refused, always refused: a peer that named another size is misconfigured, whatever
  // its later frames say.
  if (log_bytes == capacity_ && replicas_[peer].fault == PeerFault::kNone) return true;
  // Its positions would map to other offsets: refuse its log and its reads of ours for good.
  replicas_[peer].fault = PeerFault::kLogSizeMismatch;
  ++stats_.rx_log_size_mismatch;
  return false;
}

void DgramLog::on_data(MemberId peer, const wire::FrameView& frame, uint64_t now_ns) noexcept {
  Replica& r = replicas_[peer];
  if (r.fault != PeerFault::kNone) {
    ++stats_.rx_log_size_mismatch;
    return;
  }
  const uint64_t len = frame.payload.size();
  if (len == 0) {
    ++stats_.rx_empty;
    return;
  }
  const uint64_t begin = frame.fields.position;
  // relaxed: stored by this thread, in LogReader::release().
  const uint64_t window_end = r.released.load(std::memory_order_relaxed) + capacity_;
  // Nothing at or past released + capacity: those offsets hold records the application may
  // still read. Written so that no sum can overflow, whatever the position.
  if (begin >= window_end || len > window_end - begin) {
    ++stats_.rx_beyond_window;
    return;
  }
  const uint64_t end = begin + len;
  const uint64_t contiguous = r.gaps.contiguous();
  switch (r.gaps.add(begin, end, now_ns)) {
    case GapTracker::AddResult::kDuplicate: ++stats_.rx_duplicate; return;
    case GapTracker::AddResult::kFull: ++stats_.rx_ranges_full; return;
    case GapTracker::AddResult::kNew: break;
  }
  // Never below the old contiguous position: the application may hold views there. Bytes
  // beyond it that we held already are rewritten with the same values, which is harmless.
  const uint64_t from = begin > contiguous ? begin : contiguous;
  r.copy_in(from, frame.payload.subspan(from - begin));
  ++stats_.rx_data_frames;
  stats_.rx_data_bytes += end - from;
}

void DgramLog::on_heartbeat(MemberId peer, const wire::FrameView& frame, uint64_t now_ns) noexcept {
  if (frame.payload.size() != kHeartbeatPayload) {
    ++stats_.rx_bad_payload;
    return;
  }
  if (!log_size_matches(peer, get_le64(frame.payload.data()))) return;
  Replica& r = replicas_[peer];
  // relaxed: stored by this thread, in LogReader::release().
  const uint64_t window_end = r.released.load(std::memory_order_relaxed) + capacity_;
  if (frame.fields.position > window_end) {
    ++stats_.rx_bad_position;
    return;
  }
  r.gaps.extend_known(frame.fields.position, now_ns);
  ++stats_.rx_heartbeats;
}

void DgramLog::on_status(MemberId peer, const wire::FrameView& frame) noexcept {
  if (frame.payload.size() != kStatusPayload) {
    ++stats_.rx_bad_payload;
    return;
  }
  if (!log_size_matches(peer, get_le64(frame.payload.data()))) return;
  const uint64_t released = frame.fields.position;
  const uint64_t received = get_le64(frame.payload.data() + 8);
  if (released > received || received > writer_.position()) {
    ++stats_.rx_bad_position;
    return;
  }
  PeerState& p = peers_[peer];
  // relaxed: only this thread stores it. Status frames may arrive out of order: keep the max.
  if (released > p.released.load(std::memory_order_relaxed)) {
    // release: pairs with the acquire load in LogWriter::min_reader_position().
    p.released.store(released, std::memory_order_release);
  }
  if (received > p.received) p.received = received;
  ++stats_.rx_status;
}

void DgramLog::on_nack(MemberId peer, const wire::FrameView& frame) noexcept {
  if (frame.payload.size() != kNackPayload) {
    ++stats_.rx_bad_payload;
    return;
  }
  uint64_t begin = frame.fields.position;
  uint64_t end = get_le64(frame.payload.data());
  if (end <= begin || end > writer_.position()) {
    ++stats_.rx_bad_position;
    return;
  }
  if (end > sent_) end = sent_;
  if (begin >= end) {
    ++stats_.rx_nack_unsent;
    return;
  }
  // relaxed: stored by this thread in on_status(). Below its released position the peer has
  // everything, and the ring may already hold newer bytes there.
  const uint64_t released = peers_[peer].released.load(std::memory_order_relaxed);
  if (begin < released) begin = released;
  if (begin >= end) {
    ++stats_.rx_nack_stale;
    return;
  }
  // A NACK sent again for a range still queued, or overlapping it, extends that entry.
  for (uint32_t i = repair_head_; i != repair_tail_; ++i) {
    Repair& q = repairs_[i & (kMaxRepairs - 1)];
    if (q.peer == peer && begin <= q.end && end >= q.next) {
      if (begin < q.next) q.next = begin;
      if (end > q.end) q.end = end;
      ++stats_.rx_nacks;
      return;
    }
  }
  if (repair_tail_ - repair_head_ == kMaxRepairs) {
    ++stats_.rx_nack_dropped;  // the peer NACKs again after its timeout
    return;
  }
  repairs_[repair_tail_++ & (kMaxRepairs - 1)] = Repair{peer, begin, end};
  ++stats_.rx_nacks;
}

void DgramLog::declare_gone(MemberId peer) noexcept {
  COHORT_ASSERT(peer < options_.members);
  if (peer == options_.self || gone(peer)) return;
  live_ &= ~(1u << peer);
  writer_.remove_reader(peer);
  // Its queued repairs are skipped when they come up (prepare_repairs()).
}

std::span<const TxDatagram> DgramLog::prepare_tx(uint64_t now_ns) noexcept {
  tx_count_ = 0;
  slot_count_ = 0;
  if (live_ == 0) {
    sent_ = writer_.position();  // nobody to send to
    return {};
  }
  prepare_replica_frames(now_ns);
  prepare_repairs();
  prepare_new_data(now_ns);
  prepare_heartbeat(now_ns);
  return {tx_.get(), tx_count_};
}

void DgramLog::on_sent(uint32_t accepted) noexcept {
  COHORT_ASSERT(accepted <= tx_count_);
  if (accepted == tx_count_) return;
  stats_.tx_refused += tx_count_ - accepted;
  // New data goes out again from the first frame that did not reach every peer; peers that
  // did get it drop the copy as a duplicate. Control frames and repairs are simply lost: their
  // timers (status, heartbeat, the peer's NACK timeout) send them again.
  for (uint32_t k = accepted; k < tx_count_; ++k) {
    const SlotMeta& s = slot_meta_[tx_slot_[k]];
    if (s.kind == SlotKind::kNewData) {
      if (s.position < sent_) sent_ = s.position;
      break;
    }
  }
}

void DgramLog::prepare_replica_frames(uint64_t now_ns) noexcept {
  const DgramTimers& t = options_.timers;
  uint32_t nack_budget = kMaxNacksPerFlush;
  ByteRange holes[kMaxNacksPerPeer];
  std::byte payload[kStatusPayload];
  for (uint32_t bits = live_; bits != 0; bits &= bits - 1) {
    const auto m = static_cast<MemberId>(std::countr_zero(bits));
    Replica& r = replicas_[m];
    if (r.fault != PeerFault::kNone) continue;
    const uint32_t max = nack_budget < kMaxNacksPerPeer ? nack_budget : kMaxNacksPerPeer;
    const uint32_t n = r.gaps.due_nacks(now_ns, t.nack_delay_ns, t.nack_timeout_ns, holes, max);
    nack_budget -= n;
    for (uint32_t k = 0; k < n; ++k) {
      put_le64(payload, holes[k].end);
      add_tx(m, build_control(wire::FrameType::kNack, holes[k].begin, {payload, kNackPayload}));
      ++stats_.tx_nacks;
    }
    // relaxed: stored by this thread, in LogReader::release().
    const uint64_t released = r.released.load(std::memory_order_relaxed);
    const bool due = r.status_sent_ns == GapTracker::kNever ||
                     now_ns >= r.status_sent_ns + t.status_interval_ns ||
                     released - r.status_sent_released >= capacity_ / 4;
    if (!due) continue;
    put_le64(payload, capacity_);
    put_le64(payload + 8, r.gaps.contiguous());
    add_tx(m, build_control(wire::FrameType::kStatus, released, {payload, kStatusPayload}));
    r.status_sent_ns = now_ns;
    r.status_sent_released = released;
    ++stats_.tx_status;
  }
}

void DgramLog::prepare_repairs() noexcept {
  uint32_t budget = kRepairSlotsPerFlush;
  while (repair_head_ != repair_tail_ && budget > 0) {
    Repair& q = repairs_[repair_head_ & (kMaxRepairs - 1)];
    // relaxed: stored by this thread in on_status(). The peer has what is below it, and the
    // ring may hold newer bytes there by now.
    const uint64_t released = peers_[q.peer].released.load(std::memory_order_relaxed);
    if (q.next < released) q.next = released;
    const uint64_t end = q.end < sent_ ? q.end : sent_;
    if (gone(q.peer) || q.next >= end) {
      ++repair_head_;
      continue;
    }
    const uint64_t chunk = chunk_end(q.next, end);
    add_tx(q.peer, build_data(q.next, chunk, SlotKind::kRepair));
    ++stats_.tx_repair_frames;
    stats_.tx_repair_bytes += chunk - q.next;
    q.next = chunk;
    --budget;
  }
}

void DgramLog::prepare_new_data(uint64_t now_ns) noexcept {
  const uint64_t tail = writer_.position();
  bool sent_any = false;
  while (sent_ < tail && slot_count_ < kTxSlots - 1) {  // the last slot is the heartbeat's
    const uint64_t end = chunk_end(sent_, tail);
    add_tx_all(build_data(sent_, end, SlotKind::kNewData));
    ++stats_.tx_data_frames;
    stats_.tx_data_bytes += end - sent_;
    sent_ = end;
    sent_any = true;
  }
  if (sent_any) {
    // Data tells the peers how far we are; the first heartbeat after it goes out soon, in case
    // the last frames were lost, and one goes out at least every heartbeat_max_ns regardless.
    const DgramTimers& t = options_.timers;
    heartbeat_gap_ns_ = t.heartbeat_min_ns;
    const uint64_t soon = now_ns + t.heartbeat_min_ns;
    const uint64_t latest = last_heartbeat_ns_ + t.heartbeat_max_ns;
    next_heartbeat_ns_ = soon < latest ? soon : latest;
  }
}

void DgramLog::prepare_heartbeat(uint64_t now_ns) noexcept {
  if (now_ns < next_heartbeat_ns_) return;
  std::byte payload[kHeartbeatPayload];
  put_le64(payload, capacity_);
  add_tx_all(build_control(wire::FrameType::kHeartbeat, sent_, payload));
  ++stats_.tx_heartbeats;
  last_heartbeat_ns_ = now_ns;
  next_heartbeat_ns_ = now_ns + heartbeat_gap_ns_;
  // Idle: back off, so a quiet group costs little.
  const uint64_t doubled = heartbeat_gap_ns_ * 2;
  heartbeat_gap_ns_ =
      doubled < options_.timers.heartbeat_max_ns ? doubled : options_.timers.heartbeat_max_ns;
}

std::byte* DgramLog::slot_bytes(uint32_t slot) noexcept {
  return slot_mem_.get() + static_cast<size_t>(slot) * slot_stride_;
}

uint32_t DgramLog::build_control(wire::FrameType type, uint64_t position,
                                 std::span<const std::byte> payload) noexcept {
  // Control frames always find a slot: a status per peer, the NACKs and the repairs leave room
  // for new data, and new data leaves the last slot for the heartbeat.
  static_assert((kMaxMembers - 1) + kMaxNacksPerFlush + kRepairSlotsPerFlush + 1 < kTxSlots);
  COHORT_ASSERT(slot_count_ < kTxSlots);
  const uint32_t slot = slot_count_++;
  const wire::FrameFields fields{type,          0,       options_.group_id, options_.view_id,
                                 options_.self, position};
  const std::size_t size =
      wire::encode_frame(fields, payload, {slot_bytes(slot), wire::frame_size(payload.size())});
  slot_meta_[slot] = SlotMeta{SlotKind::kControl, static_cast<uint32_t>(size), position};
  return slot;
}

uint32_t DgramLog::build_data(uint64_t position, uint64_t end, SlotKind kind) noexcept {
  COHORT_ASSERT(slot_count_ < kTxSlots && position < end);
  COHORT_DASSERT(end - position <= options_.mtu_payload);
  const uint32_t slot = slot_count_++;
  std::byte* p = slot_bytes(slot);
  const auto len = static_cast<size_t>(end - position);
  // One copy out of the ring: the CRC covers header and payload in one buffer.
  std::memcpy(p + wire::kFrameHeaderSize, log_mem_.get() + (position & (capacity_ - 1)), len);
  // The fragment flags stay 0: a DATA frame here is a byte range of the log, not a record.
  const wire::FrameFields fields{
      wire::FrameType::kData, 0, options_.group_id, options_.view_id, options_.self, position};
  wire::seal_frame({p, wire::frame_size(len)}, fields);
  slot_meta_[slot] = SlotMeta{kind, static_cast<uint32_t>(wire::frame_size(len)), position};
  return slot;
}

// The end of the frame that starts at `position`: at most mtu_payload bytes, never past
// `limit`, never across the end of the ring (so it is one contiguous copy at both ends).
uint64_t DgramLog::chunk_end(uint64_t position, uint64_t limit) const noexcept {
  uint64_t end = position + options_.mtu_payload;
  const uint64_t ring_end = (position | (capacity_ - 1)) + 1;
  if (end > ring_end) end = ring_end;
  return end < limit ? end : limit;
}

void DgramLog::add_tx(MemberId to, uint32_t slot) noexcept {
  COHORT_ASSERT(tx_count_ < kMaxTxDatagrams);
  tx_[tx_count_] = TxDatagram{to, {slot_bytes(slot), slot_meta_[slot].size}};
  tx_slot_[tx_count_] = static_cast<uint16_t>(slot);
  ++tx_count_;
}

void DgramLog::add_tx_all(uint32_t slot) noexcept {
  for (uint32_t bits = live_; bits != 0; bits &= bits - 1) {
    add_tx(static_cast<MemberId>(std::countr_zero(bits)), slot);
  }
}

}  // namespace cohort::transport::dgram
