// The lock service over a cohort::Group (include/cohort/lock.h): a LockCore behind one mutex,
// fed by the group's callbacks on the data core and by the application's calls on any thread,
// and a timer thread for deadlines and for ops the group's queue refused for a moment.
//
// Locking: `mu` guards the core, the waiters and the callbacks table. It is held only for the
// core's bounded work and the group's non-blocking send(); callbacks run after it is released.
#include <atomic>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <thread>

#include "apps/common/service_support.h"
#include "apps/lock/lock_core.h"
#include "cohort/lock.h"

namespace cohort {
namespace {

using lock::CoreEvent;
using lock::LockCore;
using Clock = std::chrono::steady_clock;

uint64_t now_ns() {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
          .count());
}

constexpr auto kRetryFull = std::chrono::milliseconds(1);

}  // namespace

struct LockService::Impl final : GroupListener {
  using InCallback = apps::InCallback<Impl>;

  struct Waiter {
    bool done = false;
    LockResult result;
  };
  struct Pending {
    LockCallback done;               // asynchronous
    std::shared_ptr<Waiter> waiter;  // blocking
  };
  // What a batch of core events asks for, run after `mu` is released.
  struct Work {
    std::vector<std::pair<LockCallback, LockResult>> callbacks;
    std::vector<LockGrant> lost;
    GroupEvent why = GroupEvent::kRemoved;
    bool wake_waiters = false;  // a blocking caller's request ended
    bool wake_timer = false;    // the timer thread must wait differently (a retry, a deadline)
  };

  LockServiceOptions options;
  std::unique_ptr<Group> group;
  mutable std::mutex mu;
  // Blocking callers wait on waiters_cv, the timer thread on timer_cv; each is woken only when
  // it has something to do. (Waking the timer thread at every delivery cost the contended lock
  // benchmark a thread switch per op: 3 member processes share 2 cpus there.)
  std::condition_variable waiters_cv;
  std::condition_variable timer_cv;
  uint64_t timer_until = 0;  // when the timer thread wakes by itself (ns); 0: only when woken
  LockCore core;
  std::map<uint64_t, Pending> pending;
  bool stopping = false;
  std::thread timer;

  ~Impl() override {
    {
      std::lock_guard<std::mutex> g(mu);
      stopping = true;
    }
    waiters_cv.notify_all();
    timer_cv.notify_all();
    if (timer.joinable()) timer.join();
  }

  bool on_data_core() const { return InCallback::running(this); }

  // Under mu: send what the core queued; turn its events into work.
  void settle(Work* work) {
    core.flush([this](std::span<const std::byte> bytes) {
      return group->send(bytes, DeliveryMode::kSafe);
    });
    // The timer thread retries refused sends, and must wake for a deadline sooner than its own.
    const uint64_t deadline = core.next_deadline();
    if (core.has_outbox() || (deadline != 0 && (timer_until == 0 || deadline < timer_until))) {
      work->wake_timer = true;
    }
    for (const CoreEvent& e : core.events()) {
      LockResult r;
      r.status = e.status;
      r.grant = LockGrant{std::string(e.name.view()), e.request, e.fence, e.mode};
      if (e.kind == CoreEvent::Kind::kLostHold) {
        work->lost.push_back(std::move(r.grant));
        continue;
      }
      auto it = pending.find(e.request);
      if (it == pending.end()) continue;  // a blocking caller that gave up at its deadline
      if (it->second.waiter) {
        it->second.waiter->done = true;
        it->second.waiter->result = r;
        work->wake_waiters = true;
      } else if (it->second.done) {
        work->callbacks.emplace_back(std::move(it->second.done), std::move(r));
      }
      pending.erase(it);
    }
    core.clear_events();
  }

  void run(Work& work) {
    if (work.wake_waiters) waiters_cv.notify_all();
    if (work.wake_timer) timer_cv.notify_one();
    for (auto& [done, result] : work.callbacks) done(result);
    if (!work.lost.empty() && options.on_lost) options.on_lost(work.lost, work.why);
  }

