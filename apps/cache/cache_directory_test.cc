// The replicated directory (cache_directory.h): its rules, its bounds, its snapshot.
#include "apps/cache/cache_directory.h"

#include <gtest/gtest.h>

namespace cohort::cache {
namespace {

constexpr MemberUid kA{0, 1}, kB{1, 1}, kC{2, 1};

TEST(CacheDirectory, OneClaimAtATime) {
  Directory d;
  EXPECT_EQ(d.claim("k", kA), Directory::ClaimResult::kWon);
  EXPECT_EQ(d.claim("k", kB), Directory::ClaimResult::kTaken);
  d.unclaim("k", kB);  // not B's: no effect
  EXPECT_TRUE(d.find("k")->claimed);
  d.have("k", kA, Stamp{});  // lists A; a have never ends a claim ...
  ASSERT_NE(d.find("k"), nullptr);
  EXPECT_TRUE(d.find("k")->claimed);
  EXPECT_EQ(d.find("k")->holders, std::vector<MemberUid>{kA});
  d.unclaim("k", kA);  // ... only its loader's unclaim does
  EXPECT_FALSE(d.find("k")->claimed);
  EXPECT_EQ(d.claim("k", kB), Directory::ClaimResult::kWon);  // a claim wins beside holders
}

TEST(CacheDirectory, InvalidateClearsHoldersAndStaleHavesAreNotListed) {
  Directory d;
  d.have("k", kA, Stamp{});
  d.have("k", kB, Stamp{});
  d.invalidate("k", Stamp{1, 10});
  EXPECT_EQ(d.find("k"), nullptr);
  EXPECT_EQ(d.version("k"), (Stamp{1, 10}));
  EXPECT_EQ(d.frontier(), (Stamp{1, 10}));
  EXPECT_EQ(d.version("other"), Stamp{});
  d.have("k", kC, Stamp{1, 9});  // loaded before the write
  EXPECT_EQ(d.find("k"), nullptr);
  EXPECT_EQ(d.counters().haves_stale, 1U);
  d.have("k", kC, Stamp{1, 10});
  EXPECT_EQ(d.find("k")->holders, std::vector<MemberUid>{kC});
}

TEST(CacheDirectory, ViewsRemoveDepartedHoldersAndLoaders) {
  Directory d;
  d.have("a", kA, Stamp{});
  d.have("a", kB, Stamp{});
  EXPECT_EQ(d.claim("b", kB), Directory::ClaimResult::kWon);
  const MemberUid left[] = {kA, kC};
  const auto changed = d.on_view(left);
  EXPECT_EQ(changed.size(), 2U);
  EXPECT_EQ(d.find("a")->holders, std::vector<MemberUid>{kA});
  EXPECT_EQ(d.find("b"), nullptr);
}

TEST(CacheDirectory, VersionsFoldIntoTheFloorBeyondTheLimit) {
  Directory d(Directory::Limits{16, 2});
  d.invalidate("a", Stamp{1, 1});
  d.invalidate("b", Stamp{1, 2});
  d.invalidate("c", Stamp{1, 3});
  EXPECT_EQ(d.versions(), 2U);
  EXPECT_EQ(d.floor(), (Stamp{1, 1}));
  EXPECT_EQ(d.version("a"), (Stamp{1, 1}));  // folded: the floor stands for it
  EXPECT_EQ(d.version("zz"), (Stamp{1, 1}));
  EXPECT_EQ(d.version("c"), (Stamp{1, 3}));
}

TEST(CacheDirectory, KeysBeyondTheLimitAreRefused) {
  Directory d(Directory::Limits{2, 16});
  d.have("a", kA, Stamp{});
  d.have("b", kA, Stamp{});
  d.have("c", kA, Stamp{});
  EXPECT_EQ(d.keys(), 2U);
  EXPECT_EQ(d.claim("d", kB), Directory::ClaimResult::kRefused);
  EXPECT_EQ(d.counters().refused, 2U);
}

TEST(CacheDirectory, SnapshotRestoresEqualAndRefusesDamage) {
  Directory d;
  d.invalidate("x", Stamp{2, 5});
  d.have("a", kA, Stamp{2, 5});
  d.have("a", kC, Stamp{2, 5});
  EXPECT_EQ(d.claim("b", kB), Directory::ClaimResult::kWon);
  d.have("b", kA, Stamp{2, 5});
  EXPECT_EQ(d.claim("c", kC), Directory::ClaimResult::kWon);
  d.unclaim("c", kC);
  const auto snap = d.snapshot();
  Directory e;
  ASSERT_TRUE(e.restore(snap));
  EXPECT_TRUE(e == d);
  EXPECT_EQ(e.snapshot(), snap);
  // Every truncation, and a flipped byte in each position, is refused or yields a directory
  // that checks out; never a crash, and a refusal leaves it empty.
  for (size_t n = 0; n < snap.size(); ++n) {
    Directory f;
    EXPECT_FALSE(f.restore(std::span(snap).first(n))) << n;
    EXPECT_EQ(f.keys(), 0U);
  }
  for (size_t i = 0; i < snap.size(); ++i) {
    auto bad = snap;
    bad[i] ^= std::byte{0xFF};
    Directory f;
    if (!f.restore(bad)) {
      EXPECT_EQ(f.keys(), 0U);
    }
  }
}

}  // namespace
}  // namespace cohort::cache
