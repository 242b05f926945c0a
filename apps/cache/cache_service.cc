// The cooperative cache over a cohort::Group (include/cohort/cache.h): a CacheCore behind one
// mutex, fed by the group's callbacks on the data core and by the application's calls on any
// thread; a loader thread that runs the store's blocking calls off the data core; a timer
// thread that retries what the group refused for a moment and publishes the stats page.
//
// Locking: `mu` guards the core, the waiters, the store's queue and the request-id map. It is
// held for the core's bounded work and the group's non-blocking send(), request() and reply()
// only; never across a store call.
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <deque>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <thread>

#include "apps/cache/cache_core.h"
#include "apps/cache/cache_mirror.h"
#include "apps/common/service_support.h"
#include "cohort/cache.h"
#include "cohort/stats.h"
#include "runtime/page_file.h"
#include "transport/shm/shm_transport.h"

namespace cohort {
namespace {

using cache::GetDone;
using cache::StoreWork;
using cache::WriteDone;
using Clock = std::chrono::steady_clock;

constexpr auto kRetry = std::chrono::milliseconds(1);
constexpr uint64_t kPublishEveryNs = 10'000'000;

uint64_t mono_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ull + static_cast<uint64_t>(ts.tv_nsec);
}

}  // namespace

struct CacheService::Impl final : GroupListener, cache::LruObserver, cache::PeerMemory {
  using InCallback = apps::InCallback<Impl>;

  struct Waiter {
    bool done = false;
    CacheResult result;
  };
  struct HeldReply {
    MemberUid to;
    uint64_t id = 0;
    std::vector<std::byte> bytes;
  };

  CacheServiceOptions options;
  std::unique_ptr<Group> group;
  mutable std::mutex mu;
  std::condition_variable cv;       // waiters
  std::condition_variable work_cv;  // the loader thread
  std::condition_variable timer_cv;
  cache::CacheCore core;
  std::map<uint64_t, std::shared_ptr<Waiter>> gets;
  std::map<uint64_t, std::shared_ptr<Waiter>> writes;
  std::map<uint64_t, uint64_t> request_ids;  // the group's request id -> the core's
  std::deque<HeldReply> held_replies;        // replies the group refused for a moment
  std::deque<StoreWork> work;
  bool stopping = false;
  std::thread loader_thread;
  std::thread timer_thread;
  CacheStatsPage* page = nullptr;
  std::string page_path;
  // Peer reads (cache_mirror.h): this member's values published for peers on this host, and
  // the peers' mirrors this member read, by node (re-opened for a new incarnation).
  struct PeerMirror {
    std::unique_ptr<cache::MirrorReader> reader;
    uint64_t retry_ns = 0;  // no file (yet): tried again from then on
  };
  std::string mirror_folder;  // empty: no peer reads (not on shm, or turned off)
  std::string mirror_status = "off: not on shm";
  std::unique_ptr<cache::MirrorWriter> mirror;
  std::map<uint32_t, PeerMirror> peer_mirrors;

  explicit Impl(const cache::CoreOptions& core_options) : core(core_options) {}

  ~Impl() override {
    {
      std::lock_guard<std::mutex> g(mu);
      stopping = true;
    }
    work_cv.notify_all();
    timer_cv.notify_all();
    if (loader_thread.joinable()) loader_thread.join();
    if (timer_thread.joinable()) timer_thread.join();
    unmap_page_file(page, 4096, page_path);
  }