  // --- GroupListener, on the data core ----------------------------------------------------------
  void on_deliver(const Message& m) override {
    InCallback in(this);
    Work work;
    bool lock_op = false;
    {
      std::lock_guard<std::mutex> g(mu);
      lock_op = core.on_deliver(m.bytes, m.sender);
      if (lock_op) settle(&work);
    }
    if (lock_op) {
      run(work);
    } else if (options.listener != nullptr) {
      options.listener->on_deliver(m);
    }
  }

  void on_view(const ViewInfo& view) override {
    InCallback in(this);
    Work work;
    {
      std::lock_guard<std::mutex> g(mu);
      core.on_view(view.members);
      settle(&work);
    }
    run(work);
    if (options.listener != nullptr) options.listener->on_view(view);
  }

  void on_event(GroupEvent event) override {
    InCallback in(this);
    Work work;
    work.why = event;
    {
      std::lock_guard<std::mutex> g(mu);
      core.on_event(event);
      settle(&work);
    }
    run(work);
    if (options.listener != nullptr) options.listener->on_event(event);
  }

  void on_peer_failed(uint32_t node) override {
    if (options.listener != nullptr) options.listener->on_peer_failed(node);
  }

  // The snapshot: the table's length, the table's bytes, then the application's bytes.
  std::vector<std::byte> snapshot() override {
    std::vector<std::byte> table;
    {
      std::lock_guard<std::mutex> g(mu);
      table = core.snapshot();
    }
    std::vector<std::byte> app;
    if (options.listener != nullptr) app = options.listener->snapshot();
    return apps::frame_snapshot(table, app);
  }

  void restore(std::span<const std::byte> state) override {
    InCallback in(this);
    const apps::SnapshotParts parts = apps::split_snapshot(state);
    {
      std::lock_guard<std::mutex> g(mu);
      // Malformed bytes leave the table empty and counted (lock_table.h).
      (void)core.restore(parts.own);
    }
    if (options.listener != nullptr) {
      options.listener->restore(parts.app);
    }
  }

  // --- the timer thread: deadlines of asynchronous requests, and retries of refused sends ------
  void timer_loop() {
    std::unique_lock<std::mutex> lk(mu);
    while (!stopping) {
      const uint64_t deadline = core.next_deadline();
      const uint64_t now = now_ns();
      if (core.has_outbox()) {
        timer_until = now + static_cast<uint64_t>(std::chrono::nanoseconds(kRetryFull).count());
        timer_cv.wait_for(lk, kRetryFull);
      } else if (deadline != 0) {
        timer_until = deadline;
        if (deadline > now) timer_cv.wait_for(lk, std::chrono::nanoseconds(deadline - now));
      } else {
        timer_until = 0;
        timer_cv.wait(lk);
      }
      if (stopping) break;
      core.expire(now_ns());
      Work work;
      settle(&work);
      if (work.callbacks.empty() && work.lost.empty()) continue;
      lk.unlock();
      {
        InCallback in(this);
        run(work);
      }
      lk.lock();
    }
  }

  // --- requests ---------------------------------------------------------------------------------
  LockResult wait(std::unique_lock<std::mutex>& lk, uint64_t request,
                  const std::shared_ptr<Waiter>& w, std::chrono::nanoseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    const auto done = [&] { return w->done; };
    if (timeout.count() <= 0) {
      waiters_cv.wait(lk, done);
    } else if (!waiters_cv.wait_until(lk, deadline, done)) {
      // Still waiting (a grant would have set `done` under this same mutex): withdraw it from
      // every queue; the grant, if it comes first in the order, is released by the withdraw.
      const bool withdrawn = core.withdraw(request);
      pending.erase(request);
      Work work;
      settle(&work);
      lk.unlock();
      run(work);
      LockResult r;
      r.status = withdrawn ? LockStatus::kTimedOut : LockStatus::kLost;
      return r;
    }
    return w->result;
  }

