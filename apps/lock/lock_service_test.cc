// The lock service on a real group (include/cohort/lock.h): members in this process over shm
// in a private folder, each on its own thread. Blocking, try and asynchronous acquires, the
// timeout's withdraw, the hand-over to a waiter on another member, state transfer to a joiner,
// and the lost-locks callback when a member leaves while it holds a lock.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>

#include "cohort/lock.h"
#include "tests/integration/in_process.h"

namespace cohort {
namespace {

using std::chrono::milliseconds;

using Folder = test_support::ShmFolder;

GroupOptions options(const Folder& f, uint32_t node, bool bootstrap) {
  return test_support::shm_member_options(f, "locks", node, bootstrap);
}

using test_support::eventually;

struct Lost {
  std::mutex mu;
  std::vector<LockGrant> grants;
  GroupEvent why = GroupEvent::kCutOff;
  std::atomic<int> calls{0};
};

std::unique_ptr<LockService> member(const Folder& f, uint32_t node, bool bootstrap,
                                    Lost* lost = nullptr) {
  LockServiceOptions lo;
  if (lost != nullptr) {
    lo.on_lost = [lost](std::span<const LockGrant> grants, GroupEvent why) {
      std::lock_guard<std::mutex> g(lost->mu);
      lost->grants.assign(grants.begin(), grants.end());
      lost->why = why;
      lost->calls++;
    };
  }
  auto s = LockService::create(options(f, node, bootstrap), std::move(lo));
  EXPECT_TRUE(s.ok()) << (s.ok() ? "" : s.error().message());
  if (!s.ok()) return nullptr;
  EXPECT_TRUE((*s)->group().start().ok());
  return std::move(*s);
}

TEST(LockService, OneMemberAcquiresTriesTimesOutAndReleases) {
  Folder f("lock");
  ASSERT_FALSE(f.path.empty());
  Lost lost;
  auto a = member(f, 0, true, &lost);
  ASSERT_NE(a, nullptr);
  ASSERT_TRUE(eventually([&] { return a->group().in_view(); }));

  const LockResult r = a->acquire("printer", LockMode::kExclusive, milliseconds(5000));
  ASSERT_EQ(r.status, LockStatus::kGranted) << lock_status_name(r.status);
  EXPECT_EQ(r.grant.name, "printer");
  EXPECT_GT(r.grant.fence, 0U);
  EXPECT_TRUE(a->holds(r.grant));
  const LockInfo info = a->query("printer");
  ASSERT_EQ(info.holders.size(), 1U);
  EXPECT_EQ(info.holders[0].member, a->group().self());
  EXPECT_EQ(info.fence, r.grant.fence);

  EXPECT_EQ(a->try_acquire("printer", LockMode::kExclusive).status, LockStatus::kBusy);
  const LockResult late = a->acquire("printer", LockMode::kShared, milliseconds(30));
  EXPECT_EQ(late.status, LockStatus::kTimedOut);
  // The timed-out request is withdrawn from the queue, in order.
  ASSERT_TRUE(eventually([&] { return a->query("printer").waiting == 0; }));

  EXPECT_EQ(a->release(r.grant), LockStatus::kSent);
  EXPECT_FALSE(a->holds(r.grant));
  EXPECT_EQ(a->release(r.grant), LockStatus::kNotHeld);
  ASSERT_TRUE(eventually([&] { return a->query("printer").holders.empty(); }));

  // Asynchronous: the callback runs on the data core with the grant.
  std::atomic<bool> done{false};
  LockResult async;
  ASSERT_EQ(a->acquire_async("printer", LockMode::kExclusive,
                             [&](const LockResult& res) {
                               async = res;
                               done = true;
                             }),
            LockStatus::kSent);
  ASSERT_TRUE(eventually([&] { return done.load(); }));
  EXPECT_EQ(async.status, LockStatus::kGranted);
  EXPECT_GT(async.grant.fence, r.grant.fence);  // tokens only grow

  EXPECT_EQ(a->try_acquire("", LockMode::kExclusive).status, LockStatus::kInvalid);
  EXPECT_EQ(a->counters().ops_malformed, 0U);

  // Leaving while holding: the lost-locks callback names the lock, and the grant is dead.
  a->group().leave();
  ASSERT_TRUE(eventually([&] { return lost.calls.load() > 0; }));
  {
    std::lock_guard<std::mutex> g(lost.mu);
    ASSERT_EQ(lost.grants.size(), 1U);
    EXPECT_EQ(lost.grants[0].name, "printer");
    EXPECT_EQ(lost.grants[0].fence, async.grant.fence);
    EXPECT_EQ(lost.why, GroupEvent::kLeft);
  }
  EXPECT_FALSE(a->holds(async.grant));
  EXPECT_EQ(a->release(async.grant), LockStatus::kNotHeld);
  EXPECT_EQ(a->try_acquire("printer", LockMode::kExclusive).status, LockStatus::kNotMember);
}

TEST(LockService, TheLockPassesBetweenMembersAndToAJoinerState) {
  Folder f("lock");
  ASSERT_FALSE(f.path.empty());
  auto a = member(f, 0, true);
  ASSERT_NE(a, nullptr);
  ASSERT_TRUE(eventually([&] { return a->group().in_view(); }));
  Lost lost_b;
  auto b = member(f, 1, false, &lost_b);
  ASSERT_NE(b, nullptr);
  ASSERT_TRUE(eventually([&] {
    return b->group().in_view() && a->group().stats().view_members == 2 &&
           b->group().stats().view_members == 2;
  }));

  const LockResult held = a->acquire("x", LockMode::kExclusive, milliseconds(5000));
  ASSERT_EQ(held.status, LockStatus::kGranted);
  std::atomic<bool> done{false};
  LockResult at_b;
  ASSERT_EQ(b->acquire_async("x", LockMode::kExclusive,
                             [&](const LockResult& r) {
                               at_b = r;
                               done = true;
                             }),
            LockStatus::kSent);
  ASSERT_TRUE(eventually([&] { return a->query("x").waiting == 1; }));
  EXPECT_FALSE(done.load());  // mutual exclusion: B waits while A holds
  EXPECT_EQ(a->release(held.grant), LockStatus::kSent);
  ASSERT_TRUE(eventually([&] { return done.load(); }));
  EXPECT_EQ(at_b.status, LockStatus::kGranted);
  EXPECT_GT(at_b.grant.fence, held.grant.fence);

  // A joiner learns every lock from the state transfer.
  auto c = member(f, 2, false);
  ASSERT_NE(c, nullptr);
  ASSERT_TRUE(
      eventually([&] { return c->group().in_view() && c->group().stats().view_members == 3; }));
  const LockInfo seen = c->query("x");
  ASSERT_EQ(seen.holders.size(), 1U);
  EXPECT_EQ(seen.holders[0].member, b->group().self());
  EXPECT_EQ(seen.fence, at_b.grant.fence);

  // B leaves while holding x and A waits: the view change hands x to A, B learns it lost x.
  std::atomic<bool> a_done{false};
  LockResult at_a;
  ASSERT_EQ(a->acquire_async("x", LockMode::kExclusive,
                             [&](const LockResult& r) {
                               at_a = r;
                               a_done = true;
                             }),
            LockStatus::kSent);
  ASSERT_TRUE(eventually([&] { return c->query("x").waiting == 1; }));
  b->group().leave();
  ASSERT_TRUE(eventually([&] { return a_done.load(); }));
  EXPECT_EQ(at_a.status, LockStatus::kGranted);
  EXPECT_GT(at_a.grant.fence, at_b.grant.fence);
  ASSERT_TRUE(eventually([&] { return lost_b.calls.load() > 0; }));
  EXPECT_FALSE(b->holds(at_b.grant));
  ASSERT_TRUE(eventually([&] {
    const LockInfo i = c->query("x");
    return i.holders.size() == 1 && i.holders[0].member == a->group().self();
  }));
  EXPECT_GE(c->counters().dropped_by_view, 1U);
}

}  // namespace
}  // namespace cohort
