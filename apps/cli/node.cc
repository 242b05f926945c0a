#include "apps/cli/node.h"

#include <sched.h>

#include <atomic>
#include <chrono>
#include <cinttypes>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <thread>
#include <vector>

#include "apps/cli/lines.h"
#include "apps/cli/node_log.h"
#include "cohort/group.h"
#include "runtime/config.h"
#include "runtime/histogram.h"

namespace cohort::cli {
namespace {

std::atomic<bool> g_stop{false};

// (snprintf rather than string concatenation: g++ 12 warns falsely on the latter, -Wrestrict.)
std::string uid_text(MemberUid u) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "n%u.%u", u.node, u.incarnation);
  return buf;
}

std::string list_text(const std::vector<MemberUid>& v) {
  std::string s;
  for (const MemberUid u : v) {
    if (!s.empty()) s.push_back(',');
    s.append(uid_text(u));
  }
  return s.empty() ? "-" : s;
}

const char* mode_text(DeliveryMode mode) {
  switch (mode) {
    case DeliveryMode::kFifo: return "fifo";
    case DeliveryMode::kTotal: return "total";
    case DeliveryMode::kSafe: return "safe";
  }
  return "?";
}

const char* status_text(SendStatus status) {
  switch (status) {
    case SendStatus::kOk: return "ok";
    case SendStatus::kFull: return "full";
    case SendStatus::kTooLarge: return "too_large";
    case SendStatus::kNotMember: return "not_member";
  }
  return "?";
}

