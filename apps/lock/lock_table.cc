// The lock table's rules (lock_table.h) and its snapshot bytes.
#include "apps/lock/lock_table.h"

#include <algorithm>
#include <cstring>

#include "runtime/assert.h"

namespace cohort::lock {
namespace {

// Snapshot: magic, fence, lock count, then per lock (name order): name length, name, the lock's
// fence, queue length, held count, then per request: node, incarnation, request, fence, mode.
constexpr uint32_t kSnapshotMagic = 0x31544c43;  // "CLT1"

class Writer {
 public:
  explicit Writer(std::vector<std::byte>* out) : out_(out) {}
  void u8(uint8_t v) { out_->push_back(std::byte{v}); }
  void u32(uint32_t v) {
    for (int i = 0; i < 4; ++i) out_->push_back(static_cast<std::byte>(v >> (8 * i)));
  }
  void u64(uint64_t v) {
    for (int i = 0; i < 8; ++i) out_->push_back(static_cast<std::byte>(v >> (8 * i)));
  }
  void bytes(std::string_view s) {
    for (char c : s) out_->push_back(static_cast<std::byte>(c));
  }

 private:
  std::vector<std::byte>* out_;
};

class Reader {
 public:
  explicit Reader(std::span<const std::byte> in) : in_(in) {}
  bool u8(uint8_t* v) { return fixed(v, 1); }
  bool u32(uint32_t* v) { return fixed(v, 4); }
  bool u64(uint64_t* v) { return fixed(v, 8); }
  bool bytes(size_t n, std::string* s) {
    if (in_.size() - at_ < n) return false;
    s->assign(reinterpret_cast<const char*>(in_.data() + at_), n);
    at_ += n;
    return true;
  }
  bool done() const noexcept { return at_ == in_.size(); }

