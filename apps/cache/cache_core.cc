// One member's side of the cooperative cache (cache_core.h; the rules: apps/cache/NOTES.md).
#include "apps/cache/cache_core.h"

#include <algorithm>
#include <utility>

#include "runtime/assert.h"

namespace cohort {

const char* cache_status_name(CacheStatus status) noexcept {
  switch (status) {
    case CacheStatus::kOk: return "ok";
    case CacheStatus::kNotFound: return "not_found";
    case CacheStatus::kStoreError: return "store_error";
    case CacheStatus::kTimedOut: return "timed_out";
    case CacheStatus::kNotMember: return "not_member";
    case CacheStatus::kBusy: return "busy";
    case CacheStatus::kInvalid: return "invalid";
  }
  return "?";
}

const char* cache_source_name(CacheSource source) noexcept {
  switch (source) {
    case CacheSource::kLocal: return "local";
    case CacheSource::kPeer: return "peer";
    case CacheSource::kStore: return "store";
  }
  return "?";
}

}  // namespace cohort

namespace cohort::cache {
namespace {

bool contains(const std::vector<MemberUid>& v, MemberUid m) {
  return std::find(v.begin(), v.end(), m) != v.end();
}

CacheStatus status_of(LoadStatus s) {
  switch (s) {
    case LoadStatus::kOk: return CacheStatus::kOk;
    case LoadStatus::kNotFound: return CacheStatus::kNotFound;
    case LoadStatus::kError: return CacheStatus::kStoreError;
  }
  return CacheStatus::kStoreError;
}

}  // namespace

CacheCore::CacheCore(const CoreOptions& options)
    : options_(options), directory_(options.directory), lru_(options.capacity_bytes) {
  COHORT_ASSERT(options.admission_window_keys >= 1);
}

// --- the application's side --------------------------------------------------------------------

uint64_t CacheCore::get(std::string_view key, GetDone* done) {
  *done = GetDone{};
  done->key = std::string(key);
  counters_.gets++;
  if (!valid_key(key)) {
    done->status = CacheStatus::kInvalid;
    return 0;
  }
  if (!ready()) {
    done->status = CacheStatus::kNotMember;
    return 0;
  }
  // A cut-off member may have missed writes the majority delivered: it serves from the store.
  if (!cut_off_) {
    if (const LruStore::Entry* e = lru_.touch(key)) {
      counters_.local_hits++;
      done->status = CacheStatus::kOk;
      done->source = CacheSource::kLocal;
      done->value = e->value;
      done->stamp = e->stamp;
      return 0;
    }
  }
  if (auto it = fetches_.find(key); it != fetches_.end()) {
    it->second.gets.push_back(++next_get_);
    return next_get_;
  }
  if (!cut_off_ && peer_memory_ != nullptr && read_holders(key, done)) return 0;
  if (fetches_.size() >= options_.max_fetches) {
    done->status = CacheStatus::kBusy;
    return 0;
  }
  const std::string k(key);
  fetches_[k].gets.push_back(++next_get_);
  const uint64_t id = next_get_;
  advance(k);
  return id;
}

uint64_t CacheCore::start_write(StoreWork::Kind kind, std::string_view key, std::string_view value,
                                CacheStatus* status) {
  if (!valid_key(key)) {
    *status = CacheStatus::kInvalid;
    return 0;
  }
  if (!ready()) {
    *status = CacheStatus::kNotMember;
    return 0;
  }
  if (writes_.size() >= options_.max_writes) {
    *status = CacheStatus::kBusy;
    return 0;
  }
  const uint64_t id = ++next_write_;
  writes_[id].key = std::string(key);
  counters_.writes++;
  *status = CacheStatus::kOk;
  if (kind == StoreWork::Kind::kLoad) {  // an invalidation alone: no store write
    writes_[id].ordered = true;
    Outgoing o;
    o.invalidate = true;
    o.write = id;
    o.key = std::string(key);
    outbox_.push_back(std::move(o));
    return id;
  }
  store_work_.push_back(StoreWork{kind, id, std::string(key), std::string(value)});
  return id;
}

uint64_t CacheCore::put(std::string_view key, std::string_view value, CacheStatus* status) {
  return start_write(StoreWork::Kind::kStore, key, value, status);
}

uint64_t CacheCore::remove(std::string_view key, CacheStatus* status) {
  return start_write(StoreWork::Kind::kRemove, key, {}, status);
}

uint64_t CacheCore::invalidate(std::string_view key, CacheStatus* status) {
  return start_write(StoreWork::Kind::kLoad, key, {}, status);
}

// --- a get's way: holders, the loader, a claim --------------------------------------------------

void CacheCore::advance_all() {
  std::vector<std::string> keys;
  for (const auto& [key, f] : fetches_) keys.push_back(key);
  for (const std::string& k : keys) advance(k);
}

void CacheCore::advance(const std::string& key) {
  auto it = fetches_.find(key);
  if (it == fetches_.end()) return;
  Fetch& f = it->second;
  if (f.request != 0 || loads_.contains(key)) return;  // an answer is on its way
  if (cut_off_) {
    start_load(key, false, true);
    return;
  }
  if (const Directory::Entry* e = directory_.find(key)) {
    // Holders first, each asked at most once per get (until it announces the key again);
    // requesters start at different holders so that a hot key's requests spread.
    const size_t n = e->holders.size();
    for (size_t i = 0; i < n; ++i) {
      const MemberUid h = e->holders[(i + self_.node) % n];
      if (h == self_ || contains(f.tried, h)) continue;
      ask(key, f, h);
      return;
    }
    if (e->claimed) {
      // This member's own claim with no load running has its end (have/unclaim) on the way.
      if (e->loader == self_) return;
      if (!contains(f.tried, e->loader)) ask(key, f, e->loader);
      return;  // the loader answers once loaded, or its claim ends, or it leaves
    }
  }
  if (claims_pending_.insert(key).second) announce(DirKind::kClaim, key);
}

// The coherence check of a peer's value, replied or read in place: stamped before the key's last
// write delivered here, it may predate that write (the peer had not delivered it yet). Refused
// values are counted.
bool CacheCore::current(std::string_view key, Stamp stamp) {
  if (options_.bugs.unchecked_peer_reply || stamp >= directory_.version(key)) return true;
  counters_.stale_replies++;
  return false;
}

// A peer's value that passed the check: cached here when the admission policy says so.
void CacheCore::take_peer_value(const std::string& key, std::string_view value, Stamp stamp) {
  if (!cut_off_ && admit_peer_value(key)) (void)keep(key, value, stamp);
}

// A miss with holders named: their values read in place, in the order advance() asks them. A
// value read is what the holder's reply would have carried, and meets the same check as a reply
// (on_reply): stamped before the key's last write delivered here, it is refused.
bool CacheCore::read_holders(std::string_view key, GetDone* done) {
  const Directory::Entry* e = directory_.find(key);
  if (e == nullptr) return false;
  const size_t n = e->holders.size();
  std::string value;
  Stamp stamp;
  for (size_t i = 0; i < n; ++i) {
    const MemberUid h = e->holders[(i + self_.node) % n];
    if (h == self_ || !peer_memory_->read(h, key, &value, &stamp)) continue;
    counters_.peer_requests++;
    counters_.peer_reads++;
    if (!current(key, stamp)) continue;
    counters_.peer_hits++;
    take_peer_value(std::string(key), value, stamp);
    done->status = CacheStatus::kOk;
    done->source = CacheSource::kPeer;
    done->value = std::move(value);
    done->stamp = stamp;
    return true;
  }
  return false;
}

bool CacheCore::read_request(const PeerOut& p) {
  if (peer_memory_ == nullptr || cut_off_) return false;  // cut off: the store serves
  auto rq = requests_.find(p.id);
  if (rq == requests_.end()) return false;
  std::string value;
  Reply rep;
  if (!peer_memory_->read(p.to, rq->second, &value, &rep.stamp)) return false;
  counters_.peer_reads++;
  rep.status = ReplyStatus::kHit;
  const std::string key = rq->second;
  rep.key = key;
  rep.value = value;
  apply_reply(p.id, &rep, false);
  return true;
}

void CacheCore::ask(const std::string& key, Fetch& f, MemberUid peer) {
  f.request = ++next_request_;
  f.asked = peer;
  requests_[f.request] = key;
  requests_out_.push_back(PeerOut{peer, f.request, encode_request(key)});
  counters_.peer_requests++;
}

void CacheCore::start_load(const std::string& key, bool for_claim, bool direct) {
  if (auto it = loads_.find(key); it != loads_.end()) {
    it->second.for_claim |= for_claim;
    return;
  }
  Load& l = loads_[key];
  l.id = ++next_load_;
  l.stamp = directory_.frontier();
  l.for_claim = for_claim;
  l.direct = direct;
  load_ids_[l.id] = key;
  store_work_.push_back(StoreWork{StoreWork::Kind::kLoad, l.id, key, {}});
  counters_.store_loads++;
  if (direct) counters_.direct_loads++;
}

void CacheCore::finish_fetch(const std::string& key, CacheStatus status, CacheSource source,
                             std::string_view value, Stamp stamp) {
  auto it = fetches_.find(key);
  if (it == fetches_.end()) return;
  const uint64_t n = it->second.gets.size();
  for (uint64_t get : it->second.gets) {
    GetDone d;
    d.get = get;
    d.status = status;
    d.source = source;
    d.key = key;
    if (status == CacheStatus::kOk) d.value = std::string(value);
    d.stamp = stamp;
    gets_done_.push_back(std::move(d));
  }
  if (status == CacheStatus::kOk && source == CacheSource::kPeer) counters_.peer_hits += n;
  if (status == CacheStatus::kNotFound) counters_.not_found += n;
  if (status == CacheStatus::kStoreError) counters_.store_errors += n;
  fetches_.erase(it);
}

bool CacheCore::admit_peer_value(const std::string& key) {
  if (options_.admission == CacheAdmission::kEveryPeerFetch) return true;
  // The second fetch within the window: this member uses the key often enough to hold a copy
  // of its own. Its FIFO entry ages out as usual; the map no longer names it, so that entry
  // then removes nothing.
  if (window_keys_.erase(key) == 1) return true;
  counters_.peer_not_kept++;
  window_.emplace_back(++window_next_, key);
  window_keys_[key] = window_next_;
  while (window_.size() > options_.admission_window_keys) {
    auto it = window_keys_.find(window_.front().second);
    if (it != window_keys_.end() && it->second == window_.front().first) window_keys_.erase(it);
    window_.pop_front();
  }
  COHORT_ASSERT(window_keys_.size() <= window_.size());
  return false;
}

bool CacheCore::keep(const std::string& key, std::string_view value, Stamp stamp) {
  if (value.size() > kMaxSharedValueBytes) return false;
  std::vector<std::string> evicted;
  if (!lru_.put(key, value, stamp, &evicted)) return false;
  for (const std::string& k : evicted) announce(DirKind::kDrop, k);
  announce(DirKind::kHave, key, stamp);
  return true;
}

void CacheCore::announce(DirKind kind, std::string_view key, Stamp stamp) {
  Outgoing o;
  o.kind = kind;
  o.stamp = stamp;
  o.key = std::string(key);
  outbox_.push_back(std::move(o));
}

// --- the store's side --------------------------------------------------------------------------

void CacheCore::load_done(uint64_t id, LoadStatus status, std::string_view value) {
  auto li = load_ids_.find(id);
  if (li == load_ids_.end()) return;  // this member ended meanwhile
  const std::string key = std::move(li->second);
  load_ids_.erase(li);
  auto lt = loads_.find(key);
  COHORT_ASSERT(lt != loads_.end() && lt->second.id == id);
  Load& l = lt->second;
  if (status != LoadStatus::kError && l.stamp < directory_.version(key)) {
    // A write of the key was delivered while the load ran: the value may predate it.
    if (l.direct && !cut_off_ && !l.for_claim) {
      // Begun while cut off, and the member is back: the get goes the group's way (a load of
      // its own now would run beside the claim's).
      Reply miss;
      miss.status = ReplyStatus::kMiss;
      miss.key = key;
      miss.stamp = directory_.frontier();
      for (const auto& [peer, rid] : l.waiters) answer(peer, rid, miss);
      waiters_ -= l.waiters.size();
      loads_.erase(lt);
      advance(key);
      return;
    }
    if (!cut_off_) l.direct = false;  // this member's claim: its next value is kept and shared
    counters_.reloads++;
    l.id = ++next_load_;
    l.stamp = directory_.frontier();
    load_ids_[l.id] = key;
    store_work_.push_back(StoreWork{StoreWork::Kind::kLoad, l.id, key, {}});
    counters_.store_loads++;
    return;
  }
  Load done = std::move(l);
  loads_.erase(lt);
  const bool too_large = status == LoadStatus::kOk && value.size() > kMaxSharedValueBytes;
  if (status == LoadStatus::kOk && !done.direct && !cut_off_ && !too_large) {
    (void)keep(key, value, done.stamp);
  }
  if (done.for_claim) announce(DirKind::kUnclaim, key);  // after the have: holders come first
  Reply r;
  r.key = key;
  r.stamp = done.stamp;
  r.status = status == LoadStatus::kNotFound ? ReplyStatus::kNotFound
             : status == LoadStatus::kError  ? ReplyStatus::kStoreError
             : too_large                     ? ReplyStatus::kTooLarge
                                             : ReplyStatus::kHit;
  r.value = value;
  for (const auto& [peer, rid] : done.waiters) answer(peer, rid, r);
  waiters_ -= done.waiters.size();
  finish_fetch(key, status_of(status), CacheSource::kStore, value, done.stamp);
}

void CacheCore::write_done(uint64_t id, bool ok) {
  auto it = writes_.find(id);
  if (it == writes_.end() || it->second.ordered) return;
  if (!ok) {
    writes_done_.push_back(WriteDone{id, CacheStatus::kStoreError, it->second.key});
    writes_.erase(it);
    return;
  }
  it->second.ordered = true;
  Outgoing o;
  o.invalidate = true;
  o.write = id;
  o.key = it->second.key;
  outbox_.push_back(std::move(o));
}

// --- the group's side --------------------------------------------------------------------------

bool CacheCore::on_deliver(std::span<const std::byte> payload, MemberUid sender, uint64_t view,
                           uint64_t gseq, DeliveryMode mode) {
  Op op;
  const DecodeResult r = decode_op(payload, &op);
  if (r == DecodeResult::kNotOurs) return false;
  if (final_) return true;
  // Ops outside the total order (FIFO) have no place in it; invalidations must be uniform
  // (safe): a stamp is a position every survivor delivered alike. Every member drops alike.
  if (r == DecodeResult::kMalformed || mode == DeliveryMode::kFifo || gseq == 0 ||
      (op.kind == OpKind::kInvalidate && mode != DeliveryMode::kSafe)) {
    counters_.malformed++;
    return true;
  }
  if (op.kind == OpKind::kInvalidate) {
    const std::string key(op.key);
    directory_.invalidate(key, Stamp{view, gseq});
    counters_.invalidations++;
    lru_.erase(key);  // every holder drops here; the directory forgot them at this same point
    if (sender == self_) {
      auto w = writes_.find(op.write);
      if (w != writes_.end() && w->second.ordered && w->second.key == key) {
        writes_done_.push_back(WriteDone{op.write, CacheStatus::kOk, key});
        writes_.erase(w);
      }
    }
    advance(key);
    return true;
  }
  counters_.dir_messages_received++;
  counters_.dir_bytes_received += payload.size();
  for (const DirEntry& e : op.entries) apply_entry(e, sender);
  return true;
}

void CacheCore::apply_entry(const DirEntry& e, MemberUid sender) {
  const std::string key(e.key);
  auto untry = [&] {
    if (auto it = fetches_.find(key); it != fetches_.end()) std::erase(it->second.tried, sender);
  };
  switch (e.kind) {
    case DirKind::kClaim: {
      const Directory::ClaimResult r = directory_.claim(key, sender);
      if (sender == self_) {
        on_claim_delivered(key, r);
        return;
      }
      untry();
      break;
    }
    case DirKind::kHave:
      directory_.have(key, sender, e.stamp);
      untry();
      break;
    case DirKind::kDrop: directory_.drop(key, sender); break;
    case DirKind::kUnclaim: directory_.unclaim(key, sender); break;
  }
  advance(key);
}

void CacheCore::on_claim_delivered(const std::string& key, Directory::ClaimResult r) {
  claims_pending_.erase(key);
  switch (r) {
    case Directory::ClaimResult::kWon:
      counters_.claims_won++;
      if (auto it = loads_.find(key); it != loads_.end()) {
        it->second.for_claim = true;
      } else if (lru_.peek(key) != nullptr) {
        announce(DirKind::kUnclaim, key);  // got it meanwhile (its have is on its way)
      } else if (auto f = fetches_.find(key); f != fetches_.end() && f->second.request == 0) {
        start_load(key, true, false);
      } else {
        // No get waits here, or one is asking a peer: the claim was sent before this member
        // learned of a holder or loader (whose have and unclaim were ordered first). A load now
        // would be a store load where a peer holds the value, and would answer the next get of
        // the key here from the store. If the peer answers a miss, the get claims again once
        // this unclaim is delivered (advance() waits for it).
        announce(DirKind::kUnclaim, key);
      }
      return;
    case Directory::ClaimResult::kRefused:
      // The directory is full (at every member alike): load without the group's coordination.
      if (fetches_.contains(key) && fetches_[key].request == 0) start_load(key, false, false);
      return;
    case Directory::ClaimResult::kTaken: advance(key); return;
  }
}

void CacheCore::on_view(std::span<const MemberUid> members) {
  if (final_) return;
  view_.assign(members.begin(), members.end());
  // The founder's first view holds it alone (a view of one can only be this member's; the
  // engine may install it before the host learns the member's uid); a joiner is ready once its
  // directory is restored.
  if (!ready_ && members.size() == 1) ready_ = true;
  cut_off_ = false;
  (void)directory_.on_view(members);
  advance_all();
}

bool CacheCore::restore(std::span<const std::byte> bytes) {
  if (!directory_.restore(bytes)) return false;
  // The snapshot is the directory at the end of the previous view: drop who left since.
  if (!view_.empty()) (void)directory_.on_view(view_);
  ready_ = true;
  return true;
}

void CacheCore::on_event(GroupEvent event) {
  if (final_) return;
  if (event == GroupEvent::kCutOff) {
    // The majority may deliver writes this member will never see: forget every value, serve
    // from the store until a view takes the member back. The drops take effect if it does.
    cut_off_ = true;
    std::vector<std::string> dropped;
    lru_.clear(&dropped);
    for (const std::string& k : dropped) announce(DirKind::kDrop, k);
    advance_all();
    return;
  }
  final_ = true;
  end_all(CacheStatus::kNotMember);
}

void CacheCore::end_all(CacheStatus why) {
  std::vector<std::string> keys;
  for (const auto& [key, f] : fetches_) keys.push_back(key);
  for (const std::string& k : keys) finish_fetch(k, why, CacheSource::kLocal, {}, Stamp{});
  for (const auto& [id, w] : writes_) writes_done_.push_back(WriteDone{id, why, w.key});
  writes_.clear();
  loads_.clear();
  load_ids_.clear();
  requests_.clear();
  claims_pending_.clear();
  outbox_.clear();
  requests_out_.clear();
  replies_out_.clear();
  waiters_ = 0;
  std::vector<std::string> dropped;
  lru_.clear(&dropped);
}

void CacheCore::answer(MemberUid peer, uint64_t id, const Reply& reply) {
  replies_out_.push_back(PeerOut{peer, id, encode_reply(reply)});
}

bool CacheCore::on_request(MemberUid peer, uint64_t id, std::span<const std::byte> payload) {
  std::string_view key;
  const DecodeResult r = decode_request(payload, &key);
  if (r == DecodeResult::kNotOurs) return false;
  Reply reply;
  reply.status = ReplyStatus::kMiss;
  reply.stamp = directory_.frontier();
  if (r == DecodeResult::kMalformed) {
    // Answered all the same, so the asker's get moves on (its decoder refuses the key "?").
    counters_.malformed++;
    reply.key = "?";
    answer(peer, id, reply);
    return true;
  }
  reply.key = key;
  if (ready() && !cut_off_) {
    if (const LruStore::Entry* e = lru_.touch(key)) {
      reply.status = ReplyStatus::kHit;
      reply.stamp = e->stamp;
      reply.value = e->value;
      counters_.peer_served++;
    } else if (auto l = loads_.find(key); l != loads_.end() && waiters_ < options_.max_waiters) {
      l->second.waiters.emplace_back(peer, id);  // answered when the load ends
      waiters_++;
      return true;
    }
  }
  answer(peer, id, reply);
  return true;
}

bool CacheCore::on_reply(uint64_t id, std::span<const std::byte> payload, bool failed) {
  if (!requests_.contains(id)) return false;
  Reply rep;
  const bool decoded = !failed && decode_reply(payload, &rep) == DecodeResult::kOk;
  apply_reply(id, failed ? nullptr : &rep, !failed && !decoded);
  return true;
}

// The answer to request `id`: a reply (decoded, or `malformed`), or none (the member left).
void CacheCore::apply_reply(uint64_t id, const Reply* reply, bool malformed) {
  auto rq = requests_.find(id);
  if (rq == requests_.end()) return;
  const std::string key = std::move(rq->second);
  requests_.erase(rq);
  auto it = fetches_.find(key);
  if (it == fetches_.end() || it->second.request != id) return;  // the get ended meanwhile
  Fetch& f = it->second;
  f.request = 0;
  const MemberUid peer = f.asked;
  const auto elsewhere = [&] {
    f.tried.push_back(peer);
    advance(key);
  };
  if (reply == nullptr && !malformed) {
    counters_.peer_failures++;
    return elsewhere();
  }
  if (malformed || reply->key != key) {
    counters_.malformed++;
    return elsewhere();
  }
  const Reply& rep = *reply;
  switch (rep.status) {
    case ReplyStatus::kHit:
    case ReplyStatus::kNotFound:
      if (!current(key, rep.stamp)) return elsewhere();
      if (rep.status == ReplyStatus::kHit) {
        take_peer_value(key, rep.value, rep.stamp);
        finish_fetch(key, CacheStatus::kOk, CacheSource::kPeer, rep.value, rep.stamp);
      } else {
        finish_fetch(key, CacheStatus::kNotFound, CacheSource::kPeer, {}, rep.stamp);
      }
      return;
    case ReplyStatus::kMiss: counters_.false_hits++; return elsewhere();
    case ReplyStatus::kStoreError:
      finish_fetch(key, CacheStatus::kStoreError, CacheSource::kPeer, {}, rep.stamp);
      return;
    case ReplyStatus::kTooLarge: start_load(key, false, true); return;
  }
}

// --- outputs -----------------------------------------------------------------------------------

uint32_t CacheCore::flush(const Transport& t) {
  uint32_t sent = 0;
  while (!replies_out_.empty()) {
    const PeerOut p = std::move(replies_out_.front());
    replies_out_.pop_front();
    t.reply(p.to, p.id, p.bytes);
    sent++;
  }
  // A request refused at once fails like one whose target left; the get moves on (each member
  // is tried once, so this loop ends).
  while (!requests_out_.empty()) {
    PeerOut p = std::move(requests_out_.front());
    requests_out_.pop_front();
    // A holder whose value can be read in place is not asked: the value read is its reply.
    if (read_request(p)) continue;
    const SendStatus st = t.request(p.to, p.id, p.bytes);
    if (st == SendStatus::kFull) {
      requests_out_.push_front(std::move(p));
      break;
    }
    if (st == SendStatus::kOk) {
      sent++;
    } else {
      (void)on_reply(p.id, {}, true);
    }
  }
  while (!outbox_.empty()) {
    if (outbox_.front().invalidate) {
      const Outgoing& o = outbox_.front();
      const SendStatus st = t.send(encode_invalidate(o.write, o.key), DeliveryMode::kSafe);
      if (st == SendStatus::kFull) break;
      if (st == SendStatus::kOk) {
        sent++;
      } else if (auto w = writes_.find(o.write); w != writes_.end()) {
        writes_done_.push_back(WriteDone{o.write, CacheStatus::kNotMember, w->second.key});
        writes_.erase(w);
      }
      outbox_.pop_front();
      continue;
    }
    std::vector<DirEntry> batch;
    size_t bytes = kOpHeaderBytes;
    for (size_t i = 0; i < outbox_.size() && !outbox_[i].invalidate; ++i) {
      const DirEntry e{outbox_[i].kind, outbox_[i].stamp, outbox_[i].key};
      if (batch.size() == kMaxBatchEntries || bytes + dir_entry_bytes(e) > kMaxOpBytes) break;
      bytes += dir_entry_bytes(e);
      batch.push_back(e);
    }
    const std::vector<std::byte> msg = encode_batch(batch);
    const SendStatus st = t.send(msg, DeliveryMode::kTotal);
    if (st == SendStatus::kFull) break;
    if (st == SendStatus::kOk) {
      sent++;
      counters_.dir_messages_sent++;
      counters_.dir_bytes_sent += msg.size();
      counters_.dir_entries_sent += batch.size();
    } else {
      // Refused for good (not in a view): a claim is asked again at the next view.
      for (const DirEntry& e : batch) {
        if (e.kind == DirKind::kClaim) claims_pending_.erase(std::string(e.key));
      }
    }
    outbox_.erase(outbox_.begin(), outbox_.begin() + static_cast<std::ptrdiff_t>(batch.size()));
  }
  return sent;
}

CacheCounters CacheCore::counters() const {
  CacheCounters c = counters_;
  c.evictions = lru_.evictions();
  c.cached_bytes = lru_.bytes();
  c.cached_entries = lru_.size();
  c.directory_keys = directory_.keys();
  return c;
}

}  // namespace cohort::cache