  // Under mu: send what the core queued, hand store work to the loader thread, wake waiters.
  void settle() {
    cache::CacheCore::Transport t;
    t.send = [this](std::span<const std::byte> b, DeliveryMode mode) {
      return group->send(b, mode);
    };
    t.request = [this](MemberUid to, uint64_t id, std::span<const std::byte> b) {
      uint64_t gid = 0;
      const SendStatus s = group->request(to, b, &gid);
      if (s == SendStatus::kOk) request_ids[gid] = id;
      return s;
    };
    t.reply = [this](MemberUid to, uint64_t id, std::span<const std::byte> b) {
      if (group->reply(to, id, b) == SendStatus::kFull) {
        held_replies.push_back(HeldReply{to, id, {b.begin(), b.end()}});
      }
    };
    while (!held_replies.empty()) {
      const HeldReply& h = held_replies.front();
      if (group->reply(h.to, h.id, h.bytes) == SendStatus::kFull) break;
      held_replies.pop_front();
    }
    core.flush(t);
    for (GetDone& d : core.take_gets_done()) {
      auto it = gets.find(d.get);
      if (it == gets.end()) continue;  // its caller gave up at its deadline
      it->second->done = true;
      it->second->result = CacheResult{d.status, d.source, std::move(d.value)};
      gets.erase(it);
    }
    for (const WriteDone& w : core.take_writes_done()) {
      auto it = writes.find(w.write);
      if (it == writes.end()) continue;
      it->second->done = true;
      it->second->result.status = w.status;
      writes.erase(it);
    }
    std::vector<StoreWork> more = core.take_store_work();
    if (!more.empty()) {
      for (StoreWork& w : more) work.push_back(std::move(w));
      work_cv.notify_one();
    }
    if (core.has_output() || !held_replies.empty()) timer_cv.notify_one();
    cv.notify_all();
  }

  // --- peer reads (under mu) ------------------------------------------------------------------
  void on_put(std::string_view key, std::string_view value, cache::Stamp stamp) override {
    if (mirror) (void)mirror->put(key, value, stamp);
  }
  void on_erase(std::string_view key) override {
    if (mirror) mirror->erase(key);
  }
  void on_clear() override {
    if (mirror) mirror->clear();
  }
  bool take_referenced(std::string_view key) override {
    return mirror && mirror->take_referenced(key);
  }

  static std::string mirror_path(const std::string& folder, uint32_t node) {
    return folder + "/cache-mirror-m" + std::to_string(node);
  }

  // A holder's value from its mirror, for the core (its gets and requests read before asking).
  bool read(MemberUid holder, std::string_view key, std::string* value,
            cache::Stamp* stamp) override {
    cache::MirrorReader* r = peer_mirror(holder);
    return r != nullptr && r->read(key, value, stamp) == cache::MirrorReader::Read::kFound;
  }

  // The mirror of the incarnation `to`, or nullptr (none, or another incarnation's).
  cache::MirrorReader* peer_mirror(MemberUid to) {
    PeerMirror& p = peer_mirrors[to.node];
    if (p.reader && p.reader->incarnation() == to.incarnation) return p.reader.get();
    const uint64_t now = mono_ns();
    if (now < p.retry_ns) return nullptr;
    p.retry_ns = now + 100'000'000;  // a peer without a mirror is asked over the group
    auto r = cache::MirrorReader::open(mirror_path(mirror_folder, to.node));
    if (!r.ok() || (*r)->incarnation() != to.incarnation) return nullptr;
    p.reader = std::move(*r);
    return p.reader.get();
  }

  // --- GroupListener, on the data core ----------------------------------------------------------
  void on_deliver(const Message& m) override {
    InCallback in(this);
    bool ours = false;
    {
      std::lock_guard<std::mutex> g(mu);
      ours = core.on_deliver(m.bytes, m.sender, m.view, m.gseq, m.mode);
      if (ours) settle();
    }
    if (!ours && options.listener != nullptr) options.listener->on_deliver(m);
  }

  void on_view(const ViewInfo& view) override {
    InCallback in(this);
    {
      std::lock_guard<std::mutex> g(mu);
      core.on_view(view.members);
      settle();
    }
    if (options.listener != nullptr) options.listener->on_view(view);
  }

  void on_event(GroupEvent event) override {
    InCallback in(this);
    {
      std::lock_guard<std::mutex> g(mu);
      core.on_event(event);
      settle();
    }
    if (options.listener != nullptr) options.listener->on_event(event);
  }

