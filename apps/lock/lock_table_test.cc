// The lock table's rules, its op bytes and its snapshot (apps/lock/NOTES.md).
#include "apps/lock/lock_table.h"

#include <gtest/gtest.h>

#include <cstring>
#include <random>

namespace cohort::lock {
namespace {

const MemberUid kA{0, 1}, kB{1, 1}, kC{2, 1}, kD{3, 1};

std::vector<std::byte> encode(OpKind kind, std::string_view name, uint64_t request,
                              LockMode mode = LockMode::kExclusive, bool try_only = false) {
  Op op;
  op.kind = kind;
  op.name = name;
  op.request = request;
  op.mode = mode;
  op.try_only = try_only;
  EncodedOp e;
  EXPECT_TRUE(encode_op(op, &e));
  return {e.bytes.begin(), e.bytes.begin() + static_cast<std::ptrdiff_t>(e.size)};
}

struct Table {
  LockTable t;
  std::vector<TableEvent> last;

  ApplyResult op(MemberUid who, OpKind kind, std::string_view name, uint64_t request,
                 LockMode mode = LockMode::kExclusive, bool try_only = false) {
    const ApplyResult r = t.apply(encode(kind, name, request, mode, try_only), who);
    last.assign(t.events().begin(), t.events().end());
    return r;
  }
  void acquire(MemberUid who, std::string_view name, uint64_t request,
               LockMode mode = LockMode::kExclusive) {
    EXPECT_EQ(op(who, OpKind::kAcquire, name, request, mode), ApplyResult::kApplied);
  }
  void release(MemberUid who, std::string_view name, uint64_t request) {
    EXPECT_EQ(op(who, OpKind::kRelease, name, request), ApplyResult::kApplied);
  }
  void view(std::vector<MemberUid> members) {
    t.on_view(members);
    last.assign(t.events().begin(), t.events().end());
  }
  std::vector<MemberUid> holders(std::string_view name) const {
    std::vector<MemberUid> out;
    for (const LockHolder& h : t.query(name).holders) out.push_back(h.member);
    return out;
  }
};

// --- ops ---------------------------------------------------------------------------------------

TEST(LockOp, RoundTrips) {
  for (OpKind kind : {OpKind::kAcquire, OpKind::kRelease, OpKind::kWithdraw}) {
    const auto bytes = encode(kind, "printer", 0x0102030405060708ULL,
                              kind == OpKind::kAcquire ? LockMode::kShared : LockMode::kExclusive,
                              kind == OpKind::kAcquire);
    ASSERT_EQ(bytes.size(), kOpHeaderBytes + 7);
    Op op;
    ASSERT_EQ(decode_op(bytes, &op), DecodeResult::kOk);
    EXPECT_EQ(op.kind, kind);
    EXPECT_EQ(op.name, "printer");
    EXPECT_EQ(op.request, 0x0102030405060708ULL);
    if (kind == OpKind::kAcquire) {
      EXPECT_EQ(op.mode, LockMode::kShared);
      EXPECT_TRUE(op.try_only);
    }
  }
}

TEST(LockOp, RefusesToEncodeBadOps) {
  Op op;
  EncodedOp e;
  op.request = 1;
  op.name = "";
  EXPECT_FALSE(encode_op(op, &e));
  const std::string long_name(kMaxLockNameBytes + 1, 'x');
  op.name = long_name;
  EXPECT_FALSE(encode_op(op, &e));
  op.name = std::string_view(long_name).substr(0, kMaxLockNameBytes);
  EXPECT_TRUE(encode_op(op, &e));
  op.request = 0;
  EXPECT_FALSE(encode_op(op, &e));
}

TEST(LockOp, DecodeChecksEveryField) {
  const auto good = encode(OpKind::kAcquire, "abc", 9);
  Op op;
  EXPECT_EQ(decode_op({}, &op), DecodeResult::kNotOp);
  const std::byte text[] = {std::byte{'h'}, std::byte{'i'}};
  EXPECT_EQ(decode_op(text, &op), DecodeResult::kNotOp);
  auto broken = [&](size_t at, uint8_t value) {
    auto b = good;
    b[at] = std::byte{value};
    return decode_op(b, &op);
  };
  EXPECT_EQ(broken(1, 0x00), DecodeResult::kNotOp);      // magic
  EXPECT_EQ(broken(2, 2), DecodeResult::kMalformed);     // version
  EXPECT_EQ(broken(3, 0), DecodeResult::kMalformed);     // kind
  EXPECT_EQ(broken(3, 4), DecodeResult::kMalformed);     // kind
  EXPECT_EQ(broken(4, 4), DecodeResult::kMalformed);     // unknown flag
  EXPECT_EQ(broken(5, 0), DecodeResult::kMalformed);     // empty name
  EXPECT_EQ(broken(5, 4), DecodeResult::kMalformed);     // length beyond the bytes
  EXPECT_EQ(broken(5, 2), DecodeResult::kMalformed);     // bytes beyond the length
  EXPECT_EQ(broken(5, 65), DecodeResult::kMalformed);    // name too long
  EXPECT_EQ(broken(6, 1), DecodeResult::kMalformed);     // reserved
  auto zero_request = good;
  for (int i = 8; i < 16; ++i) zero_request[i] = std::byte{0};
  EXPECT_EQ(decode_op(zero_request, &op), DecodeResult::kMalformed);
  auto release_with_flags = encode(OpKind::kRelease, "abc", 9);
  release_with_flags[4] = std::byte{kFlagShared};
  EXPECT_EQ(decode_op(release_with_flags, &op), DecodeResult::kMalformed);
  for (size_t n = 2; n < good.size(); ++n) {
    EXPECT_EQ(decode_op(std::span(good).first(n), &op), DecodeResult::kMalformed) << n;
  }
}

TEST(LockTable, MalformedOpsAreCountedAndIgnored) {
  Table t;
  auto bytes = encode(OpKind::kAcquire, "a", 1);
  bytes[2] = std::byte{7};
  EXPECT_EQ(t.t.apply(bytes, kA), ApplyResult::kMalformed);
  const std::byte other[] = {std::byte{1}, std::byte{2}, std::byte{3}};
  EXPECT_EQ(t.t.apply(other, kA), ApplyResult::kNotOp);
  EXPECT_EQ(t.t.counters().ops_malformed, 1U);
  EXPECT_EQ(t.t.counters().ops_applied, 0U);
  EXPECT_EQ(t.t.live_locks(), 0U);
}

// --- exclusive locks ---------------------------------------------------------------------------

TEST(LockTable, ReleasePassesTheLockToTheOldestRequest) {
  Table t;
  t.acquire(kA, "x", 1);
  ASSERT_EQ(t.last.size(), 1U);
  EXPECT_EQ(t.last[0].kind, EventKind::kGranted);
  EXPECT_EQ(t.last[0].fence, 1U);
  t.acquire(kC, "x", 1);
  t.acquire(kB, "x", 1);
  EXPECT_TRUE(t.last.empty());
  LockInfo info = t.t.query("x");
  EXPECT_EQ(info.waiting, 2U);
  EXPECT_EQ(info.fence, 1U);
  t.release(kA, "x", 1);
  ASSERT_EQ(t.last.size(), 2U);
  EXPECT_EQ(t.last[0].kind, EventKind::kReleased);
  EXPECT_TRUE(t.last[0].was_held);
  EXPECT_EQ(t.last[1].kind, EventKind::kGranted);
  EXPECT_EQ(t.last[1].owner, kC);
  EXPECT_EQ(t.last[1].fence, 2U);
  t.release(kC, "x", 1);
  EXPECT_EQ(t.holders("x"), std::vector<MemberUid>{kB});
  EXPECT_EQ(t.t.query("x").fence, 3U);
  t.release(kB, "x", 1);
  EXPECT_EQ(t.t.live_locks(), 0U);
  EXPECT_EQ(t.t.query("x").fence, 0U);  // forgotten when idle...
  t.acquire(kD, "x", 7);
  EXPECT_EQ(t.last[0].fence, 4U);  // ...but its tokens still grow
}

TEST(LockTable, LocksAreIndependentButShareTheTokenCounter) {
  Table t;
  t.acquire(kA, "x", 1);
  t.acquire(kB, "y", 1);
  EXPECT_EQ(t.last[0].fence, 2U);
  EXPECT_EQ(t.holders("x"), std::vector<MemberUid>{kA});
  EXPECT_EQ(t.holders("y"), std::vector<MemberUid>{kB});
}

TEST(LockTable, WithdrawRemovesAWaiterOrAHolder) {
  Table t;
  t.acquire(kA, "x", 1);
  t.acquire(kB, "x", 2);
  t.acquire(kC, "x", 3);
  EXPECT_EQ(t.op(kB, OpKind::kWithdraw, "x", 2), ApplyResult::kApplied);
  ASSERT_EQ(t.last.size(), 1U);
  EXPECT_EQ(t.last[0].kind, EventKind::kWithdrawn);
  EXPECT_FALSE(t.last[0].was_held);
  EXPECT_EQ(t.op(kA, OpKind::kWithdraw, "x", 1), ApplyResult::kApplied);
  ASSERT_EQ(t.last.size(), 2U);
  EXPECT_TRUE(t.last[0].was_held);
  EXPECT_EQ(t.last[1].owner, kC);
}

TEST(LockTable, OnlyTheOwnerCanReleaseAndStaleOpsAreCounted) {
  Table t;
  t.acquire(kA, "x", 1);
  t.release(kB, "x", 1);  // same request number, other member: not A's request
  EXPECT_TRUE(t.last.empty());
  EXPECT_EQ(t.holders("x"), std::vector<MemberUid>{kA});
  t.release(kA, "nope", 1);
  t.release(kA, "x", 2);
  EXPECT_EQ(t.t.counters().stale, 3U);
  t.acquire(kA, "x", 1);  // a duplicate
  EXPECT_EQ(t.t.counters().duplicates, 1U);
  EXPECT_EQ(t.t.query("x").waiting, 0U);
}

TEST(LockTable, TryAcquireIsGrantedAtOnceOrNeverQueued) {
  Table t;
  t.op(kA, OpKind::kAcquire, "x", 1, LockMode::kExclusive, true);
  ASSERT_EQ(t.last.size(), 1U);
  EXPECT_EQ(t.last[0].kind, EventKind::kGranted);
  t.op(kB, OpKind::kAcquire, "x", 1, LockMode::kExclusive, true);
  ASSERT_EQ(t.last.size(), 1U);
  EXPECT_EQ(t.last[0].kind, EventKind::kTryFailed);
  EXPECT_EQ(t.t.query("x").waiting, 0U);
  t.op(kB, OpKind::kAcquire, "y", 1, LockMode::kShared, true);
  t.op(kC, OpKind::kAcquire, "y", 1, LockMode::kShared, true);
  EXPECT_EQ(t.last[0].kind, EventKind::kGranted);
  t.acquire(kD, "y", 1);  // an exclusive waiter: shared tries fail behind it
  t.op(kA, OpKind::kAcquire, "y", 2, LockMode::kShared, true);
  EXPECT_EQ(t.last[0].kind, EventKind::kTryFailed);
  // A try that fails on an idle lock's name leaves nothing behind.
  EXPECT_EQ(t.t.live_locks(), 2U);
}

// --- shared locks ------------------------------------------------------------------------------

TEST(LockTable, SharedHoldersTogetherAndNoOvertakingOfAnExclusiveWaiter) {
  Table t;
  t.acquire(kA, "x", 1, LockMode::kShared);
  t.acquire(kB, "x", 1, LockMode::kShared);
  EXPECT_EQ(t.holders("x"), (std::vector<MemberUid>{kA, kB}));
  t.acquire(kC, "x", 1, LockMode::kExclusive);
  t.acquire(kD, "x", 1, LockMode::kShared);  // waits behind C although the lock is shared now
  EXPECT_EQ(t.t.query("x").waiting, 2U);
  t.release(kA, "x", 1);
  EXPECT_TRUE(t.last.size() == 1 && t.last[0].kind == EventKind::kReleased);
  t.release(kB, "x", 1);
  EXPECT_EQ(t.holders("x"), std::vector<MemberUid>{kC});
  t.release(kC, "x", 1);
  EXPECT_EQ(t.holders("x"), std::vector<MemberUid>{kD});
  const LockInfo info = t.t.query("x");
  EXPECT_EQ(info.holders[0].fence, 4U);
}

TEST(LockTable, ConsecutiveSharedWaitersAreGrantedTogether) {
  Table t;
  t.acquire(kA, "x", 1);
  t.acquire(kB, "x", 1, LockMode::kShared);
  t.acquire(kC, "x", 1, LockMode::kShared);
  t.acquire(kD, "x", 1);
  t.release(kA, "x", 1);
  ASSERT_EQ(t.last.size(), 3U);
  EXPECT_EQ(t.last[1].owner, kB);
  EXPECT_EQ(t.last[2].owner, kC);
  EXPECT_LT(t.last[1].fence, t.last[2].fence);
  EXPECT_EQ(t.holders("x"), (std::vector<MemberUid>{kB, kC}));
}

// --- views -------------------------------------------------------------------------------------

TEST(LockTable, AViewChangeDropsDepartedMembersAndGrantsOnwardAtOnce) {
  Table t;
  t.acquire(kA, "x", 1);
  t.acquire(kB, "x", 1);
  t.acquire(kC, "x", 1);
  t.acquire(kB, "y", 2);
  t.acquire(kA, "y", 2);
  t.view({kC, kD});  // A and B left
  // x: A (holder) and B dropped, C granted; y: B (holder) and A dropped, y forgotten.
  std::vector<std::pair<EventKind, MemberUid>> seen;
  for (const TableEvent& e : t.last) seen.emplace_back(e.kind, e.owner);
  const std::vector<std::pair<EventKind, MemberUid>> want = {
      {EventKind::kDropped, kA}, {EventKind::kDropped, kB}, {EventKind::kGranted, kC},
      {EventKind::kDropped, kB}, {EventKind::kDropped, kA}};
  EXPECT_EQ(seen, want);
  EXPECT_TRUE(t.last[0].was_held);
  EXPECT_FALSE(t.last[1].was_held);
  EXPECT_EQ(t.holders("x"), std::vector<MemberUid>{kC});
  EXPECT_EQ(t.t.live_locks(), 1U);
  EXPECT_EQ(t.t.counters().dropped_by_view, 4U);
}

TEST(LockTable, ADepartedSharedHolderLetsTheExclusiveWaiterIn) {
  Table t;
  t.acquire(kA, "x", 1, LockMode::kShared);
  t.acquire(kB, "x", 1, LockMode::kShared);
  t.acquire(kC, "x", 1);
  t.view({kB, kC});
  EXPECT_EQ(t.holders("x"), std::vector<MemberUid>{kB});
  t.view({kC});
  EXPECT_EQ(t.holders("x"), std::vector<MemberUid>{kC});
}

// --- limits ------------------------------------------------------------------------------------

TEST(LockTable, LimitsRefuseAlikeEverywhere) {
  LockTable::Limits limits;
  limits.max_locks = 2;
  limits.max_queue = 2;
  LockTable t(limits);
  ASSERT_EQ(t.apply(encode(OpKind::kAcquire, "a", 1), kA), ApplyResult::kApplied);
  ASSERT_EQ(t.apply(encode(OpKind::kAcquire, "b", 1), kA), ApplyResult::kApplied);
  ASSERT_EQ(t.apply(encode(OpKind::kAcquire, "c", 1), kA), ApplyResult::kApplied);
  ASSERT_EQ(t.events().size(), 1U);
  EXPECT_EQ(t.events()[0].kind, EventKind::kRefused);
  ASSERT_EQ(t.apply(encode(OpKind::kAcquire, "a", 1), kB), ApplyResult::kApplied);
  ASSERT_EQ(t.apply(encode(OpKind::kAcquire, "a", 1), kC), ApplyResult::kApplied);
  EXPECT_EQ(t.events()[0].kind, EventKind::kRefused);
  EXPECT_EQ(t.counters().refused, 2U);
}

// --- snapshots ---------------------------------------------------------------------------------

Table busy_table() {
  Table t;
  t.acquire(kA, "x", 1);
  t.acquire(kB, "x", 1);
  t.acquire(kC, "x", 1, LockMode::kShared);
  t.acquire(kA, "shared", 2, LockMode::kShared);
  t.acquire(kB, "shared", 2, LockMode::kShared);
  t.acquire(kC, "shared", 2);
  t.acquire(kD, "z", 9);
  t.release(kD, "z", 9);  // z is forgotten, its token counted
  return t;
}

TEST(LockTable, SnapshotRestoresTheSameTableThatBehavesAlike) {
  Table a = busy_table();
  const std::vector<std::byte> snap = a.t.snapshot();
  Table b;
  ASSERT_TRUE(b.t.restore(snap));
  EXPECT_EQ(b.t.snapshot(), snap);
  EXPECT_EQ(b.t.fence(), a.t.fence());
  // The same next steps give the same events.
  a.view({kB, kC, kD});
  b.view({kB, kC, kD});
  ASSERT_EQ(a.last.size(), b.last.size());
  for (size_t i = 0; i < a.last.size(); ++i) {
    EXPECT_EQ(a.last[i].kind, b.last[i].kind);
    EXPECT_EQ(a.last[i].owner, b.last[i].owner);
    EXPECT_EQ(a.last[i].fence, b.last[i].fence);
  }
  EXPECT_EQ(a.t.snapshot(), b.t.snapshot());
  LockTable empty;
  LockTable c;
  ASSERT_TRUE(c.restore(empty.snapshot()));
  EXPECT_EQ(c.live_locks(), 0U);
}

TEST(LockTable, MalformedSnapshotsAreRefusedAndLeaveTheTableEmpty) {
  const std::vector<std::byte> snap = busy_table().t.snapshot();
  for (size_t n = 0; n < snap.size(); ++n) {
    LockTable t;
    EXPECT_FALSE(t.restore(std::span(snap).first(n))) << "truncated to " << n;
    EXPECT_EQ(t.live_locks(), 0U);
    EXPECT_EQ(t.counters().restores_malformed, 1U);
  }
  auto longer = snap;
  longer.push_back(std::byte{0});
  LockTable t;
  EXPECT_FALSE(t.restore(longer));
  // Random corruption never crashes; what is accepted is a table that snapshots the same.
  std::mt19937_64 rng(7);
  for (int i = 0; i < 20000; ++i) {
    auto bad = snap;
    const int flips = 1 + static_cast<int>(rng() % 3);
    for (int f = 0; f < flips; ++f) bad[rng() % bad.size()] ^= static_cast<std::byte>(1 + rng() % 255);
    LockTable r;
    if (r.restore(bad)) {
      EXPECT_EQ(r.snapshot(), bad);
    } else {
      EXPECT_EQ(r.live_locks(), 0U);
    }
  }
}

TEST(LockTable, RestoreRefusesImpossibleStates) {
  // A waiter at the head with no holder would have been granted: not a state the rules reach.
  std::vector<std::byte> snap;
  auto u32 = [&](uint32_t v) {
    for (int i = 0; i < 4; ++i) snap.push_back(static_cast<std::byte>(v >> (8 * i)));
  };
  auto u64 = [&](uint64_t v) {
    for (int i = 0; i < 8; ++i) snap.push_back(static_cast<std::byte>(v >> (8 * i)));
  };
  u32(0x31544c43);
  u64(5);
  u32(1);
  snap.push_back(std::byte{1});
  snap.push_back(std::byte{'x'});
  u64(5);
  u32(1);  // queue
  u32(0);  // held
  u32(1);
  u32(1);
  u64(3);
  u64(0);
  snap.push_back(std::byte{0});
  LockTable t;
  EXPECT_FALSE(t.restore(snap));
  snap[snap.size() - 29] = std::byte{1};  // held = 1 but its fence is 0
  EXPECT_FALSE(t.restore(snap));
}

}  // namespace
}  // namespace cohort::lock
