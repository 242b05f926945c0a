// The cache service on a real group (include/cohort/cache.h): members in this process over shm
// in a private folder, each on its own thread, with a shared directory-of-files store. A miss
// loads once and peers serve the rest; a put is seen by every member once ordered; a joiner
// restores the directory and fetches from a peer; the stats page appears beside the group's.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>

#include "cohort/cache.h"
#include "cohort/stats.h"
#include "tests/integration/in_process.h"

namespace cohort {
namespace {

using std::chrono::milliseconds;

using Folder = test_support::ShmFolder;

using test_support::eventually;

std::unique_ptr<CacheService> member(const Folder& f, uint32_t node, bool bootstrap,
                                     bool peer_reads = true) {
  GroupOptions o = test_support::shm_member_options(f, "cache", node, bootstrap);
  o.threading = "shared";
  CacheServiceOptions co;
  co.peer_reads = peer_reads;
  auto loader = make_file_loader(f.path + "/store");
  EXPECT_TRUE(loader.ok());
  co.loader = std::move(*loader);
  auto s = CacheService::create(o, std::move(co));
  EXPECT_TRUE(s.ok()) << (s.ok() ? "" : s.error().message());
  if (!s.ok()) return nullptr;
  EXPECT_TRUE((*s)->group().start().ok());
  EXPECT_TRUE(eventually([&] { return (*s)->group().in_view(); }));
  return std::move(*s);
}

// Run with peer reads (values read from the holder's shared-memory mirror) and without (asked
// over the group, answered by the holder's data core): the same outcomes either way.
class CacheServiceBoth : public ::testing::TestWithParam<bool> {};

TEST_P(CacheServiceBoth, MembersShareLoadsAndSeeEveryOrderedWrite) {
  const bool reads = GetParam();
  Folder f("cache");
  ASSERT_FALSE(f.path.empty());
  auto a = member(f, 0, true, reads);
  auto b = member(f, 1, false, reads);
  ASSERT_TRUE(a && b);
  ASSERT_TRUE(eventually([&] { return a->group().stats().view_members == 2; }));
  ASSERT_EQ(a->put("k", "v1", milliseconds(5000)), CacheStatus::kOk);
  const CacheResult ra = a->get("k", milliseconds(5000));
  EXPECT_EQ(ra.status, CacheStatus::kOk);
  EXPECT_EQ(ra.value, "v1");
  EXPECT_EQ(ra.source, CacheSource::kStore);
  // b finds a in the directory once a's announcement is delivered there.
  CacheResult rb;
  ASSERT_TRUE(eventually([&] {
    rb = b->get("k", milliseconds(5000));
    return rb.status == CacheStatus::kOk && rb.source != CacheSource::kStore;
  })) << cache_source_name(rb.source);
  EXPECT_EQ(rb.value, "v1");
  // The default admission caches a peer's value on its second fetch: b holds it after the next
  // get at the latest.
  EXPECT_NE(b->get("k", milliseconds(5000)).source, CacheSource::kStore);
  EXPECT_EQ(b->get("k", milliseconds(5000)).source, CacheSource::kLocal);
  // A put at b: once it returns, b never serves v1; a stops as soon as it delivers it.
  ASSERT_EQ(b->put("k", "v2", milliseconds(5000)), CacheStatus::kOk);
  EXPECT_EQ(b->get("k", milliseconds(5000)).value, "v2");
  ASSERT_TRUE(eventually([&] { return a->get("k", milliseconds(5000)).value == "v2"; }));
  EXPECT_EQ(a->get("nope", milliseconds(5000)).status, CacheStatus::kNotFound);
  EXPECT_EQ(a->get("", milliseconds(5000)).status, CacheStatus::kInvalid);
  // A joiner restores the directory and fetches from a peer.
  auto c = member(f, 2, false, reads);
  ASSERT_TRUE(c);
  const CacheResult rc = c->get("k", milliseconds(5000));
  EXPECT_EQ(rc.value, "v2");
  EXPECT_EQ(rc.source, CacheSource::kPeer);
  const CacheCounters ca = a->counters();
  const CacheCounters cc = c->counters();
  EXPECT_EQ(a->peer_reads_status().rfind(reads ? "on" : "off: turned off", 0), 0U)
      << a->peer_reads_status();
  if (reads) {
    // c read a's (or b's) mirror; nobody's data core served a request of c's.
    EXPECT_GE(cc.peer_reads, 1U);
    EXPECT_TRUE(std::filesystem::exists(f.path + "/cache/cache-mirror-m0"));
  } else {
    EXPECT_EQ(cc.peer_reads, 0U);
    EXPECT_GE(ca.peer_served + b->counters().peer_served, 1U);
    EXPECT_FALSE(std::filesystem::exists(f.path + "/cache/cache-mirror-m0"));
  }
  EXPECT_GE(ca.dir_messages_sent, 1U);
  EXPECT_TRUE(std::filesystem::exists(f.path + "/cache/cache-m0.page"));
  c.reset();
  b.reset();
  a.reset();
  EXPECT_FALSE(std::filesystem::exists(f.path + "/cache/cache-mirror-m0"));  // removed at exit
}

INSTANTIATE_TEST_SUITE_P(PeerReads, CacheServiceBoth, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& i) {
                           return i.param ? std::string("on") : std::string("off");
                         });

}  // namespace
}  // namespace cohort
