// The simulated network (sim_net.h): logs with per-link FIFO delivery, lossy datagrams, and
// the fault knobs.
#include "transport/sim/sim_net.h"

#include <algorithm>

#include "runtime/assert.h"

namespace cohort::transport::sim {

SimNet::SimNet(uint32_t nodes, uint64_t seed, bool self_read)
    : node_count_(nodes),
      self_read_(self_read),
      rng_(seed),
      nodes_(nodes),
      links_(static_cast<size_t>(nodes) * nodes),
      held_(nodes) {
  COHORT_ASSERT(nodes >= 1 && nodes <= kMaxMembers);
}

// --- the life of a node ------------------------------------------------------------------------

void SimNet::start(NodeId node, TimeNs now) {
  COHORT_ASSERT(node < node_count_);
  Node& n = nodes_[node];
  COHORT_ASSERT(!n.alive);
  n.alive = true;
  n.paused = false;
  n.generation++;
  n.log = static_cast<uint32_t>(logs_.size());
  logs_.emplace_back();
  held_[node].clear();
  for (NodeId other = 0; other < node_count_; ++other) {
    // Readers of this node switch to its new log.
    if (reads(node, other)) {
      Link& out = link(node, other);
      cancel_link(out);
      out.log = n.log;
      out.delivered = out.scheduled = 0;
      out.limit = kNoLimit;
      out.last_at = 0;
    }
    // This node reads every live node's current log from its beginning.
    if (other != node && reads(other, node)) {
      Link& in = link(other, node);
      cancel_link(in);
      in.log = nodes_[other].alive ? nodes_[other].log : kNoLog;
      in.delivered = in.scheduled = 0;
      in.limit = kNoLimit;
      in.last_at = 0;
      schedule_link(other, node, now);
    }
  }
}

void SimNet::crash(NodeId node, TimeNs /*now*/) {
  COHORT_ASSERT(node < node_count_ && nodes_[node].alive);
  end_writer(node, /*keep_all=*/false);
  end_reader(node);
}

void SimNet::stop(NodeId node, TimeNs /*now*/) {
  COHORT_ASSERT(node < node_count_ && nodes_[node].alive);
  end_writer(node, /*keep_all=*/true);
  end_reader(node);
}

// The node writes no more: each reader gets the whole log (a clean exit) or a random prefix of
// what was in flight to it (a crash).
void SimNet::end_writer(NodeId node, bool keep_all) {
  const Node& n = nodes_[node];
  for (NodeId reader = 0; reader < node_count_; ++reader) {
    if (!reads(node, reader)) continue;
    Link& l = link(node, reader);
    if (l.log == kNoLog || keep_all) continue;
    const uint64_t size = logs_[l.log].records.size();
    const uint64_t in_flight = size - l.delivered;
    const uint64_t keep = rng_.between(0, in_flight);
    l.limit = l.delivered + keep;
    counters_.records_lost_in_crash += in_flight - keep;
  }
  (void)n;
}

// The node reads no more: what is scheduled or held for it is dropped.
void SimNet::end_reader(NodeId node) {
  Node& n = nodes_[node];
  n.alive = false;
  n.paused = false;
  for (NodeId writer = 0; writer < node_count_; ++writer) {
    if (!reads(writer, node)) continue;
    Link& l = link(writer, node);
    cancel_link(l);
    l.log = kNoLog;
  }
  for (const Held& h : held_[node]) {
    if (h.kind == ItemKind::kDatagram) slab_free(h.index);
  }
  held_[node].clear();
}

void SimNet::pause(NodeId node, TimeNs /*now*/) {
  COHORT_ASSERT(node < node_count_ && nodes_[node].alive);
  nodes_[node].paused = true;
}

void SimNet::resume(NodeId node, TimeNs now) {
  COHORT_ASSERT(node < node_count_);
  Node& n = nodes_[node];
  if (!n.alive || !n.paused) return;
  n.paused = false;
  if (!held_[node].empty()) ready_.emplace_back(node, now);
}

// --- traffic -----------------------------------------------------------------------------------

uint64_t SimNet::append(NodeId node, std::span<const std::byte> bytes, TimeNs now) {
  COHORT_ASSERT(node < node_count_ && nodes_[node].alive);
  Log& log = logs_[nodes_[node].log];
  const uint64_t index = log.records.size();
  log.records.emplace_back(bytes.begin(), bytes.end());
  counters_.appended++;
  for (NodeId reader = 0; reader < node_count_; ++reader) {
    if (reads(node, reader)) schedule_link(node, reader, now);
  }
  return index;
}

uint64_t SimNet::log_size(NodeId node) const noexcept {
  const Node& n = nodes_[node];
  return n.log == kNoLog ? 0 : logs_[n.log].records.size();
}

void SimNet::send(NodeId from, NodeId to, std::span<const std::byte> bytes, TimeNs now) {
  COHORT_ASSERT(from < node_count_ && to < node_count_);
  counters_.datagrams_sent++;
  if (!nodes_[to].alive) {
    counters_.datagrams_dead++;
    return;
  }
  const Link& l = link(from, to);
  if (!l.connected) {
    counters_.datagrams_partitioned++;
    return;
  }
  if (rng_.chance(l.faults.loss)) {
    counters_.datagrams_lost++;
    return;
  }
  const int copies = rng_.chance(l.faults.dup) ? 2 : 1;
  if (copies == 2) counters_.datagrams_duplicated++;
  for (int c = 0; c < copies; ++c) {
    const TimeNs delay =
        draw_delay(from, to, l.faults.dgram_delay_min_ns, l.faults.dgram_delay_max_ns);
    push(now + delay, ItemKind::kDatagram, from, to, nodes_[to].generation, slab_put(bytes));
  }
}

// --- faults ------------------------------------------------------------------------------------

void SimNet::set_link_faults(NodeId from, NodeId to, const LinkFaults& faults) noexcept {
  link(from, to).faults = faults;
}

void SimNet::set_all_faults(const LinkFaults& faults) noexcept {
  for (Link& l : links_) l.faults = faults;
}

void SimNet::set_connected(NodeId from, NodeId to, bool connected, TimeNs now) {
  COHORT_ASSERT(from < node_count_ && to < node_count_);
  Link& l = link(from, to);
  if (l.connected == connected) return;
  l.connected = connected;
  if (!connected) {
    // Stall: what was scheduled goes back to waiting, in order, for the heal.
    cancel_link(l);
  } else if (reads(from, to)) {
    schedule_link(from, to, now);
  }
}

void SimNet::heal(TimeNs now) {
  for (NodeId from = 0; from < node_count_; ++from) {
    for (NodeId to = 0; to < node_count_; ++to) set_connected(from, to, true, now);
  }
}

void SimNet::set_slow(NodeId node, uint32_t factor) noexcept {
  nodes_[node].slow = std::max<uint32_t>(factor, 1);
}

TimeNs SimNet::draw_delay(NodeId from, NodeId to, TimeNs lo, TimeNs hi) noexcept {
  const TimeNs d = rng_.between(lo, hi);
  return d * std::max(nodes_[from].slow, nodes_[to].slow);
}

// --- scheduling --------------------------------------------------------------------------------

void SimNet::cancel_link(Link& l) noexcept {
  l.epoch++;
  l.scheduled = l.delivered;
}

// Gives every record of the writer's log that the reader may now see an event, each no earlier
// than the one ahead of it (FIFO within the link).
void SimNet::schedule_link(NodeId writer, NodeId reader, TimeNs now) {
  Link& l = link(writer, reader);
  if (l.log == kNoLog || !l.connected || !nodes_[reader].alive) return;
  const uint64_t end = std::min<uint64_t>(logs_[l.log].records.size(), l.limit);
  while (l.scheduled < end) {
    const TimeNs delay =
        draw_delay(writer, reader, l.faults.log_delay_min_ns, l.faults.log_delay_max_ns);
    const TimeNs at = std::max(now + delay, l.last_at);
    l.last_at = at;
    push(at, ItemKind::kRecord, writer, reader, l.epoch, l.scheduled);
    l.scheduled++;
  }
}

void SimNet::push(TimeNs at, ItemKind kind, NodeId from, NodeId to, uint64_t epoch,
                  uint64_t payload) {
  queue_.push(Event{at, seq_++, epoch, payload, kind, from, to});
}

uint32_t SimNet::slab_put(std::span<const std::byte> bytes) {
  uint32_t slot;
  if (!dgram_free_.empty()) {
    slot = dgram_free_.back();
    dgram_free_.pop_back();
  } else {
    slot = static_cast<uint32_t>(dgram_slab_.size());
    dgram_slab_.emplace_back();
  }
  dgram_slab_[slot].assign(bytes.begin(), bytes.end());
  return slot;
}

void SimNet::slab_free(uint64_t slot) {
  dgram_slab_[slot].clear();
  dgram_free_.push_back(static_cast<uint32_t>(slot));
}

// --- handing over ------------------------------------------------------------------------------

TimeNs SimNet::next_due() const noexcept {
  TimeNs t = queue_.empty() ? kNever : queue_.top().at;
  if (!ready_.empty()) t = std::min(t, ready_.front().second);
  return t;
}

bool SimNet::pop_ready(NodeId node, TimeNs at, Item* out) {
  std::deque<Held>& q = held_[node];
  if (q.empty() || nodes_[node].paused || !nodes_[node].alive) return false;
  const Held h = q.front();
  q.pop_front();
  out->kind = h.kind;
  out->from = h.from;
  out->to = node;
  out->at = at;
  if (h.kind == ItemKind::kRecord) {
    out->index = h.index;
    out->bytes = h.record;
    counters_.records_delivered++;
  } else {
    current_dgram_.swap(dgram_slab_[h.index]);
    slab_free(h.index);
    out->index = 0;
    out->bytes = current_dgram_;
    counters_.datagrams_delivered++;
  }
  return true;
}

bool SimNet::pop(TimeNs now, Item* out) {
  while (!ready_.empty() && ready_.front().second <= now) {
    if (pop_ready(ready_.front().first, ready_.front().second, out)) return true;
    ready_.pop_front();
  }
  while (!queue_.empty() && queue_.top().at <= now) {
    const Event ev = queue_.top();
    queue_.pop();
    Node& dst = nodes_[ev.to];
    if (ev.kind == ItemKind::kRecord) {
      Link& l = link(ev.from, ev.to);
      if (ev.epoch != l.epoch) continue;    // cancelled by a partition, crash or restart
      if (ev.payload >= l.limit) continue;  // lost with its crashed writer
      COHORT_ASSERT(ev.payload == l.delivered && l.connected && dst.alive);
      l.delivered++;
      const std::span<const std::byte> record = logs_[l.log].records[ev.payload];
      if (dst.paused) {
        held_[ev.to].push_back(Held{ItemKind::kRecord, ev.from, ev.payload, record});
        counters_.held_for_pause++;
        continue;
      }
      counters_.records_delivered++;
      *out = Item{ItemKind::kRecord, ev.from, ev.to, ev.at, ev.payload, record};
      return true;
    }
    if (!dst.alive || dst.generation != ev.epoch) {
      counters_.datagrams_dead++;
      slab_free(ev.payload);
      continue;
    }
    if (!link(ev.from, ev.to).connected) {
      counters_.datagrams_partitioned++;
      slab_free(ev.payload);
      continue;
    }
    if (dst.paused) {
      held_[ev.to].push_back(Held{ItemKind::kDatagram, ev.from, ev.payload, {}});
      counters_.held_for_pause++;
      continue;
    }
    current_dgram_.swap(dgram_slab_[ev.payload]);
    slab_free(ev.payload);
    counters_.datagrams_delivered++;
    *out = Item{ItemKind::kDatagram, ev.from, ev.to, ev.at, 0, current_dgram_};
    return true;
  }
  return false;
}

}  // namespace cohort::transport::sim