  void on_peer_failed(uint32_t node) override {
    if (options.listener != nullptr) options.listener->on_peer_failed(node);
  }

  void on_request(const PeerMessage& r) override {
    InCallback in(this);
    bool ours = false;
    {
      std::lock_guard<std::mutex> g(mu);
      ours = core.on_request(r.peer, r.id, r.bytes);
      if (ours) settle();
    }
    if (!ours && options.listener != nullptr) options.listener->on_request(r);
  }

  void on_reply(const PeerMessage& r, ReplyStatus status) override {
    InCallback in(this);
    bool ours = false;
    {
      std::lock_guard<std::mutex> g(mu);
      auto it = request_ids.find(r.id);
      if (it != request_ids.end()) {
        const uint64_t id = it->second;
        request_ids.erase(it);
        ours = true;
        (void)core.on_reply(id, r.bytes, status == ReplyStatus::kPeerLeft);
        settle();
      }
    }
    if (!ours && options.listener != nullptr) options.listener->on_reply(r, status);
  }

  // The snapshot: the directory's length, the directory's bytes, the application's bytes.
  std::vector<std::byte> snapshot() override {
    std::vector<std::byte> dir;
    {
      std::lock_guard<std::mutex> g(mu);
      dir = core.snapshot();
    }
    std::vector<std::byte> app;
    if (options.listener != nullptr) app = options.listener->snapshot();
    return apps::frame_snapshot(dir, app);
  }

  void restore(std::span<const std::byte> state) override {
    InCallback in(this);
    const apps::SnapshotParts parts = apps::split_snapshot(state);
    {
      std::lock_guard<std::mutex> g(mu);
      // Refused bytes leave the member not ready: its gets answer kNotMember (counted).
      (void)core.restore(parts.own);
      settle();
    }
    if (options.listener != nullptr) {
      options.listener->restore(parts.app);
    }
  }

  // --- the loader thread: the store's blocking calls ---------------------------------------------
  void loader_loop() {
    std::unique_lock<std::mutex> lk(mu);
    while (!stopping) {
      if (work.empty()) {
        work_cv.wait(lk);
        continue;
      }
      StoreWork w = std::move(work.front());
      work.pop_front();
      lk.unlock();
      LoadStatus status = LoadStatus::kError;
      std::string value;
      bool ok = false;
      switch (w.kind) {
        case StoreWork::Kind::kLoad: status = options.loader->load(w.key, &value); break;
        case StoreWork::Kind::kStore: ok = options.loader->store(w.key, w.value); break;
        case StoreWork::Kind::kRemove: ok = options.loader->remove(w.key); break;
      }
      lk.lock();
      if (w.kind == StoreWork::Kind::kLoad) {
        core.load_done(w.id, status, value);
      } else {
        core.write_done(w.id, ok);
      }
      settle();
    }
  }

  // --- the timer thread: retries and the stats page -------------------------------------------
  void timer_loop() {
    std::unique_lock<std::mutex> lk(mu);
    uint64_t next_publish = 0;
    while (!stopping) {
      timer_cv.wait_for(lk, core.has_output() || !held_replies.empty()
                                ? std::chrono::duration_cast<std::chrono::nanoseconds>(kRetry)
                                : std::chrono::nanoseconds(kPublishEveryNs));
      if (stopping) break;
      if (core.has_output() || !held_replies.empty()) settle();
      const uint64_t now = mono_ns();
      if (page != nullptr && now >= next_publish) {
        publish(now);
        next_publish = now + kPublishEveryNs;
      }
    }
  }

