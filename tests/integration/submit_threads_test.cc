// Group::send from many threads at once (include/cohort/group.h: "send() ... may be called from
// any thread"): two members in this process over shm; four threads of one member send as fast
// as they may while its data thread runs, and every send answered kOk is delivered, once, at
// both members. Before the engine serialised taking a free submission slot, two threads could
// take the same slot: the run hung with sends lost, or the data thread gave a slot back twice
// (an assertion, seen in the cache_redis test).
//
// And the data thread's own sends, which skip the queue (group_engine.h, submit()): a member
// polled by the test's thread sends from its loop (straight to the Member) and from inside its
// delivery callbacks (queued), while another thread sends too; every thread's messages are
// delivered once, at both members, in the order its send() calls returned kOk. And leave() on
// the data thread with the queue full returns at once (it used to wait for a free slot that
// only its own thread could free) and is carried out by the next polls.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "cohort/group.h"
#include "tests/integration/in_process.h"

namespace cohort {
namespace {

// Counts the members of the view installed here last.
struct ViewCount : GroupListener {
  std::atomic<uint32_t> members{0};
  void on_view(const ViewInfo& v) override {
    members.store(static_cast<uint32_t>(v.members.size()));
  }
};

// Two members of `group` in `folder`: *a founds it and runs on its own thread; *b joins and is
// left to the caller to start or to poll.
void open_pair(const test_support::ShmFolder& folder, const std::string& group, ViewCount* la,
               ViewCount* lb, std::unique_ptr<Group>* a, std::unique_ptr<Group>* b) {
  auto ga = Group::create(test_support::shm_member_options(folder, group, 0, true), la);
  ASSERT_TRUE(ga.ok()) << ga.error().message();
  ASSERT_TRUE((*ga)->start().ok());
  auto gb = Group::create(test_support::shm_member_options(folder, group, 1, false), lb);
  ASSERT_TRUE(gb.ok()) << gb.error().message();
  *a = std::move(*ga);
  *b = std::move(*gb);
}

// Polls `member` on this thread (its data thread) until `done` holds or 30 s pass.
template <typename F>
bool poll_until(Group& member, F done) {
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (!done() && std::chrono::steady_clock::now() < end) member.poll();
  return done();
}

// open_pair(), then *b polled by this thread (its data thread) until both views hold the two.
void open_polled_pair(const test_support::ShmFolder& folder, const std::string& group,
                      ViewCount* la, ViewCount* lb, std::unique_ptr<Group>* a,
                      std::unique_ptr<Group>* b) {
  ASSERT_NO_FATAL_FAILURE(open_pair(folder, group, la, lb, a, b));
  ASSERT_TRUE(poll_until(**b, [&] { return la->members == 2 && lb->members == 2; }));
}

// The 8-byte tags of the messages delivered here, in delivery order.
struct Tagged final : ViewCount {
  std::mutex mu;
  std::vector<uint64_t> tags;
  void on_deliver(const Message& m) override {
    if (m.bytes.size() != 8) return;
    uint64_t tag = 0;
    std::memcpy(&tag, m.bytes.data(), 8);
    std::lock_guard<std::mutex> g(mu);
    tags.push_back(tag);
  }
  std::vector<uint64_t> seen() {
    std::lock_guard<std::mutex> g(mu);
    return tags;
  }
  size_t count() {
    std::lock_guard<std::mutex> g(mu);
    return tags.size();
  }
};

TEST(GroupSubmit, ManyThreadsSendAtOnceAndEverySendIsDeliveredOnce) {
  test_support::ShmFolder folder("submit");
  ASSERT_FALSE(folder.path.empty());
  Tagged a, b;
  std::unique_ptr<Group> ga, gb;
  ASSERT_NO_FATAL_FAILURE(open_pair(folder, "submit", &a, &b, &ga, &gb));
  ASSERT_TRUE(gb->start().ok());
  ASSERT_TRUE(test_support::eventually([&] { return a.members == 2 && b.members == 2; }));

  constexpr int kThreads = 4;
  constexpr uint64_t kPerThread = 20'000;
  std::atomic<uint64_t> accepted{0};
  std::vector<std::thread> senders;
  for (int t = 0; t < kThreads; ++t) {
    senders.emplace_back([&, t] {
      for (uint64_t i = 0; i < kPerThread;) {
        const uint64_t id = uint64_t{static_cast<uint32_t>(t)} << 32 | i;
        std::byte bytes[8];
        std::memcpy(bytes, &id, 8);
        const SendStatus st = gb->send(bytes, DeliveryMode::kTotal);
        if (st == SendStatus::kOk) {
          ++i;
          accepted.fetch_add(1);
        } else {
          ASSERT_EQ(st, SendStatus::kFull);
          std::this_thread::yield();
        }
      }
    });
  }
  for (std::thread& s : senders) s.join();
  ASSERT_EQ(accepted.load(), kThreads * kPerThread);
  ASSERT_TRUE(test_support::eventually(
      [&] { return a.count() == accepted.load() && b.count() == accepted.load(); },
      std::chrono::milliseconds(30'000)))
      << "delivered " << a.count() << " and " << b.count() << " of " << accepted.load();
  std::lock_guard<std::mutex> g(a.mu);
  EXPECT_EQ(std::set<uint64_t>(a.tags.begin(), a.tags.end()).size(), a.tags.size())
      << "a message delivered twice";
  gb->stop();
  ga->stop();
}

// Records each sender thread's tags in delivery order: tag = thread << 32 | its k-th kOk send.
struct Ordered final : ViewCount {
  std::mutex mu;
  std::map<uint32_t, std::vector<uint32_t>> by_thread;
  // The data thread's hook: called on every delivery (inside the callback) of this member.
  std::function<void()> on_each;
  void on_deliver(const Message& m) override {
    if (m.bytes.size() != 8) return;
    uint64_t tag = 0;
    std::memcpy(&tag, m.bytes.data(), 8);
    {
      std::lock_guard<std::mutex> g(mu);
      by_thread[static_cast<uint32_t>(tag >> 32)].push_back(static_cast<uint32_t>(tag));
    }
    if (on_each) on_each();
  }
  size_t count(uint32_t thread) {
    std::lock_guard<std::mutex> g(mu);
    return by_thread[thread].size();
  }
};

TEST(GroupSubmit, DataThreadSendsSkipTheQueueAndKeepEveryThreadsOrder) {
  test_support::ShmFolder folder("submit-inline");
  ASSERT_FALSE(folder.path.empty());
  Ordered a, b;
  std::unique_ptr<Group> ga, gb;
  ASSERT_NO_FATAL_FAILURE(open_polled_pair(folder, "inline", &a, &b, &ga, &gb));
  Group& member = *gb;  // polled by this thread: its data thread

  // Thread 0 is this (data) thread: from its loop and from its callbacks, one counter.
  uint32_t next0 = 0;
  const auto send0 = [&] {
    const uint64_t tag = next0;
    std::byte bytes[8];
    std::memcpy(bytes, &tag, 8);
    if (member.send(bytes, DeliveryMode::kTotal) != SendStatus::kOk) return false;
    ++next0;
    return true;
  };
  constexpr uint32_t kFromLoop = 20'000;
  uint32_t from_callbacks = 0;
  b.on_each = [&] {
    // Now and then, inside the callback (sends refused for a full queue are not counted).
    if (from_callbacks < 5'000 && (next0 & 3U) == 0 && send0()) ++from_callbacks;
  };
  constexpr uint32_t kOther = 20'000;
  std::atomic<uint32_t> other_sent{0};
  std::thread other([&] {
    for (uint32_t i = 0; i < kOther;) {
      const uint64_t tag = uint64_t{1} << 32 | i;
      std::byte bytes[8];
      std::memcpy(bytes, &tag, 8);
      if (member.send(bytes, DeliveryMode::kTotal) == SendStatus::kOk) {
        ++i;
      } else {
        std::this_thread::yield();
      }
    }
    other_sent.store(kOther);
  });
  for (uint32_t loop_sends = 0; loop_sends < kFromLoop;) {
    const uint32_t before = next0;
    send0();
    if (next0 != before) ++loop_sends;
    member.poll();
  }
  ASSERT_TRUE(
      poll_until(member, [&] { return other_sent.load() == kOther; }));  // its queue drains here
  other.join();
  b.on_each = nullptr;  // no more sends from callbacks: the count below is final
  const uint32_t total0 = next0;
  ASSERT_TRUE(poll_until(member,
                         [&] {
                           return a.count(0) == total0 && b.count(0) == total0 &&
                                  a.count(1) == kOther && b.count(1) == kOther;
                         }))
      << "thread 0: delivered " << a.count(0) << " and " << b.count(0) << " of " << total0
      << "; thread 1: " << a.count(1) << " and " << b.count(1) << " of " << kOther;
  for (Ordered* l : {&a, &b}) {
    std::lock_guard<std::mutex> g(l->mu);
    for (const auto& [thread, tags] : l->by_thread) {
      for (uint32_t i = 0; i < tags.size(); ++i) {
        ASSERT_EQ(tags[i], i) << "thread " << thread << "'s messages out of order";
      }
    }
  }
  EXPECT_GT(from_callbacks, 0U);
  // The loop's sends went straight to the Member, but for those that queued behind a
  // callback's. (The counters are final once the member stopped.)
  member.stop();
  const GroupStats st = member.stats();
  EXPECT_GT(st.sent_inline, 0U) << "sent " << st.sent;
  EXPECT_LE(st.sent_inline, total0 - from_callbacks);
  std::printf("thread 0: %u sends, %u from callbacks, %lu straight to the Member\n", total0,
              from_callbacks, static_cast<unsigned long>(st.sent_inline));
  ga->stop();
}

struct Leaving final : ViewCount {
  std::atomic<bool> left{false};
  void on_deliver(const Message&) override {}
  void on_event(GroupEvent e) override {
    if (e == GroupEvent::kLeft) left.store(true);
  }
};

TEST(GroupSubmit, LeaveOnTheDataThreadWithTheQueueFullReturnsAndLeaves) {
  test_support::ShmFolder folder("submit-leave");
  ASSERT_FALSE(folder.path.empty());
  Leaving a, b;
  std::unique_ptr<Group> ga, gb;
  ASSERT_NO_FATAL_FAILURE(open_polled_pair(folder, "leave", &a, &b, &ga, &gb));
  Group& member = *gb;
  // Another thread fills the queue while this (data) thread does not poll.
  std::thread filler([&] {
    std::byte bytes[8] = {};
    while (member.send(bytes, DeliveryMode::kTotal) == SendStatus::kOk) {
    }
  });
  filler.join();
  member.leave();  // returns: nothing to wait for on this thread
  ASSERT_TRUE(poll_until(member, [&] { return b.left.load(); }))
      << "the leave was never carried out";
  ASSERT_TRUE(test_support::eventually([&] { return a.members == 1; }));
  member.stop();
  ga->stop();
}

// A callback that polls its own member (an application loop calling poll() from on_deliver)
// gets 0 and changes nothing: the outer poll goes on with its burst, and every message is
// delivered once.
struct PollingInside final : ViewCount {
  Group* self = nullptr;
  std::atomic<uint64_t> delivered{0}, inner_work{0};
  void on_deliver(const Message&) override {
    delivered.fetch_add(1);
    if (self != nullptr) inner_work.fetch_add(self->poll());
  }
};

TEST(GroupSubmit, APollFromInsideACallbackDoesNothing) {
  test_support::ShmFolder folder("submit-reenter");
  ASSERT_FALSE(folder.path.empty());
  PollingInside a, b;
  std::unique_ptr<Group> ga, gb;
  ASSERT_NO_FATAL_FAILURE(open_polled_pair(folder, "reenter", &a, &b, &ga, &gb));
  Group& member = *gb;
  b.self = &member;
  constexpr uint64_t kMessages = 2000;
  std::thread sender([&] {
    std::byte bytes[8] = {};
    for (uint64_t i = 0; i < kMessages;) {
      if (ga->send(bytes, DeliveryMode::kTotal) == SendStatus::kOk) ++i;
    }
  });
  ASSERT_TRUE(poll_until(member, [&] { return b.delivered.load() == kMessages; }))
      << b.delivered.load() << " of " << kMessages;
  sender.join();
  EXPECT_EQ(b.inner_work.load(), 0U);
  EXPECT_EQ(b.delivered.load(), kMessages);
  b.self = nullptr;
  ga->stop();
}

// A send the data thread makes after a poll cycle without sends is in the log when send()
// returns (GroupEngine::append_early): the other member, on its own thread, delivers it while
// this member does not poll at all. Later sends before the next poll join one batch that
// leaves with that poll, so a burst is not a record per message.
TEST(GroupSubmit, AQuietDataThreadsSendLeavesBeforeItsNextPoll) {
  test_support::ShmFolder folder("submit-early");
  ASSERT_FALSE(folder.path.empty());
  Tagged a, b;
  std::unique_ptr<Group> ga, gb;
  ASSERT_NO_FATAL_FAILURE(open_polled_pair(folder, "early", &a, &b, &ga, &gb));
  Group& member = *gb;  // polled by this thread: its data thread
  const auto send = [&](uint64_t tag) {
    std::byte bytes[8];
    std::memcpy(bytes, &tag, 8);
    return member.send(bytes, DeliveryMode::kTotal);
  };
  for (uint64_t round = 0; round < 3; ++round) {
    for (int i = 0; i < 3; ++i) member.poll();  // a cycle without sends
    const uint64_t first = round * 100;
    ASSERT_EQ(send(first), SendStatus::kOk);
    for (uint64_t k = 1; k < 50; ++k) ASSERT_EQ(send(first + k), SendStatus::kOk);
    // No poll here: the first message must reach member a by itself, the rest must not.
    ASSERT_TRUE(test_support::eventually([&] { return a.seen().size() == round * 50 + 1; }))
        << "round " << round << ": a delivered " << a.seen().size();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    EXPECT_EQ(a.seen().size(), round * 50 + 1) << "the burst left before the poll";
    EXPECT_EQ(a.seen().back(), first);
    ASSERT_TRUE(poll_until(member, [&] { return a.seen().size() == (round + 1) * 50; }));
  }
  const std::vector<uint64_t> at_a = a.seen();
  ASSERT_TRUE(poll_until(member, [&] { return b.seen().size() == at_a.size(); }));
  EXPECT_EQ(b.seen(), at_a);  // one order at both members, the sender's
  for (size_t i = 0; i < at_a.size(); ++i) EXPECT_EQ(at_a[i], i / 50 * 100 + i % 50);
  ga->stop();
}

}  // namespace
}  // namespace cohort