// The application of the demo and of the integration tests: tests/sim's application (the count
// of deliveries and the order-free sum of their message_hash, node_log.h), so a checker reads
// its snapshots as they are. The state is what a joiner gets by state transfer. With a log,
// every delivery, view, restore and event is written there (the format: node_log.h); the
// main thread writes its sends, leave and stop through the log_*() calls.
class App final : public GroupListener {
 public:
  App(uint32_t node, std::FILE* log, bool all_latency, uint32_t sample)
      : latency_(Histogram::create(10'000'000'000ULL, 3).value()),
        node_(node),
        log_(log),
        all_latency_(all_latency),
        sample_(sample) {}

  void on_deliver(const Message& m) override {
    ++count_;
    uint64_t sent_ns = 0;
    uint32_t from = ~0U, seq = 0, incarnation = 0;
    if (m.bytes.size() >= kPayloadHead) {
      std::memcpy(&sent_ns, m.bytes.data(), 8);
      std::memcpy(&from, m.bytes.data() + 8, 4);
      std::memcpy(&seq, m.bytes.data() + 12, 4);
      std::memcpy(&incarnation, m.bytes.data() + 16, 4);
    }
    sum_ += message_hash(message_id(from, incarnation, seq));
    // At most one clock read per delivery, on one timestamped delivery in `sample_` (a read
    // costs 20-50 ns through the vDSO here: in a flood, reading it for every message was a
    // fifth of each member's time, a cost of the measuring rather than of the group).
    const bool timed = sent_ns != 0 && stamped_ % sample_ == 0;
    const uint64_t now = timed || log_ != nullptr ? steady_ns() : 0;
    if (timed) {
      if (first_ns_ == 0) {
        first_ns_ = now;
        first_count_ = stamped_;
      }
      last_ns_ = now;
      last_count_ = stamped_;
    }
    if (sent_ns != 0) ++stamped_;
    if (timed &&
        (all_latency_ ? m.bytes.size() >= 16 : (from == node_ && m.sender.node == node_))) {
      latency_.record(now > sent_ns ? now - sent_ns : 0);
    }
    if (log_ != nullptr) {
      std::fprintf(log_,
                   "%" PRIu64 " deliver view=%" PRIu64 " gseq=%" PRIu64
                   " from=n%u.%u sseq=%u mode=%s id=%u.%u.%u hash=%016" PRIx64 "\n",
                   now, m.view, m.gseq, m.sender.node, m.sender.incarnation, m.sseq,
                   mode_text(m.mode), from, incarnation, seq, fnv1a(m.bytes));
    }
  }

  void on_view(const ViewInfo& v) override {
    const uint64_t now = steady_ns();
    const std::string members = list_text(v.members);
    // The state printed is the state at the view boundary: what a joiner of this view restores.
    std::printf("event view %" PRIu64 " t=%" PRIu64
                " members=%s joined=%s departed=%s count=%" PRIu64 " hash=%016" PRIx64 "\n",
                v.id, now, members.c_str(), list_text(v.joined).c_str(),
                list_text(v.departed).c_str(), count_, sum_);
    std::fflush(stdout);
    if (log_ != nullptr) {
      std::fprintf(log_, "%" PRIu64 " view id=%" PRIu64 " members=%s\n", now, v.id,
                   members.c_str());
    }
    views_.fetch_add(1, std::memory_order_release);
  }

  std::vector<std::byte> snapshot() override {
    std::vector<std::byte> s(16);
    std::memcpy(s.data(), &count_, 8);
    std::memcpy(s.data() + 8, &sum_, 8);
    return s;
  }

  void restore(std::span<const std::byte> state) override {
    const uint64_t now = steady_ns();
    if (state.size() == 16) {
      std::memcpy(&count_, state.data(), 8);
      std::memcpy(&sum_, state.data() + 8, 8);
    }
    std::printf("event restored t=%" PRIu64 " count=%" PRIu64 " hash=%016" PRIx64 "\n", now, count_,
                sum_);
    std::fflush(stdout);
    if (log_ != nullptr) {
      std::fprintf(log_, "%" PRIu64 " restore snap=", now);
      for (std::byte b : state) std::fprintf(log_, "%02x", static_cast<unsigned>(b));
      std::fprintf(log_, "%s\n", state.empty() ? "-" : "");
    }
  }

  void on_event(GroupEvent e) override {
    const uint64_t now = steady_ns();
    std::printf("event %s t=%" PRIu64 "\n", group_event_name(e), now);
    std::fflush(stdout);
    if (log_ != nullptr) std::fprintf(log_, "%" PRIu64 " %s\n", now, group_event_name(e));
    if (e == GroupEvent::kRemoved) removed_.store(true, std::memory_order_release);
    if (e != GroupEvent::kCutOff) ended_.store(true, std::memory_order_release);
  }

  void on_peer_failed(uint32_t node) override {
    const uint64_t now = steady_ns();
    std::printf("event peer_failed n%u t=%" PRIu64 "\n", node, now);
    std::fflush(stdout);
    if (log_ != nullptr) std::fprintf(log_, "%" PRIu64 " peer_failed node=%u\n", now, node);
  }

  // --- the main thread's lines ---------------------------------------------------------------
  // `t_ns` was read before Group::create(), whose founder installs view 1 inside.
  void log_start(uint64_t t_ns, MemberUid self, bool founder) {
    if (log_ == nullptr) return;
    std::fprintf(log_, "%" PRIu64 " start self=n%u.%u founder=%d\n", t_ns, self.node,
                 self.incarnation, founder ? 1 : 0);
    std::fflush(log_);
  }
  // Before send(), and flushed: a process killed with SIGKILL right after send() must not take
  // with it the line of a message its peers deliver.
  void log_send(uint64_t t_ns, MemberUid self, uint32_t seq, DeliveryMode mode,
                std::span<const std::byte> payload) {
    if (log_ == nullptr) return;
    std::fprintf(log_, "%" PRIu64 " send id=%u.%u.%u mode=%s size=%zu hash=%016" PRIx64 "\n", t_ns,
                 self.node, self.incarnation, seq, mode_text(mode), payload.size(), fnv1a(payload));
    std::fflush(log_);
  }
  void log_sent(MemberUid self, uint32_t seq, SendStatus status) {
    if (log_ == nullptr) return;
    std::fprintf(log_, "%" PRIu64 " sent id=%u.%u.%u result=%s\n", steady_ns(), self.node,
                 self.incarnation, seq, status_text(status));
  }
  void log_leave() {
    if (log_ == nullptr) return;
    std::fprintf(log_, "%" PRIu64 " leave\n", steady_ns());
    std::fflush(log_);
  }
  // After Group::stop(): every line of that incarnation is above.
  void log_stop(MemberUid self) {
    if (log_ == nullptr) return;
    std::fprintf(log_, "%" PRIu64 " stop self=n%u.%u\n", steady_ns(), self.node, self.incarnation);
    std::fflush(log_);
  }

  bool ended() const { return ended_.load(std::memory_order_acquire); }
  bool removed() const { return removed_.load(std::memory_order_acquire); }
  // A new incarnation starts empty and restores the group's state. Only while no Group runs.
  void reset() {
    count_ = 0;
    sum_ = 0;
    removed_.store(false, std::memory_order_relaxed);
    ended_.store(false, std::memory_order_relaxed);
  }
  uint64_t count_ = 0;
  uint64_t sum_ = 0;
  uint64_t stamped_ = 0;  // deliveries of timestamped messages
  // The first and last timed ones (every sample_-th): when, and the stamped_ count then.
  uint64_t first_ns_ = 0, last_ns_ = 0, first_count_ = 0, last_count_ = 0;
  Histogram latency_;

 private:
  uint32_t node_;
  std::FILE* log_;
  bool all_latency_;
  uint64_t sample_;
  std::atomic<uint64_t> views_{0};
  std::atomic<bool> ended_{false};
  std::atomic<bool> removed_{false};
};

// Splits on `sep`, dropping empty pieces and surrounding spaces.
std::vector<std::string> split_words(const std::string& text, char sep) {
  std::vector<std::string> out;
  size_t at = 0;
  while (at <= text.size()) {
    size_t end = text.find(sep, at);
    if (end == std::string::npos) end = text.size();
    std::string w = text.substr(at, end - at);
    const size_t b = w.find_first_not_of(' ');
    const size_t e = w.find_last_not_of(' ');
    if (b != std::string::npos) out.push_back(w.substr(b, e - b + 1));
    at = end + 1;
  }
  return out;
}

}  // namespace

Result<NodeOptions> load_node_options(const std::string& file, const std::vector<std::string>& sets,
                                      bool print_config) {
  const NodeOptions d;
  ConfigSchema schema;
  schema.add_string("group.name", d.group, "the group: letters, digits, '_', '-', '.'")
      .add_int("group.node", -1, "this process's slot, 0..slots-1 (required)", -1, 31)
      .add_int("group.slots", d.slots, "slots of the group", 1, 32)
      .add_bool("group.bootstrap", d.bootstrap, "found the group instead of joining it")
      .add_string("group.shm_dir", d.shm_dir, "shared-memory folder; empty: /dev/shm/cohort-<uid>")
      .add_string("group.transport", d.transport, "the transport", {"shm", "udp", "dpdk", "rdma"})
      .add_string("rdma.device", "", "rdma: the verbs device; empty: the first active one")
      .add_string("group.peers", "", "udp, dpdk: a.b.c.d:port of every member, comma-separated")
      .add_string("runtime.threading", d.threading, "one thread, or data and control threads",
                  {"shared", "dedicated", "auto"})
      .add_string("group.order", d.order,
                  "total order by tickets (one hop, shm), by the sequencer, or auto",
                  {"tickets", "sequencer", "auto"})
      .add_string("dpdk.eal", d.dpdk_eal, "dpdk: the EAL's arguments, space-separated")
      .add_double("fault.drop_rate", d.drop_rate, "udp, dpdk: datagrams lost, 0..1 (tests)")
      .add_int_list("fault.cut_off", {}, "udp, dpdk: members this one is partitioned from", 0, 31)
      .add_int("fault.cut_after_ms", 0, "the partition starts this long after start", 0)
      .add_int("fault.cut_for_ms", 0, "and lasts this long (0: to the end)", 0)
      .add_int("group.heartbeat_us", static_cast<int64_t>(d.heartbeat_us), "heartbeat interval",
               100)
      .add_int("group.suspect_us", static_cast<int64_t>(d.suspect_us),
               "silence before a member is suspected", 1000)
      .add_string("runtime.idle_policy", d.idle, "the member thread's idle policy",
                  {"busy", "spin_yield", "backoff"})
      .add_int("runtime.idle_spins", d.idle_spins,
               "idle polls spinning before the first yield (-1: the policy's own)", -1)
      .add_int("node.rate", static_cast<int64_t>(d.rate), "messages per second to send", 0)
      .add_int("node.size", d.size, "message bytes", 24, 4096)
      .add_string("node.mode", d.mode, "delivery mode of the messages sent",
                  {"fifo", "total", "safe"})
      .add_int("node.run_ms", static_cast<int64_t>(d.run_ms), "how long to send", 0)
      .add_int("node.drain_ms", static_cast<int64_t>(d.drain_ms), "then how long to deliver", 0)
      .add_string("node.log", d.log, "a log of sends, deliveries, views, events; empty: none")
      .add_bool("node.inline", d.inline_loop, "run the member on the main thread (bench)")
      .add_int("node.pin", d.pin, "pin the member's thread to this cpu; -1: no", -1, 4095)
      .add_bool("node.flood", d.flood, "send as fast as backpressure allows (bench)")
      .add_bool("node.all_latency", d.all_latency, "latency of every delivery, not own only")
      .add_int("node.sample", static_cast<int64_t>(d.sample),
               "time one delivery in N (latency, rate): floods, where clock reads would dominate",
               1)
      .add_int("node.wait_members", d.wait_members, "send once the view has this many", 1, 32)
      .add_int("node.rt_priority", d.rt_priority,
               "then run SCHED_FIFO at this priority (0: no; comparing builds on a busy host)", 0,
               99)
      .add_bool("node.rejoin", d.rejoin, "when removed, join again as a new incarnation");
  ConfigSources sources;
  if (!file.empty()) sources.file_path = file;
  sources.env = capture_environment();
  sources.cli_sets = sets;
  auto config = Config::load(schema, sources);
  if (!config.ok()) return std::move(config).error();
  const Config& c = *config;
  if (print_config) std::printf("%s", c.describe().c_str());
  if (c.get_int("group.node") < 0) {
    return Error(Errc::kInvalidArgument,
                 "cohort node: no slot given; pass --node N or set group.node in the config");
  }
  NodeOptions o;
  o.group = c.get_string("group.name");
  o.node = static_cast<uint32_t>(c.get_int("group.node"));
  o.slots = static_cast<uint32_t>(c.get_int("group.slots"));
  o.bootstrap = c.get_bool("group.bootstrap");
  o.shm_dir = c.get_string("group.shm_dir");
  o.transport = c.get_string("group.transport");
  o.peers = split_words(c.get_string("group.peers"), ',');
  o.threading = c.get_string("runtime.threading");
  o.order = c.get_string("group.order");
  o.dpdk_eal = c.get_string("dpdk.eal");
  o.rdma_device = c.get_string("rdma.device");
  o.drop_rate = c.get_double("fault.drop_rate");
  for (const int64_t n : c.get_int_list("fault.cut_off"))
    o.cut_off.push_back(static_cast<uint32_t>(n));
  o.cut_after_ms = static_cast<uint64_t>(c.get_int("fault.cut_after_ms"));
  o.cut_for_ms = static_cast<uint64_t>(c.get_int("fault.cut_for_ms"));
  if (o.transport != "shm") {
    if (o.peers.empty()) {
      return Error(Errc::kInvalidArgument,
                   "cohort node: transport " + o.transport +
                       " needs --peers a.b.c.d:port,... (every member's address, in slot order)");
    }
    o.slots = static_cast<uint32_t>(o.peers.size());
  }
  o.heartbeat_us = static_cast<uint64_t>(c.get_int("group.heartbeat_us"));
  o.suspect_us = static_cast<uint64_t>(c.get_int("group.suspect_us"));
  o.idle = c.get_string("runtime.idle_policy");
  o.idle_spins = static_cast<int32_t>(c.get_int("runtime.idle_spins"));
  o.rate = static_cast<uint64_t>(c.get_int("node.rate"));
  o.size = static_cast<uint32_t>(c.get_int("node.size"));
  o.mode = c.get_string("node.mode");
  o.run_ms = static_cast<uint64_t>(c.get_int("node.run_ms"));
  o.drain_ms = static_cast<uint64_t>(c.get_int("node.drain_ms"));
  o.log = c.get_string("node.log");
  o.inline_loop = c.get_bool("node.inline");
  o.pin = static_cast<int>(c.get_int("node.pin"));
  o.rt_priority = static_cast<int>(c.get_int("node.rt_priority"));
  o.flood = c.get_bool("node.flood");
  o.all_latency = c.get_bool("node.all_latency");
  o.sample = static_cast<uint32_t>(c.get_int("node.sample"));
  o.wait_members = static_cast<uint32_t>(c.get_int("node.wait_members"));
  o.rejoin = c.get_bool("node.rejoin");
  if (o.node >= o.slots) {
    return Error(Errc::kInvalidArgument,
                 "cohort node: slot " + std::to_string(o.node) +
                     " is not below group.slots = " + std::to_string(o.slots) + "; raise --slots");
  }
  return o;
}

int run_node(const NodeOptions& o) {
  DeliveryMode mode = DeliveryMode::kTotal;
  if (o.mode == "fifo") {
    mode = DeliveryMode::kFifo;
  } else if (o.mode == "safe") {
    mode = DeliveryMode::kSafe;
  } else if (o.mode != "total") {
    std::fprintf(stderr, "cohort node: --mode '%s' is not fifo, total or safe\n", o.mode.c_str());
    return 2;
  }
  if (o.size < 24 || o.size > 4096) {
    std::fprintf(stderr, "cohort node: --size %u is outside 24..4096 bytes\n", o.size);
    return 2;
  }
  std::FILE* log = nullptr;
  if (!o.log.empty()) {
    log = std::fopen(o.log.c_str(), "w");
    if (log == nullptr) {
      std::fprintf(stderr, "cohort node: cannot write --log %s: %s\n", o.log.c_str(),
                   std::strerror(errno));
      return 1;
    }
    std::setvbuf(log, nullptr, _IOFBF, 1 << 20);  // flushed at every send (App::log_send)
  }
  std::signal(SIGTERM, [](int) { g_stop.store(true); });
  std::signal(SIGINT, [](int) { g_stop.store(true); });

  App app(o.node, log, o.all_latency, o.sample);
  GroupOptions go;
  go.name = o.group;
  go.node = o.node;
  go.slots = o.slots;
  go.bootstrap = o.bootstrap;
  go.shm_dir = o.shm_dir;
  go.transport = o.transport;
  go.peers = o.peers;
  go.threading = o.threading;
  go.order = o.order;
  go.dpdk_eal_args = split_words(o.dpdk_eal, ' ');
  go.rdma_device = o.rdma_device;
  go.faults.drop_rate = o.drop_rate;
  go.faults.cut_off = o.cut_off;
  go.faults.cut_after_ms = o.cut_after_ms;
  if (o.cut_for_ms != 0) go.faults.cut_for_ms = o.cut_for_ms;
  go.idle = o.idle;
  go.idle_spins = o.idle_spins;
  go.heartbeat_interval_us = o.heartbeat_us;
  go.suspect_timeout_us = o.suspect_us;
  // Creates and starts the Group; a rejoin makes a new one (a new incarnation).
  std::unique_ptr<Group> g;
  auto open_group = [&]() -> bool {
    const uint64_t t_create = steady_ns();  // before create(): a founder installs view 1 in it
    auto group = Group::create(go, &app);
    if (!group.ok()) {
      std::fprintf(stderr, "cohort node: %s\n", group.error().message().c_str());
      return false;
    }
    g = std::move(*group);
    if (!o.inline_loop) {
      if (auto st = g->start(o.pin); !st.ok()) {
        std::fprintf(stderr, "cohort node: %s\n", st.error().message().c_str());
        return false;
      }
    }
    app.log_start(t_create, g->self(), go.bootstrap);
    std::printf("event started t=%" PRIu64 " self=%s\n", steady_ns(), uid_text(g->self()).c_str());
    std::fflush(stdout);
    return true;
  };
  if (!open_group()) return 1;
  if (o.inline_loop && o.pin >= 0) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(o.pin, &set);
    if (sched_setaffinity(0, sizeof set, &set) != 0) {
      std::fprintf(stderr, "cohort node: cannot pin to cpu %d: %s; choose an allowed --pin\n",
                   o.pin, std::strerror(errno));
      return 1;
    }
  }
  // Waiting: the member's own thread works meanwhile; inline, this thread polls it.
  auto idle_until = [&](uint64_t deadline_ns) {
    if (!o.inline_loop) {
      const uint64_t now = steady_ns();
      if (now < deadline_ns) {
        std::this_thread::sleep_for(
            std::chrono::nanoseconds(std::min<uint64_t>(deadline_ns - now, 1'000'000)));
      }
      return;
    }
    do {
      g->poll();
    } while (steady_ns() < deadline_ns);
  };

