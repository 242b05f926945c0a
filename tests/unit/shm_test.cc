// The shm transport in one process: the record protocol over a local buffer (wrap, padding,
// back pressure, malformed logs), and the transport's files, control channel and leave; and
// its doorbell, across two processes.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <thread>
#include <vector>

#include "runtime/agent.h"
#include "transport/shm/shm_transport.h"

namespace cohort::transport::shm {
namespace {

// A writer and one reader over a buffer of this process: the same code as across processes.
struct LocalLog {
  explicit LocalLog(uint64_t capacity)
      : mem(new (std::align_val_t{64}) std::byte[kControlPageBytes * 2 + capacity]()),
        writer_page(new (mem.get()) ControlPage()),
        reader_page(new (mem.get() + kControlPageBytes) ControlPage()),
        log(mem.get() + 2 * kControlPageBytes),
        pub(log, capacity, &writer_page->committed),
        sub(log, capacity, &reader_page->read_positions[0].position) {
    pub.expect_reader(1);
    pub.attach_reader(1, &reader_page->read_positions[0].position);
  }
  struct Free {
    void operator()(std::byte* p) const { ::operator delete[](p, std::align_val_t{64}); }
  };
  std::unique_ptr<std::byte[], Free> mem;
  ControlPage* writer_page;
  ControlPage* reader_page;
  std::byte* log;
  LogWriter pub;
  LogReader sub;

