#include "runtime/page_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

namespace cohort {

void* map_page_file(const std::string& path, size_t bytes) noexcept {
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return nullptr;
  if (ftruncate(fd, static_cast<off_t>(bytes)) != 0) {
    ::close(fd);
    return nullptr;
  }
  void* map = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  ::close(fd);
  return map == MAP_FAILED ? nullptr : map;
}

void unmap_page_file(void* page, size_t bytes, const std::string& path) noexcept {
  if (page == nullptr) return;
  munmap(page, bytes);
  unlink(path.c_str());
}

}  // namespace cohort