  void open_page(const GroupOptions& go) {
    const std::string dir = go.shm_dir.empty() ? transport::shm::default_shm_dir() : go.shm_dir;
    const std::string folder = dir + "/" + go.name;
    std::error_code ec;
    if (!std::filesystem::is_directory(folder, ec)) return;  // not on shm: no page
    if (!options.peer_reads) {
      std::lock_guard<std::mutex> g(mu);
      mirror_status = "off: turned off (CacheServiceOptions::peer_reads)";
    } else {
      auto m = cache::MirrorWriter::create(mirror_path(folder, go.node), group->self().incarnation,
                                           options.capacity_bytes);
      std::lock_guard<std::mutex> g(mu);  // the data core may be delivering already
      mirror_status = m.ok() ? "on" : "off: " + m.error().message();
      if (m.ok()) {
        mirror = std::move(*m);
        mirror_folder = folder;
        core.set_lru_observer(this);
        core.set_peer_memory(this);
      }
    }
    page_path = folder + "/cache-m" + std::to_string(go.node) + ".page";
    void* map = map_page_file(page_path, 4096);
    if (map == nullptr) return;
    page = new (map) CacheStatsPage{};
    page->version = kCacheStatsVersion;
    page->pid = static_cast<int32_t>(getpid());
    page->node = go.node;
    page->incarnation = group->self().incarnation;
    std::snprintf(page->group, sizeof page->group, "%s", go.name.c_str());
    std::snprintf(page->loader, sizeof page->loader, "%s", options.loader->name());
    // release: a reader that sees the magic sees the header above (pairs with its acquire).
    std::atomic_ref<uint64_t>(page->magic).store(kCacheStatsMagic, std::memory_order_release);
  }

  // Under mu.
  void publish(uint64_t now) {
    const CacheCounters c = core.counters();
    constexpr auto r = std::memory_order_relaxed;
    page->gets.store(c.gets, r);
    page->local_hits.store(c.local_hits, r);
    page->peer_hits.store(c.peer_hits, r);
    page->store_loads.store(c.store_loads, r);
    page->reloads.store(c.reloads, r);
    page->not_found.store(c.not_found, r);
    page->store_errors.store(c.store_errors, r);
    page->peer_requests.store(c.peer_requests, r);
    page->peer_served.store(c.peer_served, r);
    page->peer_reads.store(c.peer_reads, r);
    page->false_hits.store(c.false_hits, r);
    page->stale_replies.store(c.stale_replies, r);
    page->peer_failures.store(c.peer_failures, r);
    page->writes.store(c.writes, r);
    page->invalidations.store(c.invalidations, r);
    page->dir_messages_sent.store(c.dir_messages_sent, r);
    page->dir_bytes_sent.store(c.dir_bytes_sent, r);
    page->dir_messages_received.store(c.dir_messages_received, r);
    page->dir_bytes_received.store(c.dir_bytes_received, r);
    page->cached_bytes.store(c.cached_bytes, r);
    page->cached_entries.store(c.cached_entries, r);
    page->capacity_bytes.store(core.lru().capacity(), r);
    page->evictions.store(c.evictions, r);
    page->directory_keys.store(c.directory_keys, r);
    page->malformed.store(c.malformed, r);
    page->updated_ns.store(now, r);
  }

  // --- blocking calls ---------------------------------------------------------------------------
  CacheResult wait(std::unique_lock<std::mutex>& lk, std::map<uint64_t, std::shared_ptr<Waiter>>& m,
                   uint64_t id, std::chrono::nanoseconds timeout) {
    auto w = std::make_shared<Waiter>();
    m[id] = w;
    settle();
    if (!cv.wait_for(lk, timeout, [&] { return w->done; })) {
      m.erase(id);  // the outcome, when it comes, has no one to go to
      CacheResult r;
      r.status = CacheStatus::kTimedOut;
      return r;
    }
    return std::move(w->result);
  }

