// The protocol state machine on a perfect little network: no loss, fixed delay. The simulator
// (tests/sim) tries to break it; these tests pin down the plain paths one at a time.
#include "membership/protocol/member.h"

#include <gtest/gtest.h>

#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <vector>

#include "membership/protocol/codec.h"
#include "membership/protocol/payload_arena.h"
#include "membership/protocol/window.h"

namespace cohort::membership {
namespace {

constexpr TimeNs kMs = 1'000'000;

struct P2p {
  Uid peer;
  uint64_t id = 0;
  std::vector<std::byte> payload;
  bool failed = false;  // kRequestFailed
};

struct Node {
  std::unique_ptr<Member> m;
  std::vector<P2p> requests;  // kRequest actions
  std::vector<P2p> replies;   // kReply and kRequestFailed actions
  bool alive = true;
  std::vector<std::deque<std::vector<std::byte>>*> dummy;
  std::vector<uint64_t> delivered;  // message ids
  std::vector<View> views;
  bool removed = false;
  uint64_t state_sum = 0;
};

// Everything arrives after 1 ms; logs and datagrams alike. Logs keep every record.
class Net {
 public:
  explicit Net(uint32_t n) : nodes_(n), logs_(n), read_(n, std::vector<size_t>(n, 0)) {}

  void start(uint32_t i, bool found, uint32_t incarnation = 1) {
    nodes_[i].m = std::make_unique<Member>(config_, Uid{i, incarnation}, nodes_.size());
    nodes_[i].alive = true;
    logs_[i].clear();
    for (auto& r : read_) r[i] = 0;
    for (auto& x : read_[i]) x = 0;
    if (found) {
      nodes_[i].m->start_group(now_);
    } else {
      std::vector<NodeId> seeds;
      for (uint32_t k = 0; k < nodes_.size(); ++k) seeds.push_back(k);
      nodes_[i].m->start_join(seeds, now_);
    }
    drain(i);
  }

  void crash(uint32_t i) { nodes_[i].alive = false; }

  void send(uint32_t i, Mode mode, uint64_t id) {
    std::byte b[8];
    std::memcpy(b, &id, 8);
    ASSERT_EQ(nodes_[i].m->send(mode, b, now_), SendResult::kOk);
    drain(i);
  }

  void run(TimeNs for_ns) {
    const TimeNs end = now_ + for_ns;
    while (now_ < end) {
      now_ += kMs;
      // datagrams due
      while (!dgrams_.empty() && dgrams_.front().due <= now_) {
        Dgram d = std::move(dgrams_.front());
        dgrams_.pop_front();
        if (!nodes_[d.to].alive || !nodes_[d.to].m) continue;
        nodes_[d.to].m->on_control(d.from, d.bytes, now_);
        drain(d.to);
      }
      for (uint32_t r = 0; r < nodes_.size(); ++r) {
        if (!nodes_[r].alive || !nodes_[r].m) continue;
        for (uint32_t w = 0; w < nodes_.size(); ++w) {
          if (w == r) continue;
          auto& log = logs_[w];
          while (read_[r][w] < log.size() && log[read_[r][w]].first + kMs <= now_) {
            nodes_[r].m->on_record(w, log[read_[r][w]].second, now_);
            ++read_[r][w];
            drain(r);
          }
        }
        nodes_[r].m->end_burst(now_);
        drain(r);
        nodes_[r].m->tick(now_);
        drain(r);
      }
    }
  }

  Node& node(uint32_t i) { return nodes_[i]; }
  ProtocolConfig config_;

 private:
  struct Dgram {
    TimeNs due;
    NodeId from, to;
    std::vector<std::byte> bytes;
  };

  void drain(uint32_t i) {
    Member& m = *nodes_[i].m;
    for (const Action& a : m.actions()) {
      switch (a.kind) {
        case ActionKind::kAppend:
          logs_[i].emplace_back(now_, std::vector<std::byte>(a.bytes.begin(), a.bytes.end()));
          break;
        case ActionKind::kSend:
          dgrams_.push_back(Dgram{now_ + kMs, i, a.to, {a.bytes.begin(), a.bytes.end()}});
          break;
        case ActionKind::kDeliver: {
          uint64_t id = 0;
          std::memcpy(&id, a.delivery.payload.data(), 8);
          nodes_[i].delivered.push_back(id);
          nodes_[i].state_sum += id;
          break;
        }
        case ActionKind::kInstall: nodes_[i].views.push_back(a.view); break;
        case ActionKind::kTakeSnapshot: {
          std::byte b[8];
          std::memcpy(b, &nodes_[i].state_sum, 8);
          m.snapshot_taken(a.view.id, b);
          break;
        }
        case ActionKind::kRestore: std::memcpy(&nodes_[i].state_sum, a.bytes.data(), 8); break;
        case ActionKind::kRemoved:
        case ActionKind::kLeft: nodes_[i].removed = true; break;
        case ActionKind::kCutOff: break;
        case ActionKind::kRequest:
          nodes_[i].requests.push_back(
              P2p{a.p2p.peer, a.p2p.id, {a.p2p.payload.begin(), a.p2p.payload.end()}});
          break;
        case ActionKind::kReply:
        case ActionKind::kRequestFailed:
          nodes_[i].replies.push_back(P2p{a.p2p.peer,
                                          a.p2p.id,
                                          {a.p2p.payload.begin(), a.p2p.payload.end()},
                                          a.kind == ActionKind::kRequestFailed});
          break;
      }
    }
    m.clear_actions();
  }

