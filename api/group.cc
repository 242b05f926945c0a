// include/cohort/group.h over membership's GroupEngine: the public types in, the engine's out.
// This is the public API's layer (DESIGN.md: runtime <- transport <- membership <-
// include/cohort <- apps); it holds no protocol logic.
#include "cohort/group.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <new>
#include <thread>

#include "cohort/stats.h"
#include "cohort_build_config.h"
#include "membership/group_engine.h"
#include "runtime/agent.h"
#include "runtime/clock.h"
#include "runtime/config.h"
#include "runtime/page_file.h"
#include "transport/shm/shm_transport.h"
#include "transport/udp/udp_transport.h"
#if COHORT_HAVE_DPDK
#include "transport/dpdk/dpdk_transport.h"
#endif
#if COHORT_HAVE_RDMA
#include "transport/rdma/rdma_transport.h"
#endif

namespace cohort {
namespace {

using membership::ActionKind;
using membership::Delivery;
using membership::Mode;
using membership::View;

MemberUid to_public(membership::Uid u) {
  return MemberUid{u.node, u.incarnation};
}

Result<transport::fault::FaultOptions> fault_options(const GroupOptions& o, uint32_t members) {
  transport::fault::FaultOptions f;
  f.drop_rate = o.faults.drop_rate;
  f.duplicate_rate = o.faults.duplicate_rate;
  f.reorder_rate = o.faults.reorder_rate;
  f.seed = o.faults.seed;
  for (const uint32_t n : o.faults.cut_off) {
    if (n >= members || n == o.node) {
      return Error(Errc::kInvalidArgument, "group: faults.cut_off names member " +
                                               std::to_string(n) +
                                               ", not another member of the peers list");
    }
    f.partition_peers |= 1U << n;
  }
  const uint64_t now = cohort::clock().now_ns();
  f.partition_from_ns = now + o.faults.cut_after_ms * 1'000'000;
  f.partition_until_ns = o.faults.cut_for_ms >= ~0ULL / 2'000'000
                             ? ~0ULL
                             : f.partition_from_ns + o.faults.cut_for_ms * 1'000'000;
  return f;
}

// The transport the options name, with the checks each needs; errors name the option.
Result<std::unique_ptr<membership::EngineTransport>> make_transport(const GroupOptions& o) {
  const bool datagrams = o.transport == "udp" || o.transport == "dpdk" || o.transport == "rdma";
  if (o.transport == "shm") {
    if (o.slots == 0 || o.slots > transport::kMaxMembers || o.node >= o.slots) {
      return Error(Errc::kInvalidArgument,
                   "group: node " + std::to_string(o.node) + " is not a slot of 0.." +
                       std::to_string(o.slots == 0 ? 0 : o.slots - 1) + " (slots = " +
                       std::to_string(o.slots) + ", at most 32); set node below slots");
    }
    if (!o.peers.empty()) {
      return Error(
          Errc::kInvalidArgument,
          "group: peers are for udp, dpdk and rdma; shm members find each other in shm_dir");
    }
    transport::shm::ShmOptions so;
    so.dir = o.shm_dir;
    so.group = o.name;
    so.self = o.node;
    so.members = o.slots;
    so.log_bytes = o.log_bytes;
    so.tickets = o.order != "sequencer";
    return membership::make_shm_engine_transport(so);
  }
  if (!datagrams) {
    return Error(Errc::kUnsupported,
                 "group: transport '" + o.transport + "' is not shm, udp, dpdk or rdma");
  }
  const auto members = static_cast<uint32_t>(o.peers.size());
  if (members < 1 || members > transport::kMaxMembers || o.node >= members) {
    return Error(Errc::kInvalidArgument,
                 "group: transport " + o.transport + " needs peers, the \"a.b.c.d:port\" of " +
                     "every member (1..32 of them), and node below their count; node is " +
                     std::to_string(o.node) + " of " + std::to_string(members) + " peers");
  }
  auto faults = fault_options(o, members);
  if (!faults.ok()) return std::move(faults).error();
  // What every replicated-log transport takes alike.
  auto fill = [&o](auto& options) {
    options.members = o.peers;
    options.self = o.node;
    options.group = o.name;
    options.log_bytes = o.log_bytes;
  };
  if (o.transport == "udp") {
    transport::udp::UdpOptions uo;
    fill(uo);
    uo.fault = *faults;
    return membership::make_udp_engine_transport(uo);
  }
  if (o.transport == "rdma") {
#if COHORT_HAVE_RDMA
    if (faults->enabled()) {
      return Error(Errc::kUnsupported,
                   "group: faults are injected on udp and dpdk only; rdma has no fault decorator");
    }
    transport::rdma::RdmaOptions ro;
    fill(ro);
    ro.device = o.rdma_device;
    return membership::make_rdma_engine_transport(ro);
#else
    return Error(Errc::kUnsupported,
                 "group: this build has no RDMA; install libibverbs-dev and "
                 "rebuild (meson -Drdma=enabled)");
#endif
  }
#if COHORT_HAVE_DPDK
  transport::dpdk::DpdkOptions dopts;
  dopts.eal_args = o.dpdk_eal_args;
  fill(dopts);
  dopts.fault = *faults;
  return membership::make_dpdk_engine_transport(dopts);
#else
  return Error(
      Errc::kUnsupported,
      "group: this build has no DPDK; install dpdk-dev and rebuild (meson -Ddpdk=enabled)");
#endif
}

}  // namespace

const char* group_event_name(GroupEvent event) noexcept {
  switch (event) {
    case GroupEvent::kCutOff: return "cut_off";
    case GroupEvent::kLeft: return "left";
    case GroupEvent::kRemoved: return "removed";
  }
  return "?";
}

// A counter only the data thread writes (from its callbacks; stats() reads it anywhere): a plain
// add. A locked add waits for the store buffer to drain, and in a callback right after an append
// that is the record's lines on their way to the other core: perf of the one-hop latency run put
// a fifth of the sequencer's samples on the two locked adds of on_deliver.
namespace {
void bump(std::atomic<uint64_t>& counter, uint64_t n = 1) noexcept {
  counter.store(counter.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
}
}  // namespace

struct Group::Impl final : membership::EngineListener {
  GroupListener* app = nullptr;
  std::unique_ptr<membership::GroupEngine> engine;
  std::unique_ptr<Agent> agent;
  std::unique_ptr<Agent> control_agent;  // dedicated mode
  std::vector<MemberUid> last_members;
  std::atomic<bool> in_view{false};
  std::atomic<uint64_t> view_id{0}, view_members{0}, view_changes{0}, delivered{0},
      delivered_bytes{0}, sent{0};
  std::atomic<uint64_t> next_request_id{0}, requests_out{0}, requests_in{0}, replies_in{0};

