// The directory-of-files loader (include/cohort/cache.h: make_file_loader). One file per key;
// the file name encodes every byte outside [A-Za-z0-9_.-] as %XX (and a leading '.' too, so no
// name is "." or ".." or hidden), so any key of up to 250 bytes is a safe name of at most 750.
// A store writes a temporary file and renames it over the old one: a load sees the old value or
// the new one whole, never a torn one.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <string>

#include "cohort/cache.h"

namespace cohort {
namespace {

bool plain(char c, bool first) {
  if (c == '.') return !first;
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-';
}

std::string file_name(std::string_view key) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (size_t i = 0; i < key.size(); ++i) {
    const char c = key[i];
    if (plain(c, i == 0)) {
      out += c;
    } else {
      const auto u = static_cast<unsigned char>(c);
      out += '%';
      out += kHex[u >> 4];
      out += kHex[u & 15];
    }
  }
  return out;
}

class FileLoader final : public CacheLoader {
 public:
  explicit FileLoader(std::string dir) : dir_(std::move(dir)) {}

  LoadStatus load(std::string_view key, std::string* value) override {
    if (key.empty() || key.size() > kMaxCacheKeyBytes) return LoadStatus::kError;
    const int fd = ::open(path(key).c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return errno == ENOENT ? LoadStatus::kNotFound : LoadStatus::kError;
    value->clear();
    char buf[65536];
    for (;;) {
      const ssize_t n = ::read(fd, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        ::close(fd);
        return LoadStatus::kError;
      }
      if (n == 0) break;
      value->append(buf, static_cast<size_t>(n));
    }
    ::close(fd);
    return LoadStatus::kOk;
  }

  bool store(std::string_view key, std::string_view value) override {
    if (key.empty() || key.size() > kMaxCacheKeyBytes) return false;
    const std::string final_path = path(key);
    const std::string tmp = dir_ + "/.tmp." + std::to_string(::getpid()) + "." +
                            std::to_string(counter_.fetch_add(1, std::memory_order_relaxed));
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return false;
    size_t done = 0;
    while (done < value.size()) {
      const ssize_t n = ::write(fd, value.data() + done, value.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        ::close(fd);
        ::unlink(tmp.c_str());
        return false;
      }
      done += static_cast<size_t>(n);
    }
    if (::close(fd) != 0 || ::rename(tmp.c_str(), final_path.c_str()) != 0) {
      ::unlink(tmp.c_str());
      return false;
    }
    return true;
  }

  bool remove(std::string_view key) override {
    if (key.empty() || key.size() > kMaxCacheKeyBytes) return false;
    return ::unlink(path(key).c_str()) == 0 || errno == ENOENT;
  }

  const char* name() const noexcept override { return "files"; }

 private:
  std::string path(std::string_view key) const { return dir_ + "/" + file_name(key); }

  std::string dir_;
  std::atomic<uint64_t> counter_{0};
};

}  // namespace

Result<std::unique_ptr<CacheLoader>> make_file_loader(const std::string& dir) {
  if (dir.empty()) return Error(Errc::kInvalidArgument, "files: the folder's path is empty");
  if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) {
    return system_error("files: cannot create the folder " + dir, errno);
  }
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return Error(Errc::kInvalidArgument, "files: " + dir + " is not a folder");
  }
  return std::unique_ptr<CacheLoader>(std::make_unique<FileLoader>(dir));
}

}  // namespace cohort
