// The live statistics page of a running member, as `cohort stat` reads it (like aeron-stat):
// a 4 KiB file <shm dir>/<group>/stats-m<node>.page that the member maps and updates, and any
// process of the same user may map read-only. Every counter is written by the member's own
// thread with relaxed stores; a reader sees each value whole, not a consistent set.
#pragma once

#include <atomic>
#include <cstdint>

namespace cohort {

inline constexpr uint64_t kStatsMagic = 0x3174617473686f63ULL;  // "cohstat1"
inline constexpr uint32_t kStatsVersion = 3;  // 2: the control core's rounds; 3: ticket_waits

struct StatsPage {
  uint64_t magic;
  uint32_t version;
  int32_t pid;
  uint32_t node;
  uint32_t incarnation;
  char group[64];
  std::atomic<uint64_t> updated_ns;  // CLOCK_MONOTONIC of the last update
  std::atomic<uint64_t> state;       // 0 idle, 1 joining, 2 active, 3 wedged, 4 left, 5 removed
  std::atomic<uint64_t> view_id;
  std::atomic<uint64_t> view_count;
  std::atomic<uint64_t> view_members[32];  // node << 32 | incarnation
  std::atomic<uint64_t> sent;
  std::atomic<uint64_t> delivered;
  std::atomic<uint64_t> delivered_bytes;
  std::atomic<uint64_t> view_changes;
  std::atomic<uint64_t> relayed;            // repairs: messages relayed for a flush
  std::atomic<uint64_t> records_malformed;  // drops by reason ...
  std::atomic<uint64_t> records_stale;
  std::atomic<uint64_t> control_malformed;
  std::atomic<uint64_t> control_stale;
  std::atomic<uint64_t> control_send_failed;
  std::atomic<uint64_t> append_backpressure;
  std::atomic<uint64_t> rounds;       // poll loop iterations
  std::atomic<uint64_t> busy_rounds;  // ... that did work: 1 - busy/rounds is the idle ratio
  // Dedicated mode: the control core's loop, likewise (0 in shared mode: one loop does all).
  std::atomic<uint64_t> control_rounds;
  std::atomic<uint64_t> control_busy_rounds;
  // Sends that found no ticket to take and waited (membership/protocol/types.h, TicketCounter):
  // the window past the stable point was full, the view was changing, or the log was full.
  std::atomic<uint64_t> ticket_waits;
};
static_assert(sizeof(StatsPage) <= 4096, "the stats page is one 4 KiB page");
static_assert(std::atomic<uint64_t>::is_always_lock_free);

// The cooperative cache's page beside it (apps/cache/NOTES.md, "Statistics"): a 4 KiB file
// <shm dir>/<group>/cache-m<node>.page that a CacheService maps and updates every 10 ms (its
// timer thread, relaxed stores), read by `cohort stat` and `cohort cache stats`.
inline constexpr uint64_t kCacheStatsMagic = 0x3168636163686f63ULL;  // "cohcach1"
inline constexpr uint32_t kCacheStatsVersion = 2;                    // 2: peer_reads

struct CacheStatsPage {
  uint64_t magic;
  uint32_t version;
  int32_t pid;
  uint32_t node;
  uint32_t incarnation;
  char group[64];
  char loader[16];
  std::atomic<uint64_t> updated_ns;
  std::atomic<uint64_t> gets;
  std::atomic<uint64_t> local_hits;
  std::atomic<uint64_t> peer_hits;
  std::atomic<uint64_t> store_loads;
  std::atomic<uint64_t> reloads;
  std::atomic<uint64_t> not_found;
  std::atomic<uint64_t> store_errors;
  std::atomic<uint64_t> peer_requests;
  std::atomic<uint64_t> peer_served;
  std::atomic<uint64_t> false_hits;
  std::atomic<uint64_t> stale_replies;
  std::atomic<uint64_t> peer_failures;
  std::atomic<uint64_t> writes;
  std::atomic<uint64_t> invalidations;
  std::atomic<uint64_t> dir_messages_sent;
  std::atomic<uint64_t> dir_bytes_sent;
  std::atomic<uint64_t> dir_messages_received;
  std::atomic<uint64_t> dir_bytes_received;
  std::atomic<uint64_t> cached_bytes;
  std::atomic<uint64_t> cached_entries;
  std::atomic<uint64_t> capacity_bytes;
  std::atomic<uint64_t> evictions;
  std::atomic<uint64_t> directory_keys;
  std::atomic<uint64_t> malformed;
  std::atomic<uint64_t> peer_reads;  // of peer_requests: read in the peer's shm mirror
};
static_assert(sizeof(CacheStatsPage) <= 4096, "the cache page is one 4 KiB page");

}  // namespace cohort
