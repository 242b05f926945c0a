// libFuzzer target for the group protocol's state machine: whatever records and datagrams
// arrive, in whatever order, no member crashes (DESIGN.md principle 6: "nothing from outside
// can crash a member"). Asserts inside Member stay on, so a broken invariant is a crash here.
//
// The member under test is node 0 of a 3-member view it has joined (view 2: nodes 1, 0, 2).
// The input is a program: each step is an opcode byte, then for records and datagrams a head
// that the harness completes (magic, version and a writer of the view, so the fuzzer starts past
// them) and a body of the length the input gives; P2P records among them. Steps also tick the
// clock, end a burst, send, send point-to-point requests and replies, and leave. Built by
// scripts/fuzz with clang++ (the project builds with g++).
//
// Records go through a RecordStore that frees (spares: none) every chunk the member says it
// holds nothing of (Member::holds), and every delivered payload is read: under AddressSanitizer
// a member that points into a record it gave up is a use-after-free here.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <deque>
#include <span>
#include <vector>

#include "membership/protocol/codec.h"
#include "membership/protocol/member.h"
#include "membership/protocol/record_store.h"

namespace {

using namespace cohort::membership;

struct Input {
  const uint8_t* p;
  size_t n;
  bool empty() const { return n == 0; }
  uint8_t u8() {
    if (n == 0) return 0;
    --n;
    return *p++;
  }
  std::span<const std::byte> take(size_t k) {
    k = k < n ? k : n;
    std::span<const std::byte> s(reinterpret_cast<const std::byte*>(p), k);
    p += k;
    n -= k;
    return s;
  }
};

const Uid kUids[3] = {Uid{0, 1}, Uid{1, 1}, Uid{2, 1}};

std::vector<std::byte> install_for_joiner() {
  CutValue c{};
  c.attempt = 1 << 8;
  c.from = 1;
  c.senders = 1;
  c.cut[0] = 0;
  c.next.id = 2;
  c.next.count = 3;
  c.next.members[0] = kUids[1];
  c.next.members[1] = kUids[0];
  c.next.members[2] = kUids[2];
  c.joiners_mask = 0b110;
  std::vector<std::byte> out;
  Writer w(&out);
  put_control_head(w, ControlKind::kInstall, kUids[1], 1);
  w.u64(c.attempt);
  put_cut_value(w, c);
  return out;
}

std::vector<std::byte> empty_snapshot() {
  std::vector<std::byte> out;
  Writer w(&out);
  put_control_head(w, ControlKind::kSnapChunk, kUids[1], 2);
  w.u64(2);
  w.u32(0);
  w.u32(0);
  w.u32(0);
  return out;
}

}  // namespace

volatile uint8_t sink = 0;  // delivered bytes are read into it, so ASan sees every payload

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ProtocolConfig config;
  Member m(config, kUids[0], 3);
  std::deque<std::vector<std::byte>> keep;  // datagram bytes (the member keeps none)
  RecordStore store(256, 0);                // record copies, freed once the member is done
  TimeNs now = 1'000'000;
  const NodeId seeds[] = {1, 2};
  m.start_join(seeds, now);
  m.clear_actions();
  m.on_control(1, install_for_joiner(), now);
  m.on_control(1, empty_snapshot(), now);
  m.clear_actions();

  uint64_t request_id = 0;
  Input in{data, size};
  for (int steps = 0; !in.empty() && steps < 512; ++steps) {
    const uint8_t op = in.u8();
    const NodeId from = 1 + (op >> 7);  // a peer of the view
    switch (op & 7) {
      case 0:
      case 1: {  // a record of a peer's log, or a datagram: the harness writes the head
        const bool record = (op & 7) == 0;
        const uint8_t kind = in.u8();
        const uint8_t view = in.u8() & 3;
        const uint8_t incarnation = (in.u8() & 1) + 1;
        const size_t length = in.u8();
        std::vector<std::byte> bytes;
        Writer w(&bytes);
        const Uid writer{from, incarnation};
        if (record) {
          put_record_head(w, static_cast<RecordKind>(kind % 7), writer, view);
        } else {
          put_control_head(w, static_cast<ControlKind>(kind % 14), writer, view);
        }
        w.bytes(in.take(length));
        if (record) {
          m.on_record(from, store.keep(bytes), now);
        } else {
          keep.push_back(std::move(bytes));
          m.on_control(from, keep.back(), now);
        }
        break;
      }
      case 2: {  // raw bytes, no help
        const auto raw = in.take(in.u8());
        if ((op & 8) != 0) {
          m.on_record(from, store.keep(raw), now);
        } else {
          keep.emplace_back(raw.begin(), raw.end());
          m.on_control(from, keep.back(), now);
        }
        break;
      }
      case 3:
        now += uint64_t{in.u8()} * 1'000'000;
        m.tick(now);
        break;
      case 4: m.end_burst(now); break;
      case 5: {
        const auto payload = in.take(in.u8() & 31);
        (void)m.send(static_cast<Mode>(in.u8() % 3), payload, now);
        break;
      }
      case 6: {  // a leave, or a point-to-point request or reply to a peer of the view
        if ((op & 0x40) != 0) {
          m.leave(now);
          break;
        }
        // Request ids are unique among a member's outstanding ones (the caller's contract,
        // asserted); reply ids are anything.
        const uint64_t id = (op & 0x20) != 0 ? ++request_id : in.u8();
        const auto payload = in.take(in.u8() & 31);
        if ((op & 0x20) != 0) {
          (void)m.send_request(kUids[from], id, payload, now);
        } else {
          (void)m.send_reply(kUids[from], id, payload, now);
        }
        break;
      }
      default: m.snapshot_taken(in.u8(), in.take(in.u8() & 15)); break;
    }
    // Every action must be well-formed: byte actions have bytes, deliveries a member sender.
    for (const Action& a : m.actions()) {
      if ((a.kind == ActionKind::kSend || a.kind == ActionKind::kAppend) && a.bytes.empty()) {
        __builtin_trap();
      }
      if (a.kind == ActionKind::kSend && a.to >= 3) __builtin_trap();
      if (a.kind == ActionKind::kDeliver || a.kind == ActionKind::kRequest ||
          a.kind == ActionKind::kReply) {
        const auto payload = a.kind == ActionKind::kDeliver ? a.delivery.payload : a.p2p.payload;
        uint8_t sum = 0;
        for (const std::byte b : payload)
          sum = static_cast<uint8_t>(sum + std::to_integer<uint8_t>(b));
        sink = static_cast<uint8_t>(sink + sum);
      }
      // A P2P action names a peer of the view (a request or reply) or the target asked.
      if ((a.kind == ActionKind::kRequest || a.kind == ActionKind::kReply ||
           a.kind == ActionKind::kRequestFailed) &&
          (!a.p2p.peer.valid() || a.p2p.peer.node >= 3)) {
        __builtin_trap();
      }
    }
    m.clear_actions();
    store.release(m);
  }
  return 0;
}
