// Setup of a DgramLog: option checks, and every ring and buffer allocated (and touched) once,
// so the data path allocates nothing. Control path only.
#include <string>

#include "transport/dgram/dgram_log.h"

namespace cohort::transport::dgram {

namespace {

bool is_power_of_two(uint64_t n) {
  return n != 0 && (n & (n - 1)) == 0;
}

Status validate(const DgramOptions& o) {
  if (o.members < 1 || o.members > kMaxMembers || o.self >= o.members) {
    return Error(Errc::kInvalidArgument,
                 "dgram: member " + std::to_string(o.self) + " of " + std::to_string(o.members) +
                     " is not possible; members must be 1.." + std::to_string(kMaxMembers) +
                     " and the member id below it");
  }
  if (!is_power_of_two(o.log_bytes) || o.log_bytes < kMinLogBytes || o.log_bytes > kMaxLogBytes) {
    return Error(Errc::kInvalidArgument, "dgram: log size " + std::to_string(o.log_bytes) +
                                             " must be a power of two from " +
                                             std::to_string(kMinLogBytes) + " to " +
                                             std::to_string(kMaxLogBytes) +
                                             "; every member of the group must use the same one");
  }
  if (o.mtu_payload < kMinMtuPayload || o.mtu_payload > kMaxMtuPayload ||
      o.mtu_payload > o.log_bytes / 4) {
    return Error(Errc::kInvalidArgument,
                 "dgram: mtu payload " + std::to_string(o.mtu_payload) + " must be from " +
                     std::to_string(kMinMtuPayload) + " to " + std::to_string(kMaxMtuPayload) +
                     " bytes and at most a quarter of the log (" + std::to_string(o.log_bytes) +
                     "); 1400 suits a 1500-byte Ethernet MTU");
  }
  const DgramTimers& t = o.timers;
  if (t.nack_timeout_ns == 0 || t.status_interval_ns == 0 || t.heartbeat_min_ns == 0 ||
      t.heartbeat_min_ns > t.heartbeat_max_ns) {
    return Error(Errc::kInvalidArgument,
                 "dgram: timers must be positive and heartbeat_min_ns (" +
                     std::to_string(t.heartbeat_min_ns) + ") at most heartbeat_max_ns (" +
                     std::to_string(t.heartbeat_max_ns) + "); check the transport's timer options");
  }
  return {};
}

}  // namespace

uint64_t group_id_of(const char* group) noexcept {
  uint64_t h = 0xcbf29ce484222325ull;
  for (const char* p = group; *p != '\0'; ++p) {
    h ^= static_cast<unsigned char>(*p);
    h *= 0x100000001b3ull;
  }
  return h;
}

const char* peer_fault_name(PeerFault fault) noexcept {
  switch (fault) {
    case PeerFault::kNone: return "none";
    case PeerFault::kLogSizeMismatch: return "log size differs from ours (check log_bytes)";
  }
  return "unknown";
}

DgramLog::DgramLog(const DgramOptions& options) noexcept
    : options_(options), capacity_(options.log_bytes) {}

DgramLog::~DgramLog() = default;

Result<std::unique_ptr<DgramLog>> DgramLog::create(const DgramOptions& options) {
  COHORT_TRY(validate(options));
  std::unique_ptr<DgramLog> d(new DgramLog(options));
  const uint64_t cap = options.log_bytes;
  const uint32_t members = options.members;

  // Value-initialised, so every page is touched now rather than on the data path.
  d->log_mem_.reset(new std::byte[cap]());
  d->writer_ = LogWriter(d->log_mem_.get(), cap, nullptr);
  d->heartbeat_gap_ns_ = options.timers.heartbeat_min_ns;

  // Replica k belongs to peer k, or k + 1 for the peers above self; self has none.
  d->replica_mem_.reset(new std::byte[cap * (members - 1)]());
  d->replicas_.reset(new Replica[members]);
  for (MemberId m = 0; m < members; ++m) {
    if (m == options.self) continue;
    d->live_ |= 1u << m;
    Replica& r = d->replicas_[m];
    const uint64_t index = m < options.self ? m : m - 1;
    r.mem = d->replica_mem_.get() + index * cap;
    r.capacity = cap;
    r.sub = ReplicaSubscription(r.mem, cap, &r.released, r.gaps.contiguous_word());
    // A peer that has not sent a status yet counts as position 0: we cannot lap it.
    d->writer_.expect_reader(m);
    d->writer_.attach_reader(m, &d->peers_[m].released);
  }

  d->slot_stride_ = static_cast<uint32_t>(
      align_up(wire::frame_size(options.mtu_payload), static_cast<uint64_t>(kCacheLine)));
  d->slot_mem_.reset(new std::byte[static_cast<size_t>(d->slot_stride_) * kTxSlots]());
  d->tx_.reset(new TxDatagram[kMaxTxDatagrams]());
  d->tx_slot_.reset(new uint16_t[kMaxTxDatagrams]());
  return d;
}

}  // namespace cohort::transport::dgram
