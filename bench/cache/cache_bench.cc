// The cooperative cache against the same workload cached alone, in one run (scripts/bench cache
// drives this program and turns its `result` lines into figures; apps/cache/NOTES.md,
// "Benchmark", says why the baseline is fair).
//
//   bench_cache preload --port P --keys N
//     Writes the key space to Redis at 127.0.0.1:P: key k<r> (r = 0..N-1, r its popularity
//     rank) holds value_bytes(r) bytes, 100..1000, fixed by r.
//   bench_cache member --node N --members K --group G --shm-dir D [--bootstrap] --port P
//                      --keys N --capacity-bytes B --warmup-ops W --ops O --put-percent Q
//                      [--paced-ops PO --paced-rate R --barrier-dir BD --barrier-count BC]
//                      [--admission second|every] [--peer-reads on|off]
//                      --seed S --idle busy|spin_yield|backoff --case NAME --samples-dir DIR
//                      [--tag T]
//     One member: a CacheService over shm with the Redis loader, in a group of K members (K = 1:
//     it caches alone). Each operation is a put with probability Q%, else a get, of a key drawn
//     Zipf(0.99) over the N keys (rank 0 the most popular) from mt19937_64(S), so members differ
//     and runs repeat; each get is timed and classed by where its value came from
//     (CacheResult::source: local, peer, store; a get answered by a peer that was itself
//     loading the key counts as a peer hit). Three phases of one stream:
//       1. warm-up: W operations as fast as they go, unmeasured (the caches fill);
//       2. full rate: O operations as fast as they go: the store-load count (the service's
//          store_loads over the phase) and `result` lines for it; the latencies of this phase
//          are printed too, but three application threads that never wait contend with the
//          pollers and Redis for the cpus, so they measure the scheduler as much as the cache;
//       3. paced (PO > 0): after a barrier (every one of BC members, this case's, has created
//          its file in BD, so no member still runs at full rate), PO operations open-loop at R
//          per second (operation i is due at start + i / R; one that starts more than 1 ms late
//          is counted in `paced_late`): the latency percentiles, measured from the call, as
//          latency is conventionally measured, under a light load. Its store loads are printed
//          as `paced_store_loads` (not used for the ratio).
//     Prints its own `result` lines and writes each class's latencies (u64 ns, native order)
//     to DIR/NAME-<T>-<class>.ns (full rate) and DIR/NAME_paced-<T>-<class>.ns (paced) for the
//     report (T: n<node> unless given). With K > 1 a member that finishes keeps serving until
//     every member has finished (a "done" message in safe order from each).
//   bench_cache redis --port P --keys N --ops O --seed S
//     The bare store: O GETs of Zipf(0.99) keys through the same Redis loader from this thread,
//     timed (`result redis_get_{n,p50_us,p99_us}`): what a store load costs without the cache's
//     claim in total order.
//   bench_cache report --case NAME FILE...
//     Merges the latency files of one case (every member's) into one histogram per class and
//     prints `result NAME_<class>_{n,p50_us,p99_us}`.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <random>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "bench/common/process_args.h"
#include "cohort/cache.h"
#include "runtime/histogram.h"