 private:
  template <typename T>
  bool fixed(T* v, size_t n) {
    if (in_.size() - at_ < n) return false;
    uint64_t x = 0;
    for (size_t i = 0; i < n; ++i) x |= uint64_t{static_cast<uint8_t>(in_[at_ + i])} << (8 * i);
    *v = static_cast<T>(x);
    at_ += n;
    return true;
  }
  std::span<const std::byte> in_;
  size_t at_ = 0;
};

}  // namespace

LockName LockName::of(std::string_view name) noexcept {
  LockName n;
  n.size = static_cast<uint8_t>(std::min(name.size(), n.bytes.size()));
  std::memcpy(n.bytes.data(), name.data(), n.size);
  return n;
}

const char* event_kind_name(EventKind kind) noexcept {
  switch (kind) {
    case EventKind::kGranted: return "granted";
    case EventKind::kReleased: return "released";
    case EventKind::kWithdrawn: return "withdrawn";
    case EventKind::kTryFailed: return "try_failed";
    case EventKind::kDropped: return "dropped";
    case EventKind::kRefused: return "refused";
  }
  return "?";
}

ApplyResult LockTable::apply(std::span<const std::byte> payload, MemberUid sender, Op* decoded) {
  events_.clear();
  Op op;
  switch (decode_op(payload, &op)) {
    case DecodeResult::kNotOp: return ApplyResult::kNotOp;
    case DecodeResult::kMalformed: counters_.ops_malformed++; return ApplyResult::kMalformed;
    case DecodeResult::kOk: break;
  }
  apply(op, sender);
  if (decoded != nullptr) *decoded = op;
  return ApplyResult::kApplied;
}

void LockTable::apply(const Op& op, MemberUid sender) {
  events_.clear();
  COHORT_ASSERT(valid_name(op.name) && op.request != 0);
  counters_.ops_applied++;
  if (op.kind == OpKind::kAcquire) {
    acquire(op, sender);
  } else {
    remove(op, sender);
  }
}

bool LockTable::compatible(const Lock& lock, LockMode mode) noexcept {
  if (lock.held == 0) return true;
  // Holders are all shared or one exclusive: the first tells which.
  return mode == LockMode::kShared && lock.queue[0].mode == LockMode::kShared;
}

void LockTable::acquire(const Op& op, MemberUid sender) {
  const Entry e{sender, op.request, 0, op.mode};
  auto it = locks_.find(op.name);
  if (it == locks_.end()) {
    if (locks_.size() >= limits_.max_locks) {
      counters_.refused++;
      emit(EventKind::kRefused, op.name, e, false);
      return;
    }
    it = locks_.emplace(std::string(op.name), Lock{}).first;
  }
  Lock& lock = it->second;
  for (const Entry& q : lock.queue) {
    if (q.owner == sender && q.request == op.request) {
      counters_.duplicates++;
      return;
    }
  }
  const bool at_once = lock.held == lock.queue.size() && compatible(lock, op.mode);
  if (op.try_only && !at_once) {
    emit(EventKind::kTryFailed, op.name, e, false);
  } else if (lock.queue.size() >= limits_.max_queue) {
    counters_.refused++;
    emit(EventKind::kRefused, op.name, e, false);
  } else {
    lock.queue.push_back(e);
    grant_onward(it->first, lock);
  }
  if (lock.queue.empty()) locks_.erase(it);
}

void LockTable::remove(const Op& op, MemberUid sender) {
  auto it = locks_.find(op.name);
  if (it == locks_.end()) {
    counters_.stale++;
    return;
  }
  Lock& lock = it->second;
  for (size_t i = 0; i < lock.queue.size(); ++i) {
    const Entry e = lock.queue[i];
    if (!(e.owner == sender) || e.request != op.request) continue;
    const bool was_held = i < lock.held;
    lock.queue.erase(lock.queue.begin() + static_cast<std::ptrdiff_t>(i));
    if (was_held) lock.held--;
    emit(op.kind == OpKind::kRelease ? EventKind::kReleased : EventKind::kWithdrawn, op.name, e,
         was_held);
    grant_onward(it->first, lock);
    if (lock.queue.empty()) locks_.erase(it);
    return;
  }
  counters_.stale++;
}

void LockTable::on_view(std::span<const MemberUid> members) {
  events_.clear();
  const auto in_view = [members](MemberUid u) {
    return std::find(members.begin(), members.end(), u) != members.end();
  };
  for (auto it = locks_.begin(); it != locks_.end();) {
    Lock& lock = it->second;
    uint32_t held_left = 0;
    size_t kept = 0;
    for (size_t i = 0; i < lock.queue.size(); ++i) {
      const Entry e = lock.queue[i];
      const bool was_held = i < lock.held;
      if (in_view(e.owner)) {
        lock.queue[kept++] = e;
        held_left += was_held ? 1 : 0;
        continue;
      }
      counters_.dropped_by_view++;
      emit(EventKind::kDropped, it->first, e, was_held);
    }
    lock.queue.resize(kept);
    lock.held = held_left;
    grant_onward(it->first, lock);
    it = lock.queue.empty() ? locks_.erase(it) : std::next(it);
  }
}

void LockTable::grant_onward(const std::string& name, Lock& lock) {
  while (lock.held < lock.queue.size()) {
    Entry& e = lock.queue[lock.held];
    if (!compatible(lock, e.mode)) break;
    e.fence = ++fence_;
    lock.fence = e.fence;
    lock.held++;
    counters_.grants++;
    emit(EventKind::kGranted, name, e, false);
  }
  // Holders are a prefix, and either all shared or one exclusive.
  COHORT_DASSERT(lock.held <= 1 || lock.queue[0].mode == LockMode::kShared);
}

void LockTable::emit(EventKind kind, std::string_view name, const Entry& e, bool was_held) {
  TableEvent ev;
  ev.kind = kind;
  ev.name = LockName::of(name);
  ev.owner = e.owner;
  ev.request = e.request;
  ev.fence = e.fence;
  ev.mode = e.mode;
  ev.was_held = was_held;
  events_.push_back(ev);
}

LockInfo LockTable::query(std::string_view name) const {
  LockInfo info;
  auto it = locks_.find(name);
  if (it == locks_.end()) return info;
  const Lock& lock = it->second;
  for (uint32_t i = 0; i < lock.held; ++i) {
    const Entry& e = lock.queue[i];
    info.holders.push_back(LockHolder{e.owner, e.request, e.fence, e.mode});
  }
  info.waiting = static_cast<uint32_t>(lock.queue.size() - lock.held);
  info.fence = lock.fence;
  return info;
}

// --- snapshot ----------------------------------------------------------------------------------

std::vector<std::byte> LockTable::snapshot() const {
  std::vector<std::byte> out;
  Writer w(&out);
  w.u32(kSnapshotMagic);
  w.u64(fence_);
  w.u32(static_cast<uint32_t>(locks_.size()));
  for (const auto& [name, lock] : locks_) {
    w.u8(static_cast<uint8_t>(name.size()));
    w.bytes(name);
    w.u64(lock.fence);
    w.u32(static_cast<uint32_t>(lock.queue.size()));
    w.u32(lock.held);
    for (const Entry& e : lock.queue) {
      w.u32(e.owner.node);
      w.u32(e.owner.incarnation);
      w.u64(e.request);
      w.u64(e.fence);
      w.u8(static_cast<uint8_t>(e.mode));
    }
  }
  return out;
}

bool LockTable::restore(std::span<const std::byte> bytes) {
  events_.clear();
  Locks locks;
  uint64_t fence = 0;
  Reader r(bytes);
  uint32_t magic = 0, count = 0;
  bool ok = r.u32(&magic) && magic == kSnapshotMagic && r.u64(&fence) && r.u32(&count) &&
            count <= limits_.max_locks;
  std::string prev;
  for (uint32_t i = 0; ok && i < count; ++i) {
    uint8_t len = 0;
    std::string name;
    Lock lock;
    uint32_t qlen = 0;
    ok = r.u8(&len) && len > 0 && len <= kMaxLockNameBytes && r.bytes(len, &name) && (i == 0 || prev < name) &&
         r.u64(&lock.fence) && lock.fence <= fence && r.u32(&qlen) && qlen > 0 &&
         qlen <= limits_.max_queue && r.u32(&lock.held) && lock.held <= qlen;
    uint64_t last_granted = 0;
    for (uint32_t q = 0; ok && q < qlen; ++q) {
      Entry e;
      uint8_t mode = 0;
      ok = r.u32(&e.owner.node) && r.u32(&e.owner.incarnation) && r.u64(&e.request) &&
           e.request != 0 && r.u64(&e.fence) && r.u8(&mode) && mode <= 1;
      e.mode = static_cast<LockMode>(mode);
      if (!ok) break;
      if (q < lock.held) {  // granted: tokens increase along the prefix, up to the lock's
        ok = e.fence > last_granted && e.fence <= lock.fence;
        last_granted = e.fence;
      } else {
        ok = e.fence == 0;
      }
      for (const Entry& o : lock.queue) ok = ok && !(o.owner == e.owner && o.request == e.request);
      lock.queue.push_back(e);
    }
    // Holders: all shared, or one exclusive; and the first waiter could not have been granted.
    if (ok && lock.held > 1) {
      for (uint32_t q = 0; q < lock.held; ++q) ok = ok && lock.queue[q].mode == LockMode::kShared;
    }
    if (ok && lock.held < qlen) ok = lock.held > 0 && !compatible(lock, lock.queue[lock.held].mode);
    if (ok) {
      prev = name;
      locks.emplace(std::move(name), std::move(lock));
    }
  }
  ok = ok && r.done();
  if (!ok) {
    counters_.restores_malformed++;
    locks_.clear();
    fence_ = 0;
    return false;
  }
  locks_ = std::move(locks);
  fence_ = fence;
  return true;
}

}  // namespace cohort::lock