  LockResult blocking(std::string_view name, LockMode mode, bool try_only,
                      std::chrono::nanoseconds timeout) {
    LockResult r;
    if (on_data_core()) {
      r.status = LockStatus::kInvalid;  // it would wait for a delivery only this thread makes
      return r;
    }
    std::unique_lock<std::mutex> lk(mu);
    if (!group->in_view()) {
      r.status = LockStatus::kNotMember;
      return r;
    }
    const uint64_t request = core.acquire(name, mode, try_only, 0, &r.status);
    if (request == 0) return r;
    auto w = std::make_shared<Waiter>();
    pending[request].waiter = w;
    Work work;
    settle(&work);
    if (!work.callbacks.empty() || !work.lost.empty()) {
      lk.unlock();
      run(work);
      lk.lock();
    }
    return wait(lk, request, w, try_only ? std::chrono::nanoseconds{0} : timeout);
  }
};

LockService::LockService(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

LockService::~LockService() {
  if (impl_ && impl_->group) impl_->group->stop();  // no callback runs after this
}

Result<std::unique_ptr<LockService>> LockService::create(const GroupOptions& group,
                                                         LockServiceOptions options) {
  auto impl = std::make_unique<Impl>();
  impl->options = std::move(options);
  auto g = Group::create(group, impl.get());
  if (!g.ok()) return std::move(g).error().with_context("lock service: ");
  impl->group = std::move(*g);
  impl->core.set_self(impl->group->self());
  Impl* raw = impl.get();
  impl->timer = std::thread([raw] { raw->timer_loop(); });
  return std::unique_ptr<LockService>(new LockService(std::move(impl)));
}

Group& LockService::group() noexcept {
  return *impl_->group;
}

LockResult LockService::acquire(std::string_view name, LockMode mode,
                                std::chrono::nanoseconds timeout) {
  return impl_->blocking(name, mode, false, timeout);
}

LockResult LockService::try_acquire(std::string_view name, LockMode mode) {
  return impl_->blocking(name, mode, true, std::chrono::nanoseconds{0});
}

LockStatus LockService::acquire_async(std::string_view name, LockMode mode, LockCallback done,
                                      std::chrono::nanoseconds timeout) {
  Impl& s = *impl_;
  Impl::Work work;
  LockStatus status;
  {
    std::lock_guard<std::mutex> g(s.mu);
    if (!s.group->in_view()) return LockStatus::kNotMember;
    const uint64_t deadline =
        timeout.count() > 0 ? now_ns() + static_cast<uint64_t>(timeout.count()) : 0;
    const uint64_t request = s.core.acquire(name, mode, false, deadline, &status);
    if (request == 0) return status;
    s.pending[request].done = std::move(done);
    s.settle(&work);
  }
  s.run(work);  // also wakes the timer thread for a new, sooner deadline
  return status;
}

LockStatus LockService::release(const LockGrant& grant) {
  Impl& s = *impl_;
  Impl::Work work;
  LockStatus status;
  {
    std::lock_guard<std::mutex> g(s.mu);
    if (!s.core.holds(grant.request, grant.fence)) return LockStatus::kNotHeld;
    status = s.core.release(grant.request);
    s.settle(&work);
  }
  s.run(work);
  return status;
}

bool LockService::holds(const LockGrant& grant) const {
  std::lock_guard<std::mutex> g(impl_->mu);
  return impl_->core.holds(grant.request, grant.fence);
}

LockInfo LockService::query(std::string_view name) const {
  std::lock_guard<std::mutex> g(impl_->mu);
  return impl_->core.table().query(name);
}

LockService::Counters LockService::counters() const {
  std::lock_guard<std::mutex> g(impl_->mu);
  const lock::LockTable::Counters& t = impl_->core.table().counters();
  Counters c;
  c.ops_applied = t.ops_applied;
  c.ops_malformed = t.ops_malformed;
  c.grants = t.grants;
  c.dropped_by_view = t.dropped_by_view;
  return c;
}

}  // namespace cohort
