// The simulated network (transport/sim): what the protocol simulator relies on it for.
#include "transport/sim/sim_net.h"

#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <vector>

namespace cohort::transport::sim {
namespace {

constexpr TimeNs kMs = 1'000'000;

std::vector<std::byte> word(uint64_t v) {
  std::vector<std::byte> b(8);
  std::memcpy(b.data(), &v, 8);
  return b;
}

uint64_t value(std::span<const std::byte> b) {
  uint64_t v = 0;
  std::memcpy(&v, b.data(), std::min<size_t>(8, b.size()));
  return v;
}

struct Got {
  ItemKind kind;
  NodeId from, to;
  uint64_t value;
  TimeNs at;
};

// Pops everything due up to `until`, stepping in 100 us.
std::vector<Got> drain(SimNet& net, TimeNs from, TimeNs until) {
  std::vector<Got> out;
  for (TimeNs t = from; t <= until; t += 100'000) {
    Item it;
    while (net.pop(t, &it)) out.push_back(Got{it.kind, it.from, it.to, value(it.bytes), it.at});
  }
  return out;
}

std::vector<uint64_t> records_at(const std::vector<Got>& got, NodeId from, NodeId to) {
  std::vector<uint64_t> v;
  for (const Got& g : got) {
    if (g.kind == ItemKind::kRecord && g.from == from && g.to == to) v.push_back(g.value);
  }
  return v;
}

TEST(SimNet, LogLinksAreFifoAndReliableUnderJitter) {
  SimNet net(3, 7);
  LinkFaults f;
  f.log_delay_min_ns = 10'000;
  f.log_delay_max_ns = 5 * kMs;  // jitter far wider than the gap between appends
  f.loss = 0.5;                  // applies to datagrams only
  net.set_all_faults(f);
  for (NodeId n = 0; n < 3; ++n) net.start(n, 0);
  for (uint64_t i = 0; i < 500; ++i) {
    const NodeId w = static_cast<NodeId>(i % 3);
    net.append(w, word(i), i * 10'000);
  }
  const auto got = drain(net, 0, 100 * kMs);
  for (NodeId w = 0; w < 3; ++w) {
    for (NodeId r = 0; r < 3; ++r) {
      if (w == r) {
        EXPECT_TRUE(records_at(got, w, r).empty());
        continue;
      }
      std::vector<uint64_t> want;
      for (uint64_t i = w; i < 500; i += 3) want.push_back(i);
      EXPECT_EQ(records_at(got, w, r), want) << w << "->" << r;
    }
  }
}

TEST(SimNet, PartitionStallsALinkOneWayAndTheHealResumesIt) {
  SimNet net(2, 1);
  net.start(0, 0);
  net.start(1, 0);
  net.append(0, word(1), 0);
  net.append(1, word(100), 0);
  net.set_connected(0, 1, false, 0);  // 0 -> 1 only
  net.append(0, word(2), 0);
  net.append(1, word(101), 0);
  auto got = drain(net, 0, 50 * kMs);
  EXPECT_TRUE(records_at(got, 0, 1).empty());  // the in-flight record stalled too
  EXPECT_EQ(records_at(got, 1, 0), (std::vector<uint64_t>{100, 101}));
  net.send(0, 1, word(7), 50 * kMs);  // a datagram over the cut link is dropped
  net.heal(60 * kMs);
  net.append(0, word(3), 60 * kMs);
  got = drain(net, 60 * kMs, 100 * kMs);
  EXPECT_EQ(records_at(got, 0, 1), (std::vector<uint64_t>{1, 2, 3}));
  for (const Got& g : got) {
    EXPECT_FALSE(g.kind == ItemKind::kDatagram);
    EXPECT_GE(g.at, 60 * kMs);
  }
  EXPECT_EQ(net.counters().datagrams_partitioned, 1U);
}

TEST(SimNet, CrashKeepsARandomPrefixOfWhatWasInFlightPerReader) {
  // Over many seeds, a crashed writer's readers each keep a prefix (possibly empty, possibly
  // all) of what was in flight, independently, so survivors can disagree on what they hold.
  bool saw_partial = false, saw_none = false, saw_all = false, saw_disagree = false;
  for (uint64_t seed = 1; seed <= 200; ++seed) {
    SimNet net(3, seed);
    LinkFaults f;
    f.log_delay_min_ns = 1 * kMs;
    f.log_delay_max_ns = 2 * kMs;
    net.set_all_faults(f);
    for (NodeId n = 0; n < 3; ++n) net.start(n, 0);
    for (uint64_t i = 0; i < 10; ++i) net.append(0, word(i), 0);
    net.crash(0, 500'000);  // before anything arrived
    const auto got = drain(net, 500'000, 50 * kMs);
    const auto a = records_at(got, 0, 1);
    const auto b = records_at(got, 0, 2);
    for (const auto& v : {a, b}) {
      for (size_t i = 0; i < v.size(); ++i) ASSERT_EQ(v[i], i);  // a prefix, in order
      saw_none |= v.empty();
      saw_all |= v.size() == 10;
      saw_partial |= !v.empty() && v.size() < 10;
    }
    saw_disagree |= a.size() != b.size();
  }
  EXPECT_TRUE(saw_partial && saw_none && saw_all && saw_disagree);
}

TEST(SimNet, ARestartedNodeWritesANewLogAndReadsOthersFromTheBeginning) {
  SimNet net(2, 3);
  net.start(0, 0);
  net.start(1, 0);
  net.append(0, word(1), 0);
  net.append(1, word(10), 0);
  drain(net, 0, 10 * kMs);
  net.crash(1, 10 * kMs);
  net.append(0, word(2), 10 * kMs);  // to nobody: node 1 is down
  net.start(1, 20 * kMs);
  EXPECT_EQ(net.generation(1), 2U);
  EXPECT_EQ(net.log_size(1), 0U);
  net.append(1, word(20), 20 * kMs);
  const auto got = drain(net, 20 * kMs, 40 * kMs);
  EXPECT_EQ(records_at(got, 0, 1), (std::vector<uint64_t>{1, 2}));
  EXPECT_EQ(records_at(got, 1, 0), (std::vector<uint64_t>{20}));
}

TEST(SimNet, APausedNodeGetsWhatArrivedOnResumeInOrder) {
  SimNet net(2, 5);
  net.start(0, 0);
  net.start(1, 0);
  net.pause(1, 0);
  for (uint64_t i = 0; i < 5; ++i) net.append(0, word(i), i * kMs);
  net.send(0, 1, word(99), 0);
  auto got = drain(net, 0, 20 * kMs);
  EXPECT_TRUE(got.empty());
  net.resume(1, 20 * kMs);
  net.append(0, word(5), 20 * kMs);
  got = drain(net, 20 * kMs, 30 * kMs);
  EXPECT_EQ(records_at(got, 0, 1), (std::vector<uint64_t>{0, 1, 2, 3, 4, 5}));
  size_t datagrams = 0;
  for (const Got& g : got) datagrams += g.kind == ItemKind::kDatagram ? 1 : 0;
  EXPECT_EQ(datagrams, 1U);
}

TEST(SimNet, DatagramsAreLostDuplicatedAndReorderedAtTheConfiguredRates) {
  SimNet net(2, 11);
  LinkFaults f;
  f.loss = 0.2;
  f.dup = 0.1;
  f.dgram_delay_min_ns = 10'000;
  f.dgram_delay_max_ns = 3 * kMs;
  net.set_all_faults(f);
  net.start(0, 0);
  net.start(1, 0);
  for (uint64_t i = 0; i < 10'000; ++i) net.send(0, 1, word(i), i * 10'000);
  const auto got = drain(net, 0, 200 * kMs);
  std::map<uint64_t, int> seen;
  bool reordered = false;
  uint64_t last = 0;
  for (const Got& g : got) {
    seen[g.value]++;
    reordered |= g.value < last;
    last = std::max(last, g.value);
  }
  const double lost = 1.0 - static_cast<double>(seen.size()) / 10'000;
  EXPECT_NEAR(lost, 0.2, 0.03);
  EXPECT_NEAR(static_cast<double>(net.counters().datagrams_duplicated) / 8000, 0.1, 0.03);
  EXPECT_TRUE(reordered);
}

TEST(SimNet, ASlowNodeMultipliesItsDelays) {
  SimNet net(3, 2);
  LinkFaults f;
  f.log_delay_min_ns = f.log_delay_max_ns = 1 * kMs;
  net.set_all_faults(f);
  for (NodeId n = 0; n < 3; ++n) net.start(n, 0);
  net.set_slow(2, 10);
  net.append(0, word(1), 0);
  const auto got = drain(net, 0, 20 * kMs);
  for (const Got& g : got) {
    EXPECT_EQ(g.at, g.to == 2 ? 10 * kMs : 1 * kMs);
  }
}

TEST(SimNet, SameSeedSameRun) {
  auto run = [](uint64_t seed) {
    SimNet net(4, seed);
    LinkFaults f;
    f.loss = 0.1;
    f.dup = 0.1;
    f.dgram_delay_max_ns = 2 * kMs;
    f.log_delay_max_ns = 2 * kMs;
    net.set_all_faults(f);
    for (NodeId n = 0; n < 4; ++n) net.start(n, 0);
    std::vector<Got> all;
    for (uint64_t i = 0; i < 400; ++i) {
      const TimeNs now = i * 100'000;
      const NodeId from = static_cast<NodeId>(i % (i > 200 ? 3 : 4));
      net.append(from, word(i), now);
      net.send(from, static_cast<NodeId>((i + 1) % 4), word(i), now);
      if (i == 200) net.crash(3, now);
      Item it;
      while (net.pop(now, &it)) all.push_back(Got{it.kind, it.from, it.to, value(it.bytes), it.at});
    }
    uint64_t h = 0;
    for (const Got& g : all) h = h * 1000003 + g.value * 31 + g.at + g.to;
    return h;
  };
  EXPECT_EQ(run(42), run(42));
  EXPECT_NE(run(42), run(43));
}

}  // namespace
}  // namespace cohort::transport::sim
