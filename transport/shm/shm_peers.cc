// The shm transport's peers: attaching their files (validated before use), re-attaching a slot
// whose process was replaced, the grants that say where a reader starts in a writer's log,
// liveness, and declaring a peer gone. Control path, on the thread that owns the data path
// (attaching changes the publication's readers and replaces subscriptions). The rules are in
// transport/NOTES.md, "shm: joining late, dying, being replaced".
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <string>
#include <thread>

#include "transport/shm/shm_files.h"
#include "transport/shm/shm_transport.h"

namespace cohort::transport::shm {

using detail::kMaxLogBytes;
using detail::kMinLogBytes;
using detail::owner_gone;
using detail::path_owner_gone;

Result<bool> ShmTransport::try_attach(MemberId peer) {
  Peer& p = peers_[peer];
  struct stat st {};
  if (stat(peer_log_paths_[peer].c_str(), &st) != 0) {
    if (errno != ENOENT) return system_error("shm: cannot stat " + peer_log_paths_[peer], errno);
    // Not started, or gone (left, or died and cleaned up): keep whatever we have; liveness
    // and declare_gone() decide about a mapped one.
    return subscribe(peer);
  }
  const FileId id{static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino)};
  if ((p.map != nullptr && id == p.file) || id == p.ignored) return subscribe(peer);
  // A file this slot has not had before: its first process, or a new one.
  auto mapped = map_peer_file(peer);
  if (!mapped.ok()) return std::move(mapped).error();
  return subscribe(peer);
}

// Maps the file now at the slot's path if it is valid, active and owned by a live process,
// replacing what the slot had. False when there is nothing to attach (yet).
Result<bool> ShmTransport::map_peer_file(MemberId peer) {
  Peer& p = peers_[peer];
  const std::string& path = peer_log_paths_[peer];
  // Read-write only for the doorbell page's mapping below; the rest is mapped read-only.
  const int fd = open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return false;  // removed since stat(): try again later
    return system_error("shm: cannot open " + path, errno);
  }
  ControlPage page;
  struct stat st {};
  const bool readable = fstat(fd, &st) == 0 &&
                        static_cast<uint64_t>(st.st_size) >= kControlPageBytes &&
                        pread(fd, &page, sizeof page, 0) == static_cast<ssize_t>(sizeof page);
  const FileId id{static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino)};
  const uint64_t cap = readable ? page.log_capacity : 0;
  const char* problem = nullptr;
  if (!readable)
    problem = "is shorter than a control page";
  else if (page.magic != kFileMagic)
    problem = "has a bad magic number";
  else if (page.version != kLayoutVersion)
    problem = "has another layout version";
  else if (page.member != peer)
    problem = "names another member";
  else if (page.group_hash != group_hash_)
    problem = "belongs to another group";
  else if (page.incarnation == 0 || page.incarnation == incarnation_)
    problem = "has an impossible incarnation";
  else if (cap < kMinLogBytes || cap > kMaxLogBytes || (cap & (cap - 1)) != 0)
    problem = "has an impossible log size";
  else if (static_cast<uint64_t>(st.st_size) != kLogOffset + cap)
    problem = "has a size that does not match its log";
  if (problem != nullptr) {
    close(fd);
    return Error(Errc::kParse,
                 "shm: " + path + " " + problem + "; if no member is running with it, remove it");
  }
  if (id == p.ignored || (p.map != nullptr && id == p.file)) {
    close(fd);  // the name moved back to a file we know between stat() and open()
    return false;
  }
  const size_t bytes = kLogOffset + cap;
  void* map = mmap(nullptr, bytes, PROT_READ, MAP_SHARED, fd, 0);
  if (map == MAP_FAILED) {
    const int err = errno;
    close(fd);
    return system_error("shm: cannot map " + path, err);
  }
  // The doorbell page, the one page we write: a second mapping of the same file page, so the
  // futex key (the file's page, not our address) is the one its owner sleeps on.
  void* bell = mmap(nullptr, kDoorbellPageBytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
                    static_cast<off_t>(kControlPageBytes));
  if (bell == MAP_FAILED) {
    const int err = errno;
    munmap(map, bytes);
    close(fd);
    return system_error("shm: cannot map the doorbell page of " + path, err);
  }
  const auto* mapped_page = static_cast<const ControlPage*>(map);
  // acquire: pairs with the release store of state in create_own_file(). A file under its
  // final name is never kStateCreating; kStateLeft is for good. And the owner must be alive
  // (it holds the flock from before the link to its death): a dead process's file is stale,
  // and attaching it would count a reader that never reads.
  const bool active = mapped_page->state.load(std::memory_order_acquire) == kStateActive;
  if (!active || owner_gone(fd)) {
    munmap(bell, kDoorbellPageBytes);
    munmap(map, bytes);
    close(fd);
    p.ignored = id;
    return false;
  }
  drop_peer(peer);  // the slot's previous process, if any: its log and its reading of ours
  p.map = static_cast<std::byte*>(map);
  p.page = mapped_page;
  p.bell = static_cast<DoorbellPage*>(bell);
  p.fd = fd;
  p.bytes = bytes;
  p.pid = page.pid;
  p.incarnation = page.incarnation;
  p.file = id;
  p.gone = false;
  // The grant: this process reads our log from our tail now. The writer (this thread) zeroed
  // the header at the tail when it committed the record before it, so the reader finds there
  // either nothing yet or the next record, never an older lap.
  uint64_t start = publication_.position();
  const PositionSlot& theirs = p.page->read_positions[options_.self];
  // seq_cst: the second half of the handshake that closes our log's open start at 0 (see
  // try_attach_peers() and subscribe()): if this process subscribed at 0 while our log was
  // open, this load sees its tag, and so do the writer's later (acquire) loads of it. Then it
  // reads from 0, which we still hold: the placeholder reader kept us from lapping it.
  if (theirs.log_incarnation.load(std::memory_order_seq_cst) == incarnation_ && open_from_zero_) {
    start = 0;
  }
  PositionSlot& grant = own_page_->read_positions[peer];
  // relaxed: ordered before the peer can use it by the release store just below.
  grant.grant_position.store(start, std::memory_order_relaxed);
  // release: pairs with the acquire load of grant_incarnation in the peer's subscribe().
  grant.grant_incarnation.store(p.incarnation, std::memory_order_release);
  publication_.attach_reader_at(peer, &theirs.position, start, &theirs.log_incarnation,
                                incarnation_);
  return true;
}

