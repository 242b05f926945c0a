// The shared-memory mirror of a member's values (cache_mirror.h), and the LRU's second chance
// for entries peers read there.
#include "apps/cache/cache_mirror.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "apps/cache/cache_lru.h"

namespace cohort::cache {
namespace {

class MirrorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("cohort-mirror-" + std::to_string(getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
    path_ = (dir_ / "cache-mirror-m0").string();
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::filesystem::path dir_;
  std::string path_;
};

TEST_F(MirrorTest, AReaderSeesWhatTheOwnerPutAndNothingElse) {
  auto w = MirrorWriter::create(path_, 7, 1 << 20);
  ASSERT_TRUE(w.ok()) << w.error().message();
  ASSERT_TRUE((*w)->put("k1", "value one", Stamp{2, 40}));
  auto r = MirrorReader::open(path_);
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_EQ((*r)->incarnation(), 7u);
  std::string v;
  Stamp s;
  ASSERT_EQ((*r)->read("k1", &v, &s), MirrorReader::Read::kFound);
  EXPECT_EQ(v, "value one");
  EXPECT_EQ(s, (Stamp{2, 40}));
  EXPECT_EQ((*r)->read("k2", &v, &s), MirrorReader::Read::kAbsent);

  // A newer value replaces the older; an erased key is gone.
  ASSERT_TRUE((*w)->put("k1", "value two", Stamp{2, 41}));
  ASSERT_EQ((*r)->read("k1", &v, &s), MirrorReader::Read::kFound);
  EXPECT_EQ(v, "value two");
  EXPECT_EQ(s, (Stamp{2, 41}));
  EXPECT_EQ((*w)->entries(), 1u);
  (*w)->erase("k1");
  EXPECT_EQ((*r)->read("k1", &v, &s), MirrorReader::Read::kAbsent);
  EXPECT_EQ((*w)->entries(), 0u);

  // The owner's file goes with it.
  w->reset();
  EXPECT_FALSE(std::filesystem::exists(path_));
}

TEST_F(MirrorTest, AValueTooLargeForASlotIsNotPublishedAndTakesItsOlderValueAway) {
  auto w = MirrorWriter::create(path_, 1, 1 << 20, 512);
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE((*w)->put("k", "small", Stamp{1, 1}));
  EXPECT_FALSE((*w)->put("k", std::string(600, 'x'), Stamp{1, 2}));
  EXPECT_EQ((*w)->overflows(), 1u);
  auto r = MirrorReader::open(path_);
  ASSERT_TRUE(r.ok());
  std::string v;
  Stamp s;
  EXPECT_EQ((*r)->read("k", &v, &s), MirrorReader::Read::kAbsent);
}

TEST_F(MirrorTest, AFullSetRefusesAndKeepsWhatItHolds) {
  // 1,024 slots in 128 sets of 8: 2,000 keys overflow some sets, and every key put is readable.
  auto w = MirrorWriter::create(path_, 1, 0);
  ASSERT_TRUE(w.ok());
  std::vector<std::string> kept;
  for (int i = 0; i < 2000; ++i) {
    const std::string k = "key" + std::to_string(i);
    if ((*w)->put(k, "v" + k, Stamp{1, static_cast<uint64_t>(i + 1)})) kept.push_back(k);
  }
  EXPECT_GT((*w)->overflows(), 0u);
  EXPECT_LE(kept.size(), 1024u);
  auto r = MirrorReader::open(path_);
  ASSERT_TRUE(r.ok());
  for (const std::string& k : kept) {
    std::string v;
    Stamp s;
    ASSERT_EQ((*r)->read(k, &v, &s), MirrorReader::Read::kFound) << k;
    EXPECT_EQ(v, "v" + k);
  }
  (*w)->clear();
  EXPECT_EQ((*w)->entries(), 0u);
  std::string v;
  Stamp s;
  EXPECT_EQ((*r)->read(kept.front(), &v, &s), MirrorReader::Read::kAbsent);
}

TEST_F(MirrorTest, AReadMarksTheEntryForTheOwnerOnce) {
  auto w = MirrorWriter::create(path_, 1, 1 << 20);
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE((*w)->put("k", "v", Stamp{1, 1}));
  EXPECT_FALSE((*w)->take_referenced("k"));
  auto r = MirrorReader::open(path_);
  ASSERT_TRUE(r.ok());
  std::string v;
  Stamp s;
  ASSERT_EQ((*r)->read("k", &v, &s), MirrorReader::Read::kFound);
  EXPECT_TRUE((*w)->take_referenced("k"));
  EXPECT_FALSE((*w)->take_referenced("k"));
}

TEST_F(MirrorTest, AFileThatIsNotAMirrorIsRefused) {
  EXPECT_FALSE(MirrorReader::open(path_).ok());  // missing
  {
    std::ofstream f(path_, std::ios::binary);
    f << std::string(100, '\0');
  }
  EXPECT_FALSE(MirrorReader::open(path_).ok());  // no magic
  {
    std::ofstream f(path_, std::ios::binary);
    f << "short";
  }
  EXPECT_FALSE(MirrorReader::open(path_).ok());
  // A real header on a file cut short (its slots would lie past the end) is refused too.
  {
    auto w = MirrorWriter::create(path_ + "-full", 1, 1 << 20);
    ASSERT_TRUE(w.ok());
    std::filesystem::copy_file(path_ + "-full", path_,
                               std::filesystem::copy_options::overwrite_existing);
    std::filesystem::resize_file(path_, 8192);
    EXPECT_FALSE(MirrorReader::open(path_).ok());
  }
}

TEST_F(MirrorTest, ANewIncarnationReplacesTheFileWithoutPullingItFromUnderAReader) {
  auto w1 = MirrorWriter::create(path_, 1, 1 << 20);
  ASSERT_TRUE(w1.ok());
  ASSERT_TRUE((*w1)->put("k", "old", Stamp{1, 1}));
  auto r1 = MirrorReader::open(path_);
  ASSERT_TRUE(r1.ok());
  auto w2 = MirrorWriter::create(path_, 2, 1 << 20);
  ASSERT_TRUE(w2.ok());
  std::string v;
  Stamp s;
  // The old mapping still reads (the earlier incarnation's values, which its stamp qualifies).
  ASSERT_EQ((*r1)->read("k", &v, &s), MirrorReader::Read::kFound);
  EXPECT_EQ(v, "old");
  auto r2 = MirrorReader::open(path_);
  ASSERT_TRUE(r2.ok());
  EXPECT_EQ((*r2)->incarnation(), 2u);
  EXPECT_EQ((*r2)->read("k", &v, &s), MirrorReader::Read::kAbsent);
  // The old incarnation going away leaves the new one's file where it is.
  w1->reset();
  EXPECT_TRUE(std::filesystem::exists(path_));
  w2->reset();
  EXPECT_FALSE(std::filesystem::exists(path_));
}

// A header whose sizes would put slots past any real file (their product wrapping) is refused
// before anything is computed from them.
TEST_F(MirrorTest, AHeaderWithImpossibleSizesIsRefused) {
  auto w = MirrorWriter::create(path_ + "-real", 1, 1 << 20);
  ASSERT_TRUE(w.ok());
  std::filesystem::copy_file(path_ + "-real", path_);
  {
    std::fstream f(path_, std::ios::in | std::ios::out | std::ios::binary);
    const uint32_t slot_bytes = 1u << 31, sets = 1u << 30;
    f.seekp(12);  // after magic and version: slot bytes, then sets
    f.write(reinterpret_cast<const char*>(&slot_bytes), 4);
    f.write(reinterpret_cast<const char*>(&sets), 4);
  }
  EXPECT_FALSE(MirrorReader::open(path_).ok());
  std::filesystem::remove(path_);
  std::filesystem::create_symlink(path_ + "-real", path_);
  EXPECT_FALSE(MirrorReader::open(path_).ok());  // not through a link
}

// The owner rewrites one key without pause; each value says which write it is (its length and
// its bytes follow the stamp), so a torn copy would show. A reader never returns one.
TEST_F(MirrorTest, AReadIsNeverTornByAConcurrentWrite) {
  auto w = MirrorWriter::create(path_, 1, 1 << 20);
  ASSERT_TRUE(w.ok());
  auto value_of = [](uint64_t n) {
    return std::string(100 + n % 900, static_cast<char>('a' + n % 26));
  };
  ASSERT_TRUE((*w)->put("hot", value_of(1), Stamp{1, 1}));
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    for (uint64_t n = 2; !stop.load(std::memory_order_relaxed); ++n) {
      (void)(*w)->put("hot", value_of(n), Stamp{1, n});
    }
  });
  auto r = MirrorReader::open(path_);
  ASSERT_TRUE(r.ok());
  uint64_t found = 0, busy = 0, torn = 0;
  const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(300);
  while (std::chrono::steady_clock::now() < end) {
    std::string v;
    Stamp s;
    const MirrorReader::Read got = (*r)->read("hot", &v, &s);
    if (got == MirrorReader::Read::kFound) {
      ++found;
      if (v != value_of(s.gseq)) ++torn;
    } else if (got == MirrorReader::Read::kBusy) {
      ++busy;
    }
  }
  stop.store(true);
  writer.join();
  std::printf("mirror: reads found %llu, busy %llu, torn %llu\n",
              static_cast<unsigned long long>(found), static_cast<unsigned long long>(busy),
              static_cast<unsigned long long>(torn));
  EXPECT_GT(found, 0u);
  EXPECT_EQ(torn, 0u);
}

// An LRU whose observer says peers read key "a": at eviction "a" moves to the front instead,
// and the next least recently used goes.
class MarkedReads final : public LruObserver {
 public:
  void on_put(std::string_view, std::string_view, Stamp) override { ++puts; }
  void on_erase(std::string_view key) override { erased.emplace_back(key); }
  void on_clear() override { ++clears; }
  bool take_referenced(std::string_view key) override {
    if (key != "a" || a_marks == 0) return false;
    --a_marks;
    return true;
  }
  int puts = 0, clears = 0, a_marks = 1;
  std::vector<std::string> erased;
};

TEST(LruSecondChance, AnEntryPeersReadOutlivesOneEviction) {
  const uint64_t each = LruStore::cost("a", std::string(100, 'x'));
  LruStore lru(3 * each);
  MarkedReads obs;
  lru.set_observer(&obs);
  std::vector<std::string> evicted;
  for (const char* k : {"a", "b", "c"})
    ASSERT_TRUE(lru.put(k, std::string(100, 'x'), {}, &evicted));
  ASSERT_TRUE(lru.put("d", std::string(100, 'x'), {}, &evicted));
  EXPECT_EQ(evicted, std::vector<std::string>{"b"});  // "a" was read by a peer: kept
  EXPECT_NE(lru.peek("a"), nullptr);
  ASSERT_TRUE(lru.put("e", std::string(100, 'x'), {}, &evicted));
  EXPECT_EQ(evicted, (std::vector<std::string>{"b", "c"}));
  ASSERT_TRUE(lru.put("f", std::string(100, 'x'), {}, &evicted));
  EXPECT_EQ(evicted, (std::vector<std::string>{"b", "c", "a"}));  // no mark left
  EXPECT_EQ(obs.puts, 6);
  EXPECT_EQ(obs.erased, (std::vector<std::string>{"b", "c", "a"}));
  std::vector<std::string> dropped;
  lru.clear(&dropped);
  EXPECT_EQ(obs.clears, 1);
}

}  // namespace
}  // namespace cohort::cache
