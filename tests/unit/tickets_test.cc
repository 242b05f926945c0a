// The one-hop order's counter (membership/protocol/types.h, TicketCounter): the word's rules,
// and the shm engine transport's counter shared by two members of one group in this process.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "membership/engine_transport.h"
#include "transport/shm/shm_transport.h"

namespace cohort::membership {
namespace {

TEST(TicketWord, MovesOnlyToALaterView) {
  EXPECT_TRUE(TicketWord::may_open(0, 1));  // never opened
  const uint64_t v5 = TicketWord::opened(5);
  EXPECT_TRUE(TicketWord::at(v5, 5));
  EXPECT_EQ(TicketWord::gseq(v5), 1U);
  EXPECT_FALSE(TicketWord::may_open(v5, 5));  // open already
  EXPECT_FALSE(TicketWord::may_open(v5, 4));  // a late installer of the view before
  EXPECT_TRUE(TicketWord::may_open(v5, 6));
  // Tags are 16 bits, compared as serial numbers: view 65,537 follows view 65,530.
  EXPECT_TRUE(TicketWord::may_open(TicketWord::opened(65'530), 65'537));
  EXPECT_FALSE(TicketWord::may_open(TicketWord::opened(65'537), 65'530));
  EXPECT_FALSE(TicketWord::at(0, 0));  // a word never opened is at no view
}

struct TempDir {
  std::string path = "/dev/shm/cohort-unit-tickets-" + std::to_string(getpid());
  ~TempDir() { std::filesystem::remove_all(path); }
};

TEST(ShmTickets, MembersTakeFromTheSequencersCounterOnly) {
  TempDir d;
  auto a = make_shm_engine_transport(transport::shm::ShmOptions{d.path, "g", 0, 2, 64 << 10, true});
  auto b = make_shm_engine_transport(transport::shm::ShmOptions{d.path, "g", 1, 2, 64 << 10, true});
  ASSERT_TRUE(a.ok() && b.ok());
  for (int i = 0; i < 100; ++i) {  // each attaches the other's file
    (void)(*a)->maintain(0);
    (void)(*b)->maintain(0);
  }
  TicketCounter* ta = (*a)->ticket_counter(7);  // member 0, incarnation 7: the sequencer
  TicketCounter* tb = (*b)->ticket_counter(9);
  ASSERT_NE(ta, nullptr);
  ASSERT_NE(tb, nullptr);
  const Uid seq{0, 7};

  EXPECT_EQ(tb->take(seq, 1, 100), 0U) << "view 1 is not open yet";
  tb->open(seq, 1);  // any installer opens it, in the sequencer's file
  EXPECT_EQ(ta->take(seq, 1, 100), 1U);
  EXPECT_EQ(tb->take(seq, 1, 100), 2U);
  EXPECT_EQ(ta->take(seq, 1, 100), 3U);
  EXPECT_EQ(tb->take(Uid{0, 8}, 1, 100), 0U) << "another process's counter in that slot";
  EXPECT_EQ(tb->take(Uid{1, 9}, 1, 100), 0U) << "b's own counter was never opened";
  EXPECT_EQ(tb->take(seq, 2, 100), 0U) << "a view the counter is not at";
  EXPECT_EQ(tb->take(seq, 1, 3), 0U) << "gseq 4 is past the window";

  ta->open(seq, 2);
  EXPECT_EQ(tb->take(seq, 1, 100), 0U) << "a member still in view 1 takes nothing of view 2";
  tb->open(seq, 1);  // a late installer of view 1 leaves view 2's count alone
  EXPECT_EQ(tb->take(seq, 2, 100), 1U);
  tb->open(seq, 2);  // opening again restarts nothing
  EXPECT_EQ(ta->take(seq, 2, 100), 2U);
}

TEST(ShmTickets, AMemberOfTheOtherOrderIsRefusedNamingTheFix) {
  TempDir d;
  auto a = make_shm_engine_transport(transport::shm::ShmOptions{d.path, "g", 0, 2, 64 << 10, true});
  ASSERT_TRUE(a.ok());
  auto b =
      make_shm_engine_transport(transport::shm::ShmOptions{d.path, "g", 1, 2, 64 << 10, false});
  ASSERT_FALSE(b.ok());
  const std::string m = b.error().message();
  EXPECT_NE(m.find("member 0 of group 'g' orders by tickets and this member by the sequencer"),
            std::string::npos)
      << m;
  EXPECT_NE(m.find("--order"), std::string::npos) << m;
  // A member ordered by the sequencer has no counter to offer.
  auto c = make_shm_engine_transport(transport::shm::ShmOptions{d.path + "2", "g", 0, 2, 64 << 10});
  ASSERT_TRUE(c.ok());
  EXPECT_EQ((*c)->ticket_counter(3), nullptr);
  std::filesystem::remove_all(d.path + "2");
}

}  // namespace
}  // namespace cohort::membership