namespace {

constexpr double kZipfS = 0.99;
constexpr const char* kClassNames[3] = {"local", "peer", "store"};
constexpr char kDoneMessage[] = "cache-bench-done";

using cohort::bench::Args;
using cohort::bench::mono_ns;

uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// 100..1000 bytes, fixed by the rank, uncorrelated with popularity.
size_t value_bytes(uint64_t rank) {
  return 100 + static_cast<size_t>(splitmix64(rank) % 901);
}

std::string key_of(uint64_t rank) {
  char buf[24];
  const int n = std::snprintf(buf, sizeof buf, "k%" PRIu64, rank);
  return std::string(buf, static_cast<size_t>(n));
}

// Zipf(s) over ranks 0..n-1 by inversion of the exact cumulative distribution: P(r) is
// proportional to 1 / (r + 1)^s. n doubles (800 KB for 100k keys) and a binary search per draw;
// the uniform variate is built from 53 bits of mt19937_64 (whose output the standard fixes), so
// a seed gives the same stream on any platform.
class Zipf {
 public:
  Zipf(uint64_t n, double s, uint64_t seed) : rng_(seed), cdf_(n) {
    double sum = 0;
    for (uint64_t r = 0; r < n; ++r) {
      sum += 1.0 / std::pow(static_cast<double>(r + 1), s);
      cdf_[r] = sum;
    }
    for (double& c : cdf_) c /= sum;
  }
  uint64_t next() {
    const double u = static_cast<double>(rng_() >> 11) * 0x1.0p-53;
    const auto it = std::upper_bound(cdf_.begin(), cdf_.end(), u);
    return it == cdf_.end() ? cdf_.size() - 1 : static_cast<uint64_t>(it - cdf_.begin());
  }
  // A uniform draw in [0, 100) from the same generator (the put/get choice).
  uint64_t percent() { return rng_() % 100; }

