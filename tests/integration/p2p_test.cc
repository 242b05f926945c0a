// Point-to-point request/reply on a real group (include/cohort/group.h): three members in this
// process over shm in a private folder, each on its own thread. Requests are answered with the
// right bytes from the callback; a member that dies (its Group destroyed without a leave, as a
// crash) with requests outstanding to it answers each of them once, kPeerLeft, after the view
// change; the others keep answering; a request to the dead incarnation gets kPeerLeft too.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <string>

#include "cohort/group.h"
#include "tests/integration/in_process.h"

namespace cohort {
namespace {

using std::chrono::milliseconds;

using Folder = test_support::ShmFolder;

using test_support::eventually;

std::span<const std::byte> as_bytes(const std::string& s) {
  return {reinterpret_cast<const std::byte*>(s.data()), s.size()};
}

std::string as_string(std::span<const std::byte> b) {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}

// The answer to `request`: "re:" then the request (built by append: g++ 12 warns, wrongly, on
// operator+ here).
std::string echo_of(const std::string& request) {
  std::string out;
  out.reserve(3 + request.size());
  out.append("re:").append(request);
  return out;
}

// Answers every request with "re:<request>" from inside the callback, unless `silent` (then it
// keeps them unanswered); records every reply it gets.
struct Echo final : GroupListener {
  Group* group = nullptr;
  std::atomic<bool> silent{false};
  std::atomic<uint32_t> view_members{0};
  std::atomic<uint64_t> requests_seen{0};
  struct Answer {
    MemberUid peer;
    ReplyStatus status = ReplyStatus::kOk;
    std::string bytes;
    int count = 0;
  };
  std::mutex mu;
  std::map<uint64_t, Answer> answers;

  void on_deliver(const Message&) override {}
  void on_view(const ViewInfo& v) override {
    view_members.store(static_cast<uint32_t>(v.members.size()));
  }
  void on_request(const PeerMessage& r) override {
    requests_seen.fetch_add(1);
    if (silent.load()) return;
    const std::string reply = echo_of(as_string(r.bytes));
    EXPECT_EQ(group->reply(r.peer, r.id, as_bytes(reply)), SendStatus::kOk);
  }
  void on_reply(const PeerMessage& r, ReplyStatus status) override {
    std::lock_guard<std::mutex> g(mu);
    Answer& a = answers[r.id];
    a.peer = r.peer;
    a.status = status;
    a.bytes = as_string(r.bytes);
    a.count++;
  }
  size_t answered() {
    std::lock_guard<std::mutex> g(mu);
    return answers.size();
  }
};

std::unique_ptr<Group> member(const Folder& f, uint32_t node, Echo* app) {
  GroupOptions o = test_support::shm_member_options(f, "p2p", node, node == 0);
  o.threading = "shared";
  auto g = Group::create(o, app);
  EXPECT_TRUE(g.ok()) << (g.ok() ? "" : g.error().message());
  if (!g.ok()) return nullptr;
  app->group = g->get();
  EXPECT_TRUE((*g)->start().ok());
  return std::move(*g);
}

TEST(GroupP2p, RequestsAreAnsweredAndADeadTargetAnswersPeerLeftOnce) {
  Folder f("p2p");
  ASSERT_FALSE(f.path.empty());
  Echo apps[3];
  std::unique_ptr<Group> groups[3];
  groups[0] = member(f, 0, &apps[0]);
  ASSERT_NE(groups[0], nullptr);
  ASSERT_TRUE(eventually([&] { return groups[0]->in_view(); }));
  for (uint32_t n = 1; n < 3; ++n) {
    groups[n] = member(f, n, &apps[n]);
    ASSERT_NE(groups[n], nullptr);
  }
  ASSERT_TRUE(eventually([&] {
    for (Echo& a : apps) {
      if (a.view_members.load() != 3) return false;
    }
    return true;
  }));
  const MemberUid b = groups[1]->self(), c = groups[2]->self();

  // Answered: 50 requests from member 0 to each of the others, and 20 from 2 to 1.
  std::map<uint64_t, std::pair<MemberUid, std::string>> asked;  // member 0's, by id
  for (int i = 0; i < 100; ++i) {
    const MemberUid to = i % 2 == 0 ? b : c;
    std::string text = "q";
    text.append(std::to_string(i));
    uint64_t id = 0;
    ASSERT_EQ(groups[0]->request(to, as_bytes(text), &id), SendStatus::kOk);
    ASSERT_TRUE(asked.emplace(id, std::make_pair(to, text)).second) << "ids are unique";
  }
  for (int i = 0; i < 20; ++i) {
    uint64_t id = 0;
    ASSERT_EQ(groups[2]->request(b, as_bytes("from c"), &id), SendStatus::kOk);
  }
  ASSERT_TRUE(eventually([&] { return apps[0].answered() == 100 && apps[2].answered() == 20; }));
  {
    std::lock_guard<std::mutex> g(apps[0].mu);
    for (const auto& [id, a] : apps[0].answers) {
      ASSERT_TRUE(asked.contains(id));
      EXPECT_EQ(a.count, 1);
      EXPECT_EQ(a.status, ReplyStatus::kOk);
      EXPECT_EQ(a.peer, asked[id].first);
      EXPECT_EQ(a.bytes, echo_of(asked[id].second));
    }
  }

  // Member 2 stops answering, gets 10 requests, and dies without leaving.
  apps[2].silent.store(true);
  const uint64_t seen_before = apps[2].requests_seen.load();
  std::vector<uint64_t> pending;
  for (int i = 0; i < 10; ++i) {
    uint64_t id = 0;
    ASSERT_EQ(groups[0]->request(c, as_bytes("never"), &id), SendStatus::kOk);
    pending.push_back(id);
  }
  ASSERT_TRUE(eventually([&] { return apps[2].requests_seen.load() == seen_before + 10; }));
  groups[2].reset();
  ASSERT_TRUE(eventually([&] { return apps[0].answered() == 110; }));
  ASSERT_TRUE(eventually([&] { return apps[0].view_members.load() == 2; }));
  {
    std::lock_guard<std::mutex> g(apps[0].mu);
    for (const uint64_t id : pending) {
      const Echo::Answer& a = apps[0].answers[id];
      EXPECT_EQ(a.count, 1) << id;
      EXPECT_EQ(a.status, ReplyStatus::kPeerLeft) << id;
      EXPECT_EQ(a.peer, c) << id;
      EXPECT_TRUE(a.bytes.empty()) << id;
    }
  }

  // The survivors keep answering; a request to the dead incarnation is kOk, then kPeerLeft.
  uint64_t to_b = 0, to_c = 0;
  ASSERT_EQ(groups[0]->request(b, as_bytes("after"), &to_b), SendStatus::kOk);
  ASSERT_EQ(groups[0]->request(c, as_bytes("gone"), &to_c), SendStatus::kOk);
  ASSERT_TRUE(eventually([&] { return apps[0].answered() == 112; }));
  std::lock_guard<std::mutex> g(apps[0].mu);
  EXPECT_EQ(apps[0].answers[to_b].status, ReplyStatus::kOk);
  EXPECT_EQ(apps[0].answers[to_b].bytes, "re:after");
  EXPECT_EQ(apps[0].answers[to_c].status, ReplyStatus::kPeerLeft);
  for (const auto& [id, a] : apps[0].answers) EXPECT_EQ(a.count, 1) << id;
  const GroupStats s = groups[0]->stats();
  EXPECT_EQ(s.requests_sent, 112U);
  EXPECT_EQ(s.replies_received, 112U);
}

}  // namespace
}  // namespace cohort
