// CacheCore: one member's side of the cooperative cache, without a group, a clock, a socket or
// a thread: its cached values (cache_lru.h), its copy of the replicated directory
// (cache_directory.h), its gets in flight, the loads it runs for the group, its writes. The
// CacheService (cache_service.cc) runs it behind a mutex over a real cohort::Group and a loader
// thread; the simulator (tests/sim/cache_sim.*) runs the same class over simulated members and a
// simulated store. apps/cache/NOTES.md has the rules.
//
// Inputs: the application's gets and writes; the store's answers (load_done, write_done); the
// group's deliveries, views, final events, point-to-point requests and replies. Outputs, taken
// by the host: ordered ops, requests and replies (flush()), work for the store
// (take_store_work()), and finished gets and writes (take_gets_done(), take_writes_done()).
//
// A get is: a local hit; else a request to a member the directory lists as holding the key,
// then to another, then to the member loading it; else a claim in total order, whose winner,
// alone in the group, loads the key from the store, and answers every request that waited for
// it. A value from a peer or a load is used only if its stamp is not older than the key's last
// write this member delivered; otherwise the get goes on elsewhere.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "apps/cache/cache_directory.h"
#include "apps/cache/cache_lru.h"
#include "apps/cache/cache_op.h"
#include "cohort/cache.h"
#include "cohort/group.h"

namespace cohort::cache {

// A planted bug for the simulator's self test (tests/sim, "cache mutation"); production code
// never sets it.
struct CoreBugs {
  // A peer's value is used without comparing its stamp with the key's last write here.
  bool unchecked_peer_reply = false;
};

struct CoreOptions {
  uint64_t capacity_bytes = 64ull << 20;
  // Whether a value fetched from a peer is cached here (cache.h, CacheAdmission); the window
  // (kSecondPeerFetch): how many recent uncached peer fetches are remembered, at least 1.
  CacheAdmission admission = CacheAdmission::kSecondPeerFetch;
  uint32_t admission_window_keys = 256;
  uint32_t max_fetches = 4096;  // keys with gets in flight here
  uint32_t max_writes = 4096;   // writes in flight here
  uint32_t max_waiters = 4096;  // peer requests held for loads in flight here
  Directory::Limits directory{};
  CoreBugs bugs{};
};

struct StoreWork {
  enum class Kind : uint8_t { kLoad, kStore, kRemove };
  Kind kind = Kind::kLoad;
  uint64_t id = 0;  // load_done(id, ...) or write_done(id, ...)
  std::string key;
  std::string value;  // kStore
};

struct GetDone {
  uint64_t get = 0;
  CacheStatus status = CacheStatus::kOk;
  CacheSource source = CacheSource::kLocal;
  std::string key;
  std::string value;
  Stamp stamp;  // the value's stamp
};

struct WriteDone {
  uint64_t write = 0;
  CacheStatus status = CacheStatus::kOk;
  std::string key;
};

// A holder's value read without a message (the service's shared-memory mirrors, cache_mirror.h;
// the simulator reads the holder's LRU): the value and stamp the holder would have replied with
// at this instant, or false when it cannot be read (no mirror, not held there, busy).
class PeerMemory {
 public:
  virtual ~PeerMemory() = default;
  virtual bool read(MemberUid holder, std::string_view key, std::string* value, Stamp* stamp) = 0;
};

class CacheCore {
 public:
  explicit CacheCore(const CoreOptions& options = {});

  // This member's identity, before any delivery.
  void set_self(MemberUid self) noexcept { self_ = self; }
  MemberUid self() const noexcept { return self_; }

  // --- the application's side ----------------------------------------------------------------
  // 0 with `*done` filled when the get ends at once (a local hit, or an error); otherwise the
  // get's number, and its outcome comes later through take_gets_done().
  uint64_t get(std::string_view key, GetDone* done);
  // Write-through: a store write, then the ordered invalidation; the outcome comes through
  // take_writes_done() once the invalidation is delivered here. 0 with `*status` when refused.
  uint64_t put(std::string_view key, std::string_view value, CacheStatus* status);
  uint64_t remove(std::string_view key, CacheStatus* status);
  uint64_t invalidate(std::string_view key, CacheStatus* status);
  // Ready to serve: in a view, with the directory restored (a joiner) or founded.
  bool ready() const noexcept { return ready_ && !final_; }
  bool cut_off() const noexcept { return cut_off_; }
  bool final() const noexcept { return final_; }
  size_t gets_in_flight() const noexcept { return fetches_.size(); }
  size_t writes_in_flight() const noexcept { return writes_.size(); }
  size_t loads_in_flight() const noexcept { return loads_.size(); }

  // --- the store's side ----------------------------------------------------------------------
  void load_done(uint64_t id, LoadStatus status, std::string_view value);
  void write_done(uint64_t id, bool ok);
  std::vector<StoreWork> take_store_work() { return std::exchange(store_work_, {}); }

  // --- the group's side ----------------------------------------------------------------------
  // A delivery; false when it is not a cache op (another application's message).
  bool on_deliver(std::span<const std::byte> payload, MemberUid sender, uint64_t view,
                  uint64_t gseq, DeliveryMode mode);
  void on_view(std::span<const MemberUid> members);
  void on_event(GroupEvent event);
  // A request from `peer`; false when the bytes are not a cache request (another
  // application's). A cache request is always answered, at once or when a load ends.
  bool on_request(MemberUid peer, uint64_t id, std::span<const std::byte> payload);
  // The answer to this core's request `id` (failed: the member asked left first); false when
  // `id` is not one of this core's requests.
  bool on_reply(uint64_t id, std::span<const std::byte> payload, bool failed);
  std::vector<std::byte> snapshot() const { return directory_.snapshot(); }
  bool restore(std::span<const std::byte> bytes);

