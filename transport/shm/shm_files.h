// Helpers shared by the shm transport's setup files (shm_setup.cc, shm_peers.cc): who owns a
// member file, and the bounds of a log. Not part of the transport's interface.
#pragma once

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>

namespace cohort::transport::shm::detail {

inline constexpr uint64_t kMinLogBytes = 64 << 10;
inline constexpr uint64_t kMaxLogBytes = 1ull << 30;

// The owner of a member file holds an exclusive flock on it for its whole life; the kernel
// drops the lock when the process dies, even by SIGKILL. So a file nobody holds is stale.
inline bool owner_gone(int fd) noexcept {
  if (flock(fd, LOCK_SH | LOCK_NB) == 0) {
    flock(fd, LOCK_UN);
    return true;
  }
  return false;
}

inline bool path_owner_gone(const char* path) noexcept {
  const int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno == ENOENT;
  const bool gone = owner_gone(fd);
  close(fd);
  return gone;
}

}  // namespace cohort::transport::shm::detail
