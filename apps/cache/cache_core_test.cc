// One member's side of the cooperative cache (cache_core.h), several of them over a perfect
// little group: one total order that each member delivers when told, point-to-point messages
// held in a queue until handed over, and a map for the store.
#include "apps/cache/cache_core.h"

#include <gtest/gtest.h>

#include <deque>
#include <map>

namespace cohort::cache {
namespace {

struct Msg {
  MemberUid sender;
  std::vector<std::byte> bytes;
  DeliveryMode mode;
};

struct Peer {
  bool reply = false;
  size_t from = 0;
  size_t to = 0;
  uint64_t id = 0;
  std::vector<std::byte> bytes;
};

struct Group {
  std::vector<CacheCore> cores;
  std::vector<MemberUid> members;
  std::vector<Msg> order;
  std::vector<size_t> delivered;
  std::deque<Peer> peer;
  std::map<std::string, std::string> store;
  std::vector<std::pair<size_t, StoreWork>> work;
  std::vector<std::vector<GetDone>> done;
  std::vector<std::vector<WriteDone>> writes;
  uint64_t loads = 0;
  uint64_t view = 1;

  explicit Group(size_t n, CoreOptions options = {}) {
    for (size_t i = 0; i < n; ++i) {
      cores.emplace_back(options);
      cores.back().set_self(MemberUid{static_cast<uint32_t>(i), 1});
      members.push_back(MemberUid{static_cast<uint32_t>(i), 1});
    }
    delivered.assign(n, 0);
    done.resize(n);
    writes.resize(n);
    // The founder alone, then everyone restored from its snapshot: all ready.
    const MemberUid first[] = {members[0]};
    cores[0].on_view(first);
    const auto snap = cores[0].snapshot();
    for (size_t i = 1; i < n; ++i) EXPECT_TRUE(cores[i].restore(snap));
    for (CacheCore& c : cores) c.on_view(members);
  }
  size_t index(MemberUid m) const {
    for (size_t i = 0; i < members.size(); ++i) {
      if (members[i] == m) return i;
    }
    ADD_FAILURE() << "no member " << m.node;
    return 0;
  }
  void flush(size_t i) {
    CacheCore::Transport t;
    t.send = [this, i](std::span<const std::byte> b, DeliveryMode mode) {
      order.push_back(Msg{members[i], {b.begin(), b.end()}, mode});
      return SendStatus::kOk;
    };
    t.request = [this, i](MemberUid to, uint64_t id, std::span<const std::byte> b) {
      peer.push_back(Peer{false, i, index(to), id, {b.begin(), b.end()}});
      return SendStatus::kOk;
    };
    t.reply = [this, i](MemberUid to, uint64_t id, std::span<const std::byte> b) {
      peer.push_back(Peer{true, i, index(to), id, {b.begin(), b.end()}});
    };
    cores[i].flush(t);
    collect(i);
  }
  void collect(size_t i) {
    for (GetDone& d : cores[i].take_gets_done()) done[i].push_back(std::move(d));
    for (WriteDone& w : cores[i].take_writes_done()) writes[i].push_back(std::move(w));
    for (StoreWork& w : cores[i].take_store_work()) work.emplace_back(i, std::move(w));
  }
  void flush_all() {
    for (size_t i = 0; i < cores.size(); ++i) flush(i);
  }
  void deliver(size_t i) {
    for (; delivered[i] < order.size(); ++delivered[i]) {
      const Msg& m = order[delivered[i]];
      cores[i].on_deliver(m.bytes, m.sender, view, delivered[i] + 1, m.mode);
      collect(i);
    }
  }
  void deliver_all() {
    for (size_t i = 0; i < cores.size(); ++i) deliver(i);
  }
  // Hands over the oldest point-to-point message.
  bool peer_one() {
    if (peer.empty()) return false;
    Peer p = std::move(peer.front());
    peer.pop_front();
    if (p.reply) {
      cores[p.to].on_reply(p.id, p.bytes, false);
    } else {
      cores[p.to].on_request(members[p.from], p.id, p.bytes);
    }
    collect(p.to);
    return true;
  }
  void store_one(size_t k = 0) {
    auto [i, w] = work[k];
    work.erase(work.begin() + static_cast<std::ptrdiff_t>(k));
    if (w.kind == StoreWork::Kind::kLoad) {
      loads++;
      auto it = store.find(w.key);
      if (it == store.end()) {
        cores[i].load_done(w.id, LoadStatus::kNotFound, {});
      } else {
        cores[i].load_done(w.id, LoadStatus::kOk, it->second);
      }
    } else if (w.kind == StoreWork::Kind::kStore) {
      store[w.key] = w.value;
      cores[i].write_done(w.id, true);
    } else {
      store.erase(w.key);
      cores[i].write_done(w.id, true);
    }
    collect(i);
  }
  // Runs everything to quiescence.
  void settle() {
    for (int round = 0; round < 1000; ++round) {
      flush_all();
      bool any = false;
      while (peer_one()) any = true;
      if (delivered != std::vector<size_t>(cores.size(), order.size())) any = true;
      deliver_all();
      while (!work.empty()) {
        store_one();
        any = true;
      }
      flush_all();
      if (!any && peer.empty() && work.empty()) return;
    }
    ADD_FAILURE() << "did not settle";
  }
  // A get at member i: the value if it ended (at once or after settle()).
  GetDone get(size_t i, std::string_view key, bool settle_after = true) {
    GetDone d;
    const uint64_t id = cores[i].get(key, &d);
    if (id == 0) return d;
    if (settle_after) settle();
    for (const GetDone& g : done[i]) {
      if (g.get == id) return g;
    }
    d.status = CacheStatus::kTimedOut;  // stands for "not ended"
    return d;
  }
};

TEST(CacheCore, ConcurrentMissesLoadOnceAndPeersServeTheRest) {
  CoreOptions every;  // the waiters keep the value at once (the default would not)
  every.admission = CacheAdmission::kEveryPeerFetch;
  Group g(3, every);
  g.store["k"] = "v0";
  GetDone d;
  const uint64_t a = g.cores[0].get("k", &d);
  const uint64_t b = g.cores[1].get("k", &d);
  const uint64_t c = g.cores[2].get("k", &d);
  ASSERT_NE(a * b * c, 0U);
  g.settle();
  EXPECT_EQ(g.loads, 1U) << "three concurrent misses, one store load in the group";
  for (size_t i = 0; i < 3; ++i) {
    ASSERT_EQ(g.done[i].size(), 1U);
    EXPECT_EQ(g.done[i][0].status, CacheStatus::kOk);
    EXPECT_EQ(g.done[i][0].value, "v0");
  }
  uint64_t peer_hits = 0;
  for (const CacheCore& c2 : g.cores) peer_hits += c2.counters().peer_hits;
  EXPECT_EQ(peer_hits, 2U);
  // Now everyone holds it: local hits, no traffic.
  const GetDone again = g.get(1, "k", false);
  EXPECT_EQ(again.status, CacheStatus::kOk);
  EXPECT_EQ(again.source, CacheSource::kLocal);
  EXPECT_EQ(g.cores[0].directory().find("k")->holders.size(), 3U);
}

TEST(CacheCore, ALaterMissFetchesFromAHolder) {
  Group g(3);
  g.store["k"] = "v0";
  EXPECT_EQ(g.get(0, "k").source, CacheSource::kStore);
  const GetDone d = g.get(2, "k");
  EXPECT_EQ(d.status, CacheStatus::kOk);
  EXPECT_EQ(d.source, CacheSource::kPeer);
  EXPECT_EQ(d.value, "v0");
  EXPECT_EQ(g.loads, 1U);
}

TEST(CacheCore, NotFoundIsSharedToo) {
  Group g(2);
  const GetDone d = g.get(0, "missing");
  EXPECT_EQ(d.status, CacheStatus::kNotFound);
  EXPECT_EQ(d.source, CacheSource::kStore);
}

TEST(CacheCore, PutWritesThroughAndNoMemberServesTheOldValueAfterward) {
  Group g(3);
  g.store["k"] = "v0";
  for (size_t i = 0; i < 3; ++i) EXPECT_EQ(g.get(i, "k").value, "v0");
  CacheStatus s;
  const uint64_t w = g.cores[1].put("k", "v1", &s);
  ASSERT_NE(w, 0U);
  g.settle();
  EXPECT_EQ(g.store["k"], "v1");
  ASSERT_EQ(g.writes[1].size(), 1U);
  EXPECT_EQ(g.writes[1][0].status, CacheStatus::kOk);
  for (size_t i = 0; i < 3; ++i) EXPECT_EQ(g.get(i, "k").value, "v1") << "member " << i;
  EXPECT_EQ(g.loads, 2U);
  EXPECT_EQ(g.cores[1].remove("k", &s), 2U);
  g.settle();
  for (size_t i = 0; i < 3; ++i) EXPECT_EQ(g.get(i, "k").status, CacheStatus::kNotFound);
}

// The race the stamps exist for: a holder answers before it delivers a write; the asker
// delivers the write before the answer arrives.
void stale_reply_race(bool bug, std::string* got, uint64_t* stale) {
  CoreOptions options;
  options.bugs.unchecked_peer_reply = bug;
  Group g(3, options);
  g.store["k"] = "v0";
  EXPECT_EQ(g.get(1, "k").value, "v0");  // member 1 holds it
  GetDone d;
  const uint64_t id = g.cores[0].get("k", &d);
  ASSERT_NE(id, 0U);
  g.flush(0);
  ASSERT_TRUE(g.peer_one());  // the request reaches member 1 ...
  g.flush(1);                 // ... which answers v0; the answer waits in the queue
  CacheStatus s;
  g.cores[2].put("k", "v1", &s);
  g.flush(2);
  g.store_one();
  g.flush(2);
  g.deliver(0);               // member 0 delivers the write; member 1 has not yet
  ASSERT_TRUE(g.peer_one());  // the old answer arrives
  g.settle();
  for (const GetDone& x : g.done[0]) {
    if (x.get == id) *got = x.value;
  }
  *stale = g.cores[0].counters().stale_replies;
}

TEST(CacheCore, AnAnswerStampedBeforeADeliveredWriteIsRefused) {
  std::string got;
  uint64_t stale = 0;
  stale_reply_race(false, &got, &stale);
  EXPECT_EQ(got, "v1");
  EXPECT_EQ(stale, 1U);
  stale_reply_race(true, &got, &stale);  // the planted bug serves it
  EXPECT_EQ(got, "v0");
}

TEST(CacheCore, ALoadThatRacesAWriteIsDoneAgain) {
  Group g(2);
  g.store["k"] = "v0";
  GetDone d;
  const uint64_t id = g.cores[0].get("k", &d);
  g.flush(0);
  g.deliver_all();  // the claim: member 0 loads
  ASSERT_EQ(g.work.size(), 1U);
  // The load reads v0 ... then a write lands and its invalidation is delivered before the load
  // returns.
  const auto [who, load] = g.work.front();
  g.work.clear();
  g.store["k"] = "v1";
  CacheStatus s;
  g.cores[1].invalidate("k", &s);
  g.flush(1);
  g.deliver_all();
  g.cores[0].load_done(load.id, LoadStatus::kOk, "v0");
  g.collect(0);
  g.settle();
  ASSERT_EQ(g.done[0].size(), 1U);
  EXPECT_EQ(g.done[0][0].get, id);
  EXPECT_EQ(g.done[0][0].value, "v1");
  EXPECT_EQ(g.cores[0].counters().reloads, 1U);
}

TEST(CacheCore, ALoaderThatLeavesCostsARetryNotAWrongValue) {
  Group g(3);
  g.store["k"] = "v0";
  GetDone d;
  g.cores[0].get("k", &d);
  g.flush(0);
  g.deliver_all();  // member 0 won the claim and loads
  ASSERT_EQ(g.work.size(), 1U);
  const uint64_t b = g.cores[1].get("k", &d);
  g.flush(1);
  ASSERT_TRUE(g.peer_one());  // member 1's request waits at member 0 for its load
  // Member 0 crashes: the view without it fails member 1's request.
  g.work.clear();
  const std::vector<MemberUid> rest = {g.members[1], g.members[2]};
  g.cores[1].on_view(rest);
  g.cores[2].on_view(rest);
  g.cores[1].on_reply(1, {}, true);
  g.collect(1);
  g.members.erase(g.members.begin());
  g.cores.erase(g.cores.begin());
  g.done.erase(g.done.begin());
  g.writes.erase(g.writes.begin());
  g.delivered.erase(g.delivered.begin());
  g.peer.clear();
  g.settle();
  ASSERT_EQ(g.done[0].size(), 1U);
  EXPECT_EQ(g.done[0][0].get, b);
  EXPECT_EQ(g.done[0][0].value, "v0");
  EXPECT_EQ(g.cores[0].counters().peer_failures, 1U);
  EXPECT_EQ(g.cores[0].counters().claims_won, 1U);
}

TEST(CacheCore, AnEvictedHolderIsAFalseHitCountedAndTheGetGoesOn) {
  CoreOptions small;
  small.capacity_bytes = 2 * (LruStore::kEntryOverheadBytes + 4);  // two small entries
  Group g(2, small);
  g.store = {{"a", "1"}, {"b", "2"}, {"c", "3"}};
  EXPECT_EQ(g.get(0, "a").value, "1");
  // Member 0 loads b and c: a is evicted; its drop is queued but not yet sent.
  GetDone d;
  g.cores[0].get("b", &d);
  g.cores[0].get("c", &d);
  g.flush(0);
  g.deliver_all();
  while (!g.work.empty()) g.store_one();
  EXPECT_EQ(g.cores[0].lru().peek("a"), nullptr);
  EXPECT_EQ(g.cores[0].lru().size(), 2U);
  // Member 1's directory still lists member 0 for a.
  ASSERT_NE(g.cores[1].directory().find("a"), nullptr);
  const uint64_t id = g.cores[1].get("a", &d);
  g.flush(1);
  ASSERT_TRUE(g.peer_one());
  g.flush(0);  // its miss, and its drop of a (ordered, not yet delivered)
  ASSERT_TRUE(g.peer_one());
  g.settle();
  EXPECT_EQ(g.cores[1].counters().false_hits, 1U);
  bool ok = false;
  for (const GetDone& x : g.done[1]) ok |= x.get == id && x.value == "1";
  EXPECT_TRUE(ok);
  EXPECT_EQ(g.cores[0].directory().find("a")->holders, std::vector<MemberUid>{g.members[1]});
}

TEST(CacheCore, ACutOffMemberForgetsItsValuesAndReadsTheStore) {
  Group g(3);
  g.store["k"] = "v0";
  EXPECT_EQ(g.get(0, "k").value, "v0");
  g.cores[0].on_event(GroupEvent::kCutOff);
  EXPECT_EQ(g.cores[0].lru().size(), 0U);
  g.store["k"] = "v1";  // written by the majority, whose invalidation this member never sees
  const GetDone d = g.get(0, "k");
  EXPECT_EQ(d.value, "v1");
  EXPECT_EQ(d.source, CacheSource::kStore);
  EXPECT_EQ(g.cores[0].counters().direct_loads, 1U);
  EXPECT_EQ(g.cores[0].lru().size(), 0U);  // not cached while cut off
  g.cores[0].on_event(GroupEvent::kRemoved);
  EXPECT_EQ(g.get(0, "k").status, CacheStatus::kNotMember);
}

TEST(CacheCore, MalformedAndForeignBytesNeverHurt) {
  Group g(2);
  const std::vector<std::byte> foreign = {std::byte{'h'}, std::byte{'i'}};
  EXPECT_FALSE(g.cores[0].on_deliver(foreign, g.members[1], 1, 1, DeliveryMode::kTotal));
  EXPECT_FALSE(g.cores[0].on_request(g.members[1], 9, foreign));
  EXPECT_FALSE(g.cores[0].on_reply(12345, foreign, false));  // not its request
  auto inv = encode_invalidate(1, "k");
  inv.push_back(std::byte{0});
  EXPECT_TRUE(g.cores[0].on_deliver(inv, g.members[1], 1, 1, DeliveryMode::kSafe));
  // A good invalidation in the wrong mode is dropped alike everywhere.
  EXPECT_TRUE(
      g.cores[0].on_deliver(encode_invalidate(1, "k"), g.members[1], 1, 2, DeliveryMode::kTotal));
  EXPECT_EQ(g.cores[0].directory().version("k"), Stamp{});
  auto req = encode_request("k");
  req.pop_back();
  EXPECT_TRUE(g.cores[0].on_request(g.members[1], 9, req));  // answered, so the asker moves on
  EXPECT_EQ(g.cores[0].counters().malformed, 3U);
  EXPECT_TRUE(g.cores[0].has_output());
}

TEST(CacheCore, AJoinerRestoresTheDirectoryAndItsVersions) {
  Group g(2);
  g.store["k"] = "v0";
  EXPECT_EQ(g.get(0, "k").value, "v0");
  CacheStatus s;
  g.cores[1].put("j", "x", &s);
  g.settle();
  CacheCore joiner;
  joiner.set_self(MemberUid{7, 1});
  std::vector<MemberUid> next = g.members;
  next.push_back(MemberUid{7, 1});
  joiner.on_view(next);
  GetDone d;
  EXPECT_EQ(joiner.get("k", &d), 0U);
  EXPECT_EQ(d.status, CacheStatus::kNotMember) << "not ready before its restore";
  ASSERT_TRUE(joiner.restore(g.cores[0].snapshot()));
  EXPECT_TRUE(joiner.directory() == g.cores[0].directory());
  EXPECT_EQ(joiner.directory().version("j"), g.cores[0].directory().version("j"));
  EXPECT_TRUE(joiner.ready());
}

std::string key_of(int i) {
  std::string k = std::to_string(i);
  k.insert(k.begin(), 'k');
  return k;
}

TEST(CacheCore, DirectoryTrafficIsBatchedAndCounted) {
  Group g(2);
  for (int i = 0; i < 300; ++i) g.store[key_of(i)].assign(1, 'v');
  GetDone d;
  for (int i = 0; i < 300; ++i) g.cores[0].get(key_of(i), &d);
  g.flush(0);
  // 300 claims in one burst: three messages of up to 128 entries.
  EXPECT_EQ(g.cores[0].counters().dir_messages_sent, 3U);
  EXPECT_EQ(g.cores[0].counters().dir_entries_sent, 300U);
  g.settle();
  EXPECT_EQ(g.done[0].size(), 300U);
  EXPECT_EQ(g.loads, 300U);
  const CacheCounters c = g.cores[1].counters();
  EXPECT_EQ(c.dir_messages_received, g.cores[0].counters().dir_messages_sent);
  EXPECT_EQ(c.dir_bytes_received, g.cores[0].counters().dir_bytes_sent);
  EXPECT_EQ(c.directory_keys, 300U);
}

// --- admission of peer-fetched values ------------------------------------------------------------

CoreOptions admission(CacheAdmission a, uint32_t window) {
  CoreOptions o;
  o.admission = a;
  o.admission_window_keys = window;
  return o;
}

bool holds(const Group& g, size_t i, std::string_view key) {
  return g.cores[i].lru().peek(key) != nullptr;
}

TEST(CacheCore, EveryPeerFetchCachesAPeersValueAtOnce) {
  Group g(2, admission(CacheAdmission::kEveryPeerFetch, 1));
  g.store["k"] = "v0";
  EXPECT_EQ(g.get(0, "k").source, CacheSource::kStore);
  EXPECT_EQ(g.get(1, "k").source, CacheSource::kPeer);
  EXPECT_TRUE(holds(g, 1, "k"));
  EXPECT_EQ(g.get(1, "k").source, CacheSource::kLocal);
  EXPECT_EQ(g.cores[1].counters().peer_not_kept, 0U);
  EXPECT_EQ(g.cores[0].directory().find("k")->holders.size(), 2U);
}

TEST(CacheCore, SecondPeerFetchCachesOnTheSecondFetchOnly) {
  Group g(2, admission(CacheAdmission::kSecondPeerFetch, 4));
  g.store["k"] = "v0";
  EXPECT_EQ(g.get(0, "k").source, CacheSource::kStore);
  // The first fetch: the value is returned, not cached, not announced.
  const GetDone first = g.get(1, "k");
  EXPECT_EQ(first.status, CacheStatus::kOk);
  EXPECT_EQ(first.source, CacheSource::kPeer);
  EXPECT_EQ(first.value, "v0");
  EXPECT_FALSE(holds(g, 1, "k"));
  EXPECT_EQ(g.cores[1].counters().peer_not_kept, 1U);
  EXPECT_EQ(g.cores[0].directory().find("k")->holders.size(), 1U) << "one copy in the group";
  // The second, within the window: cached and announced, every member's directory alike.
  EXPECT_EQ(g.get(1, "k").source, CacheSource::kPeer);
  EXPECT_TRUE(holds(g, 1, "k"));
  EXPECT_EQ(g.cores[1].counters().peer_not_kept, 1U);
  for (const CacheCore& c : g.cores) EXPECT_EQ(c.directory().find("k")->holders.size(), 2U);
  EXPECT_EQ(g.get(1, "k").source, CacheSource::kLocal);
  EXPECT_EQ(g.loads, 1U);
}

TEST(CacheCore, TheWindowForgetsTheOldestFetches) {
  Group g(2, admission(CacheAdmission::kSecondPeerFetch, 2));
  for (const char* k : {"a", "b", "c"}) {
    g.store[k] = std::string(k) + "0";
    EXPECT_EQ(g.get(0, k).source, CacheSource::kStore);
  }
  // a, b, c fetched once each: a leaves the window of two when c enters.
  for (const char* k : {"a", "b", "c"}) EXPECT_EQ(g.get(1, k).source, CacheSource::kPeer);
  EXPECT_EQ(g.cores[1].counters().peer_not_kept, 3U);
  EXPECT_EQ(g.get(1, "a").source, CacheSource::kPeer);
  EXPECT_FALSE(holds(g, 1, "a")) << "a had aged out: this fetch is a first one again";
  EXPECT_EQ(g.get(1, "c").source, CacheSource::kPeer);
  EXPECT_TRUE(holds(g, 1, "c")) << "c was still in the window";
  // a was admitted once it was fetched twice in a row; an admitted key's old place in the
  // window removes nothing when it ages out.
  EXPECT_EQ(g.get(1, "a").source, CacheSource::kPeer);
  EXPECT_TRUE(holds(g, 1, "a"));
  for (const char* k : {"x", "y", "z"}) {
    g.store[k] = std::string(k) + "0";
    EXPECT_EQ(g.get(0, k).source, CacheSource::kStore);
    EXPECT_EQ(g.get(1, k).source, CacheSource::kPeer);
  }
  EXPECT_EQ(g.cores[1].counters().peer_not_kept, 7U);
  EXPECT_EQ(g.loads, 6U);
}

// Admission changes where values live, not what a get may return: a write between the first
// and the second fetch is seen, and the value cached on the second fetch is the new one.
TEST(CacheCore, AWriteBetweenTwoFetchesIsSeenAndTheNewValueIsCached) {
  Group g(3, admission(CacheAdmission::kSecondPeerFetch, 8));
  g.store["k"] = "v0";
  EXPECT_EQ(g.get(0, "k").value, "v0");
  EXPECT_EQ(g.get(1, "k").value, "v0");  // from member 0, not cached
  CacheStatus s;
  ASSERT_NE(g.cores[2].put("k", "v1", &s), 0U);
  g.settle();
  EXPECT_EQ(g.get(0, "k").value, "v1");  // member 0 dropped v0 and loaded v1
  const GetDone d = g.get(1, "k");
  EXPECT_EQ(d.value, "v1");
  EXPECT_EQ(d.source, CacheSource::kPeer);
  ASSERT_TRUE(holds(g, 1, "k"));
  EXPECT_EQ(g.cores[1].lru().peek("k")->value, "v1");
  EXPECT_EQ(g.get(1, "k").value, "v1");
}

// Concurrent misses under the default policy: one load; the waiters' values are not cached on
// a first fetch, so the key lives in the loader's cache alone.
TEST(CacheCore, ConcurrentMissesUnderSecondPeerFetchLeaveOneCopy) {
  Group g(3);
  g.store["k"] = "v0";
  GetDone d;
  for (size_t i = 0; i < 3; ++i) ASSERT_NE(g.cores[i].get("k", &d), 0U);
  g.settle();
  EXPECT_EQ(g.loads, 1U);
  size_t copies = 0;
  for (size_t i = 0; i < 3; ++i) copies += holds(g, i, "k") ? 1 : 0;
  EXPECT_EQ(copies, 1U);
  EXPECT_EQ(g.cores[0].directory().find("k")->holders.size(), 1U);
}

// A claim sent before the member learned of the loader, and ordered after the loader's have and
// unclaim, wins while the member's get is asking the loader. It must not load: the get ends with
// the peer's value, and a load left running would answer the member's next get from the store
// (the second fetch, which admission would have cached) although a peer holds the value.
TEST(CacheCore, AStaleClaimThatWinsWhileAPeerIsAskedDoesNotLoad) {
  Group g(2);
  g.store["k"] = "v0";
  GetDone d;
  ASSERT_NE(g.cores[0].get("k", &d), 0U);
  g.flush(0);                              // a's claim
  ASSERT_NE(g.cores[1].get("k", &d), 0U);  // b knows of no holder or claim: it queues a claim
  g.deliver(0);                            // a wins and loads
  ASSERT_EQ(g.work.size(), 1U);
  g.store_one();
  ASSERT_EQ(g.done[0].size(), 1U);
  EXPECT_EQ(g.done[0][0].source, CacheSource::kStore);
  g.deliver(1);  // a's claim at b: b asks the loader
  g.flush(0);    // a's have and unclaim
  g.flush(1);    // b's request to a, then b's claim, ordered after a's unclaim
  g.deliver_all();
  EXPECT_EQ(g.cores[1].counters().claims_won, 1U) << "the sequence this test is about";
  EXPECT_TRUE(g.work.empty()) << "b's claim won while b asked a: no store load";
  EXPECT_EQ(g.cores[1].loads_in_flight(), 0U);
  g.settle();
  ASSERT_EQ(g.done[1].size(), 1U);
  EXPECT_EQ(g.done[1][0].source, CacheSource::kPeer);
  EXPECT_EQ(g.done[1][0].value, "v0");
  for (const CacheCore& c : g.cores) EXPECT_FALSE(c.directory().find("k")->claimed);
  // The second fetch asks a again and caches the value.
  const GetDone second = g.get(1, "k");
  EXPECT_EQ(second.source, CacheSource::kPeer);
  EXPECT_TRUE(holds(g, 1, "k"));
  EXPECT_EQ(g.get(1, "k").source, CacheSource::kLocal);
  EXPECT_EQ(g.loads, 1U);
}

// The same claim, won while the peer asked no longer holds the value (here: it was cut off and
// forgot it): the miss sends the get back to the directory, which still names this member's
// claim until its unclaim is delivered; then it claims again and loads, once.
TEST(CacheCore, AStaleClaimWonWhileAPeerIsAskedClaimsAgainAfterAMiss) {
  Group g(2);
  g.store["k"] = "v0";
  GetDone d;
  ASSERT_NE(g.cores[0].get("k", &d), 0U);
  g.flush(0);
  ASSERT_NE(g.cores[1].get("k", &d), 0U);
  g.deliver(0);
  g.store_one();
  g.deliver(1);
  g.flush(0);
  g.flush(1);
  g.deliver_all();
  ASSERT_TRUE(g.work.empty());
  g.cores[0].on_event(GroupEvent::kCutOff);  // a forgets k and answers requests with a miss
  ASSERT_TRUE(g.peer_one());                 // b's request at a
  g.flush(0);                                // a's miss (and its drop, not delivered yet)
  ASSERT_TRUE(g.peer_one());                 // the miss at b
  EXPECT_EQ(g.cores[1].counters().false_hits, 1U);
  EXPECT_TRUE(g.done[1].empty());
  EXPECT_TRUE(g.work.empty()) << "b's unclaim is not delivered yet: b waits for it";
  g.settle();
  ASSERT_EQ(g.done[1].size(), 1U);
  EXPECT_EQ(g.done[1][0].status, CacheStatus::kOk);
  EXPECT_EQ(g.done[1][0].source, CacheSource::kStore);
  EXPECT_EQ(g.done[1][0].value, "v0");
  EXPECT_EQ(g.cores[1].counters().claims_won, 2U);
  EXPECT_EQ(g.loads, 2U);
}

}  // namespace
}  // namespace cohort::cache
