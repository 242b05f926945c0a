// cohort's cooperative cache: members of a group keep caches in front of one backing store and
// fetch from each other before the store (DESIGN.md, "Apps"; apps/cache/NOTES.md).
//
// A get is a local hit, a peer hit (a point-to-point request to a member the directory says
// holds the key) or a store load; concurrent misses of one key anywhere in the group cause one
// store load (the first miss claims the key in total order; the others wait for its value). A
// put writes through to the store, then multicasts an invalidation in safe (uniform) order;
// once that invalidation is delivered at a member, the member never returns the older value:
// every value carries the stamp (view, gseq) of the last write its loader had delivered, and a
// value stamped before a write a member has delivered is refused there, from a peer or a load.
//
//   auto loader = cohort::make_redis_loader("127.0.0.1", 6379);   // or make_file_loader(dir)
//   cohort::CacheServiceOptions cache;
//   cache.loader = std::move(*loader);
//   auto c = cohort::CacheService::create(group_options, std::move(cache));
//   (*c)->group().start();
//   cohort::CacheResult r = (*c)->get("user:42", std::chrono::seconds(1));
//   if (r.status == cohort::CacheStatus::kOk) use(r.value);
//   (*c)->put("user:42", "new", std::chrono::seconds(1));   // returns once ordered here
//
// Threading. Loads and store writes run on the service's own loader thread (a store client such
// as Redis blocks), never on the group's data core. get(), put(), remove() and invalidate()
// block and are for ordinary threads: from a group callback they answer kInvalid. counters()
// may be called from any thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "cohort/group.h"
#include "runtime/result.h"

