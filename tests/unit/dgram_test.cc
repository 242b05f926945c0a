// The reliable log over datagrams (transport/dgram): the gap tracker alone, then members in one
// thread over the in-memory network, each behind a fault decorator (transport/fault, tested in
// fault_port_test.cc), driven by a fake clock: every run is a pure function of its seed. The seeded
// runs put 5% loss, 2% duplication, reordering and delay on every datagram and check that every
// record arrives exactly once, in order, intact, through logs small enough that back pressure and
// wraps happen all the time.
//
// Replay one seed: COHORT_DGRAM_SEED=<seed> unit_dgram --gtest_filter='DgramSim.*'
// More seeds:      COHORT_DGRAM_SEEDS=<count> unit_dgram --gtest_filter='DgramSim.*'
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "tests/unit/alloc_counter.h"
#include "transport/dgram/dgram_engine.h"
#include "transport/dgram/gap_tracker.h"
#include "transport/dgram/memory_port.h"
#include "transport/fault/fault_port.h"
#include "transport/wire/frame.h"

// Heap allocations so far, counted by the replaced operator new in dgram_alloc_counter.cc (a
// separate file, so that the compiler never inlines the replacement into a caller).

namespace cohort::transport::dgram {
namespace {

using fault::FaultOptions;
using fault::FaultPort;
using fault::FaultStats;
using Port = FaultPort<MemoryPort>;
using Engine = DgramEngine<Port>;
using Bytes = std::vector<std::byte>;

static_assert(DatagramPort<Port>);

// ---------------------------------------------------------------------------------------------
// GapTracker

TEST(GapTracker, InOrderFramesAdvanceTheContiguousPosition) {
  GapTracker g;
  EXPECT_EQ(g.add(0, 10, 0), GapTracker::AddResult::kNew);
  EXPECT_EQ(g.add(10, 25, 0), GapTracker::AddResult::kNew);
  EXPECT_EQ(g.contiguous(), 25u);
  EXPECT_EQ(g.range_count(), 0u);
  EXPECT_TRUE(g.complete());
  EXPECT_EQ(g.add(0, 25, 0), GapTracker::AddResult::kDuplicate);
  EXPECT_EQ(g.add(5, 30, 0), GapTracker::AddResult::kNew);  // overlaps: the new part counts
  EXPECT_EQ(g.contiguous(), 30u);
}

TEST(GapTracker, HolesAreNackedAfterTheDelayThenAfterEachTimeout) {
  GapTracker g;
  ByteRange out[4];
  EXPECT_EQ(g.add(100, 200, 1000), GapTracker::AddResult::kNew);
  EXPECT_EQ(g.contiguous(), 0u);
  EXPECT_EQ(g.known_end(), 200u);
  EXPECT_EQ(g.due_nacks(1000 + 49, 50, 500, out, 4), 0u);  // reordering may still fill it
  ASSERT_EQ(g.due_nacks(1000 + 50, 50, 500, out, 4), 1u);
  EXPECT_EQ(out[0].begin, 0u);
  EXPECT_EQ(out[0].end, 100u);
  EXPECT_EQ(g.due_nacks(1050 + 499, 50, 500, out, 4), 0u);  // the repair is on its way
  ASSERT_EQ(g.due_nacks(1050 + 500, 50, 500, out, 4), 1u);  // it was lost: again
  // A frame inside the hole splits it; both parts keep the timer of the NACK just sent.
  EXPECT_EQ(g.add(40, 60, 1600), GapTracker::AddResult::kNew);
  EXPECT_EQ(g.range_count(), 2u);
  EXPECT_EQ(g.due_nacks(1550 + 499, 50, 500, out, 4), 0u);
  ASSERT_EQ(g.due_nacks(1550 + 500, 50, 500, out, 4), 2u);
  EXPECT_EQ(out[0].begin, 0u);
  EXPECT_EQ(out[0].end, 40u);
  EXPECT_EQ(out[1].begin, 60u);
  EXPECT_EQ(out[1].end, 100u);
  EXPECT_EQ(g.add(0, 100, 3000), GapTracker::AddResult::kNew);
  EXPECT_EQ(g.contiguous(), 200u);
  EXPECT_TRUE(g.complete());
}

TEST(GapTracker, AHeartbeatRevealsALostTail) {
  GapTracker g;
  ByteRange out[2];
  g.add(0, 100, 0);
  g.extend_known(100, 10);  // nothing missing
  EXPECT_EQ(g.due_nacks(1'000'000, 50, 500, out, 2), 0u);
  g.extend_known(300, 1000);  // the writer sent up to 300: [100, 300) was lost
  EXPECT_EQ(g.due_nacks(1049, 50, 500, out, 2), 0u);
  ASSERT_EQ(g.due_nacks(1050, 50, 500, out, 2), 1u);
  EXPECT_EQ(out[0].begin, 100u);
  EXPECT_EQ(out[0].end, 300u);
  g.add(200, 300, 1100);  // part of the repair
  ASSERT_EQ(g.range_count(), 1u);
  EXPECT_EQ(g.due_nacks(1549, 50, 500, out, 2), 0u);
  ASSERT_EQ(g.due_nacks(1550, 50, 500, out, 2), 1u);
  EXPECT_EQ(out[0].begin, 100u);
  EXPECT_EQ(out[0].end, 200u);
}

TEST(GapTracker, RangesMergeAndAFullSetRefusesANewOne) {
  GapTracker g;
  for (uint64_t k = 0; k < GapTracker::kMaxRanges; ++k) {
    ASSERT_EQ(g.add(20 * k + 10, 20 * k + 20, 0), GapTracker::AddResult::kNew);
  }
  EXPECT_EQ(g.range_count(), GapTracker::kMaxRanges);
  const uint64_t far = 20 * GapTracker::kMaxRanges + 100;
  EXPECT_EQ(g.add(far, far + 10, 0), GapTracker::AddResult::kFull);
  EXPECT_EQ(g.add(12, 18, 0), GapTracker::AddResult::kDuplicate);
  EXPECT_EQ(g.add(20, 30, 0), GapTracker::AddResult::kNew);  // joins ranges 0 and 1
  EXPECT_EQ(g.range_count(), GapTracker::kMaxRanges - 1);
  EXPECT_EQ(g.add(far, far + 10, 0), GapTracker::AddResult::kNew);  // room again
  EXPECT_EQ(g.add(0, 10, 0), GapTracker::AddResult::kNew);
  EXPECT_EQ(g.contiguous(), 40u);  // [0, 10) meets the merged [10, 40)
}

// The tracker against a bitmap of received bytes, over random frames.
TEST(GapTracker, AgreesWithABitmapOverRandomFrames) {
  std::mt19937_64 rng(0x6761707331);
  for (int round = 0; round < 300; ++round) {
    GapTracker g;
    std::vector<bool> have(4096, false);
    for (int f = 0; f < 400; ++f) {
      const uint64_t b = rng() % 4000;
      const uint64_t e = b + 1 + rng() % 96;
      bool any_new = false;
      for (uint64_t p = b; p < e; ++p) any_new |= !have[p];
      const auto r = g.add(b, e, static_cast<uint64_t>(f));
      if (r == GapTracker::AddResult::kFull) continue;
      ASSERT_EQ(r == GapTracker::AddResult::kNew, any_new) << "round " << round;
      for (uint64_t p = b; p < e; ++p) have[p] = true;
      uint64_t c = 0;
      while (c < have.size() && have[c]) ++c;
      ASSERT_EQ(g.contiguous(), c) << "round " << round;
      // Every range is held, every hole is not, and holes lie between the ranges.
      for (uint32_t k = 0; k < g.range_count(); ++k) {
        const ByteRange rg = g.range(k);
        for (uint64_t p = rg.begin; p < rg.end; ++p) ASSERT_TRUE(have[p]);
        const ByteRange hole = g.hole_range(k);
        ASSERT_LT(hole.begin, hole.end);
        for (uint64_t p = hole.begin; p < hole.end; ++p) ASSERT_FALSE(have[p]);
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// The engine: a cluster of members over the in-memory network, each behind its own fault port.

uint64_t mix(uint64_t x) {  // splitmix64's finaliser
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// Record i of writer w in a run of `seed`: one in eight is large (up to max_large bytes, so it
// spans several frames), the rest 0..256 bytes. Its bytes follow from (seed, w, i), so a reader
// checks a record without a copy of what was sent.
uint64_t record_hash(uint64_t seed, MemberId w, uint64_t i) {
  return mix(seed ^ mix((static_cast<uint64_t>(w) << 48) ^ i));
}
uint32_t record_size(uint64_t seed, MemberId w, uint64_t i, uint32_t max_large) {
  const uint64_t h = record_hash(seed, w, i);
  return static_cast<uint32_t>((h & 7) == 0 ? (h >> 8) % (max_large + 1ull) : (h >> 8) % 257);
}
std::byte record_byte(uint64_t h, uint32_t k) {
  return std::byte{static_cast<uint8_t>((h >> ((k & 7) * 8)) + k * 131)};
}
void fill_record(std::byte* p, uint32_t size, uint64_t seed, MemberId w, uint64_t i) {
  const uint64_t h = record_hash(seed, w, i);
  for (uint32_t k = 0; k < size; ++k) p[k] = record_byte(h, k);
}
std::string check_record(const RecordView& r, uint64_t seed, MemberId w, uint64_t i,
                         uint32_t max_large) {
  const uint32_t size = record_size(seed, w, i, max_large);
  if (r.type != kRecordUser || r.payload.size() != size) {
    return "record " + std::to_string(i) + " of member " + std::to_string(w) + ": type " +
           std::to_string(r.type) + " size " + std::to_string(r.payload.size()) + ", expected " +
           std::to_string(size) + " (lost, duplicated or reordered)";
  }
  const uint64_t h = record_hash(seed, w, i);
  for (uint32_t k = 0; k < size; ++k) {
    if (r.payload[k] != record_byte(h, k)) {
      return "record " + std::to_string(i) + " of member " + std::to_string(w) + ": byte " +
             std::to_string(k) + " differs (corrupted)";
    }
  }
  return "";
}

struct SimConfig {
  uint64_t seed = 1;
  uint32_t members = 3;
  uint64_t records = 10'000;  // per writer; every member writes
  uint64_t log_bytes = 32 << 10;
  uint32_t mtu_payload = 1400;
  uint32_t max_large = 5000;
  FaultOptions faults;
  double skip_read = 0.3;     // a reader skips its turn with this probability: back pressure
  double skip_release = 0.2;  // or polls but keeps the views for a while
  uint64_t time_limit_ns = 60'000'000'000;  // simulated; a run that stalls fails with its state
};

FaultOptions standard_faults(uint64_t seed) {
  FaultOptions f;
  f.drop_rate = 0.05;
  f.duplicate_rate = 0.02;
  f.reorder_rate = 0.03;
  f.delay_rate = 0.02;
  f.seed = seed;
  return f;
}

class Cluster {
 public:
  explicit Cluster(const SimConfig& c) : c_(c), rng_(mix(c.seed)) {
    auto net = MemoryNetwork::create(c.members, 4096, 2048);
    COHORT_ASSERT(net.ok());
    net_ = std::move(net).value();
    members_.resize(c.members);
    for (MemberId m = 0; m < c.members; ++m) {
      FaultOptions f = c.faults;
      f.seed = mix(c.seed * 31 + m);
      auto port = Port::create(&net_->port(m), f);
      COHORT_ASSERT(port.ok());
      members_[m].port = std::make_unique<Port>(std::move(port).value());
      DgramOptions o;
      o.group_id = group_id_of("sim");
      o.self = m;
      o.members = c.members;
      o.log_bytes = c.log_bytes;
      o.mtu_payload = c.mtu_payload;
      auto engine = Engine::create(o, members_[m].port.get());
      COHORT_ASSERT(engine.ok());
      members_[m].engine.emplace(std::move(engine).value());
    }
  }

  Engine& engine(MemberId m) { return *members_[m].engine; }
  MemoryNetwork& net() { return *net_; }
  uint64_t now() const { return now_; }
  void crash(MemberId m) { members_[m].crashed = true; }
  void pause_reading(MemberId m, bool paused) { members_[m].reading_paused = paused; }
  uint64_t written(MemberId m) const { return members_[m].written; }
  uint64_t read(MemberId m, MemberId from) const { return members_[m].next[from]; }
  uint64_t back_pressure() const { return back_pressure_; }
  const std::string& error() const { return error_; }

  // One iteration of every live member's loop: receive, read, write, send. Then time passes.
  void step() {
    for (MemberId m = 0; m < c_.members && error_.empty(); ++m) {
      if (members_[m].crashed) continue;
      Engine& e = engine(m);
      e.poll(now_);
      read_peers(m);
      write_records(m);
      e.flush(now_);
    }
    now_ += 1000 + rng_() % 19'000;
  }

  bool everything_read() const {
    for (MemberId m = 0; m < c_.members; ++m) {
      if (members_[m].crashed) continue;
      for (MemberId w = 0; w < c_.members; ++w) {
        if (w != m && !members_[w].gone_for[m] && members_[m].next[w] != c_.records) return false;
      }
    }
    return true;
  }
  bool everything_written() const {
    for (MemberId m = 0; m < c_.members; ++m) {
      if (!members_[m].crashed && members_[m].written != c_.records) return false;
    }
    return true;
  }

  // Runs until every record is written and read, or fails with the state of every member.
  bool run_to_completion() {
    while (error_.empty() && !(everything_written() && everything_read())) {
      step();
      if (now_ > c_.time_limit_ns) error_ = "no progress by the time limit\n" + state();
    }
    return error_.empty();
  }

  void declare_gone(MemberId at, MemberId peer) {
    engine(at).declare_gone(peer);
    members_[peer].gone_for[at] = true;
  }

  std::string state() {
    std::string s;
    for (MemberId m = 0; m < c_.members; ++m) {
      const DgramLog& l = engine(m).log();
      const DgramStats& st = l.stats();
      s += "member " + std::to_string(m) + (members_[m].crashed ? " (crashed)" : "") +
           ": written " + std::to_string(members_[m].written) + " position " +
           std::to_string(l.publication().position()) + " sent " +
           std::to_string(l.sent_position()) + " nacks rx/tx " + std::to_string(st.rx_nacks) + "/" +
           std::to_string(st.tx_nacks) + " repairs " + std::to_string(st.tx_repair_frames) + "\n";
      for (MemberId p = 0; p < c_.members; ++p) {
        if (p == m) continue;
        const GapTracker& g = l.gaps(p);
        s += "  peer " + std::to_string(p) + ": read " + std::to_string(members_[m].next[p]) +
             " received " + std::to_string(g.contiguous()) + " known " +
             std::to_string(g.known_end()) + " ranges " + std::to_string(g.range_count()) +
             " peer released our log to " + std::to_string(l.peer_released(p)) + "\n";
      }
    }
    return s;
  }

 private:
  struct Member {
    std::unique_ptr<Port> port;
    std::optional<Engine> engine;
    uint64_t written = 0;
    uint64_t next[kMaxMembers] = {};
    bool gone_for[kMaxMembers] = {};  // gone_for[m]: member m declared this one gone
    bool crashed = false;
    bool reading_paused = false;
  };

  double uniform() { return static_cast<double>(rng_() >> 11) * 0x1.0p-53; }

  void read_peers(MemberId m) {
    Member& me = members_[m];
    if (me.reading_paused) return;
    RecordView views[64];
    for (MemberId w = 0; w < c_.members; ++w) {
      ReplicaSubscription* sub = engine(m).subscription(w);
      if (sub == nullptr || uniform() < c_.skip_read) continue;
      const auto n = sub->poll(views, 1 + static_cast<uint32_t>(rng_() % 64));
      for (uint32_t i = 0; i < n; ++i) {
        if (me.next[w] >= c_.records) {
          error_ = "member " + std::to_string(m) + " read more than " + std::to_string(c_.records) +
                   " records of member " + std::to_string(w);
          return;
        }
        const std::string bad = check_record(views[i], c_.seed, w, me.next[w], c_.max_large);
        if (!bad.empty()) {
          error_ = "member " + std::to_string(m) + ": " + bad;
          return;
        }
        ++me.next[w];
      }
      if (sub->fault() != LogFault::kNone) {
        error_ = "member " + std::to_string(m) + ": log of " + std::to_string(w) +
                 " faulted: " + log_fault_name(sub->fault());
        return;
      }
      if (uniform() >= c_.skip_release) sub->release();
    }
  }

  void write_records(MemberId m) {
    Member& me = members_[m];
    const auto burst = rng_() % 24;
    for (uint64_t k = 0; k < burst && me.written < c_.records; ++k) {
      const uint32_t size = record_size(c_.seed, m, me.written, c_.max_large);
      Claim claim;
      const ClaimStatus st = engine(m).publication().try_claim(size, kRecordUser, &claim);
      if (st == ClaimStatus::kBackPressure) {
        ++back_pressure_;
        return;
      }
      if (st != ClaimStatus::kOk) {
        error_ = "member " + std::to_string(m) + ": claim of " + std::to_string(size) +
                 " bytes: " + claim_status_name(st);
        return;
      }
      fill_record(claim.data, size, c_.seed, m, me.written);
      engine(m).publication().commit(claim);
      ++me.written;
    }
  }

  SimConfig c_;
  std::mt19937_64 rng_;
  std::unique_ptr<MemoryNetwork> net_;
  std::vector<Member> members_;
  uint64_t now_ = 1'000'000;
  uint64_t back_pressure_ = 0;
  std::string error_;
};

std::string replay_hint(uint64_t seed) {
  return "replay: COHORT_DGRAM_SEED=" + std::to_string(seed) +
         " unit_dgram --gtest_filter='DgramSim.*'";
}

uint64_t env_u64(const char* name, uint64_t fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? std::strtoull(v, nullptr, 10) : fallback;
}

TEST(Dgram, RecordsArriveWholeWithoutFaultsAndWithoutNacks) {
  SimConfig c;
  c.members = 2;
  c.records = 5000;
  c.seed = 5;
  Cluster sim(c);
  ASSERT_TRUE(sim.run_to_completion()) << sim.error();
  for (MemberId m = 0; m < 2; ++m) {
    const DgramStats& s = sim.engine(m).log().stats();
    EXPECT_EQ(s.tx_nacks, 0u);  // nothing was lost, so nothing was asked for again
    EXPECT_EQ(s.rx_duplicate, 0u);
    EXPECT_EQ(s.decode.dropped(), 0u);
    EXPECT_GT(s.tx_status, 0u);
    EXPECT_GT(sim.engine(m).publication().stats().paddings, 0u);  // the log wrapped
  }
  EXPECT_GT(sim.back_pressure(), 0u);
}

TEST(Dgram, RecordsLargerThanTheMtuArriveWholeThroughLoss) {
  SimConfig c;
  c.members = 2;
  c.records = 3000;
  c.mtu_payload = 100;  // a 5000-byte record spans 50 frames
  c.faults = standard_faults(0);
  c.seed = 6;
  Cluster sim(c);
  ASSERT_TRUE(sim.run_to_completion()) << sim.error() << "\n" << replay_hint(c.seed);
  EXPECT_GT(sim.engine(0).log().stats().tx_repair_frames, 0u);
}

// The seeded runs: a trio, every member writing and reading, every datagram exposed to loss,
// duplication, reordering and delay; log sizes and MTUs vary with the seed.
TEST(DgramSim, EveryRecordOnceInOrderIntactUnderFaults) {
  const uint64_t only = env_u64("COHORT_DGRAM_SEED", 0);
  const uint64_t seeds = only != 0 ? 1 : env_u64("COHORT_DGRAM_SEEDS", 200);
  FaultStats faults;
  DgramStats totals;
  uint64_t back_pressure = 0, paddings = 0, records = 0;
  for (uint64_t k = 0; k < seeds; ++k) {
    SimConfig c;
    c.seed = only != 0 ? only : 1000 + k;
    c.records = 10'000;
    c.log_bytes = (c.seed & 1) != 0 ? 32 << 10 : 64 << 10;
    const uint32_t mtus[] = {1400, 512, 256, 1000};
    c.mtu_payload = mtus[(c.seed >> 1) & 3];
    c.faults = standard_faults(0);
    Cluster sim(c);
    if (!sim.run_to_completion()) {
      FAIL() << "seed " << c.seed << " failed: " << sim.error() << "\n" << replay_hint(c.seed);
    }
    back_pressure += sim.back_pressure();
    records += c.records * c.members * (c.members - 1);
    for (MemberId m = 0; m < c.members; ++m) {
      const FaultStats& f = sim.engine(m).port().injector().stats();
      faults.dropped += f.dropped;
      faults.duplicated += f.duplicated;
      faults.reordered += f.reordered;
      faults.delayed += f.delayed;
      const DgramStats& s = sim.engine(m).log().stats();
      totals.tx_nacks += s.tx_nacks;
      totals.tx_repair_frames += s.tx_repair_frames;
      totals.rx_duplicate += s.rx_duplicate;
      paddings += sim.engine(m).publication().stats().paddings;
    }
  }
  std::printf(
      "summary: %lu seeds, %lu records delivered, faults dropped %lu duplicated %lu "
      "reordered %lu delayed %lu, nacks %lu, repair frames %lu, duplicates dropped %lu, "
      "back pressure %lu, wraps %lu\n",
      static_cast<unsigned long>(seeds), static_cast<unsigned long>(records),
      static_cast<unsigned long>(faults.dropped), static_cast<unsigned long>(faults.duplicated),
      static_cast<unsigned long>(faults.reordered), static_cast<unsigned long>(faults.delayed),
      static_cast<unsigned long>(totals.tx_nacks),
      static_cast<unsigned long>(totals.tx_repair_frames),
      static_cast<unsigned long>(totals.rx_duplicate), static_cast<unsigned long>(back_pressure),
      static_cast<unsigned long>(paddings));
  // The runs exercised what they claim to.
  EXPECT_GT(faults.dropped, 0u);
  EXPECT_GT(faults.duplicated, 0u);
  EXPECT_GT(faults.reordered, 0u);
  EXPECT_GT(faults.delayed, 0u);
  EXPECT_GT(totals.tx_repair_frames, 0u);
  EXPECT_GT(back_pressure, 0u);
  EXPECT_GT(paddings, 0u);
}

// A reader that stops releasing makes the writer meet back pressure once the log is full; the
// writer sends nothing beyond the reader's window, and nothing is lost when the reader resumes.
TEST(Dgram, ASlowReaderHoldsTheWriterBackAndNothingIsLost) {
  SimConfig c;
  c.members = 2;
  c.records = 20'000;
  c.faults = standard_faults(0);
  c.seed = 21;
  Cluster sim(c);
  sim.pause_reading(1, true);
  for (int i = 0; i < 20'000; ++i) sim.step();  // about 200 ms of simulated time
  ASSERT_TRUE(sim.error().empty()) << sim.error();
  const uint64_t position = sim.engine(0).publication().position();
  EXPECT_LE(position, c.log_bytes);  // member 1 released nothing: one log's worth at most
  EXPECT_LT(sim.written(0), c.records);
  EXPECT_GT(sim.engine(0).publication().stats().back_pressure, 0u);
  // What was written reached the reader all the same, repaired through the loss, and nothing
  // beyond its window was sent.
  EXPECT_EQ(sim.engine(1).log().gaps(0).contiguous(), position);
  EXPECT_EQ(sim.engine(1).log().stats().rx_beyond_window, 0u);
  EXPECT_EQ(sim.read(1, 0), 0u);
  sim.pause_reading(1, false);
  ASSERT_TRUE(sim.run_to_completion()) << sim.error() << "\n" << replay_hint(c.seed);
}

// A crashed reader holds every writer back until it is declared gone; then it stops counting,
// its log stops being read, and what it still sends is dropped.
TEST(Dgram, APeerDeclaredGoneStopsHoldingTheWriter) {
  SimConfig c;
  c.members = 3;
  c.records = 20'000;
  c.faults = standard_faults(0);
  c.seed = 22;
  Cluster sim(c);
  for (int i = 0; i < 300; ++i) sim.step();
  sim.crash(2);
  for (int i = 0; i < 5000; ++i) sim.step();
  const uint64_t stuck = sim.written(0);
  for (int i = 0; i < 5000; ++i) sim.step();
  EXPECT_EQ(sim.written(0), stuck) << "member 2 released nothing, yet member 0 went on";
  EXPECT_LT(stuck, c.records);
  sim.declare_gone(0, 2);
  sim.declare_gone(1, 2);
  EXPECT_EQ(sim.engine(0).subscription(2), nullptr);
  EXPECT_FALSE(sim.engine(0).publication().counts_reader(2));
  ASSERT_TRUE(sim.run_to_completion()) << sim.error() << "\n" << replay_hint(c.seed);
  EXPECT_EQ(sim.read(1, 0), c.records);
  // The "dead" member speaks again: it is not heard.
  const uint64_t before = sim.engine(0).log().stats().rx_from_gone;
  for (int i = 0; i < 10; ++i) {
    sim.engine(2).flush(sim.now() + 20'000'000ull * i);
    sim.engine(0).poll(sim.now() + 20'000'000ull * i);
  }
  EXPECT_GT(sim.engine(0).log().stats().rx_from_gone, before);
}

Bytes make_frame(wire::FrameType type, uint64_t group, MemberId sender, uint64_t position,
                 const Bytes& payload, uint64_t view = 0) {
  Bytes out(wire::frame_size(payload.size()));
  const wire::FrameFields f{type, 0, group, view, sender, position};
  EXPECT_EQ(wire::encode_frame(f, payload, out), out.size());
  return out;
}

Bytes le64(uint64_t a, uint64_t b = 0, bool two = false) {
  Bytes out(two ? 16 : 8);
  std::memcpy(out.data(), &a, 8);
  if (two) std::memcpy(out.data() + 8, &b, 8);
  return out;
}

// Every kind of bad input, interleaved with real traffic: each is counted under its reason and
// dropped, and the real records still arrive intact.
TEST(Dgram, GarbageAndMisdirectedFramesAreCountedAndDropped) {
  SimConfig c;
  c.members = 2;
  c.records = 5000;
  c.seed = 23;
  Cluster sim(c);
  MemoryNetwork& net = sim.net();
  const uint64_t gid = group_id_of("sim");
  std::mt19937_64 rng(23);
  const Bytes hundred(100, std::byte{0x5a});
  constexpr int kRounds = 300;
  uint64_t random_junk = 0;
  for (int round = 0; round < kRounds; ++round) {
    Bytes junk(rng() % 200);
    for (auto& b : junk) b = std::byte{static_cast<uint8_t>(rng())};
    random_junk += net.inject(1, 0, junk);
    using wire::FrameType;
    net.inject(1, 0, make_frame(FrameType::kData, group_id_of("other"), 0, 0, hundred));
    Bytes corrupt = make_frame(FrameType::kData, gid, 0, 0, hundred);
    corrupt[60] ^= std::byte{1};
    net.inject(1, 0, corrupt);
    Bytes cut = make_frame(FrameType::kData, gid, 0, 0, hundred);
    cut.resize(100);
    net.inject(1, 0, cut);
    net.inject(1, kUnknownPeer, make_frame(FrameType::kData, gid, 0, 0, hundred));
    net.inject(1, 0, make_frame(FrameType::kData, gid, 1, 0, hundred));  // "from" ourselves
    net.inject(1, 0, make_frame(FrameType::kData, gid, 0, 0, hundred, /*view=*/9));
    net.inject(1, 0, make_frame(FrameType::kData, gid, 0, 1ull << 63, hundred));
    net.inject(1, 0, make_frame(FrameType::kData, gid, 0, ~uint64_t{0} - 10, hundred));
    net.inject(1, 0, make_frame(FrameType::kNack, gid, 0, 0, Bytes(3)));
    net.inject(1, 0, make_frame(FrameType::kNack, gid, 0, 500, le64(100)));
    net.inject(1, 0, make_frame(FrameType::kNack, gid, 0, 0, le64(~uint64_t{0})));
    net.inject(1, 0, make_frame(FrameType::kStatus, gid, 0, 200, le64(c.log_bytes, 100, true)));
    net.inject(1, 0, make_frame(FrameType::kControl, gid, 0, 0, hundred));
    net.inject(1, 0, make_frame(FrameType::kHeartbeat, gid, 0, 0, Bytes(5)));
    for (int k = 0; k < 10; ++k) sim.step();
  }
  ASSERT_TRUE(sim.run_to_completion()) << sim.error();
  const DgramStats& s = sim.engine(1).log().stats();
  using wire::DecodeStatus;
  EXPECT_EQ(s.decode.of(DecodeStatus::kWrongGroup), uint64_t{kRounds});
  EXPECT_EQ(s.decode.of(DecodeStatus::kBadCrc), uint64_t{kRounds});
  EXPECT_EQ(s.decode.of(DecodeStatus::kLengthPastBuffer), uint64_t{kRounds});
  EXPECT_EQ(s.decode.dropped(), random_junk + 3 * kRounds);
  EXPECT_EQ(s.rx_non_member, uint64_t{kRounds});
  EXPECT_EQ(s.rx_sender_mismatch, uint64_t{kRounds});
  EXPECT_EQ(s.rx_wrong_view, uint64_t{kRounds});
  EXPECT_EQ(s.rx_beyond_window, 2u * kRounds);
  EXPECT_EQ(s.rx_bad_payload, 2u * kRounds);
  EXPECT_EQ(s.rx_bad_position, 3u * kRounds);
  EXPECT_EQ(s.rx_unexpected_type, uint64_t{kRounds});
  EXPECT_EQ(sim.engine(1).log().peer_fault(0), PeerFault::kNone);
}

// Frames that pass every check a frame can pass, with random fields, from a member's address:
// nothing crashes or writes outside a replica (run under ASan to see the second), whatever the
// replica ends up holding.
TEST(Dgram, RandomValidFramesNeverCrashAMember) {
  auto net = MemoryNetwork::create(2, 1024, 2048);
  ASSERT_TRUE(net.ok());
  std::optional<DgramEngine<MemoryPort>> e[2];
  for (MemberId m = 0; m < 2; ++m) {
    DgramOptions o;
    o.group_id = group_id_of("fuzz");
    o.self = m;
    o.members = 2;
    o.log_bytes = 32 << 10;
    o.mtu_payload = 512;
    auto engine = DgramEngine<MemoryPort>::create(o, &(*net)->port(m));
    ASSERT_TRUE(engine.ok());
    e[m].emplace(std::move(engine).value());
  }
  std::mt19937_64 rng(24);
  RecordView views[64];
  uint64_t now = 0;
  uint64_t delivered = 0;
  for (int round = 0; round < 50'000; ++round, now += 5'000) {
    // Member 0 writes real records; member 1 also receives frames with random fields and
    // payloads at positions around its window, which pass the decoder and reach the engine.
    Claim claim;
    if (e[0]->publication().try_claim(static_cast<uint32_t>(rng() % 3000), kRecordUser, &claim) ==
        ClaimStatus::kOk) {
      e[0]->publication().commit(claim);
    }
    Bytes payload(rng() % 1500);
    for (auto& b : payload) b = std::byte{static_cast<uint8_t>(rng())};
    if (rng() % 3 == 0) payload.resize(8 * (1 + rng() % 2));
    if (payload.size() == 8 || payload.size() == 16) {
      // The sizes of NACK, STATUS and heartbeat payloads: name the right log size, since
      // another would stop the peer for good (AMemberWithAnotherLogSizeIsRefusedOnBothSides).
      const uint64_t log_bytes = 32 << 10;
      std::memcpy(payload.data(), &log_bytes, 8);
    }
    const uint64_t at = e[1]->log().gaps(0).contiguous();
    const uint64_t positions[] = {rng(), at + rng() % (2 * 32 << 10), at - rng() % 4096,
                                  rng() % 64};
    const auto type = static_cast<wire::FrameType>(1 + rng() % 5);
    (*net)->inject(1, 0, make_frame(type, group_id_of("fuzz"), 0, positions[rng() % 4], payload));
    for (auto& engine : e) {
      engine->poll(now);
      if (ReplicaSubscription* sub =
              engine->subscription(engine.value().log().options().self ^ 1)) {
        delivered += sub->poll(views, 64);  // whatever is there, garbage included
        sub->release();
      }
      engine->flush(now);
    }
  }
  const DgramStats& s = e[1]->log().stats();
  EXPECT_GT(s.rx_beyond_window, 0u);
  EXPECT_GT(s.rx_bad_payload + s.rx_bad_position + s.rx_unexpected_type, 0u);
  EXPECT_GT(delivered, 0u);
  EXPECT_EQ(e[1]->log().peer_fault(0), PeerFault::kNone);
  std::printf(
      "fuzzed member: %lu datagrams, %lu beyond the window, %lu bad positions, %lu bad "
      "payloads; log fault: %s\n",
      static_cast<unsigned long>(s.rx_datagrams), static_cast<unsigned long>(s.rx_beyond_window),
      static_cast<unsigned long>(s.rx_bad_position), static_cast<unsigned long>(s.rx_bad_payload),
      log_fault_name(e[1]->subscription(0) != nullptr ? e[1]->subscription(0)->fault()
                                                      : LogFault::kNone));
}

TEST(Dgram, AMemberWithAnotherLogSizeIsRefusedOnBothSides) {
  auto net = MemoryNetwork::create(2, 1024, 2048);
  ASSERT_TRUE(net.ok());
  std::optional<DgramEngine<MemoryPort>> e[2];
  for (MemberId m = 0; m < 2; ++m) {
    DgramOptions o;
    o.group_id = group_id_of("sizes");
    o.self = m;
    o.members = 2;
    o.log_bytes = m == 0 ? 32 << 10 : 64 << 10;
    auto engine = DgramEngine<MemoryPort>::create(o, &(*net)->port(m));
    ASSERT_TRUE(engine.ok()) << engine.error().message();
    e[m].emplace(std::move(engine).value());
  }
  Claim claim;
  ASSERT_EQ(e[0]->publication().try_claim(100, kRecordUser, &claim), ClaimStatus::kOk);
  e[0]->publication().commit(claim);
  for (uint64_t now = 0; now < 50'000'000; now += 100'000) {
    for (auto& engine : e) {
      engine->poll(now);
      engine->flush(now);
    }
  }
  EXPECT_EQ(e[0]->log().peer_fault(1), PeerFault::kLogSizeMismatch);
  EXPECT_EQ(e[1]->log().peer_fault(0), PeerFault::kLogSizeMismatch);
  EXPECT_GT(e[1]->log().stats().rx_log_size_mismatch, 0u);
  RecordView v[1];
  ReplicaSubscription* sub = e[1]->subscription(0);
  ASSERT_NE(sub, nullptr);
  EXPECT_EQ(sub->poll(v, 1), 0u);
  EXPECT_EQ(e[0]->log().peer_released(1), 0u);  // its reads of our log are not believed
  EXPECT_STREQ(peer_fault_name(PeerFault::kLogSizeMismatch),
               "log size differs from ours (check log_bytes)");
}

TEST(Dgram, DataPathDoesNotAllocate) {
  SimConfig c;
  c.members = 3;
  c.records = 100'000'000;  // writes for the whole test
  c.faults = standard_faults(0);
  c.seed = 25;
  Cluster sim(c);
  for (int i = 0; i < 2000; ++i) sim.step();  // warm up: every path taken once
  const uint64_t before = cohort::testing::heap_allocations();
  for (int i = 0; i < 20'000; ++i) sim.step();
  const uint64_t allocations = cohort::testing::heap_allocations() - before;
  ASSERT_TRUE(sim.error().empty()) << sim.error();
  EXPECT_EQ(allocations, 0u);
  EXPECT_GT(sim.engine(1).log().stats().tx_repair_frames, 0u);
}

TEST(Dgram, RefusesImpossibleOptionsNamingTheFix) {
  DgramOptions o;
  o.members = 3;
  o.self = 3;
  auto bad_self = DgramLog::create(o);
  ASSERT_FALSE(bad_self.ok());
  EXPECT_NE(bad_self.error().message().find("member 3 of 3"), std::string::npos);
  o.self = 0;
  o.log_bytes = 100'000;
  auto bad_size = DgramLog::create(o);
  ASSERT_FALSE(bad_size.ok());
  EXPECT_NE(bad_size.error().message().find("log size 100000 must be a power of two"),
            std::string::npos)
      << bad_size.error().message();
  o.log_bytes = 1 << 16;
  o.mtu_payload = 20;
  auto bad_mtu = DgramLog::create(o);
  ASSERT_FALSE(bad_mtu.ok());
  EXPECT_NE(bad_mtu.error().message().find("mtu payload 20"), std::string::npos);
}

}  // namespace
}  // namespace cohort::transport::dgram
