// cohort's lock service and etcd's lock, the same operations in the same run (scripts/bench
// lock drives this program and turns its `result` lines into figures).
//
//   bench_lock member --node N --members K --group G --shm-dir D [--bootstrap] [--pin CPU]
//                     [--idle busy|backoff] --role idle|uncontended|contended --run-ms MS
//     uncontended  acquire "solo" (exclusive), wait for the grant, release, wait until the
//                  release is applied here (the lock shows no holder), again: one sample per
//                  cycle. The member's loop runs on this thread (inline, for pinned runs).
//     contended    every contended member loops on "hot": on each grant, release it and ask
//                  again at once; the grant count over the run is the handoff rate. The member
//                  runs on its own thread with the idle policy given.
//     idle         a member that only takes part.
//   bench_lock etcd --endpoint http://127.0.0.1:PORT --clients C --run-ms MS --lock NAME
//     C clients (threads, each with its own lease and kept-alive HTTP connection) loop
//     lock/unlock through etcd's v3 API (the JSON gateway of its gRPC API, /v3/lock/lock and
//     /v3/lock/unlock): with 1 client, one latency sample per lock+unlock; with more, the
//     grant count is the handoff rate.
//
// Output: `result NAME VALUE` lines.
#include <curl/curl.h>
#include <sched.h>

#include <atomic>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "bench/common/process_args.h"
#include "cohort/lock.h"
#include "runtime/histogram.h"