 private:
  std::mt19937_64 rng_;
  std::vector<double> cdf_;
};

// Counts the "done" messages of the end barrier; every other message is ignored.
struct DoneCounter final : cohort::GroupListener {
  std::atomic<uint32_t> done{0};
  void on_deliver(const cohort::Message& m) override {
    if (m.bytes.size() == sizeof kDoneMessage - 1 &&
        std::memcmp(m.bytes.data(), kDoneMessage, m.bytes.size()) == 0) {
      done.fetch_add(1, std::memory_order_relaxed);
    }
  }
};

int preload(const Args& a) {
  const uint64_t keys = a.num("--keys", "100000");
  auto loader =
      cohort::make_redis_loader("127.0.0.1", static_cast<uint16_t>(a.num("--port", "6379")));
  if (!loader.ok()) {
    std::fprintf(stderr, "bench_cache: %s\n", loader.error().message().c_str());
    return 1;
  }
  for (uint64_t r = 0; r < keys; ++r) {
    const std::string value(value_bytes(r), static_cast<char>('a' + r % 26));
    if (!(*loader)->store(key_of(r), value)) {
      std::fprintf(stderr, "bench_cache: preload: SET %s failed (is redis up?)\n",
                   key_of(r).c_str());
      return 1;
    }
  }
  return 0;
}

struct Workload {
  uint64_t keys = 0;
  uint64_t warmup_ops = 0;
  uint64_t ops = 0;
  uint64_t put_percent = 0;
};

struct Tally {
  uint64_t gets = 0;
  uint64_t puts = 0;
  uint64_t errors = 0;         // gets and puts that did not end kOk ...
  uint64_t by_status[8] = {};  // ... by CacheStatus
  uint64_t bad_values = 0;     // a value of the wrong length for its key: a bug, reported
  std::vector<uint64_t> ns[3];
  void count_error(cohort::CacheStatus st) {
    errors++;
    by_status[std::min<size_t>(static_cast<size_t>(st), 7)]++;
  }
};

// One operation; measured ones are timed and tallied.
void run_op(cohort::CacheService& s, Zipf& zipf, const Workload& w, uint64_t op, bool measured,
            Tally* t) {
  constexpr auto kTimeout = std::chrono::seconds(2);
  const bool is_put = zipf.percent() < w.put_percent;
  const uint64_t rank = zipf.next();
  const std::string key = key_of(rank);
  if (is_put) {
    const std::string value(value_bytes(rank), static_cast<char>('A' + op % 26));
    const cohort::CacheStatus st = s.put(key, value, kTimeout);
    if (measured) {
      t->puts++;
      if (st != cohort::CacheStatus::kOk) t->count_error(st);
    }
    return;
  }
  const uint64_t t0 = mono_ns();
  const cohort::CacheResult r = s.get(key, kTimeout);
  const uint64_t dt = mono_ns() - t0;
  if (!measured) return;
  t->gets++;
  if (r.status != cohort::CacheStatus::kOk) {
    t->count_error(r.status);
    return;
  }
  if (r.value.size() != value_bytes(rank)) t->bad_values++;
  t->ns[static_cast<size_t>(r.source)].push_back(dt);
}

void print_latency(const std::string& prefix, const std::vector<uint64_t>& ns) {
  auto h = cohort::Histogram::create(60'000'000'000ULL, 3);
  if (!h.ok()) return;
  for (uint64_t v : ns) h->record(v);
  cohort::bench::print_latency(prefix, *h);
}

bool write_samples(const std::string& path, const std::vector<uint64_t>& ns) {
  FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) return false;
  const bool ok = std::fwrite(ns.data(), sizeof(uint64_t), ns.size(), f) == ns.size();
  return std::fclose(f) == 0 && ok;
}

bool write_all_samples(const std::string& dir, const std::string& case_name, const std::string& tag,
                       const Tally& t) {
  for (size_t k = 0; k < 3 && !dir.empty(); ++k) {
    const std::string path = dir + "/" + case_name + "-" + tag + "-" + kClassNames[k] + ".ns";
    if (!write_samples(path, t.ns[k])) {
      std::fprintf(stderr, "bench_cache: cannot write %s\n", path.c_str());
      return false;
    }
  }
  return true;
}

// The paced phase: `ops` operations open-loop at `rate` per second, operation i due at
// start + i / rate. A light load, so that a get's latency is the cache's path, not a queue
// behind the other application threads; `paced_late` says whether it stayed light.
void run_paced(cohort::CacheService& s, Zipf& zipf, const Workload& w, uint64_t ops, uint64_t rate,
               Tally* t) {
  const cohort::CacheCounters c0 = s.counters();
  const uint64_t interval_ns = 1'000'000'000ULL / rate;
  const uint64_t start = mono_ns();
  uint64_t late = 0;
  for (uint64_t i = 0; i < ops; ++i) {
    const uint64_t due = start + i * interval_ns;
    const uint64_t now = mono_ns();
    if (now < due) {
      std::this_thread::sleep_for(std::chrono::nanoseconds(due - now));
    } else if (now > due + 1'000'000) {
      late++;
    }
    run_op(s, zipf, w, w.warmup_ops + w.ops + i, true, t);
  }
  const uint64_t elapsed = mono_ns() - start;
  const cohort::CacheCounters c1 = s.counters();
  std::printf("result paced_gets %" PRIu64 "\n", t->gets);
  std::printf("result paced_puts %" PRIu64 "\n", t->puts);
  std::printf("result paced_errors %" PRIu64 "\n", t->errors);
  std::printf("result paced_late %" PRIu64 "\n", late);
  std::printf("result paced_store_loads %" PRIu64 "\n", c1.store_loads - c0.store_loads);
  std::printf("result paced_peer_requests %" PRIu64 "\n", c1.peer_requests - c0.peer_requests);
  std::printf("result paced_peer_reads %" PRIu64 "\n", c1.peer_reads - c0.peer_reads);
  for (size_t k = 0; k < 3; ++k) {
    print_latency(std::string("get_paced_") + kClassNames[k], t->ns[k]);
  }
  std::printf("result paced_elapsed_ms %.1f\n", static_cast<double>(elapsed) / 1e6);
}

// Every member of the case at the same point: each creates DIR/NAME-<tag>, then waits until
// `count` such files exist. False after 300 s.
bool barrier(const std::string& dir, const std::string& name, const std::string& tag,
             uint64_t count) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (FILE* f = std::fopen((dir + "/" + name + "-" + tag).c_str(), "w")) std::fclose(f);
  const uint64_t deadline = mono_ns() + 300'000'000'000ULL;
  while (mono_ns() < deadline) {
    uint64_t n = 0;
    for (const auto& e : fs::directory_iterator(dir, ec)) {
      n += e.path().filename().string().starts_with(name + "-") ? 1 : 0;
    }
    if (n >= count) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return false;
}

void print_member(const Tally& t, const cohort::CacheCounters& c0, const cohort::CacheCounters& c1,
                  uint64_t elapsed_ns, uint64_t view_changes) {
  std::printf("result gets %" PRIu64 "\n", t.gets);
  std::printf("result puts %" PRIu64 "\n", t.puts);
  std::printf("result errors %" PRIu64 "\n", t.errors);
  for (size_t st = 1; st < 8; ++st) {
    if (t.by_status[st] == 0) continue;
    std::printf("result errors_%s %" PRIu64 "\n",
                cohort::cache_status_name(static_cast<cohort::CacheStatus>(st)), t.by_status[st]);
  }
  std::printf("result bad_values %" PRIu64 "\n", t.bad_values);
  for (size_t k = 0; k < 3; ++k) {
    print_latency(std::string("get_") + kClassNames[k], t.ns[k]);
  }
  // The store's side: loads begun here (reloads included), whatever get they served.
  std::printf("result store_loads %" PRIu64 "\n", c1.store_loads - c0.store_loads);
  std::printf("result reloads %" PRIu64 "\n", c1.reloads - c0.reloads);
  std::printf("result peer_requests %" PRIu64 "\n", c1.peer_requests - c0.peer_requests);
  std::printf("result peer_reads %" PRIu64 "\n", c1.peer_reads - c0.peer_reads);
  std::printf("result peer_not_kept %" PRIu64 "\n", c1.peer_not_kept - c0.peer_not_kept);
  std::printf("result false_hits %" PRIu64 "\n", c1.false_hits - c0.false_hits);
  std::printf("result stale_replies %" PRIu64 "\n", c1.stale_replies - c0.stale_replies);
  std::printf("result dir_bytes_sent %" PRIu64 "\n", c1.dir_bytes_sent - c0.dir_bytes_sent);
  std::printf("result evictions %" PRIu64 "\n", c1.evictions - c0.evictions);
  std::printf("result cached_entries %" PRIu64 "\n", c1.cached_entries);
  std::printf("result elapsed_ms %.1f\n", static_cast<double>(elapsed_ns) / 1e6);
  std::printf("result view_changes %" PRIu64 "\n", view_changes);
}

int member(const Args& a) {
  cohort::GroupOptions go;
  go.name = a.get("--group", "cachebench");
  go.node = static_cast<uint32_t>(a.num("--node", "0"));
  go.slots = 4;
  go.bootstrap = a.has("--bootstrap");
  go.shm_dir = a.get("--shm-dir");
  go.idle = a.get("--idle", "backoff");
  go.threading = "shared";
  // 1 s rather than 100 ms before a silent member is suspected: three members' pollers, their
  // loader threads and Redis share two cpus here (with other tenants), and a member starved for
  // 100 ms was removed mid-run (its gets then answer kNotMember). No member fails in this
  // benchmark, so the longer timeout costs nothing it measures.
  go.suspect_timeout_us = 1'000'000;
  const auto members = static_cast<uint32_t>(a.num("--members", "3"));
  const std::string case_name = a.get("--case", "case");
  const std::string samples_dir = a.get("--samples-dir");
  char node_tag[16];  // (GCC 12's -Wrestrict misfires on "n" + std::string)
  std::snprintf(node_tag, sizeof node_tag, "n%u", go.node);
  const std::string tag = a.get("--tag", node_tag);
  Workload w;
  w.keys = a.num("--keys", "100000");
  w.warmup_ops = a.num("--warmup-ops", "20000");
  w.ops = a.num("--ops", "30000");
  w.put_percent = a.num("--put-percent", "5");

  auto loader =
      cohort::make_redis_loader("127.0.0.1", static_cast<uint16_t>(a.num("--port", "6379")));
  if (!loader.ok()) {
    std::fprintf(stderr, "bench_cache: %s\n", loader.error().message().c_str());
    return 1;
  }
  DoneCounter done;
  cohort::CacheServiceOptions co;
  co.loader = std::move(*loader);
  co.capacity_bytes = a.num("--capacity-bytes", "4194304");
  const std::string admission = a.get("--admission", "second");
  if (admission != "second" && admission != "every") {
    std::fprintf(stderr, "bench_cache: --admission %s: give second or every\n", admission.c_str());
    return 1;
  }
  co.admission = admission == "every" ? cohort::CacheAdmission::kEveryPeerFetch
                                      : cohort::CacheAdmission::kSecondPeerFetch;
  const std::string peer_reads = a.get("--peer-reads", "on");
  if (peer_reads != "on" && peer_reads != "off") {
    std::fprintf(stderr, "bench_cache: --peer-reads %s: give on or off\n", peer_reads.c_str());
    return 1;
  }
  co.peer_reads = peer_reads == "on";
  co.listener = &done;
  auto svc = cohort::CacheService::create(go, std::move(co));
  if (!svc.ok()) {
    std::fprintf(stderr, "bench_cache: %s\n", svc.error().message().c_str());
    return 1;
  }
  cohort::CacheService& s = **svc;
  cohort::Group& g = s.group();
  if (auto st = g.start(); !st.ok()) {
    std::fprintf(stderr, "bench_cache: %s\n", st.error().message().c_str());
    return 1;
  }
  // Everyone in one view, and this member ready (a joiner restores the directory first).
  const uint64_t setup_deadline = mono_ns() + 15'000'000'000ULL;
  while (!(g.in_view() && g.stats().view_members >= members &&
           s.get(key_of(0), std::chrono::seconds(1)).status == cohort::CacheStatus::kOk)) {
    if (mono_ns() > setup_deadline) {
      std::fprintf(stderr, "bench_cache: node %u saw no ready view of %u members in 15 s\n",
                   go.node, members);
      return 1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  const uint64_t paced_ops = a.num("--paced-ops", "0");
  const uint64_t paced_rate = std::max<uint64_t>(a.num("--paced-rate", "500"), 1);
  Zipf zipf(w.keys, kZipfS, a.num("--seed", "1"));
  Tally t;
  for (auto& v : t.ns) v.reserve(w.ops);
  for (uint64_t op = 0; op < w.warmup_ops; ++op) run_op(s, zipf, w, op, false, &t);
  const cohort::CacheCounters c0 = s.counters();
  const uint64_t views0 = g.stats().view_changes;
  const uint64_t start = mono_ns();
  for (uint64_t op = 0; op < w.ops; ++op) run_op(s, zipf, w, op, true, &t);
  const uint64_t elapsed = mono_ns() - start;
  const cohort::CacheCounters c1 = s.counters();
  print_member(t, c0, c1, elapsed, g.stats().view_changes - views0);
  if (!write_all_samples(samples_dir, case_name, tag, t)) return 1;
  Tally paced;
  if (paced_ops > 0) {
    // (No --barrier-dir: a member alone, nobody to wait for.)
    const std::string barrier_dir = a.get("--barrier-dir");
    if (!barrier_dir.empty() &&
        !barrier(barrier_dir, case_name + "-paced", tag, a.num("--barrier-count", "1"))) {
      std::fprintf(stderr,
                   "bench_cache: node %u: the other members never reached the paced "
                   "phase\n",
                   go.node);
      return 1;
    }
    for (auto& v : paced.ns) v.reserve(paced_ops);
    run_paced(s, zipf, w, paced_ops, paced_rate, &paced);
    if (!write_all_samples(samples_dir, case_name + "_paced", tag, paced)) return 1;
  }
  std::fflush(stdout);
  // Keep serving until every member is done: a peer that left early would turn the others'
  // last peer hits into failures and loads.
  const std::span<const std::byte> msg =
      std::as_bytes(std::span(kDoneMessage, sizeof kDoneMessage - 1));
  while (g.send(msg, cohort::DeliveryMode::kSafe) == cohort::SendStatus::kFull) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  const uint64_t end_deadline = mono_ns() + 120'000'000'000ULL;
  while (done.done.load(std::memory_order_relaxed) < members && mono_ns() < end_deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  g.leave();
  const uint64_t leave_deadline = mono_ns() + 2'000'000'000ULL;
  while (g.in_view() && mono_ns() < leave_deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  g.stop();
  // A member out of the view answers every get kNotMember at once: its share of the figures
  // would be empty and the others' skewed, so the run fails rather than report them.
  const uint64_t not_member = t.by_status[static_cast<size_t>(cohort::CacheStatus::kNotMember)] +
                              paced.by_status[static_cast<size_t>(cohort::CacheStatus::kNotMember)];
  if (not_member != 0) {
    std::fprintf(stderr,
                 "bench_cache: node %u left the view mid-run: %" PRIu64
                 " operations answered not_member\n",
                 go.node, not_member);
  }
  if (t.bad_values + paced.bad_values != 0) {
    std::fprintf(stderr, "bench_cache: node %u got %" PRIu64 " values of the wrong length\n",
                 go.node, t.bad_values + paced.bad_values);
  }
  const uint64_t bad_values = t.bad_values + paced.bad_values;
  return bad_values == 0 && not_member == 0 ? 0 : 1;
}

int redis_gets(const Args& a) {
  auto loader =
      cohort::make_redis_loader("127.0.0.1", static_cast<uint16_t>(a.num("--port", "6379")));
  if (!loader.ok()) {
    std::fprintf(stderr, "bench_cache: %s\n", loader.error().message().c_str());
    return 1;
  }
  Zipf zipf(a.num("--keys", "100000"), kZipfS, a.num("--seed", "1"));
  const uint64_t ops = a.num("--ops", "2000");
  std::vector<uint64_t> ns;
  ns.reserve(ops);
  std::string value;
  for (uint64_t i = 0; i < ops; ++i) {
    const std::string key = key_of(zipf.next());
    const uint64_t t0 = mono_ns();
    if ((*loader)->load(key, &value) != cohort::LoadStatus::kOk) {
      std::fprintf(stderr, "bench_cache: redis: GET %s failed\n", key.c_str());
      return 1;
    }
    ns.push_back(mono_ns() - t0);
  }
  print_latency("redis_get", ns);
  return 0;
}

int report(const Args& a) {
  const std::string case_name = a.get("--case", "case");
  std::vector<uint64_t> merged[3];
  for (size_t i = 0; i < a.words.size(); ++i) {
    const std::string& path = a.words[i];
    if (path == "--case") {
      ++i;
      continue;
    }
    size_t k = 0;
    while (k < 3 && path.find(std::string("-") + kClassNames[k] + ".ns") == std::string::npos) ++k;
    FILE* f = std::fopen(path.c_str(), "rb");
    if (k == 3 || f == nullptr) {
      std::fprintf(stderr, "bench_cache: report: cannot read %s\n", path.c_str());
      if (f != nullptr) std::fclose(f);
      return 1;
    }
    uint64_t v = 0;
    while (std::fread(&v, sizeof v, 1, f) == 1) merged[k].push_back(v);
    std::fclose(f);
  }
  for (size_t k = 0; k < 3; ++k) print_latency(case_name + "_" + kClassNames[k], merged[k]);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const Args a = Args::after_command(argc, argv);
  const std::string cmd = argc > 1 ? argv[1] : "";
  if (cmd == "preload") return preload(a);
  if (cmd == "member") return member(a);
  if (cmd == "redis") return redis_gets(a);
  if (cmd == "report") return report(a);
  std::fprintf(
      stderr,
      "usage: bench_cache preload|member|redis|report ... (see bench/cache/cache_bench.cc)\n");
  return 2;
}