  TimeNs now_ = kMs;
  std::vector<Node> nodes_;
  std::vector<std::deque<std::pair<TimeNs, std::vector<std::byte>>>> logs_;
  std::vector<std::vector<size_t>> read_;
  std::deque<Dgram> dgrams_;
};

TEST(Member, ThreeJoinAndAgreeOnTotalOrder) {
  Net net(3);
  net.start(0, true);
  net.start(1, false);
  net.start(2, false);
  net.run(500 * kMs);
  for (uint32_t i = 0; i < 3; ++i) {
    ASSERT_EQ(net.node(i).m->state(), MemberState::kActive) << i;
    EXPECT_EQ(net.node(i).m->view().count, 3U) << i;
    EXPECT_TRUE(net.node(i).m->restored()) << i;
  }
  uint64_t id = 1;
  for (int round = 0; round < 50; ++round) {
    for (uint32_t i = 0; i < 3; ++i) {
      net.send(i, static_cast<Mode>(round % 3), id++);
    }
    net.run(kMs);
  }
  net.run(100 * kMs);
  ASSERT_EQ(net.node(0).delivered.size(), 150U);
  EXPECT_EQ(net.node(0).delivered.size(), net.node(1).delivered.size());
  EXPECT_EQ(net.node(0).delivered.size(), net.node(2).delivered.size());
  EXPECT_EQ(net.node(0).state_sum, net.node(1).state_sum);
  EXPECT_EQ(net.node(0).state_sum, net.node(2).state_sum);
}

TEST(Member, CrashOfTheSequencerInstallsAViewOfTheSurvivors) {
  Net net(3);
  net.start(0, true);
  net.start(1, false);
  net.start(2, false);
  net.run(500 * kMs);
  uint64_t id = 1;
  for (int k = 0; k < 20; ++k) {
    for (uint32_t i = 0; i < 3; ++i) net.send(i, Mode::kTotal, id++);
  }
  net.crash(0);
  net.run(1000 * kMs);
  for (uint32_t i = 1; i < 3; ++i) {
    ASSERT_EQ(net.node(i).m->state(), MemberState::kActive) << i;
    EXPECT_EQ(net.node(i).m->view().count, 2U) << i;
  }
  EXPECT_EQ(net.node(1).delivered, net.node(2).delivered);
  net.send(1, Mode::kSafe, 1000);
  net.send(2, Mode::kTotal, 1001);
  net.run(100 * kMs);
  EXPECT_EQ(net.node(1).delivered, net.node(2).delivered);
  EXPECT_EQ(net.node(1).delivered.back() >= 1000, true);
}

TEST(Member, LeaveAndRejoinAsANewIncarnation) {
  Net net(3);
  net.start(0, true);
  net.start(1, false);
  net.start(2, false);
  net.run(500 * kMs);
  net.node(2).m->leave(kMs);
  net.run(300 * kMs);
  EXPECT_EQ(net.node(2).m->state(), MemberState::kLeft);
  EXPECT_EQ(net.node(0).m->view().count, 2U);
  net.start(2, false, 2);
  net.run(500 * kMs);
  EXPECT_EQ(net.node(0).m->view().count, 3U);
  EXPECT_EQ(net.node(2).m->state(), MemberState::kActive);
}

// The per-view window: indices stay absolute while the ring wraps, grows and shrinks.
TEST(Window, KeepsAbsoluteIndicesAcrossWrapGrowthAndShrink) {
  Window<uint64_t> w;
  uint64_t next = 0;
  for (uint64_t round = 0; round < 40000; ++round) {
    w.extend(next + 7);  // 7 in, 5 out: the window drifts and grows
    for (uint64_t i = next; i < next + 7; ++i) w.at(i) = i * 3 + 1;
    next += 7;
    for (int k = 0; k < 5; ++k) {
      ASSERT_EQ(w.front(), w.first() * 3 + 1);
      w.pop_front();
    }
    ASSERT_EQ(w.find(w.first() - 1), nullptr);  // released
    ASSERT_EQ(w.find(w.end()), nullptr);        // not yet named
    ASSERT_NE(w.find(w.end() - 1), nullptr);
    ASSERT_EQ(w.at(w.end() - 1), (w.end() - 1) * 3 + 1);
  }
  EXPECT_EQ(w.first(), 200'000U);
  EXPECT_EQ(w.size(), 80'000U);
  const size_t big = w.capacity();
  while (w.size() > 100) w.pop_front();
  w.shrink();
  EXPECT_LT(w.capacity(), big);
  for (uint64_t i = w.first(); i < w.end(); ++i) ASSERT_EQ(w.at(i), i * 3 + 1);
  w.extend(w.end() + 3);  // new elements are value-initialized, even in reused slots
  EXPECT_EQ(w.at(w.end() - 1), 0U);
}

// Own payloads: bytes stay put until released, chunks are reused, nothing grows in a flow.
TEST(PayloadArena, ReusesChunksOnceReleased) {
  PayloadArena a;
  std::vector<std::byte> payload(1000);
  std::vector<std::span<const std::byte>> kept;
  for (uint32_t sseq = 1; sseq <= 100'000; ++sseq) {
    std::memcpy(payload.data(), &sseq, 4);
    kept.push_back(a.put(payload, sseq));
    if (sseq > 200) a.release(sseq - 200);  // 200 in flight, ~200 KB
    ASSERT_LE(a.chunks(), 5U);
  }
  for (uint32_t sseq = 99'801; sseq <= 100'000; ++sseq) {
    uint32_t got = 0;
    std::memcpy(&got, kept[sseq - 1].data(), 4);
    ASSERT_EQ(got, sseq);
  }
  a.release(100'000);
  EXPECT_EQ(a.chunks(), 0U);
}

std::vector<std::byte> data_record(ViewId view, uint8_t rank, uint32_t sseq) {
  std::vector<std::byte> out;
  Writer w(&out);
  put_record_head(w, RecordKind::kData, Uid{rank, 1}, view);
  DataBody d{};
  d.rank = rank;
  d.sseq = sseq;
  const std::byte payload[4] = {};
  d.payload = payload;
  put_data(w, d);
  return out;
}

// A chunk's tag: the highest view, per sender the highest sseq in it, older views' data apart.
TEST(RecordTag, NotesTheNewestViewPerSenderAndTheOlderOne) {
  RecordTag t;
  t.note(data_record(4, 1, 10));
  t.note(data_record(4, 1, 7));
  t.note(data_record(4, 2, 3));
  EXPECT_EQ(t.view, 4U);
  EXPECT_EQ(t.sseq[1], 10U);
  EXPECT_EQ(t.sseq[2], 3U);
  EXPECT_EQ(t.older, 0U);
  t.note(data_record(5, 0, 1));  // a view change inside the chunk
  EXPECT_EQ(t.view, 5U);
  EXPECT_EQ(t.sseq[0], 1U);
  EXPECT_EQ(t.sseq[1], 0U);
  EXPECT_EQ(t.older, 4U);
  const std::byte garbage[8] = {};
  t.note(garbage);  // not a record: every member drops it
  EXPECT_EQ(t.view, 5U);
  t.note(data_record(1'000'000, 3, 9));  // a view far ahead: the rest becomes `older`
  EXPECT_EQ(t.view, 1'000'000U);
  EXPECT_EQ(t.older, 5U);
}

// A member in a long view gives back what every member holds: after a flow it points into no
// record of it, and keeps no message.
TEST(Member, ReleasesWhatEveryMemberHoldsWithinTheView) {
  Net net(3);
  net.start(0, true);
  net.start(1, false);
  net.start(2, false);
  net.run(500 * kMs);
  const ViewId view = net.node(0).m->view().id;
  for (uint32_t i = 0; i < 300; ++i) {
    net.send(i % 3, static_cast<Mode>(i % 3), 1'000'000 + i);
    net.run(kMs);
  }
  net.run(100 * kMs);
  for (uint32_t n = 0; n < 3; ++n) {
    const Member& m = *net.node(n).m;
    ASSERT_EQ(m.view().id, view);
    const Member::Footprint f = m.footprint();
    EXPECT_EQ(f.msgs, 0U);
    EXPECT_EQ(f.order, 0U);
    EXPECT_EQ(f.released_gseq, 300U);
    EXPECT_EQ(f.own_chunks, 0U);
    RecordTag t;
    t.note(data_record(view, 1, 1));
    EXPECT_FALSE(m.holds(t)) << "node " << n;  // released: the driver may free it
    RecordTag next;
    next.note(data_record(view + 1, 1, 1));
    EXPECT_TRUE(m.holds(next)) << "node " << n;  // a view not installed yet is kept
  }
}

}  // namespace
}  // namespace cohort::membership
