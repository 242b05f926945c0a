// ShmTransport: the embedded default. Every member of a group on this host has one file in
// a runtime directory (mode 0700, the user's own), holding a control page and its log:
//   <dir>/<group>/m<id>.log   (mode 0600; peers map it read-only)
//   <dir>/<group>/m<id>.sock  the member's control-channel socket (AF_UNIX datagrams)
// where <dir> is /dev/shm/cohort-<uid> unless configured otherwise.
//
// Setup (create, attach_peers, leave) runs on the control path and returns Result; the data
// path (publication(), subscription()) is in transport/log/log.h. One thread owns the data path;
// the control channel and liveness calls belong to the control core.
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
  uint32_t members = 0;             // the group is members 0..members-1 (a static set for now)
  uint64_t log_bytes = 8ull << 20;  // a power of two, 64 KiB..1 GiB
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

  // Maps every peer's file that is there and valid; returns how many peers are attached.
  // Call until it reaches members() - 1 (attach_peers waits for that, up to timeout_ms).
  Result<uint32_t> try_attach_peers();
  Status attach_peers(uint64_t timeout_ms);

  LogWriter& publication() noexcept { return publication_; }
  // nullptr for self, for a peer not attached yet, and for a peer declared gone.
  LogReader* subscription(MemberId peer) noexcept {
    return peer < kMaxMembers && subs_[peer].attached() ? &subs_[peer] : nullptr;
  }

  // Liveness, for the control core. A heartbeat is a counter in the control page.
  void beat() noexcept;
  uint64_t heartbeat_of(MemberId peer) const noexcept;
  // False once the peer's process is gone (it no longer holds the flock on its file, which
  // the kernel drops when a process dies, SIGKILL included), or it left.
  bool peer_alive(MemberId peer) const;
  // True when the peer left cleanly (its control page says so), as opposed to dying.
  bool peer_left(MemberId peer) const noexcept;
  // Stop waiting for a peer: the writer no longer counts its read position, and its log is
  // no longer read. The membership layer calls this when a view change removes the peer.
  void declare_gone(MemberId peer) noexcept;

  // The control channel: small datagrams to one peer, never blocking.
  SendStatus send_control(MemberId to, std::span<const std::byte> bytes) noexcept;
  // Up to max datagrams that arrived; valid until the next call. Datagrams from an address
  // that is not a member of this group are dropped and counted.
  uint32_t poll_control(ControlMessage* out, uint32_t max) noexcept;
  uint64_t control_drops() const noexcept { return control_drops_; }

  // Leaves cleanly: marks the control page, closes the log, removes the file and the socket.
  // Called by the destructor if not before.
  void leave();

 private:
  explicit ShmTransport(const ShmOptions& options);
  Status setup();
  Status prepare_dirs();
  Status remove_stale_files();
  Status create_own_file();
  Status open_control_socket();
  Result<bool> try_attach(MemberId peer);
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
  LogWriter publication_;

  struct Peer {
    std::byte* map = nullptr;
    size_t bytes = 0;
    int fd = -1;  // kept open: its flock tells whether the owner still runs
    const ControlPage* page = nullptr;
    int32_t pid = 0;
    bool gone = false;
  };
  Peer peers_[kMaxMembers];
  LogReader subs_[kMaxMembers];

  int sock_fd_ = -1;
  std::string peer_sock_paths_[kMaxMembers];
  static constexpr uint32_t kControlBatch = 32;
  std::unique_ptr<std::byte[]> control_buffers_;  // kControlBatch x kMaxControlBytes
  uint64_t control_drops_ = 0;
  bool published_ = false;  // our log file is under its final name
  bool bound_ = false;      // our control socket is bound
  bool left_ = false;
};

}  // namespace cohort::transport::shm