// Subscribes to a mapped peer's log once the peer has granted this process a start position.
Result<bool> ShmTransport::subscribe(MemberId peer) {
  Peer& p = peers_[peer];
  if (p.map == nullptr) return false;
  if (p.subscribed) return true;
  const PositionSlot& grant = p.page->read_positions[options_.self];
  PositionSlot& mine = own_page_->read_positions[peer];
  uint64_t start = 0;
  // acquire: pairs with the release store of grant_incarnation in the peer's map_peer_file();
  // the grant position and the zeroed header at it are visible.
  if (grant.grant_incarnation.load(std::memory_order_acquire) == incarnation_) {
    start = grant.grant_position.load(std::memory_order_relaxed);
    if (start % kRecordAlign != 0) {
      return Error(Errc::kParse, "shm: " + peer_log_paths_[peer] + " grants member " +
                                     std::to_string(options_.self) + " the unaligned start " +
                                     std::to_string(start) + "; its writer is broken: stop it");
    }
    // relaxed: ordered before the writer believes it by the release store just below.
    mine.position.store(start, std::memory_order_relaxed);
    // release: pairs with the acquire load of the tag in LogWriter::min_reader_position().
    mine.log_incarnation.store(p.incarnation, std::memory_order_release);
  } else {
    // No grant yet: start at 0 if the writer has not scanned for peers yet. Dekker's
    // handshake with try_attach_peers() on its side: we store our tag, then load its flag;
    // it stores the flag, then loads our tag (map_peer_file), all seq_cst. Either we see the
    // log closed, or its scan sees our tag and counts us from our position, 0.
    // acquire: a closed log stays closed; no need to announce ourselves.
    if (p.page->open_from_zero.load(std::memory_order_acquire) == 0) return false;
    mine.position.store(0, std::memory_order_relaxed);  // ordered by the seq_cst store below
    mine.log_incarnation.store(p.incarnation, std::memory_order_seq_cst);
    if (p.page->open_from_zero.load(std::memory_order_seq_cst) == 0) {
      // Closed meanwhile: its grant will come. release: the writer counts us at the grant.
      mine.log_incarnation.store(0, std::memory_order_release);
      return false;
    }
  }
  subs_[peer] = LogReader(p.map + kLogOffset, p.bytes - kLogOffset, &mine.position, start);
  p.subscribed = true;
  ++p.generation;
  return true;
}