  // The data core's counters for stats(), copied every 10 ms (they are its own, not atomic).
  std::atomic<uint64_t> records_malformed{0}, control_malformed{0}, dropped_stale{0}, relayed{0},
      polls{0}, idle_polls{0}, sent_inline{0}, ticket_waits{0}, snapshots_too_large{0};

  StatsPage* page = nullptr;
  std::string page_path;
  uint64_t next_publish_ns = 0;
  uint32_t polls_since_clock = 0;

  static uint64_t mono_ns() {
    return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                     std::chrono::steady_clock::now().time_since_epoch())
                                     .count());
  }

  static uint32_t poll_fn(void* self) noexcept {
    Impl& impl = *static_cast<Impl*>(self);
    const uint32_t work = impl.engine->poll();
    // The page is refreshed every 10 ms; the clock is read every 256 polls to see if that is
    // due (a clock read costs as much as an idle poll).
    if ((++impl.polls_since_clock & 255U) == 0) {
      const uint64_t now = mono_ns();
      if (now >= impl.next_publish_ns) {
        impl.next_publish_ns = now + 10'000'000;
        impl.copy_counters();
        if (impl.page != nullptr) impl.publish(now);
      }
    }
    return work;
  }

  static uint32_t control_fn(void* self) noexcept {
    return static_cast<Impl*>(self)->engine->poll_control_core();
  }

  // The stats page `cohort stat` reads (include/cohort/stats.h). Control path: a file in the
  // group's folder; a member that cannot create it runs without it.
  void open_page(const std::string& dir, const std::string& group, uint32_t node) {
    page_path = dir + "/" + group + "/stats-m" + std::to_string(node) + ".page";
    void* map = map_page_file(page_path, 4096);
    if (map == nullptr) return;
    page = new (map) StatsPage{};
    page->version = kStatsVersion;
    page->pid = static_cast<int32_t>(getpid());
    page->node = node;
    page->incarnation = engine->self().incarnation;
    std::snprintf(page->group, sizeof page->group, "%s", group.c_str());
    // release: a reader that sees the magic sees the header above (pairs with its acquire).
    std::atomic_ref<uint64_t>(page->magic).store(kStatsMagic, std::memory_order_release);
  }

