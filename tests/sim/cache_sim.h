// The cache workload (tests/sim/NOTES.md, "The cache workload"): every simulated member runs the
// cooperative cache's own CacheCore (apps/cache/cache_core.h), fed by its deliveries, views,
// snapshots, final events and point-to-point requests and replies through the cluster's
// AppHooks; the store is a map in the workload with simulated load and write delays. The
// workload's operations are gets (alone, or a wave of the same key at several members at once)
// and puts at random members. Everything is shown to the CacheChecker as it happens.
//
// Cache ops travel as application messages behind the 8-byte id the protocol checker reads
// (sim_app.h), in the modes the core asks for; point-to-point messages go bare.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "apps/cache/cache_core.h"
#include "tests/sim/cache_checker.h"
#include "tests/sim/cluster.h"

namespace cohort::sim {

class CacheSim final : public AppHooks, public cache::PeerMemory {
 public:
  struct Counters {
    uint64_t gets = 0;
    uint64_t local_hits = 0;
    uint64_t peer_hits = 0;
    uint64_t store_gets = 0;  // gets answered by a store load
    uint64_t loads = 0;       // store loads run
    uint64_t puts = 0;
    uint64_t waves = 0;  // gets of one key at several members at once
    uint64_t stale_replies = 0;
    uint64_t false_hits = 0;
    uint64_t reloads = 0;
    uint64_t peer_failures = 0;
    uint64_t not_ops = 0;
    uint64_t peer_reads = 0;   // holders' values read in place (peer memory on)
    uint64_t ghost_reads = 0;  // of them, from a crashed member's memory
  };

  CacheSim(Cluster* cluster, Rng rng, CacheChecker* checker, const cache::CoreBugs& bugs);

  // Starts the 1 ms timer of every member's application (held-back sends).
  void start();
  // One operation: a get, a wave of gets or a put at random ready members; false if none can.
  bool op();
  // Every live member's core is idle: no get, write or load in flight, nothing to send, and
  // every op it sent delivered to it (so the protocol checker's "nothing lost" holds at the end).
  bool quiescent() const;
  uint64_t gets_unfinished() const;
  std::string describe() const;
  const Counters& counters() const noexcept { return counters_; }
  // The counters with those of the cores still running added (ended ones were added as they
  // ended).
  Counters final_counters() const;

  // --- AppHooks ------------------------------------------------------------------------------
  void on_start(NodeId node, Uid self, bool founder) override;
  void on_deliver(NodeId node, const Delivery& delivery) override;
  void on_install(NodeId node, const View& view) override;
  std::vector<std::byte> snapshot(NodeId node) override;
  void on_restore(NodeId node, std::span<const std::byte> bytes) override;
  void on_final(NodeId node, ActionKind kind) override;
  void on_crash(NodeId node) override;
  void on_request(NodeId node, const membership::P2pMessage& request) override;
  void on_reply(NodeId node, const membership::P2pMessage& reply, bool failed) override;
  // --- PeerMemory: a holder's values read in place, as the service reads a peer's shm mirror.
  // A live or stopped member's LRU as it is now; a crashed member's as it was when it died (its
  // mirror file outlives it); one read in five fails (a full set, a slot being written).
  bool read(MemberUid holder, std::string_view key, std::string* value,
            cache::Stamp* stamp) override;

 private:
  struct Node {
    std::unique_ptr<cache::CacheCore> core;
    Uid uid;
    ViewId view = 0;
    bool flush_scheduled = false;
    bool busy = false;
    std::map<uint64_t, std::string> loads;  // load id -> key, in flight at the store
    std::set<uint64_t> undelivered;         // its own ops sent, not yet delivered to it
  };
  struct Stored {
    std::string value;
    uint64_t pos = 0;
  };

  bool ready(NodeId n) const;
  void get(NodeId n, const std::string& key);
  void after(NodeId n);
  void flush(NodeId n);
  void schedule_flush(NodeId n);
  void run_store(NodeId n, cache::StoreWork w);
  void tick();
  void collect_counters(const cache::CacheCore& core);
  static void add_counters(const cache::CacheCore& core, Counters* to);

  Cluster* cluster_;
  Rng rng_;
  CacheChecker* checker_;
  cache::CoreBugs bugs_;
  std::vector<Node> nodes_;
  std::vector<std::string> keys_;
  std::map<std::string, Stored> store_;
  std::map<std::pair<uint64_t, uint64_t>, uint64_t> write_pos_;  // (uid key, write id) -> pos
  uint64_t next_value_ = 0;
  double p_put_ = 0;
  double p_wave_ = 0;
  uint64_t capacity_entries_ = 0;
  bool every_peer_fetch_ = false;
  bool peer_memory_ = false;
  std::map<std::pair<uint32_t, uint32_t>, std::unique_ptr<cache::CacheCore>> ghosts_;
  uint32_t admission_window_keys_ = 1;
  TimeNs load_max_ns_ = 0;
  uint32_t max_gets_ = 1;
  Counters counters_;
};

}  // namespace cohort::sim