namespace {

using cohort::bench::Args;
using cohort::bench::mono_ns;
using cohort::bench::print_latency;

// --- cohort -----------------------------------------------------------------------------------

int run_member(const Args& a) {
  cohort::GroupOptions go;
  go.name = a.get("--group", "lockbench");
  go.node = static_cast<uint32_t>(std::stoul(a.get("--node", "0")));
  go.slots = 8;
  go.bootstrap = a.has("--bootstrap");
  go.shm_dir = a.get("--shm-dir");
  go.idle = a.get("--idle", "backoff");
  go.idle_spins = std::stoi(a.get("--idle-spins", "-1"));
  go.threading = "shared";
  const uint32_t members = static_cast<uint32_t>(std::stoul(a.get("--members", "2")));
  const std::string role = a.get("--role", "idle");
  const uint64_t run_ns = std::stoull(a.get("--run-ms", "3000")) * 1'000'000;
  const int pin = std::stoi(a.get("--pin", "-1"));
  const bool inline_loop = role == "uncontended" || (role == "idle" && pin >= 0);

  auto svc = cohort::LockService::create(go);
  if (!svc.ok()) {
    std::fprintf(stderr, "bench_lock: %s\n", svc.error().message().c_str());
    return 1;
  }
  cohort::LockService& locks = **svc;
  cohort::Group& g = locks.group();
  if (pin >= 0) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(pin, &set);
    if (sched_setaffinity(0, sizeof set, &set) != 0) {
      std::fprintf(stderr, "bench_lock: cannot pin to cpu %d\n", pin);
      return 1;
    }
  }
  if (!inline_loop) {
    if (auto st = g.start(); !st.ok()) {
      std::fprintf(stderr, "bench_lock: %s\n", st.error().message().c_str());
      return 1;
    }
  }
  auto poll_until = [&](uint64_t deadline, auto&& done) {
    while (!done() && mono_ns() < deadline) {
      if (inline_loop) {
        for (int i = 0; i < 64; ++i) g.poll();
      } else {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
    }
    return done();
  };
  // Everyone in one view first.
  if (!poll_until(mono_ns() + 15'000'000'000ULL,
                  [&] { return g.in_view() && g.stats().view_members >= members; })) {
    std::fprintf(stderr, "bench_lock: node %u saw no view of %u members in 15 s\n", go.node,
                 members);
    return 1;
  }
  const uint64_t start = mono_ns();
  if (role == "uncontended") {
    auto hist = cohort::Histogram::create(10'000'000'000ULL, 3);
    if (!hist.ok()) return 1;
    std::atomic<bool> granted{false};
    cohort::LockGrant grant;
    uint64_t cycles = 0;
    while (mono_ns() - start < run_ns) {
      const uint64_t t0 = mono_ns();
      granted.store(false);
      const cohort::LockStatus st = locks.acquire_async(
          "solo", cohort::LockMode::kExclusive, [&](const cohort::LockResult& r) {
            if (r.status == cohort::LockStatus::kGranted) grant = r.grant;
            granted.store(true);
          });
      if (st != cohort::LockStatus::kSent) {
        g.poll();
        continue;
      }
      while (!granted.load()) g.poll();
      if (locks.release(grant) != cohort::LockStatus::kSent) return 1;
      while (!locks.query("solo").holders.empty()) g.poll();
      hist->record(mono_ns() - t0);
      ++cycles;
    }
    print_latency("cohort_acquire_release", *hist);
    std::printf("result cohort_cycles %" PRIu64 "\n", cycles);
  } else if (role == "contended") {
    std::atomic<bool> stop{false};
    std::atomic<uint64_t> grants{0};
    std::function<void()> ask;
    ask = [&] {
      (void)locks.acquire_async("hot", cohort::LockMode::kExclusive,
                                [&](const cohort::LockResult& r) {
                                  if (r.status != cohort::LockStatus::kGranted) return;
                                  grants.fetch_add(1);
                                  (void)locks.release(r.grant);
                                  if (!stop.load()) ask();
                                });
    };
    ask();
    std::this_thread::sleep_for(std::chrono::nanoseconds(run_ns));
    const uint64_t n = grants.load();
    const uint64_t elapsed = mono_ns() - start;
    stop.store(true);
    std::printf("result cohort_grants %" PRIu64 "\n", n);
    std::printf("result cohort_elapsed_ms %.1f\n", static_cast<double>(elapsed) / 1e6);
    std::this_thread::sleep_for(std::chrono::milliseconds(200));  // the last ones settle
  } else {
    poll_until(start + run_ns, [] { return false; });
  }
  std::fflush(stdout);
  g.leave();
  poll_until(mono_ns() + 2'000'000'000ULL, [&] { return !g.in_view(); });
  g.stop();
  return 0;
}

// --- etcd -------------------------------------------------------------------------------------

size_t collect(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

// One client: a kept-alive connection to etcd's JSON gateway.
class EtcdClient {
 public:
  explicit EtcdClient(std::string endpoint) : endpoint_(std::move(endpoint)) {
    curl_ = curl_easy_init();
    headers_ = curl_slist_append(nullptr, "Content-Type: application/json");
  }
  ~EtcdClient() {
    curl_slist_free_all(headers_);
    curl_easy_cleanup(curl_);
  }
  EtcdClient(const EtcdClient&) = delete;
  EtcdClient& operator=(const EtcdClient&) = delete;

  // POSTs `body` to `path`; the reply, or empty on a transport error or a non-200 status.
  std::string post(const char* path, const std::string& body) {
    std::string reply;
    const std::string url = endpoint_ + path;
    curl_easy_setopt(curl_, CURLOPT_URL, url.c_str());
    curl_easy_setopt(curl_, CURLOPT_HTTPHEADER, headers_);
    curl_easy_setopt(curl_, CURLOPT_POSTFIELDS, body.c_str());
    curl_easy_setopt(curl_, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
    curl_easy_setopt(curl_, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(curl_, CURLOPT_WRITEDATA, &reply);
    curl_easy_setopt(curl_, CURLOPT_TCP_NODELAY, 1L);
    if (curl_easy_perform(curl_) != CURLE_OK) return {};
    long code = 0;
    curl_easy_getinfo(curl_, CURLINFO_RESPONSE_CODE, &code);
    return code == 200 ? reply : std::string();
  }

 private:
  std::string endpoint_;
  CURL* curl_ = nullptr;
  curl_slist* headers_ = nullptr;
};

// The string value of "field":"..." in a flat JSON reply (etcd's replies quote every value).
std::string json_field(const std::string& json, const std::string& field) {
  const std::string key = "\"" + field + "\":\"";
  const size_t at = json.find(key);
  if (at == std::string::npos) return {};
  const size_t from = at + key.size();
  const size_t to = json.find('"', from);
  return to == std::string::npos ? std::string() : json.substr(from, to - from);
}

std::string base64(const std::string& in) {
  static const char* k = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  uint32_t v = 0;
  int bits = 0;
  for (unsigned char c : in) {
    v = v << 8 | c;
    bits += 8;
    while (bits >= 6) {
      out.push_back(k[(v >> (bits - 6)) & 63]);
      bits -= 6;
    }
  }
  if (bits > 0) out.push_back(k[(v << (6 - bits)) & 63]);
  while (out.size() % 4 != 0) out.push_back('=');
  return out;
}

int run_etcd(const Args& a) {
  const std::string endpoint = a.get("--endpoint", "http://127.0.0.1:2379");
  const int clients = std::stoi(a.get("--clients", "1"));
  const uint64_t run_ns = std::stoull(a.get("--run-ms", "3000")) * 1'000'000;
  const std::string name = base64(a.get("--lock", "hot"));
  curl_global_init(CURL_GLOBAL_DEFAULT);
  std::atomic<uint64_t> grants{0};
  std::atomic<int> failures{0};
  std::vector<cohort::Histogram> hists;
  for (int i = 0; i < clients; ++i)
    hists.push_back(cohort::Histogram::create(10'000'000'000ULL, 3).value());
  const uint64_t start = mono_ns();
  std::vector<std::thread> threads;
  for (int i = 0; i < clients; ++i) {
    threads.emplace_back([&, i] {
      EtcdClient c(endpoint);
      const std::string lease = json_field(c.post("/v3/lease/grant", R"({"TTL": 60})"), "ID");
      if (lease.empty()) {
        failures.fetch_add(1);
        return;
      }
      const std::string lock_body = "{\"name\":\"" + name + "\",\"lease\":\"" + lease + "\"}";
      while (mono_ns() - start < run_ns) {
        const uint64_t t0 = mono_ns();
        const std::string key = json_field(c.post("/v3/lock/lock", lock_body), "key");
        if (key.empty() || c.post("/v3/lock/unlock", "{\"key\":\"" + key + "\"}").empty()) {
          failures.fetch_add(1);
          return;
        }
        hists[static_cast<size_t>(i)].record(mono_ns() - t0);
        grants.fetch_add(1);
      }
    });
  }
  for (std::thread& t : threads) t.join();
  const uint64_t elapsed = mono_ns() - start;
  if (failures.load() != 0) {
    std::fprintf(stderr, "bench_lock: %d etcd clients failed (is etcd at %s?)\n", failures.load(),
                 endpoint.c_str());
    return 1;
  }
  if (clients == 1) print_latency("etcd_lock_unlock", hists[0]);
  std::printf("result etcd_grants %" PRIu64 "\n", grants.load());
  std::printf("result etcd_elapsed_ms %.1f\n", static_cast<double>(elapsed) / 1e6);
  curl_global_cleanup();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const Args a = Args::after_command(argc, argv);
  const std::string cmd = argc > 1 ? argv[1] : "";
  if (cmd == "member") return run_member(a);
  if (cmd == "etcd") return run_etcd(a);
  std::fprintf(stderr, "usage: bench_lock member|etcd ... (see bench/lock/lock_bench.cc)\n");
  return 2;
}
