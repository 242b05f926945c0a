// The shared-memory layout of one member's file: a control page, then its log.
//
//   offset 0      ControlPage (4 KiB): identity, heartbeat, and one cache line per peer:
//                 this member's read position in that peer's log, and where that peer may
//                 start reading this member's log
//   offset 4096   DoorbellPage (4 KiB): the owner's doorbell, a futex word its parked data
//                 thread sleeps on and that writers of the logs it reads ring; and the group's
//                 order counter while the owner is its view's sequencer (TicketLine)
//   offset 8192   the log: capacity bytes (a power of two) of 8-byte aligned records
//
// The owner maps its file read-write; peers map it read-only, except the doorbell page, which
// they map read-write. So a reader publishes how far it has read a peer's log in its *own*
// control page, and the peer (the writer) reads it from there. Everything another process reads is
// validated before use (DESIGN.md, principle 6); see transport/NOTES.md for the record protocol and
// the rules of joining.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "runtime/cache_line.h"
#include "runtime/idle.h"
#include "transport/log/log_format.h"
#include "transport/transport.h"

namespace cohort::transport::shm {

inline constexpr uint64_t kFileMagic = 0x4d53545248434f43ull;  // "COHRTSM" + 'M', little-endian
// 2: positions tagged, start grants; 3: the doorbell page before the log; 4: its ticket line;
// 5: the line says whether its owner orders by tickets.
inline constexpr uint32_t kLayoutVersion = 5;
inline constexpr size_t kControlPageBytes = 4096;
inline constexpr size_t kDoorbellPageBytes = 4096;
inline constexpr size_t kLogOffset = kControlPageBytes + kDoorbellPageBytes;

// Owner's lifecycle, in ControlPage::state.
enum MemberState : uint32_t {
  kStateCreating = 0,  // the file exists but its fields are not all written yet
  kStateActive = 1,    // readable; the owner is running
  kStateLeft = 2,      // the owner left cleanly; the file is about to go
};

// One per peer slot i, in the page of member X; X alone writes it (transport/NOTES.md).
struct alignas(kCacheLine) PositionSlot {
  // X as a reader of i's log: how far X has read it, stored with release after X finished
  // with the records below it; and the incarnation of i whose log that is (0: none yet).
  // X stores its start position and then the incarnation (release) when it subscribes, so
  // the writer that loads a matching incarnation (acquire) reads a position in its own log.
  std::atomic<uint64_t> position{0};
  std::atomic<uint64_t> log_incarnation{0};
  // X as the writer: the incarnation of i allowed to read X's log, from grant_position on
  // (X's tail when X attached that file of i). X stores the position, then the incarnation
  // with release; i subscribes only once it loads its own incarnation there (acquire).
  std::atomic<uint64_t> grant_position{0};
  std::atomic<uint64_t> grant_incarnation{0};
};
static_assert(sizeof(PositionSlot) == kCacheLine);

struct ControlPage {
  // Line 0: identity, written once before state becomes kStateActive.
  uint64_t magic;
  uint32_t version;
  uint32_t member;
  uint64_t group_hash;   // FNV-1a of the group name: a file of another group is refused
  uint64_t incarnation;  // random, nonzero, per start: tells a restarted member from its old self
  int32_t pid;           // for people and tools; liveness is the flock on the file (NOTES.md)
  uint32_t reserved0;
  uint64_t log_capacity;
  std::atomic<uint32_t> state;
  // 1 from creation until the owner's first scan for peers (try_attach_peers): until then
  // the owner has not lapped its log, and any reader may start at 0 without a grant
  // (transport/NOTES.md, "shm: joining late"). Stored 0 once, seq_cst, and never set again.
  std::atomic<uint32_t> open_from_zero;
  // Line 1: liveness, bumped by the owner's control core.
  alignas(kCacheLine) std::atomic<uint64_t> heartbeat;
  // Line 2: the writer's committed position, for stats and tools (readers poll records).
  alignas(kCacheLine) std::atomic<uint64_t> committed;
  // Lines 3..: per peer, this member's read position in its log and its grant to read ours.
  PositionSlot read_positions[kMaxMembers];
};

static_assert(sizeof(ControlPage) <= kControlPageBytes, "the control page must fit in a page");
static_assert(offsetof(ControlPage, heartbeat) == kCacheLine);
static_assert(offsetof(ControlPage, read_positions) % kCacheLine == 0);
static_assert(std::atomic<uint64_t>::is_always_lock_free);
static_assert(std::atomic<uint32_t>::is_always_lock_free);

// The page of a member's file that every peer maps read-write (transport/NOTES.md, "shm: the
// doorbell"). `bell` is the event count of the owner's data thread (runtime/idle.h): the owner
// alone announces and withdraws sleepers (waiters) and waits on epoch; a writer of a log the
// owner reads bumps epoch and wakes it, after it committed records, when a sleeper announced.
// The group's one-hop order counter (membership/protocol/types.h, TicketCounter) while the
// owner is its view's sequencer: every member of the view takes its messages' gseqs here with a
// compare-and-swap, so peers write it (the doorbell page is theirs to write). `owner` is the
// owner's incarnation in the protocol (its member id's), stored before it joins: a peer takes
// from the counter of the very process its view names, never from a later one in the same slot.
struct alignas(kCacheLine) TicketLine {
  std::atomic<uint64_t> word{0};  // membership::TicketWord: a view's tag and its next gseq
  std::atomic<uint32_t> owner{0};
  uint32_t uses_tickets = 0;  // ShmOptions::tickets, written before the file is published
};

struct DoorbellPage {
  alignas(kCacheLine) WakeWord bell;
  TicketLine tickets;
};
static_assert(sizeof(DoorbellPage) <= kDoorbellPageBytes);
static_assert(offsetof(DoorbellPage, bell) == 0);
static_assert(offsetof(DoorbellPage, tickets) == kCacheLine);

// FNV-1a, 64 bits: a stable hash of the group name for the control page.
inline uint64_t group_hash(const char* name) noexcept {
  uint64_t h = 0xcbf29ce484222325ull;
  for (const char* p = name; *p != '\0'; ++p) {
    h ^= static_cast<unsigned char>(*p);
    h *= 0x100000001b3ull;
  }
  return h;
}

}  // namespace cohort::transport::shm
