// The loaders (include/cohort/cache.h): the directory of files always; Redis when the test
// runs under apps/cache/redis_loader_test.sh, which starts a redis-server on loopback and
// passes its port in COHORT_REDIS_PORT (without it the Redis cases skip, and say why).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "cohort/cache.h"

namespace cohort {
namespace {

// The same contract for every loader: absent keys, round trips of any bytes, overwrite, remove.
void exercise(CacheLoader& l) {
  std::string v;
  const std::string odd_key = std::string("../a b/\x01\xff", 9) + std::string(200, 'k');
  EXPECT_EQ(l.load("never-written", &v), LoadStatus::kNotFound);
  ASSERT_TRUE(l.store("k1", "v1"));
  ASSERT_EQ(l.load("k1", &v), LoadStatus::kOk);
  EXPECT_EQ(v, "v1");
  ASSERT_TRUE(l.store("k1", "v2"));
  ASSERT_EQ(l.load("k1", &v), LoadStatus::kOk);
  EXPECT_EQ(v, "v2");
  const std::string binary("a\0b\nc\xff", 6);
  ASSERT_TRUE(l.store(odd_key, binary));
  ASSERT_EQ(l.load(odd_key, &v), LoadStatus::kOk);
  EXPECT_EQ(v, binary);
  ASSERT_TRUE(l.store("empty", ""));
  ASSERT_EQ(l.load("empty", &v), LoadStatus::kOk);
  EXPECT_EQ(v, "");
  const std::string big(1 << 20, 'x');
  ASSERT_TRUE(l.store("big", big));
  ASSERT_EQ(l.load("big", &v), LoadStatus::kOk);
  EXPECT_EQ(v.size(), big.size());
  EXPECT_TRUE(l.remove("k1"));
  EXPECT_EQ(l.load("k1", &v), LoadStatus::kNotFound);
  EXPECT_TRUE(l.remove("k1"));  // removing what is gone is fine
}

TEST(FileLoader, KeepsTheContract) {
  char tmpl[] = "/tmp/cohort-files-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::string dir = std::string(tmpl) + "/store";
  auto l = make_file_loader(dir);
  ASSERT_TRUE(l.ok()) << l.error().message();
  exercise(**l);
  // Every file is inside the folder, whatever the key.
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    EXPECT_EQ(e.path().parent_path(), std::filesystem::path(dir));
  }
  std::filesystem::remove_all(tmpl);
}

TEST(FileLoader, RefusesAFileAsItsFolder) {
  auto l = make_file_loader("/etc/hostname");
  ASSERT_FALSE(l.ok());
  EXPECT_NE(l.error().message().find("not a folder"), std::string::npos);
}

uint16_t redis_port() {
  const char* p = std::getenv("COHORT_REDIS_PORT");
  return p == nullptr ? 0 : static_cast<uint16_t>(std::atoi(p));
}

TEST(RedisLoader, KeepsTheContract) {
  if (redis_port() == 0) GTEST_SKIP() << "no redis-server (run apps/cache/redis_loader_test.sh)";
  auto l = make_redis_loader("127.0.0.1", redis_port());
  ASSERT_TRUE(l.ok()) << l.error().message();
  exercise(**l);
}

TEST(RedisLoader, ANameThatIsNotListeningIsAClearError) {
  // Port 1 on loopback: nothing listens there (or it is not Redis).
  auto l = make_redis_loader("127.0.0.1", 1, std::chrono::milliseconds(200));
  ASSERT_FALSE(l.ok());
  EXPECT_NE(l.error().message().find("redis"), std::string::npos) << l.error().message();
}

}  // namespace
}  // namespace cohort
