#include "membership/protocol/codec.h"

namespace cohort::membership {
namespace {

bool valid_mode(uint8_t m) {
  return m < kModeCount;
}

// Records and datagrams share one head: magic, version, kind, the sender's Uid, its view.
void put_head(Writer& w, uint8_t kind, Uid from, ViewId view) {
  w.u16(kProtocolMagic);
  w.u8(kProtocolVersion);
  w.u8(kind);
  w.u64(from.key());
  w.u64(view);
}

bool get_head(Reader& r, uint8_t first_kind, uint8_t last_kind, uint8_t* kind, Uid* from,
              ViewId* view) {
  const uint16_t magic = r.u16();
  const uint8_t version = r.u8();
  *kind = r.u8();
  *from = Uid::from_key(r.u64());
  *view = r.u64();
  return r.ok() && magic == kProtocolMagic && version == kProtocolVersion && *kind >= first_kind &&
         *kind <= last_kind && from->valid() && from->node < kMaxMembers;
}

}  // namespace

void put_record_head(Writer& w, RecordKind kind, Uid writer, ViewId view) {
  put_head(w, static_cast<uint8_t>(kind), writer, view);
}

bool get_record_head(Reader& r, RecordHead* head) {
  uint8_t kind = 0;
  if (!get_head(r, static_cast<uint8_t>(RecordKind::kData), static_cast<uint8_t>(RecordKind::kP2p),
                &kind, &head->writer, &head->view)) {
    return false;
  }
  head->kind = static_cast<RecordKind>(kind);
  return head->view != 0;  // every record belongs to a view
}

void put_data(Writer& w, const DataBody& d) {
  // rank u8, mode u8, sseq u32, gseq_inline u64, length u32, payload (little endian, as the
  // Writer's fields): filled in place, since every message sent passes here.
  const auto length = static_cast<uint32_t>(d.payload.size());
  std::byte* p = w.grow(18 + size_t{length});
  p[0] = static_cast<std::byte>(d.rank);
  p[1] = static_cast<std::byte>(d.mode);
  std::memcpy(p + 2, &d.sseq, 4);
  std::memcpy(p + 6, &d.gseq_inline, 8);
  std::memcpy(p + 14, &length, 4);
  if (length != 0) std::memcpy(p + 18, d.payload.data(), length);
}

bool get_data_entry(Reader& r, DataBody* d) {
  d->rank = r.u8();
  const uint8_t mode = r.u8();
  d->sseq = r.u32();
  d->gseq_inline = r.u64();
  const uint32_t length = r.u32();
  d->payload = r.bytes(length);
  if (!r.ok() || !valid_mode(mode) || d->sseq == 0 || d->rank >= kMaxMembers) return false;
  d->mode = static_cast<Mode>(mode);
  return true;
}

bool get_data(Reader& r, DataBody* d) {
  return get_data_entry(r, d) && r.at_end();
}

void put_order(Writer& w, uint64_t gseq_first, std::span<const OrderRange> ranges) {
  w.u64(gseq_first);
  w.u16(static_cast<uint16_t>(ranges.size()));
  for (const OrderRange& o : ranges) {
    w.u8(o.rank);
    w.u32(o.sseq_from);
    w.u32(o.sseq_to);
  }
}

bool get_order(Reader& r, OrderBody* o) {
  o->gseq_first = r.u64();
  o->count = r.u16();
  if (!r.ok() || o->count == 0 || o->count > kMaxOrderRanges || o->gseq_first == 0) return false;
  for (uint32_t i = 0; i < o->count; ++i) {
    OrderRange& g = o->ranges[i];
    g.rank = r.u8();
    g.sseq_from = r.u32();
    g.sseq_to = r.u32();
    if (g.rank >= kMaxMembers || g.sseq_from == 0 || g.sseq_to < g.sseq_from) return false;
  }
  return r.at_end();
}

void put_p2p(Writer& w, const P2pBody& p) {
  w.u8(static_cast<uint8_t>(p.type));
  w.u64(p.target.key());
  w.u64(p.id);
  w.u32(static_cast<uint32_t>(p.payload.size()));
  w.bytes(p.payload);
}

bool get_p2p(Reader& r, P2pBody* p) {
  const uint8_t type = r.u8();
  p->target = Uid::from_key(r.u64());
  p->id = r.u64();
  const uint32_t length = r.u32();
  p->payload = r.bytes(length);
  if (!r.at_end() || !p->target.valid() || p->target.node >= kMaxMembers) return false;
  if (type != static_cast<uint8_t>(P2pType::kRequest) &&
      type != static_cast<uint8_t>(P2pType::kReply)) {
    return false;
  }
  p->type = static_cast<P2pType>(type);
  return true;
}

void put_control_head(Writer& w, ControlKind kind, Uid from, ViewId view) {
  put_head(w, static_cast<uint8_t>(kind), from, view);
}

bool get_control_head(Reader& r, ControlHead* head) {
  uint8_t kind = 0;
  if (!get_head(r, static_cast<uint8_t>(ControlKind::kHeartbeat),
                static_cast<uint8_t>(ControlKind::kSnapNone), &kind, &head->from, &head->view)) {
    return false;
  }
  head->kind = static_cast<ControlKind>(kind);
  return true;  // view 0: a joiner, not in a view yet
}

void put_view(Writer& w, const View& v) {
  w.u64(v.id);
  w.u8(static_cast<uint8_t>(v.count));
  for (uint32_t i = 0; i < v.count; ++i) w.u64(v.members[i].key());
}

bool get_view(Reader& r, View* v) {
  v->id = r.u64();
  v->count = r.u8();
  if (!r.ok() || v->id == 0 || v->count == 0 || v->count > kMaxMembers) return false;
  for (uint32_t i = 0; i < v->count; ++i) {
    v->members[i] = Uid::from_key(r.u64());
    if (!v->members[i].valid() || v->members[i].node >= kMaxMembers) return false;
    for (uint32_t j = 0; j < i; ++j) {
      if (v->members[j].node == v->members[i].node) return false;  // one incarnation a node
    }
  }
  return r.ok();
}

void put_cut_value(Writer& w, const CutValue& c) {
  w.u64(c.attempt);
  w.u64(c.from);
  w.u8(static_cast<uint8_t>(c.senders));
  for (uint32_t i = 0; i < c.senders; ++i) w.u32(c.cut[i]);
  w.u64(c.ordered);
  put_view(w, c.next);
  w.u32(c.joiners_mask);
}

bool get_cut_value(Reader& r, CutValue* c) {
  c->attempt = r.u64();
  c->from = r.u64();
  c->senders = r.u8();
  if (!r.ok() || c->senders == 0 || c->senders > kMaxMembers) return false;
  for (uint32_t i = 0; i < c->senders; ++i) c->cut[i] = r.u32();
  c->ordered = r.u64();
  if (!get_view(r, &c->next)) return false;
  c->joiners_mask = r.u32();
  return r.ok() && c->next.id == c->from + 1;
}

void put_flush_state(Writer& w, const FlushState& f) {
  w.u64(f.attempt);
  w.u8(static_cast<uint8_t>(f.senders));
  for (uint32_t i = 0; i < f.senders; ++i) w.u32(f.recv[i]);
  w.u64(f.ordered);
  w.u8(f.has_accepted ? 1 : 0);
  if (f.has_accepted) {
    w.u64(f.accepted_attempt);
    put_cut_value(w, f.accepted);
  }
}

bool get_flush_state(Reader& r, FlushState* f) {
  f->attempt = r.u64();
  f->senders = r.u8();
  if (!r.ok() || f->senders == 0 || f->senders > kMaxMembers) return false;
  for (uint32_t i = 0; i < f->senders; ++i) f->recv[i] = r.u32();
  f->ordered = r.u64();
  const uint8_t has = r.u8();
  if (has > 1) return false;
  f->has_accepted = has == 1;
  if (f->has_accepted) {
    f->accepted_attempt = r.u64();
    if (!get_cut_value(r, &f->accepted)) return false;
  }
  return r.at_end();
}

void put_fetch(Writer& w, const FetchBody& f) {
  w.u8(static_cast<uint8_t>(f.count));
  for (uint32_t i = 0; i < f.count; ++i) {
    w.u8(f.ranges[i].rank);
    w.u32(f.ranges[i].sseq_from);
    w.u32(f.ranges[i].sseq_to);
  }
  w.u64(f.order_from);
  w.u64(f.order_to);
}

bool get_fetch(Reader& r, FetchBody* f) {
  f->count = r.u8();
  if (!r.ok() || f->count > kMaxMembers) return false;
  for (uint32_t i = 0; i < f->count; ++i) {
    f->ranges[i].rank = r.u8();
    f->ranges[i].sseq_from = r.u32();
    f->ranges[i].sseq_to = r.u32();
    if (f->ranges[i].rank >= kMaxMembers || f->ranges[i].sseq_from == 0 ||
        f->ranges[i].sseq_to < f->ranges[i].sseq_from) {
      return false;
    }
  }
  f->order_from = r.u64();
  f->order_to = r.u64();
  if (f->order_from > f->order_to || (f->order_from == 0 && f->order_to != 0)) return false;
  return r.at_end();
}

}  // namespace cohort::membership
