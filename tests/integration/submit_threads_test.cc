// Group::send from many threads at once (include/cohort/group.h: "send() ... may be called from
// any thread"): two members in this process over shm; four threads of one member send as fast
// as they may while its data thread runs, and every send answered kOk is delivered, once, at
// both members. Before the engine serialised taking a free submission slot, two threads could
// take the same slot: the run hung with sends lost, or the data thread gave a slot back twice
// (an assertion, seen in the cache_redis test).
#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "cohort/group.h"
#include "tests/integration/in_process.h"

namespace cohort {
namespace {

struct Counting final : GroupListener {
  std::mutex mu;
  std::multiset<uint64_t> ids;
  std::atomic<uint32_t> members{0};
  void on_deliver(const Message& m) override {
    if (m.bytes.size() != 8) return;
    uint64_t id = 0;
    std::memcpy(&id, m.bytes.data(), 8);
    std::lock_guard<std::mutex> g(mu);
    ids.insert(id);
  }
  void on_view(const ViewInfo& v) override {
    members.store(static_cast<uint32_t>(v.members.size()));
  }
  size_t count() {
    std::lock_guard<std::mutex> g(mu);
    return ids.size();
  }
};

TEST(GroupSubmit, ManyThreadsSendAtOnceAndEverySendIsDeliveredOnce) {
  test_support::ShmFolder folder("submit");
  ASSERT_FALSE(folder.path.empty());
  Counting a, b;
  auto ga = Group::create(test_support::shm_member_options(folder, "submit", 0, true), &a);
  ASSERT_TRUE(ga.ok()) << ga.error().message();
  ASSERT_TRUE((*ga)->start().ok());
  auto gb = Group::create(test_support::shm_member_options(folder, "submit", 1, false), &b);
  ASSERT_TRUE(gb.ok()) << gb.error().message();
  ASSERT_TRUE((*gb)->start().ok());
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
        const SendStatus st = (*gb)->send(bytes, DeliveryMode::kTotal);
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
  EXPECT_EQ(std::set<uint64_t>(a.ids.begin(), a.ids.end()).size(), a.ids.size())
      << "a message delivered twice";
  (*gb)->stop();
  (*ga)->stop();
}

}  // namespace
}  // namespace cohort
