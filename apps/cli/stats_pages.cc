#include "apps/cli/stats_pages.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <vector>

namespace cohort::cli::detail {

void for_each_page_file(const std::string& folder, std::string_view prefix,
                        const std::function<void(const void* map)>& visit) {
  std::vector<std::string> pages;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(folder, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.starts_with(prefix) && name.size() > 5 &&
        name.compare(name.size() - 5, 5, ".page") == 0) {
      pages.push_back(entry.path().string());
    }
  }
  std::sort(pages.begin(), pages.end());
  for (const std::string& path : pages) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue;
    void* map = mmap(nullptr, 4096, PROT_READ, MAP_SHARED, fd, 0);
    ::close(fd);
    if (map == MAP_FAILED) continue;
    visit(map);
    munmap(map, 4096);
  }
}

bool writer_alive(int32_t pid) {
  return pid > 0 && (kill(pid, 0) == 0 || errno == EPERM);
}

}  // namespace cohort::cli::detail
