#include "runtime/agent.h"

#include <pthread.h>
#include <sched.h>

#include <cerrno>
#include <future>
#include <string>

#include "runtime/assert.h"

namespace cohort {

namespace {
// Counters go to the shared block every 1024 rounds and at every park, so a reader on
// another core never pulls the loop's line on each round.
constexpr uint64_t kPublishEvery = 1024;
}  // namespace

Agent::Agent(const char* name, const IdleOptions& idle) noexcept : name_(name), idle_(idle) {}

Agent::~Agent() {
  request_stop();
  join();
}

Status Agent::add_poller(const char* name, PollFn fn, void* context) {
  if (fn == nullptr) {
    return Error(Errc::kInvalidArgument,
                 std::string("agent ") + name_ + ": poller '" + name + "' has no function");
  }
  if (poller_count_ == kMaxPollers) {
    return Error(Errc::kUnavailable, std::string("agent ") + name_ + ": cannot add poller '" +
                                         name + "', all " + std::to_string(kMaxPollers) +
                                         " slots are taken; merge pollers");
  }
  pollers_[static_cast<size_t>(poller_count_++)] = Poller{name, fn, context};
  return {};
}

uint32_t Agent::poll_once() noexcept {
  uint32_t work = 0;
  for (int i = 0; i < poller_count_; ++i) {
    const Poller& p = pollers_[static_cast<size_t>(i)];
    work += p.fn(p.context);
  }
  ++local_.rounds;
  local_.work += work;
  if (work > 0) ++local_.busy_rounds;
  return work;
}

void Agent::run() noexcept {
  // acquire: pairs with the release store in request_stop(); one load a round is cheap, the
  // line stays shared in our cache until someone asks us to stop.
  while (!stop_.load(std::memory_order_acquire)) {
    if (poll_once() > 0) {
      idle_.reset();
    } else {
      idle();
    }
    if ((local_.rounds & (kPublishEvery - 1)) == 0) publish_stats();
  }
  publish_stats();
}

void Agent::idle() noexcept {
  switch (idle_.next()) {
    case IdleStrategy::Action::kSpin: cpu_relax(); return;
    case IdleStrategy::Action::kYield:
      ++local_.yields;
      sched_yield();
      return;
    case IdleStrategy::Action::kPark: {
      const uint32_t epoch = waker_.prepare_wait();
      // Recheck after announcing: work published before the announcement is seen here,
      // work published after it bumps the epoch and ends the wait (see Waker).
      if (poll_once() > 0 || stop_.load(std::memory_order_acquire)) {
        waker_.cancel_wait();
        idle_.reset();
        return;
      }
      const uint64_t park_ns = idle_.park_ns();
      ++local_.parks;
      local_.parked_ns += park_ns;
      publish_stats();
      waker_.wait(epoch, park_ns);
      idle_.parked();
      return;
    }
  }
}

void Agent::publish_stats() noexcept {
  shared_.rounds.store(local_.rounds, std::memory_order_relaxed);
  shared_.busy_rounds.store(local_.busy_rounds, std::memory_order_relaxed);
  shared_.work.store(local_.work, std::memory_order_relaxed);
  shared_.yields.store(local_.yields, std::memory_order_relaxed);
  shared_.parks.store(local_.parks, std::memory_order_relaxed);
  shared_.parked_ns.store(local_.parked_ns, std::memory_order_relaxed);
}

AgentStats Agent::stats() const noexcept {
  AgentStats s;
  s.rounds = shared_.rounds.load(std::memory_order_relaxed);
  s.busy_rounds = shared_.busy_rounds.load(std::memory_order_relaxed);
  s.work = shared_.work.load(std::memory_order_relaxed);
  s.yields = shared_.yields.load(std::memory_order_relaxed);
  s.parks = shared_.parks.load(std::memory_order_relaxed);
  s.parked_ns = shared_.parked_ns.load(std::memory_order_relaxed);
  return s;
}

Status Agent::start(int os_cpu) {
  if (thread_.joinable()) {
    return Error(Errc::kInvalidArgument, std::string("agent ") + name_ + ": already started");
  }
  COHORT_TRY(validate(idle_.options()));
  stop_.store(false, std::memory_order_relaxed);
  // The thread pins itself before its first round, so no round runs on the wrong core, and
  // reports the outcome before start() returns.
  std::promise<int> pinned;
  std::future<int> pin_result = pinned.get_future();
  thread_ = std::thread([this, os_cpu, &pinned] {
    int rc = 0;
    if (os_cpu >= 0) {
      cpu_set_t set;
      CPU_ZERO(&set);
      CPU_SET(static_cast<size_t>(os_cpu), &set);
      rc = pthread_setaffinity_np(pthread_self(), sizeof set, &set);
    }
    // Linux limits thread names to 15 characters; a longer name is cut, not refused.
    char short_name[16] = {};
    std::string(name_).copy(short_name, sizeof short_name - 1);
    pthread_setname_np(pthread_self(), short_name);
    pinned.set_value(rc);
    if (rc == 0) run();
  });
  const int rc = pin_result.get();
  if (rc != 0) {
    join();
    return system_error(std::string("agent ") + name_ + ": cannot pin to cpu " +
                            std::to_string(os_cpu) + " (check the allowed cpus: taskset -p $$)",
                        rc);
  }
  return {};
}

void Agent::request_stop() noexcept {
  // release: pairs with the acquire load in run().
  stop_.store(true, std::memory_order_release);
  waker_.wake();
}

void Agent::join() {
  if (thread_.joinable()) thread_.join();
}

}  // namespace cohort