  // Wait to be in a view (of wait_members at least), then send for run_ms.
  const uint64_t t0 = steady_ns();
  while ((!g->in_view() || g->stats().view_members < o.wait_members) && !g_stop.load() &&
         !app.ended() && steady_ns() - t0 < 10'000'000'000ULL) {
    idle_until(steady_ns() + 1'000'000);
  }
  if (o.rt_priority > 0) {
    sched_param sp{};
    sp.sched_priority = o.rt_priority;
    if (sched_setscheduler(0, SCHED_FIFO, &sp) != 0) {
      std::fprintf(stderr, "cohort node: SCHED_FIFO %d refused: %s; run as root or drop --rt\n",
                   o.rt_priority, std::strerror(errno));
      return 1;
    }
  }
  uint64_t sent = 0, full = 0;
  const uint64_t start = steady_ns();
  std::vector<std::byte> payload(o.size);
  uint32_t seq = 0;
  auto send_one = [&](uint64_t now) {
    const MemberUid self = g->self();
    std::memcpy(payload.data(), &now, 8);
    std::memcpy(payload.data() + 8, &o.node, 4);
    std::memcpy(payload.data() + 12, &seq, 4);
    std::memcpy(payload.data() + 16, &self.incarnation, 4);
    app.log_send(now, self, seq, mode, payload);  // on disk before any peer can deliver it
    const SendStatus st = g->send(payload, mode);
    app.log_sent(self, seq, st);
    ++seq;  // one number per send() call: each attempt is a message of its own (node_log.h)
    if (st == SendStatus::kOk) {
      ++sent;
    } else if (st == SendStatus::kFull) {
      ++full;
    }
    return st;
  };
  // --rejoin: a member the group removed (suspected while it was stopped, say) joins again in
  // this process as a new incarnation: a fresh Group, which gets the state by transfer. The old
  // Group is stopped first, so nothing of the old incarnation runs beside the new one.
  auto rejoin = [&]() -> bool {
    if (!o.rejoin || !app.removed() || g_stop.load()) return false;
    g->stop();
    app.log_stop(g->self());
    g.reset();
    app.reset();
    go.bootstrap = false;
    seq = 0;
    return open_group();
  };
  while (!g_stop.load() && steady_ns() - start < o.run_ms * 1'000'000) {
    if (app.ended() && !rejoin()) break;
    if (!g->in_view()) {  // joining again after a rejoin
      idle_until(steady_ns() + 1'000'000);
      continue;
    }
    const uint64_t now = steady_ns();
    if (o.rate == 0 && !o.flood) {  // a receiver: deliver for run_ms
      idle_until(now + 1'000'000);
      continue;
    }
    if (o.flood) {
      // As fast as backpressure allows: a burst until the queue is full, then poll.
      // (One clock read for the burst: its messages carry the burst's start.)
      const uint64_t burst_ns = steady_ns();
      for (int k = 0; k < 64 && send_one(burst_ns) == SendStatus::kOk; ++k) {
      }
      idle_until(0);
      continue;
    }
    const uint64_t due = start + sent * 1'000'000'000ULL / o.rate;
    if (now < due) {
      idle_until(due);
      continue;
    }
    const SendStatus st = send_one(now);
    if (st == SendStatus::kFull) idle_until(steady_ns() + 100'000);
    if (st == SendStatus::kNotMember) idle_until(steady_ns() + 1'000'000);  // between views
  }
  const uint64_t drain_end = steady_ns() + o.drain_ms * 1'000'000;
  while (g != nullptr && !g_stop.load() && steady_ns() < drain_end) {
    if (app.ended() && !rejoin()) break;
    idle_until(steady_ns() + 1'000'000);
  }
  const uint64_t elapsed_ns = steady_ns() - start;
  GroupStats s;
  if (g != nullptr) {  // (null only when a rejoin could not create its Group)
    if (!app.ended()) {
      app.log_leave();
      g->leave();
      const uint64_t leave_deadline = steady_ns() + 2'000'000'000ULL;
      while (!app.ended() && steady_ns() < leave_deadline) idle_until(steady_ns() + 1'000'000);
    }
    g->stop();
    app.log_stop(g->self());
    s = g->stats();
  }
  std::printf("stats node=%u sent=%" PRIu64 " full=%" PRIu64 " delivered=%" PRIu64 " bytes=%" PRIu64
              " views=%" PRIu64 " elapsed_ms=%" PRIu64 " lat_n=%" PRIu64 " polls=%" PRIu64
              " idle_polls=%" PRIu64 " ticket_waits=%" PRIu64
              " p50_us=%.3f p99_us=%.1f p999_us=%.1f max_us=%.1f rate_per_s=%.0f\n",
              o.node, sent, full, s.delivered, s.delivered_bytes, s.view_changes,
              elapsed_ns / 1'000'000, app.latency_.count(), s.polls, s.idle_polls, s.ticket_waits,
              static_cast<double>(app.latency_.value_at_percentile(50)) / 1e3,
              static_cast<double>(app.latency_.value_at_percentile(99)) / 1e3,
              static_cast<double>(app.latency_.value_at_percentile(99.9)) / 1e3,
              static_cast<double>(app.latency_.max()) / 1e3,
              app.last_ns_ > app.first_ns_
                  ? static_cast<double>(app.last_count_ - app.first_count_) * 1e9 /
                        static_cast<double>(app.last_ns_ - app.first_ns_)
                  : 0.0);
  std::printf("state node=%u count=%" PRIu64 " hash=%016" PRIx64 "\n", o.node, app.count_,
              app.sum_);
  std::fflush(stdout);
  if (log != nullptr) std::fclose(log);
  return 0;
}

}  // namespace cohort::cli
