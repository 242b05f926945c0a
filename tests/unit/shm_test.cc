// The shm transport in one process: the record protocol over a local buffer (wrap, padding,
// back pressure, malformed logs), and the transport's files, control channel and leave.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <memory>
#include <random>
#include <vector>

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

}  // namespace
}  // namespace cohort::transport::shm
