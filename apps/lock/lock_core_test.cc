// One member's side of the lock service (lock_core.h), several of them over a perfect little
// total order: each flush appends to one sequence, which every member then delivers.
#include "apps/lock/lock_core.h"

#include <gtest/gtest.h>

#include <ostream>

namespace cohort {
void PrintTo(LockStatus s, std::ostream* os) {
  *os << lock_status_name(s);
}
}  // namespace cohort

namespace cohort::lock {
namespace {

struct Msg {
  MemberUid sender;
  std::vector<std::byte> bytes;
};

struct Group {
  std::vector<LockCore> cores;
  std::vector<MemberUid> members;
  std::vector<Msg> order;
  std::vector<size_t> delivered;  // per core
  std::vector<std::vector<CoreEvent>> events;
  SendStatus answer = SendStatus::kOk;

  explicit Group(uint32_t n, CoreOptions options = {}) {
    for (uint32_t i = 0; i < n; ++i) {
      cores.emplace_back(options);
      cores.back().set_self(MemberUid{i, 1});
      members.push_back(MemberUid{i, 1});
    }
    delivered.assign(n, 0);
    events.resize(n);
    for (LockCore& c : cores) c.on_view(members);
  }
  void flush(uint32_t i) {
    cores[i].flush([&](std::span<const std::byte> b) {
      if (answer == SendStatus::kOk) order.push_back(Msg{members[i], {b.begin(), b.end()}});
      return answer;
    });
    collect(i);
  }
  void collect(uint32_t i) {
    for (const CoreEvent& e : cores[i].events()) events[i].push_back(e);
    cores[i].clear_events();
  }
  // Delivers everything ordered so far to member i.
  void deliver(uint32_t i) {
    for (; delivered[i] < order.size(); ++delivered[i]) {
      const Msg& m = order[delivered[i]];
      EXPECT_TRUE(cores[i].on_deliver(m.bytes, m.sender));
      collect(i);
    }
  }
  void deliver_all() {
    for (uint32_t i = 0; i < cores.size(); ++i) deliver(i);
  }
  uint64_t acquire(uint32_t i, std::string_view name, uint64_t deadline = 0,
                   bool try_only = false) {
    LockStatus s;
    const uint64_t r = cores[i].acquire(name, LockMode::kExclusive, try_only, deadline, &s);
    EXPECT_EQ(s, LockStatus::kSent);
    flush(i);
    return r;
  }
  // The outcome reported for `request`, or kInvalid (never an outcome) when none was.
  LockStatus outcome(uint32_t i, uint64_t request) const {
    for (const CoreEvent& e : events[i]) {
      if (e.request == request && e.kind == CoreEvent::Kind::kOutcome) return e.status;
    }
    return LockStatus::kInvalid;
  }
  uint64_t fence(uint32_t i, uint64_t request) const {
    for (const CoreEvent& e : events[i]) {
      if (e.request == request && e.kind == CoreEvent::Kind::kOutcome) return e.fence;
    }
    return 0;
  }
};

TEST(LockCore, GrantAndReleaseGoThroughTheOrder) {
  Group g(2);
  const uint64_t r = g.acquire(0, "x");
  EXPECT_EQ(g.outcome(0, r), LockStatus::kInvalid);  // nothing before the order says so
  g.deliver_all();
  EXPECT_EQ(g.outcome(0, r), LockStatus::kGranted);
  EXPECT_EQ(g.fence(0, r), 1U);
  EXPECT_TRUE(g.cores[0].holds(r, 1));
  EXPECT_FALSE(g.cores[0].holds(r, 2));
  EXPECT_EQ(g.cores[1].table().query("x").holders.size(), 1U);
  EXPECT_EQ(g.cores[0].release(r), LockStatus::kSent);
  EXPECT_FALSE(g.cores[0].holds(r, 1));
  EXPECT_EQ(g.cores[0].release(r), LockStatus::kNotHeld);
  g.flush(0);
  g.deliver_all();
  EXPECT_EQ(g.cores[0].outstanding(), 0U);
  EXPECT_EQ(g.cores[1].table().live_locks(), 0U);
}

TEST(LockCore, TryAcquireAnswersBusy) {
  Group g(2);
  g.acquire(0, "x");
  const uint64_t r = g.acquire(1, "x", 0, true);
  g.deliver_all();
  EXPECT_EQ(g.outcome(1, r), LockStatus::kBusy);
  EXPECT_EQ(g.cores[1].outstanding(), 0U);
}

TEST(LockCore, ATimedOutRequestIsWithdrawnAndALateGrantIsReleasedByIt) {
  Group g(2);
  const uint64_t held = g.acquire(0, "x");
  const uint64_t r = g.acquire(1, "x", /*deadline=*/100);
  g.deliver_all();
  EXPECT_EQ(g.cores[1].next_deadline(), 100U);
  g.cores[1].expire(99);
  EXPECT_FALSE(g.cores[1].has_outbox());
  // Member 0 releases; the order then has the release before member 1's withdraw: the grant
  // wins the race, is not reported, and the withdraw releases it.
  ASSERT_EQ(g.cores[0].release(held), LockStatus::kSent);
  g.flush(0);
  g.cores[1].expire(100);
  g.flush(1);
  g.deliver_all();
  EXPECT_EQ(g.outcome(1, r), LockStatus::kTimedOut);
  EXPECT_EQ(g.cores[0].table().live_locks(), 0U);
  EXPECT_EQ(g.cores[1].table().counters().grants, 2U);  // the late grant happened, then went
  EXPECT_EQ(g.cores[1].outstanding(), 0U);
}

TEST(LockCore, CutOffLosesHeldLocksAndReleasesThem) {
  Group g(3);
  const uint64_t r = g.acquire(0, "x");
  const uint64_t w = g.acquire(0, "y");
  g.acquire(1, "y");
  g.deliver_all();
  g.cores[0].on_event(GroupEvent::kCutOff);
  g.collect(0);
  int lost = 0;
  for (const CoreEvent& e : g.events[0]) lost += e.kind == CoreEvent::Kind::kLostHold;
  EXPECT_EQ(lost, 2);
  EXPECT_FALSE(g.cores[0].holds(r, 1));
  EXPECT_FALSE(g.cores[0].holds(w, 2));
  // Taken back into the group: the releases go through, and y moves on.
  g.flush(0);
  g.deliver_all();
  EXPECT_EQ(g.cores[2].table().query("y").holders.at(0).member, (MemberUid{1, 1}));
  EXPECT_EQ(g.cores[0].outstanding(), 0U);
}

TEST(LockCore, RemovalEndsEverythingAndAViewMovesTheLockOn) {
  Group g(3);
  const uint64_t held = g.acquire(0, "x");
  const uint64_t other = g.acquire(1, "y");
  const uint64_t waiting = g.acquire(0, "y");
  const uint64_t next = g.acquire(1, "x");
  g.deliver_all();
  (void)held;
  (void)other;
  g.cores[0].on_event(GroupEvent::kRemoved);
  g.collect(0);
  EXPECT_EQ(g.outcome(0, waiting), LockStatus::kLost);
  EXPECT_TRUE(g.cores[0].final());
  EXPECT_EQ(g.cores[0].outstanding(), 0U);
  LockStatus s;
  EXPECT_EQ(g.cores[0].acquire("z", LockMode::kExclusive, false, 0, &s), 0U);
  EXPECT_EQ(s, LockStatus::kNotMember);
  // The survivors install a view without member 0: x goes to member 1 within that change.
  const std::vector<MemberUid> view = {MemberUid{1, 1}, MemberUid{2, 1}};
  g.cores[1].on_view(view);
  g.collect(1);
  EXPECT_EQ(g.outcome(1, next), LockStatus::kGranted);
}

TEST(LockCore, FlushStopsOnFullAndEndsRequestsOnNotMember) {
  Group g(1);
  g.answer = SendStatus::kFull;
  const uint64_t r = g.acquire(0, "x");
  EXPECT_TRUE(g.cores[0].has_outbox());
  g.answer = SendStatus::kNotMember;
  g.flush(0);
  EXPECT_FALSE(g.cores[0].has_outbox());
  EXPECT_EQ(g.outcome(0, r), LockStatus::kNotMember);
}

TEST(LockCore, InvalidNamesAreRefused) {
  LockCore c;
  LockStatus s;
  EXPECT_EQ(c.acquire("", LockMode::kExclusive, false, 0, &s), 0U);
  EXPECT_EQ(s, LockStatus::kInvalid);
  EXPECT_EQ(c.acquire(std::string(kMaxLockNameBytes + 1, 'n'), LockMode::kShared, false, 0, &s),
            0U);
  EXPECT_EQ(s, LockStatus::kInvalid);
  EXPECT_FALSE(c.has_outbox());
}

TEST(LockCore, OtherMessagesAreNotLockOps) {
  LockCore c;
  const std::byte hello[] = {std::byte{'h'}, std::byte{'i'}};
  EXPECT_FALSE(c.on_deliver(hello, MemberUid{1, 1}));
}

TEST(LockCore, PlantedBugGrantsBeforeTheOrder) {
  CoreOptions o;
  o.bugs.grant_before_order = true;
  Group g(2, o);
  const uint64_t a = g.acquire(0, "x");
  const uint64_t b = g.acquire(1, "x");
  // Both saw an idle lock and both "hold" it: exactly what the simulator's checker must catch.
  EXPECT_EQ(g.outcome(0, a), LockStatus::kGranted);
  EXPECT_EQ(g.outcome(1, b), LockStatus::kGranted);
  EXPECT_EQ(g.fence(0, a), g.fence(1, b));
}

}  // namespace
}  // namespace cohort::lock