  // --- outputs -------------------------------------------------------------------------------
  struct Transport {
    std::function<SendStatus(std::span<const std::byte>, DeliveryMode)> send;
    // The id is the core's; a host whose group numbers requests itself maps them.
    std::function<SendStatus(MemberUid, uint64_t, std::span<const std::byte>)> request;
    std::function<void(MemberUid, uint64_t, std::span<const std::byte>)> reply;
  };
  // Sends the replies, requests and ordered ops queued (directory entries batched, one message
  // per up to kMaxBatchEntries), in the order made, until the group refuses one for now (kFull:
  // call again later). Returns the messages sent.
  uint32_t flush(const Transport& transport);
  bool has_output() const noexcept {
    return !outbox_.empty() || !requests_out_.empty() || !replies_out_.empty();
  }
  std::vector<GetDone> take_gets_done() { return std::exchange(gets_done_, {}); }
  std::vector<WriteDone> take_writes_done() { return std::exchange(writes_done_, {}); }

  const Directory& directory() const noexcept { return directory_; }
  const LruStore& lru() const noexcept { return lru_; }
  // Told of every change to the cached values (the service's shared-memory mirror).
  void set_lru_observer(LruObserver* observer) noexcept { lru_.set_observer(observer); }
  // With it, a get that misses here reads a holder's value first (NOTES.md, "Peer reads"),
  // and ends at once when one passes the stamp check.
  void set_peer_memory(PeerMemory* memory) noexcept { peer_memory_ = memory; }
  CacheCounters counters() const;

 private:
  struct Fetch {
    std::vector<uint64_t> gets;
    std::vector<MemberUid> tried;
    uint64_t request = 0;  // the peer request outstanding
    MemberUid asked{};
  };
  struct Load {
    uint64_t id = 0;
    Stamp stamp;             // the frontier when it began
    bool for_claim = false;  // this member's claim: it announces the outcome
    bool direct = false;     // cut off (or forced): the value is neither cached nor announced
    std::vector<std::pair<MemberUid, uint64_t>> waiters;
  };
  struct Outgoing {
    bool invalidate = false;
    uint64_t write = 0;
    DirKind kind = DirKind::kClaim;
    Stamp stamp;
    std::string key;
  };
  struct PeerOut {
    MemberUid to;
    uint64_t id = 0;
    std::vector<std::byte> bytes;
  };
  struct Write {
    std::string key;
    bool ordered = false;  // the invalidation is queued or sent
  };

  uint64_t start_write(StoreWork::Kind kind, std::string_view key, std::string_view value,
                       CacheStatus* status);
  void advance(const std::string& key);
  bool read_holders(std::string_view key, GetDone* done);
  bool current(std::string_view key, Stamp stamp);
  void take_peer_value(const std::string& key, std::string_view value, Stamp stamp);
  void apply_reply(uint64_t id, const Reply* reply, bool malformed);
  void advance_all();
  void ask(const std::string& key, Fetch& f, MemberUid peer);
  bool read_request(const PeerOut& p);
  void start_load(const std::string& key, bool for_claim, bool direct);
  void finish_fetch(const std::string& key, CacheStatus status, CacheSource source,
                    std::string_view value, Stamp stamp);
  // The admission policy: true when a value fetched from a peer is to be cached here.
  bool admit_peer_value(const std::string& key);
  // Caches a value and announces it; false when it is not kept.
  bool keep(const std::string& key, std::string_view value, Stamp stamp);
  void announce(DirKind kind, std::string_view key, Stamp stamp = {});
  void apply_entry(const DirEntry& e, MemberUid sender);
  void on_claim_delivered(const std::string& key, Directory::ClaimResult r);
  void answer(MemberUid peer, uint64_t id, const Reply& reply);
  void end_all(CacheStatus why);

  CoreOptions options_;
  MemberUid self_{};
  Directory directory_;
  LruStore lru_;
  PeerMemory* peer_memory_ = nullptr;
  std::vector<MemberUid> view_;
  bool ready_ = false;
  bool cut_off_ = false;
  bool final_ = false;
  std::map<std::string, Fetch, std::less<>> fetches_;
  std::map<std::string, Load, std::less<>> loads_;
  std::map<uint64_t, std::string> load_ids_;
  std::map<uint64_t, std::string> requests_;  // this core's peer requests outstanding
  std::set<std::string, std::less<>> claims_pending_;
  // kSecondPeerFetch's window: the last admission_window_keys peer fetches not cached, oldest
  // first, each with its number; and the keys among them not admitted since, with the number of
  // their latest entry. Keys only, never values: the window decides nothing but whether a value
  // that passed the stamp check is cached.
  std::deque<std::pair<uint64_t, std::string>> window_;
  KeyMap<uint64_t> window_keys_;
  uint64_t window_next_ = 0;
  std::map<uint64_t, Write> writes_;
  std::deque<Outgoing> outbox_;
  std::deque<PeerOut> requests_out_;
  std::deque<PeerOut> replies_out_;
  std::vector<StoreWork> store_work_;
  std::vector<GetDone> gets_done_;
  std::vector<WriteDone> writes_done_;
  uint64_t next_get_ = 0;
  uint64_t next_load_ = 0;
  uint64_t next_request_ = 0;
  uint64_t next_write_ = 0;
  size_t waiters_ = 0;
  CacheCounters counters_{};
};

}  // namespace cohort::cache