  void copy_counters() {
    const membership::MemberCounters& mc = engine->member().counters();
    const membership::EngineCounters& ec = engine->counters();
    constexpr auto r = std::memory_order_relaxed;
    records_malformed.store(mc.records_malformed, r);
    control_malformed.store(mc.control_malformed, r);
    dropped_stale.store(mc.records_dropped_stale + mc.control_dropped_stale, r);
    relayed.store(mc.relayed_records, r);
    polls.store(ec.polls, r);
    idle_polls.store(ec.idle_polls, r);
    sent_inline.store(ec.sends_inline, r);
    ticket_waits.store(mc.ticket_waits, r);
    snapshots_too_large.store(mc.snapshots_too_large, r);
  }

  void publish(uint64_t now) {
    const membership::Member& m = engine->member();
    const membership::MemberCounters& mc = m.counters();
    const membership::EngineCounters& ec = engine->counters();
    const AgentStats as = agent->stats();
    constexpr auto r = std::memory_order_relaxed;
    page->state.store(static_cast<uint64_t>(m.state()), r);
    const View& v = m.view();
    page->view_id.store(v.id, r);
    page->view_count.store(v.count, r);
    for (uint32_t i = 0; i < v.count; ++i) page->view_members[i].store(v.members[i].key(), r);
    page->sent.store(mc.sent, r);
    page->delivered.store(mc.delivered, r);
    page->delivered_bytes.store(ec.delivered_bytes, r);
    page->view_changes.store(ec.installs, r);
    page->relayed.store(mc.relayed_records, r);
    page->records_malformed.store(mc.records_malformed, r);
    page->records_stale.store(mc.records_dropped_stale, r);
    page->control_malformed.store(mc.control_malformed, r);
    page->control_stale.store(mc.control_dropped_stale, r);
    page->control_send_failed.store(ec.control_send_failed, r);
    page->append_backpressure.store(ec.append_backpressure, r);
    page->ticket_waits.store(mc.ticket_waits, r);
    page->rounds.store(as.rounds, r);
    page->busy_rounds.store(as.busy_rounds, r);
    if (control_agent) {
      const AgentStats cs = control_agent->stats();
      page->control_rounds.store(cs.rounds, r);
      page->control_busy_rounds.store(cs.busy_rounds, r);
    }
    page->updated_ns.store(now, r);
  }

  ~Impl() override { unmap_page_file(page, 4096, page_path); }

  void on_deliver(const Delivery& d) override {
    Message m;
    m.sender = to_public(d.sender);
    m.view = d.view;
    m.sseq = d.sseq;
    m.gseq = d.gseq;
    m.mode = static_cast<DeliveryMode>(d.mode);
    m.bytes = d.payload;
    bump(delivered);
    bump(delivered_bytes, d.payload.size());
    app->on_deliver(m);
  }

  void on_install(const View& v) override {
    ViewInfo info;
    info.id = v.id;
    for (const membership::Uid u : v.list()) info.members.push_back(to_public(u));
    for (const MemberUid u : info.members) {
      if (std::find(last_members.begin(), last_members.end(), u) == last_members.end()) {
        info.joined.push_back(u);
      }
    }
    for (const MemberUid u : last_members) {
      if (std::find(info.members.begin(), info.members.end(), u) == info.members.end()) {
        info.departed.push_back(u);
      }
    }
    last_members = info.members;
    view_id.store(v.id, std::memory_order_relaxed);
    view_members.store(v.count, std::memory_order_relaxed);
    bump(view_changes);
    in_view.store(true, std::memory_order_relaxed);
    app->on_view(info);
  }

  void on_peer_failed(membership::NodeId node) override { app->on_peer_failed(node); }

  void on_request(const membership::P2pMessage& r) override {
    bump(requests_in);
    app->on_request(PeerMessage{to_public(r.peer), r.id, r.payload});
  }

  void on_reply(const membership::P2pMessage& r, bool failed) override {
    bump(replies_in);
    app->on_reply(PeerMessage{to_public(r.peer), r.id, r.payload},
                  failed ? ReplyStatus::kPeerLeft : ReplyStatus::kOk);
  }
  std::vector<std::byte> snapshot() override { return app->snapshot(); }
  void restore(std::span<const std::byte> state) override { app->restore(state); }

