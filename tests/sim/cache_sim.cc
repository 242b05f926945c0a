// The cache workload (cache_sim.h).
#include "tests/sim/cache_sim.h"

#include <sstream>

#include "runtime/assert.h"
#include "tests/sim/app_sim.h"

namespace cohort::sim {
namespace {

constexpr char kReentered[] = "cache_sim: re-entered a member's cache core";

class Busy : public CoreBusy {
 public:
  explicit Busy(bool* flag) : CoreBusy(flag, kReentered) {}
};

using cache::CacheCore;
using cache::GetDone;
using cache::StoreWork;

// One output of a core's flush, in the order the core made them.
struct Out {
  enum class Kind : uint8_t { kSend, kRequest, kReply };
  Kind kind = Kind::kSend;
  DeliveryMode mode = DeliveryMode::kTotal;
  MemberUid to;
  uint64_t id = 0;
  std::vector<std::byte> bytes;
};

}  // namespace

CacheSim::CacheSim(Cluster* cluster, Rng rng, CacheChecker* checker, const cache::CoreBugs& bugs)
    : cluster_(cluster), rng_(rng), checker_(checker), bugs_(bugs), nodes_(cluster->nodes()) {
  const uint64_t keys = rng_.between(1, 6);
  for (uint64_t i = 0; i < keys; ++i) {
    std::ostringstream k;
    k << "k" << i;
    keys_.push_back(k.str());
    const std::string initial = k.str() + "@0";
    store_[keys_.back()] = Stored{initial, 0};
    checker_->on_initial(keys_.back(), initial);
  }
  p_put_ = 0.05 + 0.25 * rng_.unit();
  p_wave_ = rng_.chance(0.2) ? 0.0 : 0.3 * rng_.unit();
  capacity_entries_ = rng_.chance(0.3) ? rng_.between(1, 3) : 1000;
  load_max_ns_ = rng_.between(200, 4000) * kUs;
  max_gets_ = static_cast<uint32_t>(rng_.between(1, 4));
  // The default admission (a peer's value cached on its second fetch) most of the time, with a
  // window of a few keys so that keys both age out of it and come back within it; the old
  // policy (every peer fetch cached) on the rest.
  every_peer_fetch_ = rng_.chance(0.2);
  admission_window_keys_ = static_cast<uint32_t>(rng_.between(1, 4));
  peer_memory_ = rng_.chance(0.5);  // half the seeds read holders' values in place
}

std::string CacheSim::describe() const {
  std::ostringstream o;
  o << "cache: keys=" << keys_.size() << " put=" << p_put_ << " wave=" << p_wave_
    << " capacity_entries=" << capacity_entries_ << " load_max_us=" << load_max_ns_ / kUs
    << " gets_per_member=" << max_gets_
    << " admission=" << (every_peer_fetch_ ? "every_peer_fetch" : "second_peer_fetch")
    << " window=" << admission_window_keys_ << " peer_memory=" << (peer_memory_ ? 1 : 0);
  if (bugs_.unchecked_peer_reply) o << " bug=unchecked_peer_reply";
  return o.str();
}

void CacheSim::start() {
  cluster_->at(cluster_->now() + kMs, [this] { tick(); });
}

// Held-back sends, every millisecond, as a real service's timer would.
void CacheSim::tick() {
  for (NodeId n = 0; n < nodes_.size(); ++n) {
    if (nodes_[n].core && nodes_[n].core->has_output()) flush(n);
  }
  cluster_->at(cluster_->now() + kMs, [this] { tick(); });
}

bool CacheSim::ready(NodeId n) const {
  const Member* m = cluster_->member(n);
  const Node& node = nodes_[n];
  return m != nullptr && !cluster_->paused(n) && node.core && node.core->ready() &&
         m->state() == membership::MemberState::kActive && m->restored();
}

bool CacheSim::op() {
  std::vector<NodeId> able;
  for (NodeId n = 0; n < nodes_.size(); ++n) {
    if (ready(n) && nodes_[n].core->gets_in_flight() < max_gets_) able.push_back(n);
  }
  if (able.empty()) return false;
  const std::string& key = keys_[rng_.below(keys_.size())];
  const NodeId n = able[rng_.below(able.size())];
  if (rng_.chance(p_put_)) {
    CacheStatus s;
    {
      Busy b(&nodes_[n].busy);
      if (nodes_[n].core->put(key, {}, &s) == 0) return true;  // busy: the value comes later
    }
    counters_.puts++;
    after(n);
    return true;
  }
  if (rng_.chance(p_wave_) && able.size() > 1) {
    counters_.waves++;
    for (NodeId m : able) get(m, key);
  } else {
    get(n, key);
  }
  for (NodeId m : able) flush(m);
  return true;
}

void CacheSim::get(NodeId n, const std::string& key) {
  Node& node = nodes_[n];
  GetDone d;
  uint64_t id = 0;
  {
    Busy b(&node.busy);
    id = node.core->get(key, &d);
  }
  counters_.gets++;
  if (id == 0) {
    if (d.status == CacheStatus::kOk) {
      if (d.source == CacheSource::kPeer) {
        counters_.peer_hits++;
      } else {
        counters_.local_hits++;
      }
      checker_->on_get(node.uid, key, true, d.value, cluster_->now());
    }
    return;
  }
  after(n);
}

bool CacheSim::quiescent() const {
  for (NodeId n = 0; n < nodes_.size(); ++n) {
    const Node& node = nodes_[n];
    if (!cluster_->running(n) || !node.core || node.core->final()) continue;
    if (node.core->gets_in_flight() != 0 || node.core->writes_in_flight() != 0 ||
        node.core->loads_in_flight() != 0 || node.core->has_output() || !node.undelivered.empty()) {
      return false;
    }
  }
  return true;
}

uint64_t CacheSim::gets_unfinished() const {
  uint64_t n = 0;
  for (NodeId i = 0; i < nodes_.size(); ++i) {
    if (cluster_->running(i) && nodes_[i].core && !nodes_[i].core->final()) {
      n += nodes_[i].core->gets_in_flight();
    }
  }
  return n;
}

// --- after every call into a core: results, store work, sends -----------------------------------

void CacheSim::after(NodeId n) {
  Node& node = nodes_[n];
  if (!node.core) return;
  const TimeNs now = cluster_->now();
  for (const GetDone& d : node.core->take_gets_done()) {
    if (d.status == CacheStatus::kOk || d.status == CacheStatus::kNotFound) {
      checker_->on_get(node.uid, d.key, d.status == CacheStatus::kOk, d.value, now);
      if (d.source == CacheSource::kPeer) counters_.peer_hits++;
      if (d.source == CacheSource::kStore) counters_.store_gets++;
    }
  }
  (void)node.core->take_writes_done();
  for (StoreWork& w : node.core->take_store_work()) run_store(n, std::move(w));
  if (node.core->has_output()) schedule_flush(n);
}

// The store: a load reads the map at a moment inside its delay and answers at its end; a write
// lands in the map inside its delay (its value unique: key@n) and is acknowledged at its end. A
// paused process hears nothing until it runs again; a crashed one never does.
void CacheSim::run_store(NodeId n, StoreWork w) {
  Node& node = nodes_[n];
  const Uid uid = node.uid;
  const TimeNs read_at = cluster_->now() + rng_.between(20 * kUs, load_max_ns_ / 2);
  const TimeNs done_at = read_at + rng_.between(20 * kUs, load_max_ns_ / 2);
  auto answer = std::make_shared<std::function<void()>>();
  if (w.kind == StoreWork::Kind::kLoad) {
    counters_.loads++;
    checker_->on_load_start(uid, w.key, cluster_->now());
    auto value = std::make_shared<std::string>();
    cluster_->at(read_at, [this, key = w.key, value] { *value = store_[key].value; });
    *answer = [this, n, uid, id = w.id, key = w.key, value, answer] {
      Node& nd = nodes_[n];
      if (!nd.core || !(nd.uid == uid)) return;
      if (cluster_->paused(n)) {
        cluster_->at(cluster_->now() + kMs, *answer);
        return;
      }
      checker_->on_load_end(uid, key);
      {
        Busy b(&nd.busy);
        nd.core->load_done(id, LoadStatus::kOk, *value);
      }
      after(n);
    };
  } else {
    COHORT_ASSERT(w.kind == StoreWork::Kind::kStore);
    cluster_->at(read_at, [this, uid, id = w.id, key = w.key] {
      Stored& s = store_[key];
      s.pos++;
      std::ostringstream v;
      v << key << "@" << ++next_value_;
      s.value = v.str();
      checker_->on_store_write(key, s.value, s.pos);
      write_pos_[{uid.key(), id}] = s.pos;
    });
    *answer = [this, n, uid, id = w.id, answer] {
      Node& nd = nodes_[n];
      if (!nd.core || !(nd.uid == uid)) return;
      if (cluster_->paused(n)) {
        cluster_->at(cluster_->now() + kMs, *answer);
        return;
      }
      {
        Busy b(&nd.busy);
        nd.core->write_done(id, true);
      }
      after(n);
    };
  }
  cluster_->at(done_at, [answer] { (*answer)(); });
}

void CacheSim::schedule_flush(NodeId n) {
  schedule_flush_once(cluster_, &nodes_, n, [this, n] { flush(n); });
}

// The core hands its outputs over first and the cluster sends them after: a send can deliver
// at once (a view of one), and a delivery calls into the core again.
void CacheSim::flush(NodeId n) {
  Node& node = nodes_[n];
  const Member* m = cluster_->member(n);
  if (!node.core || m == nullptr || cluster_->paused(n)) return;  // the tick retries
  if (m->state() != membership::MemberState::kActive) return;
  std::vector<Out> out;
  {
    Busy b(&node.busy);
    CacheCore::Transport t;
    t.send = [&out](std::span<const std::byte> bytes, DeliveryMode mode) {
      out.push_back(Out{Out::Kind::kSend, mode, {}, 0, {bytes.begin(), bytes.end()}});
      return SendStatus::kOk;
    };
    t.request = [&out](MemberUid to, uint64_t id, std::span<const std::byte> bytes) {
      out.push_back(Out{Out::Kind::kRequest, {}, to, id, {bytes.begin(), bytes.end()}});
      return SendStatus::kOk;
    };
    t.reply = [&out](MemberUid to, uint64_t id, std::span<const std::byte> bytes) {
      out.push_back(Out{Out::Kind::kReply, {}, to, id, {bytes.begin(), bytes.end()}});
    };
    node.core->flush(t);
  }
  const Uid uid = node.uid;
  for (const Out& o : out) {
    if (!cluster_->running(n) || !(cluster_->uid(n) == uid) || !nodes_[n].core) break;
    if (o.kind == Out::Kind::kReply) {
      (void)cluster_->reply(n, from_public(o.to), o.id, o.bytes);
      continue;
    }
    if (o.kind == Out::Kind::kRequest) {
      const SendResult r = cluster_->request(n, from_public(o.to), o.id, o.bytes);
      if (r != SendResult::kOk && nodes_[n].core && nodes_[n].uid == uid) {
        Busy b(&nodes_[n].busy);
        (void)nodes_[n].core->on_reply(o.id, {}, true);
      }
      continue;
    }
    const uint64_t id = cluster_->next_message_id();
    cache::Op op;
    COHORT_ASSERT(cache::decode_op(o.bytes, &op) == cache::DecodeResult::kOk);
    if (op.kind == cache::OpKind::kInvalidate) {
      auto it = write_pos_.find({uid.key(), op.write});
      COHORT_ASSERT_MSG(it != write_pos_.end(), "cache_sim: an invalidation of no store write");
      checker_->on_invalidate_sent(id, std::string(op.key), it->second);
    }
    const Mode mode = o.mode == DeliveryMode::kSafe ? Mode::kSafe : Mode::kTotal;
    nodes_[n].undelivered.insert(id);
    if (cluster_->app_send_body(n, mode, id, o.bytes) != SendResult::kOk) {
      nodes_[n].undelivered.erase(id);
    }
  }
  after(n);
}

void CacheSim::collect_counters(const CacheCore& core) {
  add_counters(core, &counters_);
}

void CacheSim::add_counters(const CacheCore& core, Counters* to) {
  const CacheCounters c = core.counters();
  to->stale_replies += c.stale_replies;
  to->false_hits += c.false_hits;
  to->reloads += c.reloads;
  to->peer_failures += c.peer_failures;
  to->peer_reads += c.peer_reads;
}

CacheSim::Counters CacheSim::final_counters() const {
  Counters c = counters_;
  for (const Node& node : nodes_) {
    if (node.core) add_counters(*node.core, &c);
  }
  return c;
}

// --- the member's events -----------------------------------------------------------------------

void CacheSim::on_start(NodeId n, Uid self, bool founder) {
  (void)founder;
  Node& node = nodes_[n];
  cache::CoreOptions options;
  options.capacity_bytes = capacity_entries_ * (cache::LruStore::kEntryOverheadBytes + 24);
  options.admission =
      every_peer_fetch_ ? CacheAdmission::kEveryPeerFetch : CacheAdmission::kSecondPeerFetch;
  options.admission_window_keys = admission_window_keys_;
  options.bugs = bugs_;
  node.core = std::make_unique<CacheCore>(options);
  node.core->set_self(to_public(self));
  if (peer_memory_) node.core->set_peer_memory(this);
  node.uid = self;
  node.view = 0;
  node.flush_scheduled = false;
  node.busy = false;
  node.undelivered.clear();
  checker_->on_start(self);
}

void CacheSim::on_deliver(NodeId n, const Delivery& d) {
  Node& node = nodes_[n];
  if (!node.core) return;
  checker_->on_delivery(node.uid, payload_id(d.payload));
  if (d.sender == node.uid) node.undelivered.erase(payload_id(d.payload));
  bool ours = false;
  {
    Busy b(&node.busy);
    ours = node.core->on_deliver(app_body(d.payload), to_public(d.sender), d.view, d.gseq,
                                 static_cast<DeliveryMode>(d.mode));
  }
  if (!ours) counters_.not_ops++;
  after(n);
}

void CacheSim::on_install(NodeId n, const View& view) {
  Node& node = nodes_[n];
  if (!node.core) return;
  const bool from_previous = node.view != 0 && node.view + 1 == view.id;
  node.view = view.id;
  checker_->on_install(node.uid, view.id, from_previous);
  {
    Busy b(&node.busy);
    node.core->on_view(public_members(view));
  }
  after(n);
}

std::vector<std::byte> CacheSim::snapshot(NodeId n) {
  Node& node = nodes_[n];
  return node.core ? node.core->snapshot() : std::vector<std::byte>{};
}

void CacheSim::on_restore(NodeId n, std::span<const std::byte> bytes) {
  Node& node = nodes_[n];
  if (!node.core) return;
  bool ok = false;
  {
    Busy b(&node.busy);
    ok = node.core->restore(bytes);
  }
  if (!ok) {
    std::ostringstream v;
    v << "state transfer: n" << n << "'s cache directory refused its snapshot (" << bytes.size()
      << " bytes)";
    checker_->fail(v.str());
  }
  checker_->on_restore(node.uid);
  after(n);
}

void CacheSim::on_final(NodeId n, ActionKind kind) {
  Node& node = nodes_[n];
  if (!node.core) return;
  if (kind == ActionKind::kCutOff) checker_->on_cut_off(node.uid);
  {
    Busy b(&node.busy);
    node.core->on_event(final_event(kind));
  }
  after(n);
  if (kind != ActionKind::kCutOff) {
    collect_counters(*node.core);
    checker_->on_end(node.uid);
  }
}

void CacheSim::on_crash(NodeId n) {
  Node& node = nodes_[n];
  if (!node.core) return;
  checker_->on_end(node.uid);
  collect_counters(*node.core);
  // Its memory outlives it (the real mirror is a file): peers may still read what it held.
  // (Its counters were taken: collect them again from nothing.)
  ghosts_[{node.uid.node, node.uid.incarnation}] = std::move(node.core);
}

bool CacheSim::read(MemberUid holder, std::string_view key, std::string* value,
                    cache::Stamp* stamp) {
  if (rng_.chance(0.2)) return false;
  const cache::CacheCore* core = nullptr;
  for (const Node& nd : nodes_) {
    if (nd.core && nd.uid.node == holder.node && nd.uid.incarnation == holder.incarnation) {
      core = nd.core.get();
    }
  }
  bool ghost = false;
  if (core == nullptr) {
    auto g = ghosts_.find({holder.node, holder.incarnation});
    if (g == ghosts_.end()) return false;
    core = g->second.get();
    ghost = true;
  }
  const cache::LruStore::Entry* e = core->lru().peek(key);
  if (e == nullptr) return false;
  *value = e->value;
  *stamp = e->stamp;
  if (ghost) counters_.ghost_reads++;
  return true;
}

void CacheSim::on_request(NodeId n, const membership::P2pMessage& r) {
  Node& node = nodes_[n];
  if (!node.core) return;
  {
    Busy b(&node.busy);
    if (!node.core->on_request(to_public(r.peer), r.id, r.payload)) counters_.not_ops++;
  }
  after(n);
}

void CacheSim::on_reply(NodeId n, const membership::P2pMessage& r, bool failed) {
  Node& node = nodes_[n];
  if (!node.core) return;
  {
    Busy b(&node.busy);
    (void)node.core->on_reply(r.id, r.payload, failed);
  }
  after(n);
}

}  // namespace cohort::sim
