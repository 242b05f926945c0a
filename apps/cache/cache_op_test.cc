// The cooperative cache's wire format (cache_op.h): every encoding decodes to itself, and every
// rule the decoders check refuses the bytes that break it.
#include "apps/cache/cache_op.h"

#include <gtest/gtest.h>

#include <string>

namespace cohort::cache {
namespace {

std::vector<std::byte> bytes_of(std::string_view s) {
  std::vector<std::byte> b(s.size());
  for (size_t i = 0; i < s.size(); ++i) b[i] = static_cast<std::byte>(s[i]);
  return b;
}

TEST(CacheOp, InvalidateRoundTrips) {
  const auto b = encode_invalidate(42, "user:1");
  Op op;
  ASSERT_EQ(decode_op(b, &op), DecodeResult::kOk);
  EXPECT_EQ(op.kind, OpKind::kInvalidate);
  EXPECT_EQ(op.write, 42U);
  EXPECT_EQ(op.key, "user:1");
}

TEST(CacheOp, BatchRoundTrips) {
  const std::string k1 = "a", k2(kMaxKeyBytes, 'z');
  const DirEntry in[] = {{DirKind::kClaim, {}, k1},
                         {DirKind::kHave, Stamp{3, 99}, k2},
                         {DirKind::kDrop, {}, k1},
                         {DirKind::kUnclaim, {}, k2}};
  const auto b = encode_batch(in);
  Op op;
  ASSERT_EQ(decode_op(b, &op), DecodeResult::kOk);
  ASSERT_EQ(op.kind, OpKind::kBatch);
  ASSERT_EQ(op.entries.size(), 4U);
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(op.entries[i].kind, in[i].kind);
    EXPECT_EQ(op.entries[i].key, in[i].key);
  }
  EXPECT_EQ(op.entries[1].stamp, (Stamp{3, 99}));
}

TEST(CacheOp, OtherApplicationsBytesAreNotOurs) {
  Op op;
  EXPECT_EQ(decode_op(bytes_of("hello"), &op), DecodeResult::kNotOurs);
  EXPECT_EQ(decode_op({}, &op), DecodeResult::kNotOurs);
  std::string_view key;
  EXPECT_EQ(decode_request(bytes_of("\xC0L..."), &key), DecodeResult::kNotOurs);
}

TEST(CacheOp, EveryBrokenRuleIsMalformed) {
  Op op;
  const auto good = encode_invalidate(7, "key");
  auto bad = good;
  bad[2] = std::byte{2};  // version
  EXPECT_EQ(decode_op(bad, &op), DecodeResult::kMalformed);
  bad = good;
  bad[3] = std::byte{9};  // kind
  EXPECT_EQ(decode_op(bad, &op), DecodeResult::kMalformed);
  bad = good;
  bad[6] = std::byte{1};  // zero bytes
  EXPECT_EQ(decode_op(bad, &op), DecodeResult::kMalformed);
  bad = good;
  for (int i = 8; i < 16; ++i) bad[static_cast<size_t>(i)] = std::byte{0};  // write 0
  EXPECT_EQ(decode_op(bad, &op), DecodeResult::kMalformed);
  bad = good;
  bad[16] = std::byte{0};  // key length 0
  EXPECT_EQ(decode_op(bad, &op), DecodeResult::kMalformed);
  bad = good;
  bad.push_back(std::byte{0});  // trailing byte
  EXPECT_EQ(decode_op(bad, &op), DecodeResult::kMalformed);
  bad = good;
  bad.pop_back();  // truncated
  EXPECT_EQ(decode_op(bad, &op), DecodeResult::kMalformed);
  // Every truncation of a batch is malformed, never a crash.
  const DirEntry in[] = {{DirKind::kHave, Stamp{1, 2}, "abc"}, {DirKind::kClaim, {}, "d"}};
  const auto batch = encode_batch(in);
  for (size_t n = 2; n < batch.size(); ++n) {
    EXPECT_EQ(decode_op(std::span(batch).first(n), &op), DecodeResult::kMalformed) << n;
  }
  auto b2 = batch;
  b2[16] = std::byte{7};  // entry kind
  EXPECT_EQ(decode_op(b2, &op), DecodeResult::kMalformed);
  b2 = batch;
  b2[4] = std::byte{3};  // count beyond the entries
  EXPECT_EQ(decode_op(b2, &op), DecodeResult::kMalformed);
  b2 = batch;
  b2[4] = std::byte{0};  // count 0
  EXPECT_EQ(decode_op(b2, &op), DecodeResult::kMalformed);
}

TEST(CacheOp, RequestAndReplyRoundTripAndRefuseBrokenBytes) {
  const auto req = encode_request("k1");
  std::string_view key;
  ASSERT_EQ(decode_request(req, &key), DecodeResult::kOk);
  EXPECT_EQ(key, "k1");
  for (size_t n = 2; n < req.size(); ++n) {
    EXPECT_EQ(decode_request(std::span(req).first(n), &key), DecodeResult::kMalformed);
  }
  Reply r;
  r.status = ReplyStatus::kHit;
  r.stamp = Stamp{5, 6};
  r.key = "k1";
  const std::string value(kMaxSharedValueBytes, 'v');
  r.value = value;
  const auto rep = encode_reply(r);
  Reply out;
  ASSERT_EQ(decode_reply(rep, &out), DecodeResult::kOk);
  EXPECT_EQ(out.status, ReplyStatus::kHit);
  EXPECT_EQ(out.stamp, (Stamp{5, 6}));
  EXPECT_EQ(out.key, "k1");
  EXPECT_EQ(out.value, value);
  for (size_t n = 2; n < rep.size(); n += 97) {
    EXPECT_EQ(decode_reply(std::span(rep).first(n), &out), DecodeResult::kMalformed);
  }
  auto bad = rep;
  bad[5] = std::byte{6};  // status
  EXPECT_EQ(decode_reply(bad, &out), DecodeResult::kMalformed);
  r.status = ReplyStatus::kMiss;
  auto miss = encode_reply(r);
  EXPECT_EQ(miss.size(), kReplyHeaderBytes + 2);  // a miss carries no value
  miss[6] = std::byte{1};                         // ... and must say so
  EXPECT_EQ(decode_reply(miss, &out), DecodeResult::kMalformed);
}

}  // namespace
}  // namespace cohort::cache
