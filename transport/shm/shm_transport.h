// ShmTransport: the embedded default. Every member of a group on this host has one file in
// a runtime directory (mode 0700, the user's own), holding a control page and its log:
//   <dir>/<group>/m<id>.log   (mode 0600; peers map it read-only)
//   <dir>/<group>/m<id>.sock  the member's control-channel socket (AF_UNIX datagrams)
// where <dir> is /dev/shm/cohort-<uid> unless configured otherwise.
//
// Setup (create, attach_peers, leave) runs on the control path and returns Result; the data
// path (publication(), subscription()) is in transport/log/log.h. One thread owns the data path;
// the control channel and liveness calls belong to the control core.
//
// Membership may change while the group runs (transport/NOTES.md, "shm: joining late"): `members`
// is the number of slots, a slot may be empty, and a slot's process may die and be replaced by a
// new one. try_attach_peers() attaches what is there, re-attaches a slot whose file was replaced,
// and attach_generation() tells the caller that a peer's log started over.
#pragma once

#include <sys/socket.h>
#include <sys/un.h>

#include <cstdint>
#include <memory>
#include <string>

#include "runtime/result.h"
#include "transport/log/log.h"
#include "transport/shm/shm_layout.h"
#include "transport/transport.h"

namespace cohort::transport::shm {

struct ShmOptions {
  std::string dir;    // empty: /dev/shm/cohort-<uid>
  std::string group;  // [A-Za-z0-9_.-], 1..64 characters
  MemberId self = 0;
  uint32_t members = 0;             // slots: member ids 0..members-1, any of them may be empty
  uint64_t log_bytes = 8ull << 20;  // a power of two, 64 KiB..1 GiB
  // The member orders by tickets (membership: TicketCounter): its ticket line is the group's
  // counter while it is a view's sequencer. Written in its file, so that a member started with
  // the other order can refuse to join (every member of a group must choose alike).
  bool tickets = false;
};

// The default runtime directory for this user.
std::string default_shm_dir();

class ShmTransport {
 public:
  static Result<std::unique_ptr<ShmTransport>> create(const ShmOptions& options);
  ~ShmTransport();

  ShmTransport(const ShmTransport&) = delete;
  ShmTransport& operator=(const ShmTransport&) = delete;

  MemberId self() const noexcept { return options_.self; }
  uint32_t members() const noexcept { return options_.members; }
  const std::string& group_dir() const noexcept { return group_dir_; }

  // Never blocks; call it periodically (every few milliseconds: it costs one stat() per
  // slot). For every slot whose file is there, valid and owned by a live process, it maps
  // the file, starts counting that peer as a reader of our log from our position() now (its
  // grant), and subscribes to the peer's log once the peer has granted us the same. A slot
  // whose file was replaced by a new process's (another inode) is re-attached: the old
  // mapping and subscription are dropped, the old reader of our log is forgotten, and
  // attach_generation(peer) goes up. A file whose owner died, one that left, and one declared
  // gone are never attached again. Returns how many peers are subscribed.
  // Runs on the thread that owns the data path: it changes publication()'s readers and
  // replaces subscriptions, ending the views of records polled from a replaced one.
  Result<uint32_t> try_attach_peers();
  // Calls try_attach_peers() until every slot is subscribed, up to timeout_ms: for a group
  // whose members all start together.
  Status attach_peers(uint64_t timeout_ms);

  LogWriter& publication() noexcept { return publication_; }

  // The doorbell (transport/NOTES.md, "shm: the doorbell"): our event count in the doorbell
  // page of our file, which every attached peer maps read-write. The data thread's Waker binds
  // to it (Waker::bind_shared) so that it parks there; peers that append to logs we read ring
  // it. Valid until leave().
  WakeWord* doorbell() noexcept { return own_bell_; }
  // Data path, once per burst after its commits: wakes each attached peer whose data thread
  // announced a park on its doorbell. Nothing committed since the last call: one compare.
  // Otherwise one seq_cst fence, then one load per attached peer, and a futex system call only
  // for a peer that announced. Returns the number of peers woken.
  uint32_t ring_doorbells() noexcept;
  // Whether the attached file of `member` orders by tickets (ShmOptions::tickets): 1 or 0; -1
  // when no file of that slot is attached.
  int peer_tickets(MemberId member) const noexcept {
    if (member >= kMaxMembers || peers_[member].bell == nullptr) return -1;
    return peers_[member].bell->tickets.uses_tickets != 0 ? 1 : 0;
  }
  bool tickets() const noexcept { return options_.tickets; }
  // The ticket line (shm_layout.h) of `member`'s file: ours, or an attached peer's; nullptr when
  // no file of that slot is mapped. A peer's stays valid until it is detached (try_attach_peers,
  // declare_gone), on the data path's thread.
  TicketLine* ticket_line(MemberId member) noexcept {
    if (member == options_.self) return &own_doorbell_page()->tickets;
    return member < kMaxMembers && peers_[member].bell != nullptr ? &peers_[member].bell->tickets
                                                                  : nullptr;
  }
  // Wakes sent by ring_doorbells(), since create(); for stats.
  uint64_t doorbell_wakes() const noexcept { return doorbell_wakes_; }
  // nullptr for self, for a peer not attached yet, and for a peer declared gone. The object
  // stays the same when the peer is re-attached; check attach_generation().
  LogReader* subscription(MemberId peer) noexcept {
    return peer < kMaxMembers && subs_[peer].attached() ? &subs_[peer] : nullptr;
  }
  // How many times a subscription to the peer's log was attached: 0 before the first; each
  // increase means the subscription now reads another process's log, from the position that
  // process granted us (its tail when it attached our file; 0 if it did so before writing).
  uint64_t attach_generation(MemberId peer) const noexcept {
    return peer < kMaxMembers ? peers_[peer].generation : 0;
  }
  // Our own incarnation (random, nonzero, in our control page), and that of the peer's file
  // we have mapped (0 when none): a pair (member, incarnation) names one process.
  uint64_t incarnation() const noexcept { return incarnation_; }
  uint64_t peer_incarnation(MemberId peer) const noexcept {
    return peer < kMaxMembers ? peers_[peer].incarnation : 0;
  }
  // Where the peer reads our log from: our position() when we attached its current file.
  // Meaningful while publication().counts_reader(peer); a record committed at or after it
  // will be read by that process.
  uint64_t reader_start(MemberId peer) const noexcept { return publication_.reader_start(peer); }

