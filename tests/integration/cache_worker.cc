// One member of the cache's real-process test (cache_redis_test.sh): a CacheService over shm
// with the Redis loader, reading and writing a shared working set until its time is up or it
// is killed. Keys k0..kK-1 hold decimal counters; key i is written only by member i % 3, each
// write one higher, so the store's history of a key is its counter.
//
// The stale-read check, through the public API alone: after a put returns (its invalidation is
// delivered here), the writer multicasts "W <key> <n>" in safe order. FIFO per sender puts that
// message after the invalidation at every member, so a reader that has delivered it has
// delivered the invalidation too, and any get it starts afterwards must return at least n. Every
// member checks every get against the announcements it delivered before the get began.
//
//   cache_worker SHM_DIR NODE BOOTSTRAP(0|1) REDIS_PORT RUN_MS KEYS
// Prints one line: "worker nN gets G late_gets L stale S local A peer B store C puts P" and
// exits 0 when no read was stale.
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <random>
#include <string>
#include <thread>

#include "cohort/cache.h"

namespace {

std::atomic<bool> g_stop{false};

struct Floors final : cohort::GroupListener {
  std::mutex mu;
  std::map<std::string, uint64_t> floor;
  void on_deliver(const cohort::Message& m) override {
    const std::string s(reinterpret_cast<const char*>(m.bytes.data()), m.bytes.size());
    char key[64];
    unsigned long long n = 0;
    if (std::sscanf(s.c_str(), "W %63s %llu", key, &n) != 2) return;
    std::lock_guard<std::mutex> g(mu);
    uint64_t& f = floor[key];
    if (n > f) f = n;
  }
  // Views and events go to stderr, which the test prints when a worker fails.
  void on_view(const cohort::ViewInfo& v) override {
    std::fprintf(stderr, "view %llu members %zu departed %zu\n",
                 static_cast<unsigned long long>(v.id), v.members.size(), v.departed.size());
  }
  void on_event(cohort::GroupEvent e) override {
    std::fprintf(stderr, "event %s\n", cohort::group_event_name(e));
  }
  uint64_t of(const std::string& key) {
    std::lock_guard<std::mutex> g(mu);
    auto it = floor.find(key);
    return it == floor.end() ? 0 : it->second;
  }
};

}  // namespace

int main(int argc, char** argv) {
  if (argc != 7) {
    std::fprintf(stderr, "usage: cache_worker SHM_DIR NODE BOOTSTRAP REDIS_PORT RUN_MS KEYS\n");
    return 2;
  }
  std::signal(SIGTERM, [](int) { g_stop.store(true); });
  const uint32_t node = static_cast<uint32_t>(std::atoi(argv[2]));
  const uint64_t run_ms = std::strtoull(argv[5], nullptr, 10);
  const int keys = std::atoi(argv[6]);
  auto loader = cohort::make_redis_loader("127.0.0.1", static_cast<uint16_t>(std::atoi(argv[4])));
  if (!loader.ok()) {
    std::fprintf(stderr, "worker n%u: %s\n", node, loader.error().message().c_str());
    return 1;
  }
  Floors floors;
  cohort::GroupOptions go;
  go.name = "cachetest";
  go.shm_dir = argv[1];
  go.node = node;
  go.slots = 4;
  go.bootstrap = std::atoi(argv[3]) == 1;
  go.threading = "shared";
  go.log_bytes = 4 << 20;
  cohort::CacheServiceOptions co;
  co.loader = std::move(*loader);
  co.capacity_bytes = 64 << 10;  // smaller than the working set: evictions, false hits
  co.listener = &floors;
  auto svc = cohort::CacheService::create(go, std::move(co));
  if (!svc.ok()) {
    std::fprintf(stderr, "worker n%u: %s\n", node, svc.error().message().c_str());
    return 1;
  }
  cohort::CacheService& s = **svc;
  if (!s.group().start().ok()) return 1;
  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  const auto end = start + std::chrono::milliseconds(run_ms);
  const auto late = end - std::chrono::milliseconds(1000);
  std::mt19937_64 rng(node * 7919 + 1);
  std::map<std::string, uint64_t> mine;  // my keys' last value written
  uint64_t gets = 0, late_gets = 0, stale = 0, puts = 0, by_source[3] = {0, 0, 0};
  const auto timeout = std::chrono::milliseconds(2000);
  while (!g_stop.load() && Clock::now() < end) {
    const int k = static_cast<int>(rng() % static_cast<uint64_t>(keys));
    char key_buf[32];
    std::snprintf(key_buf, sizeof key_buf, "k%d", k);  // (GCC 12's -Wrestrict misfires on +)
    const std::string key = key_buf;
    if (static_cast<uint32_t>(k % 3) == node && rng() % 5 == 0) {
      const uint64_t next = mine[key] + 1;
      const std::string v = std::to_string(next);
      if (s.put(key, v, timeout) == cohort::CacheStatus::kOk) {
        mine[key] = next;
        puts++;
        char note_buf[96];
        const int len = std::snprintf(note_buf, sizeof note_buf, "W %s %s", key.c_str(), v.c_str());
        const std::string note(note_buf, static_cast<size_t>(len));
        (void)s.group().send(std::as_bytes(std::span(note.data(), note.size())),
                             cohort::DeliveryMode::kSafe);
      }
      continue;
    }
    const uint64_t floor = floors.of(key);
    const cohort::CacheResult r = s.get(key, timeout);
    if (r.status != cohort::CacheStatus::kOk) {  // joining, or a timeout
      std::fprintf(stderr, "get %s: %s\n", key.c_str(), cohort::cache_status_name(r.status));
      continue;
    }
    gets++;
    if (Clock::now() > late) late_gets++;
    by_source[static_cast<int>(r.source)]++;
    const uint64_t got = std::strtoull(r.value.c_str(), nullptr, 10);
    if (got < floor) {
      stale++;
      std::fprintf(stderr, "worker n%u: STALE %s = %llu after delivering W %s %llu (%s)\n", node,
                   key.c_str(), static_cast<unsigned long long>(got), key.c_str(),
                   static_cast<unsigned long long>(floor), cohort::cache_source_name(r.source));
    }
  }
  std::printf(
      "worker n%u gets %llu late_gets %llu stale %llu local %llu peer %llu store %llu "
      "puts %llu read_in_place %llu\n",
      node, static_cast<unsigned long long>(gets), static_cast<unsigned long long>(late_gets),
      static_cast<unsigned long long>(stale), static_cast<unsigned long long>(by_source[0]),
      static_cast<unsigned long long>(by_source[1]), static_cast<unsigned long long>(by_source[2]),
      static_cast<unsigned long long>(puts),
      static_cast<unsigned long long>(s.counters().peer_reads));
  std::fflush(stdout);
  s.group().leave();
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  s.group().stop();
  return stale == 0 ? 0 : 1;
}