  void on_final(ActionKind kind) override {
    GroupEvent e = GroupEvent::kRemoved;
    if (kind == ActionKind::kLeft) e = GroupEvent::kLeft;
    if (kind == ActionKind::kCutOff) e = GroupEvent::kCutOff;
    if (e != GroupEvent::kCutOff) in_view.store(false, std::memory_order_relaxed);
    app->on_event(e);
  }
};

Group::Group(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Group::~Group() {
  stop();
}

Result<std::unique_ptr<Group>> Group::create(const GroupOptions& options, GroupListener* listener) {
  if (listener == nullptr) {
    return Error(Errc::kInvalidArgument, "group: a GroupListener is required");
  }
  auto idle = parse_idle_kind(options.idle);
  if (!idle.ok()) return std::move(idle).error().with_context("group: idle: ");
  bool dedicated = false;
  if (options.threading == "dedicated") {
    dedicated = true;
  } else if (options.threading == "auto") {
    dedicated = std::thread::hardware_concurrency() >= 4;
  } else if (options.threading != "shared") {
    return Error(Errc::kInvalidArgument,
                 "group: threading '" + options.threading + "' is not shared, dedicated or auto");
  }
  if (options.order == "tickets" && options.transport != "shm") {
    return Error(Errc::kInvalidArgument,
                 "group: order 'tickets' needs the shm transport (a counter in shared memory); "
                 "use order 'auto' or 'sequencer' over " +
                     options.transport);
  }
  if (options.order != "auto" && options.order != "tickets" && options.order != "sequencer") {
    return Error(Errc::kInvalidArgument,
                 "group: order '" + options.order + "' is not tickets, sequencer or auto");
  }
  auto transport = make_transport(options);
  if (!transport.ok()) return std::move(transport).error();
  membership::EngineOptions eo;
  eo.dedicated = dedicated;
  eo.protocol.heartbeat_interval_ns = options.heartbeat_interval_us * 1000;
  eo.protocol.suspect_timeout_ns = options.suspect_timeout_us * 1000;
  if (eo.protocol.suspect_timeout_ns < 2 * eo.protocol.heartbeat_interval_ns) {
    return Error(Errc::kInvalidArgument,
                 "group: suspect_timeout_us must be at least twice heartbeat_interval_us");
  }
  eo.bootstrap = options.bootstrap;

  auto impl = std::make_unique<Impl>();
  impl->app = listener;
  auto engine = membership::GroupEngine::create(eo, std::move(*transport), impl.get());
  if (!engine.ok()) return std::move(engine).error();
  impl->engine = std::move(*engine);
  IdleOptions io;
  io.kind = *idle;
  // spin_yield yields on every idle poll unless told otherwise: with 3 members contending for
  // a lock on 2 cpus, 2000 spins (the runtime's default) gave 1,227 handoffs/s and 0 spins
  // 53,146 (bench_lock, same machine, back to back): each hop waited for a spinner to give up
  // its cpu.
  if (options.idle_spins >= 0) {
    io.spin_iterations = static_cast<uint32_t>(options.idle_spins);
  } else if (io.kind == IdleKind::kSpinYield) {
    io.spin_iterations = 0;
  }
  io.max_park_ns = 1'000'000;  // the protocol's timers tick every millisecond
  impl->agent = std::make_unique<Agent>("cohort-group", io);
  impl->engine->set_waker(&impl->agent->waker());
  COHORT_TRY(impl->agent->add_poller("group", &Impl::poll_fn, impl.get()));
  if (dedicated) {
    impl->control_agent = std::make_unique<Agent>("cohort-control", io);
    impl->engine->set_control_waker(&impl->control_agent->waker());
    COHORT_TRY(impl->control_agent->add_poller("control", &Impl::control_fn, impl.get()));
  }
  impl->open_page(options.shm_dir.empty() ? transport::shm::default_shm_dir() : options.shm_dir,
                  options.name, options.node);
  return std::unique_ptr<Group>(new Group(std::move(impl)));
}

Status Group::start(int cpu, int control_cpu) {
  if (impl_->control_agent) COHORT_TRY(impl_->control_agent->start(control_cpu));
  return impl_->agent->start(cpu);
}

void Group::stop() {
  if (!impl_) return;
  for (Agent* a : {impl_->agent.get(), impl_->control_agent.get()}) {
    if (a == nullptr) continue;
    a->request_stop();
    a->join();
  }
  impl_->copy_counters();  // the data core is stopped: its counters are still
}

uint32_t Group::poll() {
  const uint32_t work = Impl::poll_fn(impl_.get());
  return impl_->control_agent ? work + impl_->engine->poll_control_core() : work;
}

bool Group::dedicated() const noexcept {
  return impl_->engine->dedicated();
}

namespace {

SendStatus to_public(membership::SendResult r) {
  switch (r) {
    case membership::SendResult::kOk: return SendStatus::kOk;
    case membership::SendResult::kFull: return SendStatus::kFull;
    case membership::SendResult::kTooLarge: return SendStatus::kTooLarge;
    case membership::SendResult::kNotMember: return SendStatus::kNotMember;
  }
  return SendStatus::kNotMember;
}

}  // namespace

SendStatus Group::send(std::span<const std::byte> bytes, DeliveryMode mode) {
  if (!impl_->in_view.load(std::memory_order_relaxed)) return SendStatus::kNotMember;
  const SendStatus s = to_public(impl_->engine->submit(static_cast<Mode>(mode), bytes));
  if (s == SendStatus::kOk) impl_->sent.fetch_add(1, std::memory_order_relaxed);
  return s;
}

SendStatus Group::request(MemberUid to, std::span<const std::byte> bytes, uint64_t* id) {
  if (!impl_->in_view.load(std::memory_order_relaxed)) return SendStatus::kNotMember;
  // relaxed: only uniqueness matters, which the atomic increment gives on any order.
  const uint64_t next = impl_->next_request_id.fetch_add(1, std::memory_order_relaxed) + 1;
  const SendStatus s = to_public(
      impl_->engine->submit_request(membership::Uid{to.node, to.incarnation}, next, bytes));
  if (s != SendStatus::kOk) return s;
  impl_->requests_out.fetch_add(1, std::memory_order_relaxed);
  if (id != nullptr) *id = next;
  return s;
}

SendStatus Group::reply(MemberUid to, uint64_t id, std::span<const std::byte> bytes) {
  if (!impl_->in_view.load(std::memory_order_relaxed)) return SendStatus::kNotMember;
  return to_public(
      impl_->engine->submit_reply(membership::Uid{to.node, to.incarnation}, id, bytes));
}

void Group::leave() {
  impl_->engine->submit_leave();
}

MemberUid Group::self() const noexcept {
  return to_public(impl_->engine->self());
}

bool Group::in_view() const noexcept {
  return impl_->in_view.load(std::memory_order_relaxed);
}

GroupStats Group::stats() const noexcept {
  GroupStats s;
  s.sent = impl_->sent.load(std::memory_order_relaxed);
  s.delivered = impl_->delivered.load(std::memory_order_relaxed);
  s.delivered_bytes = impl_->delivered_bytes.load(std::memory_order_relaxed);
  s.view_changes = impl_->view_changes.load(std::memory_order_relaxed);
  s.view_id = impl_->view_id.load(std::memory_order_relaxed);
  s.view_members = static_cast<uint32_t>(impl_->view_members.load(std::memory_order_relaxed));
  s.requests_sent = impl_->requests_out.load(std::memory_order_relaxed);
  s.requests_received = impl_->requests_in.load(std::memory_order_relaxed);
  s.replies_received = impl_->replies_in.load(std::memory_order_relaxed);
  s.records_malformed = impl_->records_malformed.load(std::memory_order_relaxed);
  s.control_malformed = impl_->control_malformed.load(std::memory_order_relaxed);
  s.dropped_stale = impl_->dropped_stale.load(std::memory_order_relaxed);
  s.relayed = impl_->relayed.load(std::memory_order_relaxed);
  s.polls = impl_->polls.load(std::memory_order_relaxed);
  s.idle_polls = impl_->idle_polls.load(std::memory_order_relaxed);
  s.sent_inline = impl_->sent_inline.load(std::memory_order_relaxed);
  s.ticket_waits = impl_->ticket_waits.load(std::memory_order_relaxed);
  s.snapshots_too_large = impl_->snapshots_too_large.load(std::memory_order_relaxed);
  return s;
}

}  // namespace cohort