  // Liveness, for the control core. A heartbeat is a counter in the control page; a
  // re-attached peer's (a new process) starts again from 0.
  void beat() noexcept;
  uint64_t heartbeat_of(MemberId peer) const noexcept;
  // About the process attached in the slot (or, when none is, the file at the slot's path).
  // False once that process is gone (it no longer holds the flock on its file, which the
  // kernel drops when a process dies, SIGKILL included), or it left; false after
  // declare_gone() until a new process of the slot is attached.
  bool peer_alive(MemberId peer) const;
  // True when the peer left cleanly (its control page says so), as opposed to dying.
  bool peer_left(MemberId peer) const noexcept;
  // Stop waiting for a peer: the writer no longer counts its read position, and its log is
  // no longer read (we publish that we need nothing more of it). The membership layer calls
  // this when a view change removes the peer. That file is never attached again; a new
  // process in the slot is (try_attach_peers). Same thread rule as try_attach_peers().
  void declare_gone(MemberId peer) noexcept;

  // The control channel: small datagrams to one peer, never blocking. kNoPeer while nobody
  // is bound at the slot's address (empty slot, dead process); kOk again once a new process
  // of that slot has started.
  SendStatus send_control(MemberId to, std::span<const std::byte> bytes) noexcept;
  // Up to max datagrams that arrived; valid until the next call. Datagrams from an address
  // that is not a member of this group are dropped and counted. The sender is known by its
  // slot only: a datagram that a replaced process sent before it died may still arrive.
  uint32_t poll_control(ControlMessage* out, uint32_t max) noexcept;
  uint64_t control_drops() const noexcept { return control_drops_; }

  // Leaves cleanly: marks the control page, closes the log, removes the file and the socket.
  // Called by the destructor if not before.
  void leave();

 private:
  explicit ShmTransport(const ShmOptions& options);
  Status setup();
  Status prepare_dirs();
  Result<int> lock_group_dir();
  Status remove_stale_files();
  Status create_own_file();
  Status open_control_socket();
  Result<bool> try_attach(MemberId peer);
  Result<bool> map_peer_file(MemberId peer);
  Result<bool> subscribe(MemberId peer);
  void drop_peer(MemberId peer) noexcept;
  std::string member_path(MemberId m, const char* suffix) const;
  static constexpr MemberId kNoMember = ~MemberId{0};
  MemberId sender_of(const sockaddr_un& addr, socklen_t len) const noexcept;

  ShmOptions options_;
  std::string group_dir_;
  uint64_t group_hash_ = 0;

  int own_fd_ = -1;
  std::byte* own_map_ = nullptr;
  size_t map_bytes_ = 0;
  ControlPage* own_page_ = nullptr;
  WakeWord* own_bell_ = nullptr;
  DoorbellPage* own_doorbell_page() noexcept {
    return reinterpret_cast<DoorbellPage*>(own_map_ + kControlPageBytes);
  }
  LogWriter publication_;
  uint64_t rung_position_ = 0;  // our log's position at the last ring_doorbells()
  uint64_t doorbell_wakes_ = 0;

  // A file by identity: a new process's file is a new inode, even while the old one is mapped.
  struct FileId {
    uint64_t dev = 0;
    uint64_t ino = 0;
    bool operator==(const FileId&) const = default;
  };
  struct Peer {
    std::byte* map = nullptr;
    size_t bytes = 0;
    int fd = -1;  // kept open: its flock tells whether the owner still runs
    const ControlPage* page = nullptr;
    DoorbellPage* bell = nullptr;  // its doorbell page, mapped read-write on its own
    int32_t pid = 0;
    uint64_t incarnation = 0;
    FileId file;     // the mapped file
    FileId ignored;  // a file of this slot never to attach: declared gone, dead or left
    bool subscribed = false;
    bool gone = false;  // declared gone, and no new process attached since
    uint64_t generation = 0;
  };
  Peer peers_[kMaxMembers];
  LogReader subs_[kMaxMembers];
  uint64_t incarnation_ = 0;
  bool open_from_zero_ = true;  // our log is open from 0: no complete scan for peers yet

  int sock_fd_ = -1;
  std::string peer_log_paths_[kMaxMembers];
  std::string peer_sock_paths_[kMaxMembers];
  static constexpr uint32_t kControlBatch = 32;
  std::unique_ptr<std::byte[]> control_buffers_;  // kControlBatch x kMaxControlBytes
  uint64_t control_drops_ = 0;
  bool published_ = false;  // our log file is under its final name
  bool bound_ = false;      // our control socket is bound
  bool left_ = false;
};

}  // namespace cohort::transport::shm
