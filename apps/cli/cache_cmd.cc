#include "apps/cli/cache_cmd.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <thread>

#include "apps/cli/member_session.h"
#include "apps/cli/stats_pages.h"
#include "cohort/stats.h"
#include "transport/shm/shm_transport.h"

namespace cohort::cli {
namespace {

// Creates the service in `o.node`, or in the first free slot from the top when it is -1.
Result<std::unique_ptr<CacheService>> open_service(const CacheCmdOptions& o) {
  GroupOptions go = member_options(o.group, o.shm_dir, o.slots, o.bootstrap);
  std::string last;
  const int first = o.node >= 0 ? o.node : static_cast<int>(o.slots) - 1;
  const int end = o.node >= 0 ? o.node - 1 : -1;
  for (int n = first; n > end; --n) {
    auto loader = open_store(o.store);
    if (!loader.ok()) return std::move(loader).error();
    CacheServiceOptions co;
    co.loader = std::move(*loader);
    co.capacity_bytes = o.capacity_mb << 20;
    co.peer_reads = o.peer_reads;
    go.node = static_cast<uint32_t>(n);
    auto s = CacheService::create(go, std::move(co));
    if (s.ok() || o.node >= 0) return s;
    last = s.error().message();
  }
  return no_free_slot("cohort cache", o.slots, o.group, last);
}

}  // namespace

Result<std::unique_ptr<CacheLoader>> open_store(const std::string& spec) {
  if (spec.rfind("files:", 0) == 0) return make_file_loader(spec.substr(6));
  if (spec.rfind("redis://", 0) == 0) {
    const std::string hp = spec.substr(8);
    const size_t colon = hp.rfind(':');
    const std::string host = colon == std::string::npos ? hp : hp.substr(0, colon);
    unsigned long port = 6379;
    if (colon != std::string::npos) {
      char* end = nullptr;
      port = std::strtoul(hp.c_str() + colon + 1, &end, 10);
      if (end == nullptr || *end != '\0' || port == 0 || port > 65535) {
        return Error(Errc::kInvalidArgument,
                     "cohort cache: bad port in --store " + spec + "; give redis://HOST:PORT");
      }
    }
    if (host.empty()) {
      return Error(Errc::kInvalidArgument,
                   "cohort cache: no host in --store " + spec + "; give redis://HOST:PORT");
    }
    return make_redis_loader(host, static_cast<uint16_t>(port));
  }
  return Error(Errc::kInvalidArgument, "cohort cache: unknown --store '" + spec +
                                           "'; give redis://HOST:PORT or files:/FOLDER");
}

int print_cache_pages(const std::string& folder) {
  return for_each_live_page<CacheStatsPage>(
      folder, "cache-m", kCacheStatsMagic, kCacheStatsVersion, [](const CacheStatsPage* p) {
        constexpr auto r = std::memory_order_relaxed;
        const uint64_t gets = p->gets.load(r);
        const auto pct = [gets](uint64_t n) {
          return gets == 0 ? 0.0 : 100.0 * static_cast<double>(n) / static_cast<double>(gets);
        };
        char loader[sizeof p->loader + 1] = {};
        std::copy(std::begin(p->loader), std::end(p->loader), loader);
        std::printf("cache n%u.%u (%s): gets %" PRIu64 ", local hits %" PRIu64
                    " (%.1f%%), peer hits %" PRIu64 " (%.1f%%), store loads %" PRIu64
                    " (reloads %" PRIu64 "), not found %" PRIu64 ", store errors %" PRIu64 "\n",
                    p->node, p->incarnation, loader, gets, p->local_hits.load(r),
                    pct(p->local_hits.load(r)), p->peer_hits.load(r), pct(p->peer_hits.load(r)),
                    p->store_loads.load(r), p->reloads.load(r), p->not_found.load(r),
                    p->store_errors.load(r));
        std::printf("  bytes %" PRIu64 " of %" PRIu64 " in %" PRIu64 " entries, evictions %" PRIu64
                    "; peers asked %" PRIu64 " (read in place %" PRIu64 "), served %" PRIu64
                    ", false hits %" PRIu64 ", stale refused %" PRIu64 ", left mid-fetch %" PRIu64
                    "\n",
                    p->cached_bytes.load(r), p->capacity_bytes.load(r), p->cached_entries.load(r),
                    p->evictions.load(r), p->peer_requests.load(r), p->peer_reads.load(r),
                    p->peer_served.load(r), p->false_hits.load(r), p->stale_replies.load(r),
                    p->peer_failures.load(r));
        std::printf("  directory %" PRIu64 " keys; traffic sent %" PRIu64 " msgs %" PRIu64
                    " bytes, received %" PRIu64 " msgs %" PRIu64 " bytes; writes %" PRIu64
                    ", invalidations %" PRIu64 ", malformed %" PRIu64 "\n",
                    p->directory_keys.load(r), p->dir_messages_sent.load(r),
                    p->dir_bytes_sent.load(r), p->dir_messages_received.load(r),
                    p->dir_bytes_received.load(r), p->writes.load(r), p->invalidations.load(r),
                    p->malformed.load(r));
      });
}

int run_cache_cmd(const CacheCmdOptions& o) {
  if (o.action == "stats") {
    const std::string dir = o.shm_dir.empty() ? transport::shm::default_shm_dir() : o.shm_dir;
    if (print_cache_pages(dir + "/" + o.group) == 0) {
      std::printf("(no running cache member of group '%s' in %s)\n", o.group.c_str(), dir.c_str());
    }
    return 0;
  }
  stop_on_signals();
  if (o.action == "serve" && o.node < 0) {
    std::fprintf(stderr, "cohort cache serve: give the member's slot with --node N\n");
    return 2;
  }
  if (o.action != "serve" && (o.key.empty() || o.key.size() > kMaxCacheKeyBytes)) {
    std::fprintf(stderr, "cohort cache %s: give the key (1..%zu bytes)\n", o.action.c_str(),
                 kMaxCacheKeyBytes);
    return 2;
  }
  auto svc = open_service(o);
  if (!svc.ok()) {
    std::fprintf(stderr, "cohort cache: %s\n", svc.error().message().c_str());
    return 1;
  }
  CacheService& s = **svc;
  if (!start_and_join(s.group(), "cohort cache", o.group, o.bootstrap ? 1000 : o.join_ms,
                      "is a cache member running? (cohort cache serve --group " + o.group +
                          " --node 0 --bootstrap --store ...)")) {
    return 1;
  }
  const MemberUid self = s.group().self();
  const auto timeout = std::chrono::milliseconds(o.timeout_ms);
  if (o.action == "serve") {
    std::printf("serving cache of group '%s' as n%u.%u, store %s, peer reads %s\n", o.group.c_str(),
                self.node, self.incarnation, o.store.c_str(), s.peer_reads_status().c_str());
    serve_until_signalled(s.group());
    return 0;
  }
  int rc = 0;
  if (o.action == "get") {
    // A joiner is ready once its directory is restored: retry while it says not-a-member.
    CacheResult r;
    const auto until = std::chrono::steady_clock::now() + timeout;
    do {
      r = s.get(o.key, timeout);
      if (r.status != CacheStatus::kNotMember) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    } while (std::chrono::steady_clock::now() < until);
    if (r.status == CacheStatus::kOk) {
      std::fwrite(r.value.data(), 1, r.value.size(), stdout);
      std::printf("\n");
      std::fprintf(stderr, "cohort cache get: %s from %s\n", o.key.c_str(),
                   cache_source_name(r.source));
    } else {
      std::fprintf(stderr, "cohort cache get: %s: %s\n", o.key.c_str(),
                   cache_status_name(r.status));
      rc = r.status == CacheStatus::kNotFound ? 3 : 1;
    }
  } else {
    CacheStatus st = CacheStatus::kNotMember;
    const auto until = std::chrono::steady_clock::now() + timeout;
    do {
      st = s.put(o.key, o.value, timeout);
      if (st != CacheStatus::kNotMember) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    } while (std::chrono::steady_clock::now() < until);
    if (st == CacheStatus::kOk) {
      std::printf("put %s (%zu bytes), ordered\n", o.key.c_str(), o.value.size());
    } else {
      std::fprintf(stderr, "cohort cache put: %s: %s\n", o.key.c_str(), cache_status_name(st));
      rc = 1;
    }
  }
  std::fflush(stdout);
  leave_and_stop(s.group());
  return rc;
}

}  // namespace cohort::cli