// Forgets the slot's process: its mapping, our subscription to its log, its reading of ours,
// and our grant to it. Keeps what outlives one process: the generation and the ignored file.
void ShmTransport::drop_peer(MemberId peer) noexcept {
  Peer& p = peers_[peer];
  if (p.map == nullptr) return;
  publication_.remove_reader(peer);
  subs_[peer] = LogReader();
  // release: a process of this slot that loads this no longer subscribes (its grant is gone).
  own_page_->read_positions[peer].grant_incarnation.store(0, std::memory_order_release);
  munmap(p.bell, kDoorbellPageBytes);
  munmap(p.map, p.bytes);
  close(p.fd);
  p.map = nullptr;
  p.page = nullptr;
  p.bell = nullptr;
  p.bytes = 0;
  p.fd = -1;
  p.pid = 0;
  p.incarnation = 0;
  p.file = FileId{};
  p.subscribed = false;
}

Result<uint32_t> ShmTransport::try_attach_peers() {
  if (open_from_zero_) {
    // Our first scan closes the open start at 0: from now on a reader starts where we grant
    // it. seq_cst: Dekker's handshake with a reader's subscribe(); see there. Every process
    // that may have started at 0 created its file before, so the scan below maps it.
    own_page_->open_from_zero.store(0, std::memory_order_seq_cst);
  }
  uint32_t attached = 0;
  Status first_error;
  for (MemberId m = 0; m < options_.members; ++m) {
    if (m == options_.self) continue;
    auto r = try_attach(m);
    if (!r.ok()) {
      if (first_error.ok()) first_error = std::move(r).error();
      continue;
    }
    if (*r) ++attached;
  }
  if (!first_error.ok()) return std::move(first_error).error();
  if (open_from_zero_) {
    // Every slot was looked at: whoever started at 0 is counted now, by its own position.
    publication_.remove_reader(options_.self);
    open_from_zero_ = false;
  }
  return attached;
}

Status ShmTransport::attach_peers(uint64_t timeout_ms) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    auto r = try_attach_peers();
    if (!r.ok()) return std::move(r).error();
    if (*r + 1 == options_.members) return {};
    if (std::chrono::steady_clock::now() > deadline) {
      std::string missing;
      for (MemberId m = 0; m < options_.members; ++m) {
        if (m != options_.self && !peers_[m].subscribed) {
          missing += (missing.empty() ? "" : ", ") + std::to_string(m);
        }
      }
      return Error(Errc::kUnavailable, "shm: members " + missing + " of group '" + options_.group +
                                           "' did not appear in " + group_dir_ + " within " +
                                           std::to_string(timeout_ms) +
                                           " ms; start them, or check shm.dir");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

void ShmTransport::beat() noexcept {
  // relaxed: a counter that only this member writes; readers want a changing value, no order.
  own_page_->heartbeat.store(own_page_->heartbeat.load(std::memory_order_relaxed) + 1,
                             std::memory_order_relaxed);
}

uint64_t ShmTransport::heartbeat_of(MemberId peer) const noexcept {
  if (peer >= kMaxMembers || peers_[peer].page == nullptr) return 0;
  return peers_[peer].page->heartbeat.load(std::memory_order_relaxed);
}

bool ShmTransport::peer_alive(MemberId peer) const {
  if (peer >= kMaxMembers) return false;
  const Peer& p = peers_[peer];
  if (p.gone) return false;
  if (p.page == nullptr) return !path_owner_gone(peer_log_paths_[peer].c_str());
  if (p.page->state.load(std::memory_order_acquire) == kStateLeft) return false;
  return !owner_gone(p.fd);
}

bool ShmTransport::peer_left(MemberId peer) const noexcept {
  if (peer >= kMaxMembers || peers_[peer].page == nullptr) return false;
  // acquire: pairs with the release store of kStateLeft in leave().
  return peers_[peer].page->state.load(std::memory_order_acquire) == kStateLeft;
}

void ShmTransport::declare_gone(MemberId peer) noexcept {
  if (peer >= kMaxMembers || peer == options_.self) return;
  Peer& p = peers_[peer];
  if (p.map != nullptr) p.ignored = p.file;  // this process never comes back; a new one may
  drop_peer(peer);
  publication_.remove_reader(peer);  // also a reader expected before its file was mapped
  if (own_page_ != nullptr) {
    // release: pairs with the acquire loads in the peer's LogWriter::min_reader_position().
    // Whatever the peer's process still writes, we need none of it: a peer that was only
    // suspected is not held back by our old position in its log.
    own_page_->read_positions[peer].position.store(~uint64_t{0}, std::memory_order_release);
  }
  p.gone = true;
}

}  // namespace cohort::transport::shm
