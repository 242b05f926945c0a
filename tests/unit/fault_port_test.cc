// The fault-injecting decorator (transport/fault) over a port that records what reaches it:
// its rates, its determinism under a seed, what it holds back and when it lets go. Part of
// unit_dgram, whose seeded runs (dgram_test.cc) put it between every member and the network.
#include "transport/fault/fault_port.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "transport/dgram/port.h"

namespace cohort::transport::fault {
namespace {

using dgram::RxDatagram;
using dgram::TxDatagram;
using Bytes = std::vector<std::byte>;

// A port that records what reaches it, and can refuse after a number of datagrams.
struct RecordingPort {
  std::vector<std::pair<MemberId, Bytes>> sent;
  uint32_t refuse_after = ~uint32_t{0};
  uint32_t send_burst(const TxDatagram* tx, uint32_t n, uint64_t) noexcept {
    uint32_t k = 0;
    for (; k < n && sent.size() < refuse_after; ++k) {
      sent.emplace_back(tx[k].to, Bytes(tx[k].bytes.begin(), tx[k].bytes.end()));
    }
    return k;
  }
  uint32_t recv_burst(RxDatagram*, uint32_t, uint64_t) noexcept { return 0; }
};

// Sends datagrams 0..n-1 (each 8 bytes holding its index) one burst of 16 at a time, 1 us
// apart, then lets the held ones out; returns the indices in the order they reached the port.
std::vector<uint64_t> run_faults(const FaultOptions& options, uint64_t n, FaultStats* stats) {
  RecordingPort inner;
  auto port = FaultPort<RecordingPort>::create(&inner, options);
  EXPECT_TRUE(port.ok());
  std::vector<uint64_t> ids(n);
  std::vector<TxDatagram> tx(n);
  for (uint64_t i = 0; i < n; ++i) {
    ids[i] = i;
    tx[i] = TxDatagram{1, {reinterpret_cast<const std::byte*>(&ids[i]), 8}};
  }
  uint64_t now = 0;
  for (uint64_t i = 0; i < n; i += 16, now += 1000) {
    const auto burst = static_cast<uint32_t>(n - i < 16 ? n - i : 16);
    EXPECT_EQ(port->send_burst(tx.data() + i, burst, now), burst);
  }
  for (int k = 0; k < 10; ++k, now += 10'000'000) port->send_burst(nullptr, 0, now);
  EXPECT_EQ(port->injector().held(), 0u);
  std::vector<uint64_t> order;
  for (const auto& [to, bytes] : inner.sent) {
    uint64_t id;
    std::memcpy(&id, bytes.data(), 8);
    order.push_back(id);
  }
  *stats = port->injector().stats();
  return order;
}

TEST(FaultPort, RatesAreMetAndEveryDatagramIsAccountedFor) {
  FaultOptions o;
  o.drop_rate = 0.05;
  o.duplicate_rate = 0.02;
  o.reorder_rate = 0.03;
  o.delay_rate = 0.02;
  o.seed = 42;
  constexpr uint64_t kN = 200'000;
  FaultStats s;
  const std::vector<uint64_t> order = run_faults(o, kN, &s);
  EXPECT_EQ(s.seen, kN);
  EXPECT_NEAR(static_cast<double>(s.dropped) / kN, 0.05, 0.005);
  EXPECT_NEAR(static_cast<double>(s.duplicated) / kN, 0.02 * 0.95, 0.003);
  EXPECT_NEAR(static_cast<double>(s.reordered) / kN, 0.03, 0.004);
  EXPECT_NEAR(static_cast<double>(s.delayed) / kN, 0.02, 0.003);
  EXPECT_EQ(s.released, s.reordered + s.delayed);
  EXPECT_EQ(order.size(), kN - s.dropped + s.duplicated);
  uint64_t inversions = 0;
  for (size_t i = 1; i < order.size(); ++i) inversions += order[i] < order[i - 1];
  EXPECT_GT(inversions, kN / 100);
  std::printf(
      "faults over %lu datagrams (seed 42): dropped %lu duplicated %lu reordered %lu "
      "delayed %lu\n",
      static_cast<unsigned long>(kN), static_cast<unsigned long>(s.dropped),
      static_cast<unsigned long>(s.duplicated), static_cast<unsigned long>(s.reordered),
      static_cast<unsigned long>(s.delayed));
}

TEST(FaultPort, TheSameSeedMakesTheSameFaults) {
  FaultOptions o;
  o.drop_rate = 0.1;
  o.duplicate_rate = 0.1;
  o.reorder_rate = 0.1;
  o.delay_rate = 0.1;
  o.seed = 7;
  FaultStats s1, s2, s3;
  const auto a = run_faults(o, 20'000, &s1);
  const auto b = run_faults(o, 20'000, &s2);
  EXPECT_EQ(a, b);
  o.seed = 8;
  EXPECT_NE(run_faults(o, 20'000, &s3), a);
}

TEST(FaultPort, OffPassesEverythingInOrderAndSeedZeroDrawsOne) {
  FaultOptions o;  // every rate 0
  FaultStats s;
  const auto order = run_faults(o, 1000, &s);
  ASSERT_EQ(order.size(), 1000u);
  for (uint64_t i = 0; i < 1000; ++i) EXPECT_EQ(order[i], i);
  EXPECT_EQ(s.seen, 0u);  // passed straight through, not even looked at
  auto f = FaultInjector::create(o);
  ASSERT_TRUE(f.ok());
  EXPECT_NE((*f)->seed(), 0u);  // printed by the transports so a run can be replayed
}

TEST(FaultPort, DelayedDatagramsWaitForTheClockAndReorderedOnesForLaterTraffic) {
  RecordingPort inner;
  FaultOptions o;
  o.delay_rate = 1;  // every datagram
  o.delay_max_ns = 1000;
  o.seed = 3;
  auto port = FaultPort<RecordingPort>::create(&inner, o);
  ASSERT_TRUE(port.ok());
  const uint64_t id = 1;
  const TxDatagram d{2, {reinterpret_cast<const std::byte*>(&id), 8}};
  EXPECT_EQ(port->send_burst(&d, 1, 0), 1u);
  EXPECT_TRUE(inner.sent.empty());
  RxDatagram rx[1];
  port->recv_burst(rx, 1, 1001);  // receiving releases what is due, too
  ASSERT_EQ(inner.sent.size(), 1u);
  EXPECT_EQ(inner.sent[0].first, 2u);

  RecordingPort inner2;
  o.delay_rate = 0;
  o.reorder_rate = 0.5;
  o.reorder_depth = 1;
  auto reorder = FaultPort<RecordingPort>::create(&inner2, o);
  ASSERT_TRUE(reorder.ok());
  std::vector<uint64_t> ids(64);
  std::vector<TxDatagram> tx(64);
  for (uint64_t i = 0; i < 64; ++i) {
    ids[i] = i;
    tx[i] = TxDatagram{1, {reinterpret_cast<const std::byte*>(&ids[i]), 8}};
  }
  for (uint64_t i = 0; i < 64; ++i) reorder->send_burst(&tx[i], 1, 0);  // the clock stands
  reorder->send_burst(nullptr, 0, 0);
  EXPECT_GT(reorder->injector().stats().reordered, 10u);
  EXPECT_LE(reorder->injector().held(), 1u);  // each went out after the next one
}

TEST(FaultPort, AnInnerPortThatRefusesKeepsTheRestWithTheCaller) {
  RecordingPort inner;
  inner.refuse_after = 5;
  FaultOptions o;
  o.drop_rate = 0.0001;  // enabled, nearly harmless
  o.seed = 11;
  auto port = FaultPort<RecordingPort>::create(&inner, o);
  ASSERT_TRUE(port.ok());
  std::vector<uint64_t> ids(10);
  std::vector<TxDatagram> tx(10);
  for (uint64_t i = 0; i < 10; ++i) {
    ids[i] = i;
    tx[i] = TxDatagram{1, {reinterpret_cast<const std::byte*>(&ids[i]), 8}};
  }
  EXPECT_EQ(port->send_burst(tx.data(), 10, 0), 5u);
}

TEST(FaultPort, RefusesImpossibleOptionsNamingThem) {
  FaultOptions o;
  o.drop_rate = 1.5;
  auto f = FaultInjector::create(o);
  ASSERT_FALSE(f.ok());
  EXPECT_NE(f.error().message().find("drop 1.5"), std::string::npos) << f.error().message();
}

// A partition drops every datagram to and from the members it names, only inside its window,
// and nothing else.
TEST(FaultPort, PartitionCutsBothWaysInsideItsWindowOnly) {
  struct TwoWayPort : RecordingPort {
    std::vector<RxDatagram> incoming;
    uint32_t recv_burst(RxDatagram* rx, uint32_t max, uint64_t) noexcept {
      uint32_t n = 0;
      for (; n < max && n < incoming.size(); ++n) rx[n] = incoming[n];
      return n;
    }
  };
  TwoWayPort inner;
  const std::byte b[4] = {};
  for (MemberId from : {0u, 1u, 2u}) inner.incoming.push_back(RxDatagram{from, {b, 4}});
  FaultOptions o;
  o.partition_peers = 1U << 1 | 1U << 2;
  o.partition_from_ns = 1000;
  o.partition_until_ns = 2000;
  auto port = FaultPort<TwoWayPort>::create(&inner, o);
  ASSERT_TRUE(port.ok());
  const TxDatagram tx[3] = {{0, {b, 4}}, {1, {b, 4}}, {2, {b, 4}}};
  RxDatagram rx[8];
  // Before the window: everything passes.
  EXPECT_EQ(port->send_burst(tx, 3, 999), 3u);
  EXPECT_EQ(inner.sent.size(), 3u);
  EXPECT_EQ(port->recv_burst(rx, 8, 999), 3u);
  // Inside: only member 0, either way; the rest count as consumed (lost), not refused.
  EXPECT_EQ(port->send_burst(tx, 3, 1000), 3u);
  ASSERT_EQ(inner.sent.size(), 4u);
  EXPECT_EQ(inner.sent.back().first, 0u);
  ASSERT_EQ(port->recv_burst(rx, 8, 1999), 1u);
  EXPECT_EQ(rx[0].from, 0u);
  EXPECT_EQ(port->injector().stats().partitioned, 4u);
  EXPECT_TRUE(port->injector().cut(2, 1500));
  EXPECT_FALSE(port->injector().cut(0, 1500));
  // After: healed.
  EXPECT_EQ(port->send_burst(tx, 3, 2000), 3u);
  EXPECT_EQ(inner.sent.size(), 7u);
  EXPECT_EQ(port->recv_burst(rx, 8, 2000), 3u);
}

}  // namespace
}  // namespace cohort::transport::fault