namespace cohort {

inline constexpr size_t kMaxCacheKeyBytes = 250;
// Values up to this size are cached and shared; larger ones are returned but never cached.
inline constexpr size_t kMaxCachedValueBytes = 3584;

enum class CacheStatus : uint8_t {
  kOk,          // get: `value` is the value; put/remove/invalidate: ordered and delivered here
  kNotFound,    // get: the store has no such key
  kStoreError,  // the backing store failed (it is down, or refused the operation)
  kTimedOut,    // the deadline passed first (a put may still take effect)
  kNotMember,   // this member is not in a view (joining, removed or left)
  kBusy,        // too many gets or writes in flight at this member
  kInvalid,     // a key of 0 or more than kMaxCacheKeyBytes bytes, or a blocking call from a
                // group callback
};
const char* cache_status_name(CacheStatus status) noexcept;

// Where a get's value came from.
enum class CacheSource : uint8_t { kLocal, kPeer, kStore };
const char* cache_source_name(CacheSource source) noexcept;

struct CacheResult {
  CacheStatus status = CacheStatus::kInvalid;
  CacheSource source = CacheSource::kLocal;
  std::string value;
};

enum class LoadStatus : uint8_t { kOk, kNotFound, kError };

// Which values a member caches when it fetched them from a peer (apps/cache/NOTES.md,
// "Admission"). A value it loaded from the store is always cached; this only decides whether a
// peer's value joins the local LRU (and is announced). Coherence does not depend on it.
enum class CacheAdmission : uint8_t {
  // Every peer-fetched value is cached: hot keys spread to every member at once, but so does
  // the warm middle, and the members' caches converge on the same keys.
  kEveryPeerFetch,
  // Cached on its second peer fetch while the key is still among the last `window` keys this
  // member fetched from peers without caching them: keys this member uses often replicate,
  // the rest stay in one member's cache and are fetched from it.
  kSecondPeerFetch,
};

// The backing store. Called from the cache service's loader thread only, one call at a time.
class CacheLoader {
 public:
  virtual ~CacheLoader() = default;
  virtual LoadStatus load(std::string_view key, std::string* value) = 0;
  virtual bool store(std::string_view key, std::string_view value) = 0;
  virtual bool remove(std::string_view key) = 0;
  virtual const char* name() const noexcept = 0;
};

// Redis over libhiredis (a blocking client with a timeout; it reconnects after an error).
// Missing hiredis at build time: the error says so.
Result<std::unique_ptr<CacheLoader>> make_redis_loader(
    const std::string& host, uint16_t port,
    std::chrono::milliseconds timeout = std::chrono::milliseconds(500));
// One file per key in `dir` (created if missing). A key is stored under a name that encodes
// every byte outside [A-Za-z0-9_.-] as %XX, so any key is a safe file name; a write goes to a
// temporary file renamed over the old one.
Result<std::unique_ptr<CacheLoader>> make_file_loader(const std::string& dir);

// Counters of one member, as `cohort stat` shows them.
struct CacheCounters {
  uint64_t gets = 0;
  uint64_t local_hits = 0;
  uint64_t peer_hits = 0;
  uint64_t peer_not_kept = 0;  // peer-fetched values not cached (the admission policy)
  uint64_t store_loads = 0;    // loads begun (reloads included)
  uint64_t reloads = 0;        // loads redone: a write was delivered while they ran
  uint64_t direct_loads = 0;   // loads while cut off, or of values too large to share
  uint64_t not_found = 0;
  uint64_t store_errors = 0;
  uint64_t peer_requests = 0;      // peers this member asked for a value ...
  uint64_t peer_reads = 0;         // ... of which answered by reading the peer's mirror
  uint64_t peer_served = 0;        // requests it answered with a value
  uint64_t false_hits = 0;         // a member the directory named did not have the key
  uint64_t stale_replies = 0;      // replies refused: stamped before a write delivered here
  uint64_t peer_failures = 0;      // asked members that left before they replied
  uint64_t writes = 0;             // puts, removes and invalidations ordered by this member
  uint64_t invalidations = 0;      // invalidations delivered here
  uint64_t dir_messages_sent = 0;  // directory traffic this member sent ...
  uint64_t dir_bytes_sent = 0;
  uint64_t dir_entries_sent = 0;
  uint64_t dir_messages_received = 0;  // ... and received (its own included)
  uint64_t dir_bytes_received = 0;
  uint64_t claims_won = 0;
  uint64_t evictions = 0;
  uint64_t cached_bytes = 0;
  uint64_t cached_entries = 0;
  uint64_t directory_keys = 0;
  uint64_t malformed = 0;  // ops, requests and replies that did not decode: dropped
};

struct CacheServiceOptions {
  std::unique_ptr<CacheLoader> loader;  // required
  uint64_t capacity_bytes = 64ull << 20;
  CacheAdmission admission = CacheAdmission::kSecondPeerFetch;
  // Over shm, publish this member's values in shared memory and read peers' values there
  // one-sided (apps/cache/NOTES.md, "Peer reads"): a peer hit then costs neither member's data
  // core a message. The mirror reserves twice capacity_bytes of shared memory (1 KiB slots, one
  // per 512 bytes of capacity); where that cannot be had, the member runs without one.
  bool peer_reads = true;
  // kSecondPeerFetch: how many recent uncached peer fetches are remembered (keys only, at most
  // kMaxCacheKeyBytes + about 100 bytes each). 0: capacity_bytes / 16 KiB, at least 64 (256 at
  // 4 MiB: about 4% of the entries such a cache holds; a model of the benchmark's workload
  // found small windows keep fewer duplicates, NOTES.md).
  uint32_t admission_window_keys = 0;
  // Receives the group's other traffic: messages and requests that are not the cache's (they
  // must not start with 0xC0 0x43 or 0xC0 0x63), views, events, and a snapshot of its own.
  GroupListener* listener = nullptr;
};

class CacheService {
 public:
  // Creates the group (Group::create) with the service as its listener; start it with
  // group().start() or poll it yourself.
  static Result<std::unique_ptr<CacheService>> create(const GroupOptions& group,
                                                      CacheServiceOptions options);
  ~CacheService();
  CacheService(const CacheService&) = delete;
  CacheService& operator=(const CacheService&) = delete;

  Group& group() noexcept;

  CacheResult get(std::string_view key, std::chrono::nanoseconds timeout);
  // Write-through: the store first, then the ordered invalidation; returns once it is delivered
  // at this member (every other member drops its copy when it delivers it).
  CacheStatus put(std::string_view key, std::string_view value, std::chrono::nanoseconds timeout);
  CacheStatus remove(std::string_view key, std::chrono::nanoseconds timeout);
  // The ordered invalidation alone (the store changed behind the cache's back).
  CacheStatus invalidate(std::string_view key, std::chrono::nanoseconds timeout);

  CacheCounters counters() const;
  // "on", or "off: " and why (turned off, not on shm, or the mirror's shared memory could not
  // be reserved, with the error): whether this member's values are published for peer reads.
  std::string peer_reads_status() const;

  struct Impl;

 private:
  explicit CacheService(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace cohort