  CacheStatus write(StoreWork::Kind kind, std::string_view key, std::string_view value,
                    std::chrono::nanoseconds timeout) {
    if (InCallback::running(this)) return CacheStatus::kInvalid;
    std::unique_lock<std::mutex> lk(mu);
    CacheStatus s = CacheStatus::kOk;
    const uint64_t id = kind == StoreWork::Kind::kStore    ? core.put(key, value, &s)
                        : kind == StoreWork::Kind::kRemove ? core.remove(key, &s)
                                                           : core.invalidate(key, &s);
    if (id == 0) return s;
    return wait(lk, writes, id, timeout).status;
  }
};

CacheService::CacheService(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

CacheService::~CacheService() {
  if (impl_ && impl_->group) impl_->group->stop();  // no callback runs after this
}

Result<std::unique_ptr<CacheService>> CacheService::create(const GroupOptions& group,
                                                           CacheServiceOptions options) {
  if (!options.loader) {
    return Error(Errc::kInvalidArgument,
                 "cache service: no loader; give CacheServiceOptions::loader (make_redis_loader "
                 "or make_file_loader)");
  }
  if (options.capacity_bytes < 4096) {
    return Error(Errc::kInvalidArgument, "cache service: capacity_bytes " +
                                             std::to_string(options.capacity_bytes) +
                                             " is too small; give at least 4096");
  }
  cache::CoreOptions core;
  core.capacity_bytes = options.capacity_bytes;
  core.admission = options.admission;
  // 16 KiB of capacity per key of the window: about one key per 23 entries of the benchmark's
  // values (700 bytes on average); a window is also never so small that a second fetch is rare.
  core.admission_window_keys =
      options.admission_window_keys != 0
          ? options.admission_window_keys
          : static_cast<uint32_t>(std::clamp<uint64_t>(options.capacity_bytes >> 14, 64, 1u << 20));
  auto impl = std::make_unique<Impl>(core);
  impl->options = std::move(options);
  auto g = Group::create(group, impl.get());
  if (!g.ok()) return std::move(g).error().with_context("cache service: ");
  impl->group = std::move(*g);
  impl->core.set_self(impl->group->self());
  impl->open_page(group);
  Impl* raw = impl.get();
  impl->loader_thread = std::thread([raw] { raw->loader_loop(); });
  impl->timer_thread = std::thread([raw] { raw->timer_loop(); });
  return std::unique_ptr<CacheService>(new CacheService(std::move(impl)));
}

Group& CacheService::group() noexcept {
  return *impl_->group;
}

CacheResult CacheService::get(std::string_view key, std::chrono::nanoseconds timeout) {
  Impl& s = *impl_;
  CacheResult r;
  if (Impl::InCallback::running(&s)) {
    r.status = CacheStatus::kInvalid;
    return r;
  }
  std::unique_lock<std::mutex> lk(s.mu);
  GetDone d;
  const uint64_t id = s.core.get(key, &d);
  if (id == 0) {
    // A value read in place may have been kept: its announcement (and any evictions') goes now,
    // not at the timer's next turn.
    if (s.core.has_output()) s.settle();
    return CacheResult{d.status, d.source, std::move(d.value)};
  }
  return s.wait(lk, s.gets, id, timeout);
}

CacheStatus CacheService::put(std::string_view key, std::string_view value,
                              std::chrono::nanoseconds timeout) {
  return impl_->write(StoreWork::Kind::kStore, key, value, timeout);
}

CacheStatus CacheService::remove(std::string_view key, std::chrono::nanoseconds timeout) {
  return impl_->write(StoreWork::Kind::kRemove, key, {}, timeout);
}

CacheStatus CacheService::invalidate(std::string_view key, std::chrono::nanoseconds timeout) {
  return impl_->write(StoreWork::Kind::kLoad, key, {}, timeout);
}

std::string CacheService::peer_reads_status() const {
  std::lock_guard<std::mutex> g(impl_->mu);
  return impl_->mirror_status;
}

CacheCounters CacheService::counters() const {
  std::lock_guard<std::mutex> g(impl_->mu);
  return impl_->core.counters();
}

}  // namespace cohort
