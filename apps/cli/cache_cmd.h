// `cohort cache`: the cooperative cache (include/cohort/cache.h) from the shell.
//   cohort cache serve  a member that caches in front of the store (run one or more, one
//                       --bootstrap)
//   cohort cache get    joins the group in a free slot, gets a key (a peer hit when a serving
//                       member holds it), prints the value on stdout and where it came from on
//                       stderr, leaves
//   cohort cache put    joins, writes through to the store and orders the invalidation, leaves
//   cohort cache stats  the counters of every running member, from their cache pages
// --store names the backing store: redis://HOST:PORT or files:/FOLDER.
#pragma once

#include <cstdint>
#include <string>

#include "cohort/cache.h"
#include "runtime/result.h"

namespace cohort::cli {

struct CacheCmdOptions {
  std::string action;  // serve | get | put | stats
  std::string group = "cache";
  std::string shm_dir;
  uint32_t slots = 8;
  int node = -1;  // serve: required; get/put: -1 picks a free slot
  bool bootstrap = false;
  std::string store = "redis://127.0.0.1:6379";
  uint64_t capacity_mb = 64;
  bool peer_reads = true;  // over shm: publish values for peers to read in place
  std::string key;
  std::string value;
  uint64_t timeout_ms = 5'000;
  uint64_t join_ms = 5'000;
};

int run_cache_cmd(const CacheCmdOptions& options);

// A loader for a --store spec (redis://HOST:PORT or files:/FOLDER); the error says what to give.
Result<std::unique_ptr<CacheLoader>> open_store(const std::string& spec);

// Prints the cache pages of <folder> (cache-m*.page of running members); returns how many.
int print_cache_pages(const std::string& folder);

}  // namespace cohort::cli