  bool append(uint32_t size, uint8_t fill) {
    Claim c;
    if (pub.try_claim(size, kRecordUser, &c) != ClaimStatus::kOk) return false;
    std::memset(c.data, fill, size);
    pub.commit(c);
    return true;
  }
};

TEST(ShmLog, RecordsArriveInOrderAcrossManyWraps) {
  LocalLog l(64 << 10);
  std::mt19937 rng(7);
  uint64_t sent = 0;
  uint64_t got = 0;
  std::vector<uint32_t> sizes;
  RecordView views[16];
  for (int round = 0; round < 20000; ++round) {
    const auto size = static_cast<uint32_t>(rng() % 3000);
    if (l.append(size, static_cast<uint8_t>(sent))) {
      sizes.push_back(size);
      ++sent;
    }
    const uint32_t n = l.sub.poll(views, 1 + static_cast<uint32_t>(rng() % 16));
    for (uint32_t i = 0; i < n; ++i, ++got) {
      ASSERT_EQ(views[i].payload.size(), sizes[got]);
      for (std::byte b : views[i].payload) ASSERT_EQ(b, std::byte{static_cast<uint8_t>(got)});
    }
    if (rng() % 3 == 0) l.sub.release();
  }
  EXPECT_GT(l.pub.stats().paddings, 10u);  // the log wrapped many times
  EXPECT_GT(sent, 10000u);
  EXPECT_EQ(l.sub.fault(), LogFault::kNone);
}

TEST(ShmLog, WriterNeverOverwritesWhatTheReaderHolds) {
  LocalLog l(64 << 10);
  uint32_t appended = 0;
  while (l.append(1000, 0xAB)) ++appended;
  EXPECT_GT(appended, 50u);
  Claim c;
  EXPECT_EQ(l.pub.try_claim(1000, kRecordUser, &c), ClaimStatus::kBackPressure);
  RecordView views[8];
  EXPECT_EQ(l.sub.poll(views, 8), 8u);
  // Polled but not released: still held, still back pressure.
  EXPECT_EQ(l.pub.try_claim(1000, kRecordUser, &c), ClaimStatus::kBackPressure);
  l.sub.release();
  EXPECT_TRUE(l.append(1000, 0xCD));
  // A reader declared gone no longer counts.
  while (l.append(1000, 0)) {
  }
  l.pub.remove_reader(1);
  EXPECT_TRUE(l.append(1000, 0));
}

// The writer zeroes ahead of itself, but only through bytes every reader has released: with a
// reader that holds everything, records of odd sizes up to back pressure must all read back
// intact, lap after lap.
TEST(ShmLog, ZeroingNeverTouchesUnreadRecords) {
  LocalLog l(64 << 10);
  uint64_t next_fill = 0;
  uint64_t next_check = 0;
  std::mt19937 rng(3);
  RecordView views[64];
  for (int lap = 0; lap < 50; ++lap) {
    while (l.append(static_cast<uint32_t>(rng() % 700 + 1), static_cast<uint8_t>(next_fill))) {
      ++next_fill;
    }
    for (;;) {
      const uint32_t n = l.sub.poll(views, 64);
      if (n == 0) break;
      for (uint32_t i = 0; i < n; ++i, ++next_check) {
        for (std::byte b : views[i].payload) {
          ASSERT_EQ(b, std::byte{static_cast<uint8_t>(next_check)}) << "record " << next_check;
        }
      }
    }
    l.sub.release();
  }
  EXPECT_EQ(next_check, next_fill);
  EXPECT_EQ(l.sub.fault(), LogFault::kNone);
}

// A replica rebuilt from frames is read only up to its contiguous received position.
TEST(ShmLog, ReaderStopsAtTheLimit) {
  LocalLog l(64 << 10);
  ASSERT_TRUE(l.append(100, 1));  // 128 bytes with its header, aligned
  ASSERT_TRUE(l.append(100, 2));
  ASSERT_TRUE(l.append(100, 3));
  RecordView v[4];
  EXPECT_EQ(l.sub.poll(v, 4, 8), 0u);    // not even a header
  EXPECT_EQ(l.sub.poll(v, 4, 200), 1u);  // the second record has only partly arrived
  EXPECT_EQ(l.sub.poll(v, 4, 256), 1u);
  EXPECT_EQ(l.sub.poll(v, 4, ~uint64_t{0}), 1u);
  EXPECT_EQ(l.sub.fault(), LogFault::kNone);
}

// A reader that joins a log already written: counted from its start, and its published word
// believed only once it says it is about this log (it may still hold a position in a log of an
// earlier incarnation of this writer, which must not let the writer overwrite anything).
TEST(ShmLog, ALateReaderIsCountedFromItsStartUntilItsWordIsAboutThisLog) {
  constexpr uint64_t kCap = 64 << 10;
  LocalLog l(kCap);
  l.pub.remove_reader(1);  // the writer alone laps freely
  uint64_t fill = 0;
  while (l.pub.position() < 5 * kCap) ASSERT_TRUE(l.append(1000, static_cast<uint8_t>(fill++)));
  const uint64_t start = l.pub.position();
  const uint64_t first = fill;
  std::atomic<uint64_t>& word = l.reader_page->read_positions[2].position;
  std::atomic<uint64_t>& tag = l.reader_page->read_positions[2].log_incarnation;
  word.store(~uint64_t{0});  // "read everything" of some other log
  tag.store(111);
  l.pub.attach_reader_at(2, &word, start, &tag, 222);
  EXPECT_TRUE(l.pub.counts_reader(2));
  EXPECT_EQ(l.pub.reader_start(2), start);
  uint32_t appended = 0;  // bounded: a writer that believed the stale word would never stop
  while (appended < 1000 && l.append(1000, static_cast<uint8_t>(fill))) ++fill, ++appended;
  EXPECT_GT(appended, 50u);
  EXPECT_LE(l.pub.position() + sizeof(RecordHeader), start + kCap);  // held at its start

  // The reader subscribes (its start, then the tag) and reads from its start on.
  word.store(start, std::memory_order_relaxed);
  tag.store(222, std::memory_order_release);
  LogReader sub(l.log, kCap, &word, start);
  RecordView v[64];
  uint64_t next = first;
  for (uint32_t n; (n = sub.poll(v, 64)) != 0;) {
    for (uint32_t i = 0; i < n; ++i, ++next) {
      if (next == first) {
        EXPECT_EQ(v[i].position, start);
      }
      ASSERT_EQ(v[i].payload[0], std::byte{static_cast<uint8_t>(next)});
    }
  }
  EXPECT_EQ(next, fill);
  EXPECT_EQ(sub.fault(), LogFault::kNone);
  EXPECT_FALSE(l.append(1000, 0));  // polled but not released: still held
  sub.release();
  EXPECT_TRUE(l.append(1000, 0));
}

// A reader attached at a start below the writer's tail: the writer's cached limit, computed
// before the reader counted, must not let it overwrite what the reader has yet to read.
TEST(ShmLog, AttachingAReaderBelowTheTailLowersTheCachedLimit) {
  constexpr uint64_t kCap = 64 << 10;
  LocalLog l(kCap);
  l.pub.remove_reader(1);
  std::vector<uint64_t> positions;
  while (l.pub.position() < kCap + 2000) {
    positions.push_back(l.pub.position());
    ASSERT_TRUE(l.append(500, static_cast<uint8_t>(positions.size() - 1)));
  }
  // The oldest record not overwritten yet, and its index.
  size_t k = 0;
  while (k < positions.size() && positions[k] + kCap < l.pub.position() + sizeof(RecordHeader)) {
    ++k;
  }
  ASSERT_LT(k, positions.size());
  std::atomic<uint64_t>& word = l.reader_page->read_positions[2].position;
  std::atomic<uint64_t>& tag = l.reader_page->read_positions[2].log_incarnation;
  word.store(positions[k]);
  tag.store(7);
  l.pub.attach_reader_at(2, &word, positions[k], &tag, 7);
  uint64_t fill = positions.size();
  while (fill < 10 * positions.size() && l.append(500, static_cast<uint8_t>(fill))) ++fill;
  EXPECT_LE(l.pub.position() + sizeof(RecordHeader), positions[k] + kCap);
  LogReader sub(l.log, kCap, &word, positions[k]);
  RecordView v[256];
  uint64_t next = k;
  for (uint32_t n; (n = sub.poll(v, 256)) != 0;) {
    for (uint32_t i = 0; i < n; ++i, ++next) {
      ASSERT_EQ(v[i].payload[0], std::byte{static_cast<uint8_t>(next)}) << "record " << next;
    }
  }
  EXPECT_EQ(next, fill);
  EXPECT_EQ(sub.fault(), LogFault::kNone);
}

TEST(ShmLog, RefusesRecordsLargerThanAQuarterOfTheLog) {
  LocalLog l(64 << 10);
  Claim c;
  EXPECT_EQ(l.pub.try_claim(l.pub.max_record_bytes() + 1, kRecordUser, &c), ClaimStatus::kTooLarge);
  EXPECT_EQ(l.pub.try_claim(l.pub.max_record_bytes(), kRecordUser, &c), ClaimStatus::kOk);
}

// Bytes in shared memory come from another process: a malformed record stops the
// subscription with a reason, and nothing crashes.
TEST(ShmLog, MalformedRecordsAreRefusedWithAReason) {
  struct Case {
    const char* what;
    uint32_t length;
    uint16_t type;
    uint64_t position;
    LogFault expect;
  };
  const Case cases[] = {
      {"length below a header", 5, kRecordUser, 0, LogFault::kBadLength},
      {"length past the end", 1u << 30, kRecordUser, 0, LogFault::kBadLength},
      {"position of an older lap", 64, kRecordUser, 12345, LogFault::kBadPosition},
      {"padding in the middle", 64, kRecordPadding, 0, LogFault::kBadPadding},
  };
  for (const Case& k : cases) {
    LocalLog l(64 << 10);
    auto* h = reinterpret_cast<RecordHeader*>(l.log);
    h->type = k.type;
    h->position = k.position;
    h->length.store(k.length);
    RecordView views[4];
    EXPECT_EQ(l.sub.poll(views, 4), 0u) << k.what;
    EXPECT_EQ(l.sub.fault(), k.expect) << k.what;
  }
}

TEST(ShmLog, GarbageNeverCrashesTheReader) {
  std::mt19937_64 rng(11);
  for (int trial = 0; trial < 200; ++trial) {
    LocalLog l(64 << 10);
    for (uint64_t i = 0; i < (64 << 10) / 8; ++i) {
      const uint64_t v = rng();
      std::memcpy(l.log + i * 8, &v, 8);
    }
    RecordView views[64];
    uint64_t sum = 0;
    for (int k = 0; k < 100 && l.sub.fault() == LogFault::kNone; ++k) {
      const uint32_t n = l.sub.poll(views, 64);
      // Every view handed out lies inside the log: touch all its bytes.
      for (uint32_t i = 0; i < n; ++i) {
        ASSERT_GE(views[i].payload.data(), l.log);
        ASSERT_LE(views[i].payload.data() + views[i].payload.size(), l.log + (64 << 10));
        for (std::byte b : views[i].payload) sum += static_cast<uint8_t>(b);
      }
      l.sub.release();
    }
    (void)sum;
    EXPECT_NE(l.sub.fault(), LogFault::kNone);  // random bytes are never a valid log
  }
}

struct TempDir {
  std::string path = "/dev/shm/cohort-unit-" + std::to_string(getpid());
  ~TempDir() { std::filesystem::remove_all(path); }
};

TEST(ShmTransport, RefusesBadOptionsNamingTheFix) {
  TempDir d;
  auto bad_group = ShmTransport::create(ShmOptions{d.path, "no/slash", 0, 2, 64 << 10});
  ASSERT_FALSE(bad_group.ok());
  EXPECT_NE(bad_group.error().message().find("letters, digits"), std::string::npos);
  auto bad_member = ShmTransport::create(ShmOptions{d.path, "g", 2, 2, 64 << 10});
  ASSERT_FALSE(bad_member.ok());
  auto bad_size = ShmTransport::create(ShmOptions{d.path, "g", 0, 2, 100000});
  ASSERT_FALSE(bad_size.ok());
  EXPECT_NE(bad_size.error().message().find("power of two"), std::string::npos);
}

TEST(ShmTransport, RefusesADirectoryOthersCanRead) {
  TempDir d;
  std::filesystem::create_directories(d.path);
  std::filesystem::permissions(d.path, std::filesystem::perms::all);
  auto t = ShmTransport::create(ShmOptions{d.path, "g", 0, 2, 64 << 10});
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.error().message().find("mode 0700"), std::string::npos) << t.error().message();
}

TEST(ShmTransport, FilesAreTheUsersAloneAndGoneAfterLeave) {
  TempDir d;
  auto a = ShmTransport::create(ShmOptions{d.path, "g", 0, 2, 64 << 10});
  ASSERT_TRUE(a.ok()) << a.error().message();
  const std::string log = d.path + "/g/m0.log";
  ASSERT_TRUE(std::filesystem::exists(log));
  EXPECT_EQ(std::filesystem::status(log).permissions() & std::filesystem::perms::all,
            std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  (*a)->leave();
  EXPECT_FALSE(std::filesystem::exists(log));
  EXPECT_FALSE(std::filesystem::exists(d.path + "/g/m0.sock"));
  EXPECT_FALSE(std::filesystem::exists(d.path + "/g"));  // last member out removes the group
}

TEST(ShmTransport, TwoMembersExchangeRecordsAndControlDatagrams) {
  TempDir d;
  auto a = ShmTransport::create(ShmOptions{d.path, "g", 0, 2, 64 << 10});
  auto b = ShmTransport::create(ShmOptions{d.path, "g", 1, 2, 64 << 10});
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_TRUE((*a)->attach_peers(1000).ok());
  ASSERT_TRUE((*b)->attach_peers(1000).ok());

  // Attached one after the other from one thread: a started reading b's log at 0, while b had
  // not looked for peers yet; b's first look found a there and counts it from 0.
  EXPECT_EQ((*b)->reader_start(0), 0u);
  EXPECT_TRUE((*b)->publication().counts_reader(0));
  EXPECT_FALSE((*b)->publication().counts_reader(1));  // the placeholder for early readers
  LogReader* from_b = (*a)->subscription(1);
  ASSERT_NE(from_b, nullptr);
  EXPECT_EQ(from_b->position(), 0u);

  Claim c;
  ASSERT_EQ((*a)->publication().try_claim(5, kRecordUser + 1, &c), ClaimStatus::kOk);
  std::memcpy(c.data, "hello", 5);
  (*a)->publication().commit(c);
  RecordView v[2];
  LogReader* from_a = (*b)->subscription(0);
  ASSERT_NE(from_a, nullptr);
  ASSERT_EQ(from_a->poll(v, 2), 1u);
  EXPECT_EQ(v[0].type, kRecordUser + 1);
  EXPECT_EQ(std::memcmp(v[0].payload.data(), "hello", 5), 0);
  from_a->release();

  const char msg[] = "view 2";
  EXPECT_EQ((*b)->send_control(0, std::as_bytes(std::span(msg))), SendStatus::kOk);
  ControlMessage m[4];
  uint32_t n = 0;
  for (int i = 0; i < 100 && n == 0; ++i) n = (*a)->poll_control(m, 4);
  ASSERT_EQ(n, 1u);
  EXPECT_EQ(m[0].from, 1u);
  EXPECT_EQ(std::memcmp(m[0].bytes.data(), msg, sizeof msg), 0);

  // A datagram from a socket that is not a member of the group is dropped and counted.
  const int stranger = socket(AF_UNIX, SOCK_DGRAM, 0);
  sockaddr_un to{};
  to.sun_family = AF_UNIX;
  const std::string path = d.path + "/g/m0.sock";
  std::memcpy(to.sun_path, path.c_str(), path.size() + 1);
  ASSERT_EQ(sendto(stranger, "x", 1, 0, reinterpret_cast<sockaddr*>(&to), sizeof to), 1);
  close(stranger);
  n = 0;
  for (int i = 0; i < 100 && (*a)->control_drops() == 0; ++i) n += (*a)->poll_control(m, 4);
  EXPECT_EQ(n, 0u);
  EXPECT_EQ((*a)->control_drops(), 1u);

  // Heartbeats, and a peer that left is no longer alive.
  (*b)->beat();
  (*b)->beat();
  EXPECT_EQ((*a)->heartbeat_of(1), 2u);
  EXPECT_TRUE((*a)->peer_alive(1));
  (*b)->leave();
  EXPECT_FALSE((*a)->peer_alive(1));
  EXPECT_EQ((*a)->send_control(1, std::as_bytes(std::span(msg))), SendStatus::kNoPeer);
}

// Members in one thread: calls try_attach_peers() on each in turn until every pair in `ts` is
// subscribed both ways (at most `rounds` turns each).
bool attach_each_other(std::initializer_list<ShmTransport*> ts, int rounds = 100) {
  for (int r = 0; r < rounds; ++r) {
    bool all = true;
    for (ShmTransport* t : ts) {
      EXPECT_TRUE(t->try_attach_peers().ok());
      for (ShmTransport* u : ts) {
        if (u != t && t->subscription(u->self()) == nullptr) all = false;
      }
    }
    if (all) return true;
  }
  return false;
}

void append(ShmTransport& t, const std::string& text) {
  Claim c;
  ASSERT_EQ(t.publication().try_claim(static_cast<uint32_t>(text.size()), kRecordUser, &c),
            ClaimStatus::kOk);
  std::memcpy(c.data, text.data(), text.size());
  t.publication().commit(c);
}

// Everything readable now from `peer`'s log, as text; released.
std::vector<std::string> read_all(ShmTransport& t, MemberId peer, uint64_t* first_position) {
  std::vector<std::string> got;
  LogReader* sub = t.subscription(peer);
  EXPECT_NE(sub, nullptr);
  if (sub == nullptr) return got;
  RecordView v[16];
  for (uint32_t n; (n = sub->poll(v, 16)) != 0;) {
    for (uint32_t i = 0; i < n; ++i) {
      if (got.empty() && first_position != nullptr) *first_position = v[i].position;
      got.emplace_back(reinterpret_cast<const char*>(v[i].payload.data()), v[i].payload.size());
    }
  }
  sub->release();
  EXPECT_EQ(sub->fault(), LogFault::kNone);
  return got;
}

bool control_arrives(ShmTransport& from, ShmTransport& to) {
  const char msg[] = "ping";
  if (from.send_control(to.self(), std::as_bytes(std::span(msg))) != SendStatus::kOk) return false;
  ControlMessage m[4];
  for (int i = 0; i < 100; ++i) {
    const uint32_t n = to.poll_control(m, 4);
    if (n == 1 && m[0].from == from.self() && m[0].bytes.size() == sizeof msg) return true;
    if (n != 0) return false;
  }
  return false;
}

ShmOptions slot(const TempDir& d, MemberId self) {
  return ShmOptions{d.path, "g", self, 3, 64 << 10};
}

// Three slots, two members: the empty slot holds nobody back; the third member joins late,
// reads each log from where its writer was when it attached it, and is read from its start.
TEST(ShmTransport, ASlotMayStayEmptyAndAMemberMayJoinLate) {
  TempDir d;
  auto a = ShmTransport::create(slot(d, 0));
  auto b = ShmTransport::create(slot(d, 1));
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_TRUE(attach_each_other({a->get(), b->get()}));
  auto waited = (*a)->attach_peers(20);
  ASSERT_FALSE(waited.ok());
  EXPECT_NE(waited.error().message().find("members 2 of group"), std::string::npos);
  const char msg[] = "x";
  EXPECT_EQ((*a)->send_control(2, std::as_bytes(std::span(msg))), SendStatus::kNoPeer);
  EXPECT_FALSE((*a)->publication().counts_reader(2));
  EXPECT_EQ((*a)->attach_generation(2), 0u);

  // Many laps of a's log while b reads: slot 2 does not count.
  for (int i = 0; i < 2000; ++i) {
    append(**a, std::string(200, 'a'));
    if (i % 50 == 0) {
      EXPECT_EQ(read_all(**b, 0, nullptr).size(), i == 0 ? 1u : 50u);
    }
  }
  read_all(**b, 0, nullptr);
  EXPECT_GT((*a)->publication().position(), 4u * (64 << 10));

  auto c = ShmTransport::create(slot(d, 2));
  ASSERT_TRUE(c.ok()) << c.error().message();
  ASSERT_EQ(*(*c)->try_attach_peers(), 0u);  // a and b have not granted it a start yet
  const uint64_t a_tail = (*a)->publication().position();
  ASSERT_TRUE(attach_each_other({a->get(), b->get(), c->get()}));
  for (ShmTransport* t : {a->get(), b->get()}) {
    EXPECT_EQ(t->attach_generation(2), 1u);
    EXPECT_EQ(t->peer_incarnation(2), (*c)->incarnation());
    EXPECT_TRUE(t->publication().counts_reader(2));
  }
  EXPECT_EQ((*a)->reader_start(2), a_tail);
  LogReader* c_from_a = (*c)->subscription(0);
  ASSERT_NE(c_from_a, nullptr);
  EXPECT_EQ(c_from_a->position(), a_tail);
  EXPECT_EQ((*c)->attach_generation(0), 1u);

  append(**a, "after c joined");
  append(**c, "from c");
  uint64_t first = 1;
  EXPECT_EQ(read_all(**c, 0, &first), std::vector<std::string>{"after c joined"});
  EXPECT_EQ(first, a_tail);
  for (ShmTransport* t : {a->get(), b->get()}) {
    EXPECT_EQ(read_all(*t, 2, &first), std::vector<std::string>{"from c"});
    EXPECT_EQ(first, 0u);  // c attached its peers before it wrote: read from its beginning
    EXPECT_TRUE(control_arrives(*t, **c));
    EXPECT_TRUE(control_arrives(**c, *t));
  }
}

// A new process in a slot replaces the old one: peers that declared the old one gone, and
// peers that did not, re-attach to the new file and read it from its beginning; the new one
// reads theirs; control datagrams flow again.
TEST(ShmTransport, ANewProcessInASlotIsReattached) {
  TempDir d;
  auto a = ShmTransport::create(slot(d, 0));
  auto b = ShmTransport::create(slot(d, 1));
  auto c = ShmTransport::create(slot(d, 2));
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  ASSERT_TRUE(attach_each_other({a->get(), b->get(), c->get()}));
  append(**c, "old c");
  const uint64_t old_incarnation = (*c)->incarnation();
  c->reset();  // leaves: marks its page, removes its files

  const char msg[] = "x";
  EXPECT_EQ((*a)->send_control(2, std::as_bytes(std::span(msg))), SendStatus::kNoPeer);
  EXPECT_FALSE((*a)->peer_alive(2));
  EXPECT_TRUE((*a)->peer_left(2));
  (*a)->declare_gone(2);  // b does not: it will notice the new file alone
  EXPECT_EQ((*a)->subscription(2), nullptr);
  EXPECT_FALSE((*a)->publication().counts_reader(2));
  EXPECT_NE((*b)->subscription(2), nullptr);  // the old mapping stays until replaced
  ASSERT_TRUE((*a)->try_attach_peers().ok());
  EXPECT_EQ((*a)->subscription(2), nullptr);

  auto c2 = ShmTransport::create(slot(d, 2));
  ASSERT_TRUE(c2.ok()) << c2.error().message();
  EXPECT_NE((*c2)->incarnation(), old_incarnation);
  append(**c2, "new c");  // before it attached anyone: still read from 0 (its log is open)
  ASSERT_TRUE(attach_each_other({a->get(), b->get(), c2->get()}));
  for (ShmTransport* t : {a->get(), b->get()}) {
    EXPECT_EQ(t->attach_generation(2), 2u);
    EXPECT_EQ(t->peer_incarnation(2), (*c2)->incarnation());
    uint64_t first = 1;
    EXPECT_EQ(read_all(*t, 2, &first), std::vector<std::string>{"new c"});
    EXPECT_EQ(first, 0u);
    EXPECT_TRUE(control_arrives(*t, **c2));
    EXPECT_TRUE(control_arrives(**c2, *t));
    EXPECT_TRUE(t->peer_alive(2));
  }
  append(**a, "to new c");
  EXPECT_EQ(read_all(**c2, 0, nullptr), std::vector<std::string>{"to new c"});
}

// A peer declared gone while its process still runs is never attached again, and it is not
// held back by our old position in its log: we published that we need nothing more of it.
TEST(ShmTransport, APeerDeclaredGoneStaysGoneAndIsNotHeldBack) {
  TempDir d;
  auto a = ShmTransport::create(ShmOptions{d.path, "g", 0, 2, 64 << 10});
  auto b = ShmTransport::create(ShmOptions{d.path, "g", 1, 2, 64 << 10});
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_TRUE(attach_each_other({a->get(), b->get()}));
  (*a)->declare_gone(1);
  ASSERT_TRUE((*a)->try_attach_peers().ok());
  EXPECT_EQ((*a)->subscription(1), nullptr);
  EXPECT_EQ((*a)->attach_generation(1), 1u);
  EXPECT_FALSE((*a)->peer_alive(1));
  EXPECT_TRUE((*b)->publication().counts_reader(0));
  for (int i = 0; i < 2000; ++i) append(**b, std::string(200, 'b'));  // many laps, unread
}

// --- the doorbell (transport/NOTES.md, "shm: the doorbell") ---------------------------------

int64_t steady_now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// The reader's poll loop: each record carries its writer's steady-clock time (the clock is
// system-wide, so it means the same in both processes).
struct Inbox {
  LogReader* sub = nullptr;
  std::atomic<uint64_t> received{0};
  std::atomic<int64_t> worst_ns{0};
};

uint32_t drain(void* context) noexcept {
  auto& in = *static_cast<Inbox*>(context);
  RecordView v[8];
  const uint32_t n = in.sub->poll(v, 8);
  for (uint32_t i = 0; i < n; ++i) {
    int64_t sent_ns = 0;
    std::memcpy(&sent_ns, v[i].payload.data(), sizeof sent_ns);
    const int64_t took = steady_now_ns() - sent_ns;
    if (took > in.worst_ns.load(std::memory_order_relaxed)) in.worst_ns.store(took);
  }
  in.sub->release();
  if (n != 0) in.received.fetch_add(n, std::memory_order_release);
  return n;
}

// A reader's data loop parks for a whole second at a time; a writer in another process appends
// a record while it sleeps, and rings. Only the doorbell can explain a wake-up well before the
// second is up. A behaviour test with generous bounds (a loaded 2-cpu machine), not a timing.
TEST(ShmDoorbell, AParkedReaderWakesWhenAWriterInAnotherProcessAppends) {
  TempDir d;
  constexpr int kRounds = 5;
  int go[2], report[2];
  ASSERT_EQ(pipe(go), 0);
  ASSERT_EQ(pipe(report), 0);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // The writer, member 1: one record and one ring per byte on `go`; reports its wakes.
    close(go[1]);
    close(report[0]);
    int code = 1;
    {
      auto w = ShmTransport::create(ShmOptions{d.path, "g", 1, 2, 64 << 10});
      if (w.ok() && (*w)->attach_peers(10'000).ok()) {
        char byte = 0;
        while (read(go[0], &byte, 1) == 1) {
          Claim c;
          if ((*w)->publication().try_claim(sizeof(int64_t), kRecordUser, &c) != ClaimStatus::kOk)
            break;
          const int64_t now = steady_now_ns();
          std::memcpy(c.data, &now, sizeof now);
          (*w)->publication().commit(c);
          (void)(*w)->ring_doorbells();
          (void)(*w)->ring_doorbells();  // nothing new: no second wake
        }
        const uint64_t wakes = (*w)->doorbell_wakes();
        code = write(report[1], &wakes, sizeof wakes) == sizeof wakes ? 0 : 2;
      }
    }
    _exit(code);
  }
  close(go[0]);
  close(report[1]);

  auto r = ShmTransport::create(ShmOptions{d.path, "g", 0, 2, 64 << 10});
  ASSERT_TRUE(r.ok()) << r.error().message();
  ASSERT_TRUE((*r)->attach_peers(10'000).ok());
  Inbox inbox;
  inbox.sub = (*r)->subscription(1);
  ASSERT_NE(inbox.sub, nullptr);
  IdleOptions o;
  o.spin_iterations = 10;
  o.yield_iterations = 10;
  o.min_park_ns = 1'000'000'000;  // 1 s, the most validate() allows
  o.max_park_ns = 1'000'000'000;
  Agent agent("bell-reader", o);
  agent.waker().bind_shared((*r)->doorbell());
  ASSERT_TRUE(agent.add_poller("log", drain, &inbox).ok());
  ASSERT_TRUE(agent.start(-1).ok());

  for (uint64_t round = 1; round <= kRounds; ++round) {
    // Wait until the loop announced its park on the doorbell, and give it time to be asleep.
    while ((*r)->doorbell()->waiters.load(std::memory_order_acquire) == 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    const auto sent = std::chrono::steady_clock::now();
    ASSERT_EQ(write(go[1], "x", 1), 1);
    while (inbox.received.load(std::memory_order_acquire) < round) {
      ASSERT_LT(std::chrono::steady_clock::now() - sent, std::chrono::milliseconds(900))
          << "the parked reader did not wake before its park period ended";
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
  }
  agent.request_stop();
  agent.join();
  close(go[1]);
  uint64_t wakes = 0;
  ASSERT_EQ(read(report[0], &wakes, sizeof wakes), static_cast<ssize_t>(sizeof wakes));
  close(report[0]);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  const int64_t worst_ns = inbox.worst_ns.load();
  std::printf("worst append-to-read over %d parks of 1 s: %.1f us; wakes sent: %llu\n", kRounds,
              static_cast<double>(worst_ns) / 1e3, static_cast<unsigned long long>(wakes));
  EXPECT_LT(worst_ns, 200'000'000);  // far below the 1 s park, generous for a loaded machine
  EXPECT_GE(wakes, static_cast<uint64_t>(kRounds));  // each record found its reader asleep
}

// A reader that announced a park and died (or never withdrew) leaves a count behind: a writer
// then makes one needless system call per burst it appends, never more, and never waits; and
// none at all once that peer is declared gone. No announcement: no system call.
TEST(ShmDoorbell, AStaleAnnouncementCostsAtMostOneWakePerBurst) {
  TempDir d;
  auto a = ShmTransport::create(slot(d, 0));
  auto b = ShmTransport::create(slot(d, 1));
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_TRUE(attach_each_other({a->get(), b->get()}));
  EXPECT_EQ((*b)->ring_doorbells(), 0u);  // nothing appended
  append(**b, "busy reader");
  EXPECT_EQ((*b)->ring_doorbells(), 0u);  // nobody announced: one load each, no wake

  Waker reader;
  reader.bind_shared((*a)->doorbell());
  (void)reader.prepare_wait();  // announced, and then never sleeps nor withdraws
  append(**b, "one");
  append(**b, "two");
  EXPECT_EQ((*b)->ring_doorbells(), 1u);  // once for the burst, returns at once
  EXPECT_EQ((*b)->ring_doorbells(), 0u);  // nothing new since
  append(**b, "three");
  EXPECT_EQ((*b)->ring_doorbells(), 1u);
  EXPECT_EQ((*b)->doorbell_wakes(), 2u);

  (*b)->declare_gone(0);  // its mapping of a's doorbell goes with it
  append(**b, "four");
  EXPECT_EQ((*b)->ring_doorbells(), 0u);
  reader.cancel_wait();
  reader.bind_shared(nullptr);
}

// The doorbell page changed the file's layout: a file of the previous layout is refused by
// name, not misread.
TEST(ShmDoorbell, AFileOfThePreviousLayoutIsRefused) {
  TempDir d;
  auto a = ShmTransport::create(ShmOptions{d.path, "g", 0, 2, 64 << 10});
  ASSERT_TRUE(a.ok());
  ControlPage page{};
  page.magic = kFileMagic;
  page.version = 2;
  page.member = 1;
  page.group_hash = group_hash("g");
  page.incarnation = 7;
  page.log_capacity = 64 << 10;
  {
    std::ofstream f(d.path + "/g/m1.log", std::ios::binary);
    f.write(reinterpret_cast<const char*>(&page), sizeof page);
  }
  std::filesystem::resize_file(d.path + "/g/m1.log", kLogOffset + (64 << 10));
  auto r = (*a)->try_attach_peers();
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("another layout version"), std::string::npos)
      << r.error().message();
}

}  // namespace
}  // namespace cohort::transport::shm
