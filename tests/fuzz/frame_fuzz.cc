// libFuzzer target for decode_frame(), the first code to touch bytes from the network.
// Claims checked on every input, beyond "no crash, no sanitizer report":
//  - a frame that decodes re-encodes to exactly the bytes it came from (every header bit is
//    checked on the way in, so there is one encoding per frame), and decodes again to the same
//    fields and payload;
//  - the frames of a buffer can be walked one after another by frame_size.
// Built by scripts/fuzz with clang++, not by meson (the project builds with g++).
//
// Built with -DCOHORT_FRAME_FUZZ_SEEDS instead, this file is a tiny program that writes a few
// valid frames into the directory given as its argument, the corpus's first seeds.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <span>
#include <string>
#include <vector>

#include "transport/wire/frame.h"

namespace {

using cohort::wire::DecodeStatus;
using cohort::wire::FrameFields;
using cohort::wire::FrameType;
using cohort::wire::FrameView;

// The group every seed belongs to; inputs of other groups exercise kWrongGroup.
constexpr uint64_t kFuzzGroup = 0x636f686f7274;  // "cohort"

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "frame_fuzz: %s\n", what);
  std::abort();
}

void check_reencodes(std::span<const std::byte> wire, const FrameView& view) {
  std::vector<std::byte> again(view.frame_size);
  if (cohort::wire::encode_frame(view.fields, view.payload, again) != view.frame_size) {
    fail("re-encoding a decoded frame gave another size");
  }
  if (std::memcmp(again.data(), wire.data(), view.frame_size) != 0) {
    fail("re-encoding a decoded frame gave other bytes");
  }
  FrameView view2;
  if (cohort::wire::decode_frame(again, kFuzzGroup, &view2) != DecodeStatus::kOk) {
    fail("a re-encoded frame does not decode");
  }
  if (!(view2.fields == view.fields) || view2.frame_size != view.frame_size ||
      view2.payload.size() != view.payload.size() ||
      std::memcmp(view2.payload.data(), view.payload.data(), view.payload.size()) != 0) {
    fail("a re-encoded frame decodes to other fields or payload");
  }
}

}  // namespace

#ifndef COHORT_FRAME_FUZZ_SEEDS

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::span<const std::byte> rest = std::as_bytes(std::span(data, size));
  // Bounded: each kOk consumes at least a header's worth of the input.
  while (true) {
    FrameView view;
    const DecodeStatus status = cohort::wire::decode_frame(rest, kFuzzGroup, &view);
    if (cohort::wire::decode_status_name(status) == nullptr) fail("a status without a name");
    if (status != DecodeStatus::kOk) break;
    if (view.frame_size < cohort::wire::kFrameHeaderSize || view.frame_size > rest.size() ||
        view.payload.data() != rest.data() + cohort::wire::kFrameHeaderSize) {
      fail("a decoded frame's size or payload lies outside its buffer");
    }
    check_reencodes(rest, view);
    rest = rest.subspan(view.frame_size);
  }
  return 0;
}

#else  // COHORT_FRAME_FUZZ_SEEDS

namespace {

bool write_file(const std::string& path, const std::vector<std::byte>& bytes) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) return false;
  const bool ok = std::fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size();
  return std::fclose(f) == 0 && ok;
}

std::vector<std::byte> frame(FrameType type, uint16_t flags, const std::string& payload) {
  FrameFields fields;
  fields.type = type;
  fields.flags = flags;
  fields.group_id = kFuzzGroup;
  fields.view_id = 3;
  fields.sender = 2;
  fields.position = 4096;
  std::vector<std::byte> out(cohort::wire::frame_size(payload.size()));
  const auto in = std::as_bytes(std::span(payload.data(), payload.size()));
  if (cohort::wire::encode_frame(fields, in, out) != out.size()) fail("seed: encode failed");
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
    return 2;
  }
  const std::string dir = argv[1];
  using cohort::wire::kFlagFragmentBegin;
  using cohort::wire::kFlagFragmentEnd;
  using cohort::wire::kFlagsUnfragmented;
  std::vector<std::byte> two = frame(FrameType::kData, kFlagFragmentBegin, "first half ");
  const std::vector<std::byte> second = frame(FrameType::kData, kFlagFragmentEnd, "second half");
  two.insert(two.end(), second.begin(), second.end());
  const bool ok =
      write_file(dir + "/seed-data",
                 frame(FrameType::kData, kFlagsUnfragmented, "hello, cohort")) &&
      write_file(dir + "/seed-nack", frame(FrameType::kNack, 0, "")) &&
      write_file(dir + "/seed-status", frame(FrameType::kStatus, 0, "12345678")) &&
      write_file(dir + "/seed-control", frame(FrameType::kControl, 0, "view 3: 1 2 5")) &&
      write_file(dir + "/seed-heartbeat", frame(FrameType::kHeartbeat, 0, "")) &&
      write_file(dir + "/seed-two-fragments", two);
  if (!ok) {
    std::fprintf(stderr, "frame_seeds: cannot write seeds into %s\n", dir.c_str());
    return 1;
  }
  return 0;
}

#endif  // COHORT_FRAME_FUZZ_SEEDS
