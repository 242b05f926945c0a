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
#include "membership/protocol/request_table.h"
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
  size_t final_at_reply = 0;  // replies.size() when kLeft/kRemoved came
  uint64_t state_sum = 0;
};

// Everything arrives after 1 ms; logs and datagrams alike. Logs keep every record.
class Net {
 public:
  explicit Net(uint32_t n) : nodes_(n), logs_(n), read_(n, std::vector<size_t>(n, 0)) {}

  // A joiner asks `seeds`, or every node when none are given.
  void start(uint32_t i, bool found, uint32_t incarnation = 1, std::vector<NodeId> seeds = {}) {
    nodes_[i].m = std::make_unique<Member>(config_, Uid{i, incarnation}, nodes_.size());
    nodes_[i].alive = true;
    logs_[i].clear();
    for (auto& r : read_) r[i] = 0;
    for (auto& x : read_[i]) x = 0;
    if (found) {
      nodes_[i].m->start_group(now_);
    } else {
      if (seeds.empty()) {
        for (uint32_t k = 0; k < nodes_.size(); ++k) seeds.push_back(k);
      }
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

  // Sends every id in one call burst: the actions are carried out once, after the last.
  void send_burst(uint32_t i, Mode mode, std::span<const uint64_t> ids) {
    for (const uint64_t id : ids) {
      std::byte b[8];
      std::memcpy(b, &id, 8);
      ASSERT_EQ(nodes_[i].m->send(mode, b, now_), SendResult::kOk);
    }
    drain(i);
  }
  // Appends raw bytes to node i's log, as if its member had written them.
  void inject(uint32_t i, std::vector<std::byte> record) {
    logs_[i].emplace_back(now_, std::move(record));
  }
  // The records in node i's log whose kind is `kind`.
  size_t records_of(uint32_t i, RecordKind kind) const {
    size_t n = 0;
    for (const auto& [at, bytes] : logs_[i]) {
      Reader r(bytes);
      RecordHead h{};
      n += get_record_head(r, &h) && h.kind == kind ? 1 : 0;
    }
    return n;
  }
  // The largest record in node i's log.
  size_t largest_record(uint32_t i) const {
    size_t n = 0;
    for (const auto& [at, bytes] : logs_[i]) n = std::max(n, bytes.size());
    return n;
  }
  SendResult request(uint32_t i, Uid to, uint64_t id, std::span<const std::byte> payload) {
    const SendResult r = nodes_[i].m->send_request(to, id, payload, now_);
    drain(i);
    return r;
  }
  SendResult reply(uint32_t i, Uid to, uint64_t id, std::span<const std::byte> payload) {
    const SendResult r = nodes_[i].m->send_reply(to, id, payload, now_);
    drain(i);
    return r;
  }
  // Delivers a control message to node `to` as if it came from node `from`.
  void inject_control(uint32_t to, uint32_t from, std::span<const std::byte> bytes) {
    nodes_[to].m->on_control(from, bytes, now_);
    drain(to);
  }
  // Delivers `record` to node `to` as if read from `from`'s log.
  void inject(uint32_t to, uint32_t from, std::span<const std::byte> record) {
    nodes_[to].m->on_record(from, record, now_);
    drain(to);
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
  size_t snapshot_bytes = 8;  // what the application's snapshot() returns (its state, padded)

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
        case ActionKind::kInstall: nodes_[i].views.push_back(*a.view); break;
        case ActionKind::kTakeSnapshot: {
          std::vector<std::byte> b(std::max<size_t>(snapshot_bytes, 8));
          std::memcpy(b.data(), &nodes_[i].state_sum, 8);
          m.snapshot_taken(a.view->id, b);
          break;
        }
        case ActionKind::kRestore: std::memcpy(&nodes_[i].state_sum, a.bytes.data(), 8); break;
        case ActionKind::kRemoved:
        case ActionKind::kLeft:
          nodes_[i].removed = true;
          nodes_[i].final_at_reply = nodes_[i].replies.size();
          break;
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
    // Joiners ask every member; those that are not the leader pass the JOIN on.
    EXPECT_EQ(net.node(i).m->counters().control_malformed, 0U) << i;
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

// A joiner that reaches only a member other than the leader: that member passes its JOIN on
// under the joiner's name, and the leader takes it, as no malformed message.
TEST(Member, AJoinThatReachesOnlyANonLeaderIsPassedOnToTheLeader) {
  Net net(4);
  net.start(0, true);
  net.start(1, false);
  net.start(2, false);
  net.run(500 * kMs);
  ASSERT_EQ(net.node(0).m->view().count, 3U);
  net.start(3, false, 1, {2});
  net.run(500 * kMs);
  for (uint32_t i = 0; i < 4; ++i) {
    ASSERT_EQ(net.node(i).m->state(), MemberState::kActive) << i;
    EXPECT_EQ(net.node(i).m->view().count, 4U) << i;
    EXPECT_EQ(net.node(i).m->counters().control_malformed, 0U) << i;
  }
  EXPECT_TRUE(net.node(3).m->restored());
}

// A JOIN of an incarnation older than the one in the view, arriving late at the leader, both
// straight and passed on by another member: that incarnation is dead, and nothing changes. (It
// used to push its way into the leader's pending joins, where it could never be decided, and
// the leader started a view change for it at every tick.)
TEST(Member, ALateJoinOfAnOlderIncarnationChangesNothing) {
  Net net(3);
  net.start(0, true);
  net.start(1, false);
  net.start(2, false, 5);
  net.run(500 * kMs);
  ASSERT_EQ(net.node(0).m->view().count, 3U);
  const ViewId before = net.node(0).m->view().id;
  std::vector<std::byte> join;
  Writer w(&join);
  put_control_head(w, ControlKind::kJoin, Uid{2, 3}, 0);
  net.inject_control(0, 2, join);  // straight to the leader, late
  net.inject_control(1, 2, join);  // to a member that passes it on
  net.run(300 * kMs);
  for (uint32_t i = 0; i < 3; ++i) {
    ASSERT_EQ(net.node(i).m->state(), MemberState::kActive) << i;
    EXPECT_EQ(net.node(i).m->view().id, before) << i;
    EXPECT_EQ(net.node(i).m->view().count, 3U) << i;
    EXPECT_EQ(net.node(i).m->counters().control_malformed, 0U) << i;
  }
  EXPECT_TRUE(net.node(0).m->view().contains(Uid{2, 5}));
}

// An application snapshot over the 64 MiB limit is not kept: the joiner it was for finds none
// anywhere and gives up (removed), rather than asking for ever for chunks it must refuse.
TEST(Member, ASnapshotOverTheLimitRemovesTheJoinerInsteadOfHangingIt) {
  Net net(3);
  net.start(0, true);
  net.start(1, false);
  net.run(300 * kMs);
  ASSERT_EQ(net.node(0).m->view().count, 2U);
  net.snapshot_bytes = kMaxSnapshotBytes + 1;
  net.start(2, false);
  net.run(3000 * kMs);
  EXPECT_TRUE(net.node(2).removed);
  EXPECT_EQ(net.node(2).m->state(), MemberState::kRemoved);
  EXPECT_FALSE(net.node(2).m->restored());
  for (uint32_t i = 0; i < 2; ++i) {
    EXPECT_EQ(net.node(i).m->counters().snapshots_too_large, 1U) << i;
    EXPECT_EQ(net.node(i).m->state(), MemberState::kActive) << i;
    EXPECT_EQ(net.node(i).m->view().count, 2U) << i;
  }
  for (uint32_t i = 0; i < 3; ++i) {
    EXPECT_EQ(net.node(i).m->counters().control_malformed, 0U) << i;
  }
}

// A late JOIN of an incarnation that was removed is answered NOT_MEMBER, to its node, where a
// new incarnation is joining: that answer names the incarnation it is for, and the new one
// goes on joining.
TEST(Member, ANotMemberForADeadIncarnationDoesNotEndTheNewOnesJoin) {
  Net net(3);
  net.start(0, true);
  net.start(1, false);
  net.start(2, false, 3);
  net.run(500 * kMs);
  ASSERT_EQ(net.node(0).m->view().count, 3U);
  net.crash(2);
  net.run(1000 * kMs);
  ASSERT_EQ(net.node(0).m->view().count, 2U);
  net.start(2, false, 5);
  std::vector<std::byte> join;
  Writer w(&join);
  put_control_head(w, ControlKind::kJoin, Uid{2, 3}, 0);
  net.inject_control(0, 2, join);  // the dead incarnation's JOIN, late
  net.run(500 * kMs);
  EXPECT_EQ(net.node(2).m->state(), MemberState::kActive);
  EXPECT_TRUE(net.node(0).m->view().contains(Uid{2, 5}));
  for (uint32_t i = 0; i < 3; ++i) {
    EXPECT_EQ(net.node(i).m->counters().control_malformed, 0U) << i;
  }
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
  w.u16(1);  // a batch of one
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

// What one call burst sends leaves as one DATA record, delivered alike everywhere.
TEST(Member, SendsOfOneBurstLeaveAsOneDataRecord) {
  Net net(3);
  net.start(0, true);
  net.start(1, false);
  net.start(2, false);
  net.run(300 * kMs);
  ASSERT_EQ(net.node(2).views.back().count, 3U);
  const size_t before = net.records_of(1, RecordKind::kData);
  const uint64_t ids[] = {11, 12, 13, 14, 15};
  net.send_burst(1, Mode::kTotal, ids);
  EXPECT_EQ(net.records_of(1, RecordKind::kData), before + 1);
  net.run(20 * kMs);
  for (uint32_t i = 0; i < 3; ++i) {
    ASSERT_EQ(net.node(i).delivered.size(), 5U) << "member " << i;
    EXPECT_EQ(net.node(i).delivered, net.node(0).delivered);
  }
}

// A batch closes before it would outgrow the largest record the log takes, and a message too
// large for a record of its own is refused at send() (the log would refuse the record).
TEST(Member, DataBatchesStayWithinTheLargestRecord) {
  Net net(3);
  net.config_.max_record_bytes = 200;
  net.start(0, true);
  net.start(1, false);
  net.start(2, false);
  net.run(300 * kMs);
  ASSERT_EQ(net.node(2).views.back().count, 3U);
  std::vector<uint64_t> ids;
  for (uint64_t id = 1; id <= 20; ++id) ids.push_back(id);
  net.send_burst(1, Mode::kTotal, ids);
  EXPECT_LE(net.largest_record(1), 200U);
  EXPECT_GE(net.records_of(1, RecordKind::kData), 4U);  // 6 entries of 26 bytes fit in 200
  net.run(20 * kMs);
  for (uint32_t i = 0; i < 3; ++i) EXPECT_EQ(net.node(i).delivered.size(), 20U) << i;
  const std::vector<std::byte> big(200 - 40 + 1);
  EXPECT_EQ(net.node(1).m->send(Mode::kTotal, big, 0), SendResult::kTooLarge);
  const std::vector<std::byte> fits(200 - 40);
  EXPECT_EQ(net.node(1).m->send(Mode::kTotal, fits, 0), SendResult::kOk);
}

// A DATA record that breaks any rule of a batch is dropped whole and counted; the members go
// on delivering.
TEST(Member, MalformedDataBatchesAreDroppedWhole) {
  Net net(3);
  net.start(0, true);
  net.start(1, false);
  net.start(2, false);
  net.run(300 * kMs);
  const View view = net.node(0).views.back();
  ASSERT_EQ(view.count, 3U);
  const Uid writer = view.members[2];
  const uint8_t rank = 2;
  auto batch = [&](uint16_t count, std::initializer_list<std::pair<uint8_t, uint32_t>> entries,
                   bool trailing) {
    std::vector<std::byte> out;
    Writer w(&out);
    put_record_head(w, RecordKind::kData, writer, view.id);
    w.u16(count);
    const std::byte payload[8] = {};
    for (const auto& [r, sseq] : entries) {
      DataBody d{};
      d.rank = r;
      d.sseq = sseq;
      d.payload = payload;
      put_data(w, d);
    }
    if (trailing) w.u8(0);
    return out;
  };
  const uint64_t malformed0 = net.node(0).m->counters().records_malformed;
  const uint64_t malformed1 = net.node(1).m->counters().records_malformed;
  net.inject(2, batch(2, {{rank, 1}, {rank, 3}}, false));  // sseqs not consecutive
  net.inject(2, batch(2, {{rank, 1}, {1, 2}}, false));     // an entry of another rank
  net.inject(2, batch(3, {{rank, 1}, {rank, 2}}, false));  // fewer entries than the count
  net.inject(2, batch(1, {{rank, 1}}, true));              // bytes after the last entry
  net.inject(2, batch(0, {}, false));                      // an empty batch
  net.run(20 * kMs);
  EXPECT_EQ(net.node(0).m->counters().records_malformed, malformed0 + 5);
  EXPECT_EQ(net.node(1).m->counters().records_malformed, malformed1 + 5);
  EXPECT_TRUE(net.node(0).delivered.empty());
  net.send(0, Mode::kTotal, 21);
  net.send(2, Mode::kTotal, 22);
  net.run(20 * kMs);
  for (uint32_t i = 0; i < 3; ++i) {
    ASSERT_EQ(net.node(i).delivered.size(), 2U) << "member " << i;
    EXPECT_EQ(net.node(i).delivered, net.node(0).delivered);
  }
}

// ---------------------------------------------------------------------------------------------
// Point-to-point (membership/protocol/NOTES.md, "Point-to-point")

std::vector<std::byte> bytes_of(const char* text) {
  std::vector<std::byte> out;
  for (const char* c = text; *c != '\0'; ++c) out.push_back(static_cast<std::byte>(*c));
  return out;
}

std::vector<std::byte> p2p_record(Uid writer, ViewId view, const P2pBody& body) {
  std::vector<std::byte> out;
  Writer w(&out);
  put_record_head(w, RecordKind::kP2p, writer, view);
  put_p2p(w, body);
  return out;
}

TEST(Codec, P2pRoundTripsAndRefusesEveryMalformedForm) {
  const std::vector<std::byte> payload = bytes_of("hello");
  const P2pBody sent{P2pType::kReply, Uid{3, 9}, 42, payload};
  const std::vector<std::byte> rec = p2p_record(Uid{1, 2}, 5, sent);
  Reader r(rec);
  RecordHead h{};
  ASSERT_TRUE(get_record_head(r, &h));
  EXPECT_EQ(h.kind, RecordKind::kP2p);
  P2pBody got{};
  ASSERT_TRUE(get_p2p(r, &got));
  EXPECT_EQ(got.type, P2pType::kReply);
  EXPECT_EQ(got.target, (Uid{3, 9}));
  EXPECT_EQ(got.id, 42U);
  EXPECT_EQ(std::vector<std::byte>(got.payload.begin(), got.payload.end()), payload);

  const size_t body_at = rec.size() - (1 + 8 + 8 + 4 + payload.size());
  auto body_ok = [&](const std::vector<std::byte>& bytes) {
    Reader rr(std::span<const std::byte>(bytes).subspan(body_at));
    P2pBody b{};
    return get_p2p(rr, &b);
  };
  // Truncated anywhere in the body.
  for (size_t cut = body_at; cut < rec.size(); ++cut) {
    EXPECT_FALSE(body_ok(std::vector<std::byte>(rec.begin(), rec.begin() + cut))) << cut;
  }
  // A trailing byte, a length that says more or less than there is.
  std::vector<std::byte> longer = rec;
  longer.push_back(std::byte{0});
  EXPECT_FALSE(body_ok(longer));
  const size_t length_at = body_at + 17;
  for (const uint32_t bad : {6U, 4U, 0U, 0xffffffffU}) {
    std::vector<std::byte> b = rec;
    std::memcpy(b.data() + length_at, &bad, 4);
    EXPECT_FALSE(body_ok(b)) << bad;
  }
  // A type that is neither request nor reply; a target with no incarnation or past the slots.
  for (const int type : {0, 3, 255}) {
    std::vector<std::byte> b = rec;
    b[body_at] = static_cast<std::byte>(type);
    EXPECT_FALSE(body_ok(b)) << type;
  }
  EXPECT_FALSE(body_ok(p2p_record(Uid{1, 2}, 5, P2pBody{P2pType::kRequest, Uid{3, 0}, 1, {}})));
  EXPECT_FALSE(
      body_ok(p2p_record(Uid{1, 2}, 5, P2pBody{P2pType::kRequest, Uid{kMaxMembers, 1}, 1, {}})));
}

// Three members in one view: every test of this part starts here.
Net three_members() {
  Net net(3);
  net.start(0, true);
  net.start(1, false);
  net.start(2, false);
  net.run(500 * kMs);
  for (uint32_t i = 0; i < 3; ++i) EXPECT_EQ(net.node(i).m->view().count, 3U);
  return net;
}

TEST(MemberP2p, RequestReachesOnlyItsTargetAndTheReplyComesBack) {
  Net net = three_members();
  const Uid a = net.node(0).m->self(), b = net.node(1).m->self();
  ASSERT_EQ(net.request(0, b, 7, bytes_of("ping")), SendResult::kOk);
  EXPECT_EQ(net.node(0).m->outstanding_requests(), 1U);
  net.run(5 * kMs);
  ASSERT_EQ(net.node(1).requests.size(), 1U);
  const P2p req = net.node(1).requests[0];
  EXPECT_EQ(req.peer, a);
  EXPECT_EQ(req.id, 7U);
  EXPECT_EQ(req.payload, bytes_of("ping"));
  EXPECT_TRUE(net.node(2).requests.empty());  // read the record, skipped it
  EXPECT_EQ(net.node(2).m->counters().records_malformed, 0U);
  ASSERT_EQ(net.reply(1, req.peer, req.id, bytes_of("pong")), SendResult::kOk);
  net.run(5 * kMs);
  ASSERT_EQ(net.node(0).replies.size(), 1U);
  EXPECT_EQ(net.node(0).replies[0].peer, b);
  EXPECT_EQ(net.node(0).replies[0].id, 7U);
  EXPECT_EQ(net.node(0).replies[0].payload, bytes_of("pong"));
  EXPECT_FALSE(net.node(0).replies[0].failed);
  EXPECT_EQ(net.node(0).m->outstanding_requests(), 0U);
  EXPECT_TRUE(net.node(2).replies.empty());
  EXPECT_EQ(net.node(0).m->counters().p2p_requests_sent, 1U);
  EXPECT_EQ(net.node(1).m->counters().p2p_requests_received, 1U);
  EXPECT_EQ(net.node(1).m->counters().p2p_replies_sent, 1U);
  EXPECT_EQ(net.node(0).m->counters().p2p_replies_received, 1U);
  // The same reply again (a duplicate) answers nothing: exactly one answer per request.
  ASSERT_EQ(net.reply(1, req.peer, req.id, bytes_of("pong")), SendResult::kOk);
  net.run(5 * kMs);
  EXPECT_EQ(net.node(0).replies.size(), 1U);
  EXPECT_EQ(net.node(0).m->counters().p2p_dropped, 1U);
}

TEST(MemberP2p, RefusesWhatItCannotSend) {
  Net net = three_members();
  Member& m = *net.node(0).m;
  const Uid b = net.node(1).m->self();
  EXPECT_EQ(net.request(0, m.self(), 1, {}), SendResult::kNotMember);    // itself
  EXPECT_EQ(net.request(0, Uid{1, 99}, 1, {}), SendResult::kNotMember);  // not in the view
  EXPECT_EQ(net.request(0, Uid{5, 1}, 1, {}), SendResult::kNotMember);   // no such member
  const std::vector<std::byte> big(net.config_.max_payload_bytes + 1);
  EXPECT_EQ(net.request(0, b, 1, big), SendResult::kTooLarge);
  EXPECT_EQ(net.reply(0, b, 1, big), SendResult::kTooLarge);
  EXPECT_EQ(m.outstanding_requests(), 0U);
  // A reply to a requester not in the view goes nowhere, harmlessly.
  EXPECT_EQ(net.reply(0, Uid{1, 99}, 1, bytes_of("x")), SendResult::kOk);
  EXPECT_EQ(m.counters().p2p_dropped, 1U);
  EXPECT_EQ(m.counters().p2p_replies_sent, 0U);
}

TEST(MemberP2p, TheLimitOnOutstandingRequestsSaysFull) {
  Net net(2);
  net.config_.max_outstanding_requests = 2;
  net.start(0, true);
  net.start(1, false);
  net.run(500 * kMs);
  const Uid b = net.node(1).m->self();
  EXPECT_EQ(net.request(0, b, 1, {}), SendResult::kOk);
  EXPECT_EQ(net.request(0, b, 2, {}), SendResult::kOk);
  EXPECT_EQ(net.request(0, b, 3, {}), SendResult::kFull);
  net.run(5 * kMs);
  ASSERT_EQ(net.node(1).requests.size(), 2U);
  ASSERT_EQ(net.reply(1, net.node(0).m->self(), 2, {}), SendResult::kOk);
  net.run(5 * kMs);
  EXPECT_EQ(net.request(0, b, 3, {}), SendResult::kOk);  // room again
}

TEST(MemberP2p, AReplyNobodyAskedForIsDropped) {
  Net net = three_members();
  ASSERT_EQ(net.reply(1, net.node(0).m->self(), 999, bytes_of("stray")), SendResult::kOk);
  net.run(5 * kMs);
  EXPECT_TRUE(net.node(0).replies.empty());
  EXPECT_EQ(net.node(0).m->counters().p2p_dropped, 1U);
  EXPECT_EQ(net.node(0).m->counters().records_malformed, 0U);
}

TEST(MemberP2p, ATargetThatCrashesFailsItsRequestsAtTheNextView) {
  Net net = three_members();
  const Uid c = net.node(2).m->self();
  net.crash(2);
  ASSERT_EQ(net.request(0, c, 1, bytes_of("a")), SendResult::kOk);
  ASSERT_EQ(net.request(0, c, 2, bytes_of("b")), SendResult::kOk);
  ASSERT_EQ(net.request(0, net.node(1).m->self(), 3, bytes_of("c")), SendResult::kOk);
  net.run(1000 * kMs);
  ASSERT_EQ(net.node(0).m->view().count, 2U);
  ASSERT_EQ(net.node(0).replies.size(), 2U);
  for (const P2p& r : net.node(0).replies) {
    EXPECT_TRUE(r.failed);
    EXPECT_EQ(r.peer, c);
    EXPECT_TRUE(r.payload.empty());
  }
  EXPECT_EQ(net.node(0).m->counters().p2p_failed, 2U);
  EXPECT_EQ(net.node(0).m->outstanding_requests(), 1U);  // to node 1, still in the view
  ASSERT_EQ(net.node(1).requests.size(), 1U);
}

// A request to an old incarnation fails; the new incarnation on that node, which reads the
// same log, never sees it.
TEST(MemberP2p, ARequestToAnOldIncarnationNeverReachesTheNewOne) {
  Net net = three_members();
  const Uid old = net.node(2).m->self();
  net.crash(2);
  ASSERT_EQ(net.request(0, old, 1, bytes_of("old")), SendResult::kOk);
  net.run(1000 * kMs);
  net.start(2, false, 2);  // reads node 0's log from its start, the request included
  net.run(1000 * kMs);
  ASSERT_EQ(net.node(0).m->view().count, 3U);
  EXPECT_TRUE(net.node(2).requests.empty());
  ASSERT_EQ(net.node(0).replies.size(), 1U);
  EXPECT_TRUE(net.node(0).replies[0].failed);
  EXPECT_EQ(net.node(0).replies[0].peer, old);
}

TEST(MemberP2p, ALeaverFailsEveryOutstandingRequestBeforeItLeaves) {
  Net net = three_members();
  ASSERT_EQ(net.request(2, net.node(0).m->self(), 1, {}), SendResult::kOk);
  ASSERT_EQ(net.request(2, net.node(1).m->self(), 2, {}), SendResult::kOk);
  net.node(2).m->leave(kMs);
  net.run(300 * kMs);
  ASSERT_TRUE(net.node(2).removed);
  EXPECT_EQ(net.node(2).m->state(), MemberState::kLeft);
  ASSERT_EQ(net.node(2).replies.size(), 2U);
  EXPECT_EQ(net.node(2).final_at_reply, 2U);  // both answered before kLeft
  for (const P2p& r : net.node(2).replies) EXPECT_TRUE(r.failed);
  // Their targets got the requests; the replies to a member gone are dropped at the source.
  ASSERT_EQ(net.node(0).requests.size(), 1U);
  EXPECT_EQ(net.reply(0, net.node(2).m->self(), 1, {}), SendResult::kOk);
  EXPECT_EQ(net.node(0).m->counters().p2p_dropped, 1U);
}

TEST(MemberP2p, MalformedP2pRecordsAreCountedAndDropped) {
  Net net = three_members();
  const Uid a = net.node(0).m->self(), b = net.node(1).m->self();
  const ViewId v = net.node(1).m->view().id;
  std::vector<std::byte> rec = p2p_record(a, v, P2pBody{P2pType::kRequest, b, 5, {}});
  rec.pop_back();  // the length field is cut
  net.inject(1, 0, rec);
  rec = p2p_record(a, v, P2pBody{P2pType::kRequest, b, 5, {}});
  rec[rec.size() - 21] = std::byte{9};  // the type
  net.inject(1, 0, rec);
  EXPECT_EQ(net.node(1).m->counters().records_malformed, 2U);
  EXPECT_TRUE(net.node(1).requests.empty());
  // A well-formed request from a Uid not in the view: dropped, counted as p2p.
  net.inject(1, 2, p2p_record(Uid{2, 77}, v, P2pBody{P2pType::kRequest, b, 5, {}}));
  EXPECT_TRUE(net.node(1).requests.empty());
  EXPECT_EQ(net.node(1).m->counters().p2p_dropped, 1U);
}

// The table against a plain map, through inserts, takes and failures, with wrap-around probing.
TEST(RequestTable, MatchesAMapThroughInsertsTakesAndFailures) {
  RequestTable t(64);
  std::map<uint64_t, Uid> model;
  uint64_t x = 12345;
  for (int step = 0; step < 20'000; ++step) {
    x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    const uint64_t id = (x >> 33) % 200;
    const Uid target{static_cast<NodeId>((x >> 20) % 4), 1};
    const int op = static_cast<int>((x >> 40) % 10);
    if (op < 5) {
      if (t.full() || model.contains(id)) continue;
      t.insert(id, target);
      model[id] = target;
    } else if (op < 9) {
      const auto it = model.find(id);
      const bool expect = it != model.end() && it->second == target;
      ASSERT_EQ(t.take(id, target), expect) << step;
      if (expect) model.erase(it);
    } else {
      const NodeId gone = static_cast<NodeId>((x >> 50) % 4);
      std::map<uint64_t, Uid> failed;
      t.fail_if([&](Uid u) { return u.node == gone; },
                [&](uint64_t i, Uid u) { ASSERT_TRUE(failed.emplace(i, u).second); });
      std::erase_if(model, [&](const auto& e) {
        if (e.second.node != gone) return false;
        EXPECT_TRUE(failed.contains(e.first));
        return true;
      });
      ASSERT_EQ(failed.size() + model.size(), failed.size() + t.size());
    }
    ASSERT_EQ(t.size(), model.size());
    for (const auto& [i, u] : model) ASSERT_TRUE(t.contains(i));
  }
}

}  // namespace
}  // namespace cohort::membership
