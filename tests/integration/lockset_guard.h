// The lock-set workload's shared file and its guard (tests/integration/NOTES.md, "The lock-set
// workload"). The guard is the file's own protection against a stale lock holder: every access
// presents the holder's fencing token, and the guard refuses a token lower than the highest it
// has seen. Used by lockset_worker.cc (the accesses) and lockset_test.cc (the checks).
//
// Files, all in one folder, all changed only under an flock on `set.guard`:
//   set           the data: a header line, then one element per line, oldest first
//   set.accepted  one line per accepted write: "accept fence= prev= writer= element= count="
//   set.refused   one line per refused access: "refuse op=read|write fence= seen= accepted=
//                 writer= weak=0|1"
//
// Why reads are fenced too. The workload is read-modify-write. A guard that compared a write's
// token only with the highest *accepted write* would lose elements: holder F (removed while
// paused between its read and its write) and its successor G > F both read the same contents;
// F writes first (accepted: nothing above F was written yet), then G writes (accepted: G > F),
// and G's contents lack F's element. So the guard records the highest token *presented*, by a
// read or a write (`seen`), and refuses anything below it: once G has read, F can no longer
// write. A refused write that the weaker rule would have taken is logged with weak=1: each is
// an element that the weaker guard would have lost.
//
// Process crashes only (SIGKILL, SIGSTOP), no machine crash: the page cache outlives the
// process, so no fsync. The data file is replaced atomically (write a temporary file, rename).
// A writer killed between the rename and the log's append leaves the log one line short; the
// next access under the flock appends that line from the data file's header (recovered=1).
#pragma once

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace cohort::lockset {

inline constexpr std::string_view kMagic = "cohort-lockset-1";

// The value of `key=` in a line of space-separated key=value fields ("" when absent).
inline std::string_view field(std::string_view line, std::string_view key) {
  size_t at = 0;
  while (at < line.size()) {
    const size_t end = std::min(line.find(' ', at), line.size());
    const std::string_view tok = line.substr(at, end - at);
    if (tok.size() > key.size() && tok.substr(0, key.size()) == key && tok[key.size()] == '=') {
      return tok.substr(key.size() + 1);
    }
    at = end + 1;
  }
  return {};
}

inline bool to_u64(std::string_view s, uint64_t* out) {
  if (s.empty()) return false;
  const auto r = std::from_chars(s.data(), s.data() + s.size(), *out);
  return r.ec == std::errc() && r.ptr == s.data() + s.size();
}

// The data file.
struct SetFile {
  uint64_t accepted = 0;                    // token of the last accepted write (0: none yet)
  uint64_t prev = 0;                        // token of the accepted write before it
  uint64_t seen = 0;                        // highest token presented by a read or a write
  std::string writer = "-", element = "-";  // of the last accepted write
  std::vector<std::string> elements;
};

inline std::string format(const SetFile& f) {
  std::string s(kMagic);
  s += " accepted=" + std::to_string(f.accepted) + " prev=" + std::to_string(f.prev) +
       " seen=" + std::to_string(f.seen) + " writer=" + f.writer + " element=" + f.element +
       " count=" + std::to_string(f.elements.size()) + "\n";
  for (const std::string& e : f.elements) s += e + "\n";
  return s;
}

// False (with the reason) for anything but a well-formed file: the header's fields, a count
// that matches the lines, no empty element.
inline bool parse(std::string_view text, SetFile* f, std::string* error) {
  *f = SetFile{};
  if (text.empty()) return true;  // not written yet
  const size_t nl = text.find('\n');
  if (nl == std::string_view::npos) {
    *error = "no header line";
    return false;
  }
  const std::string_view head = text.substr(0, nl);
  uint64_t count = 0;
  if (head.substr(0, kMagic.size()) != kMagic || !to_u64(field(head, "accepted"), &f->accepted) ||
      !to_u64(field(head, "prev"), &f->prev) || !to_u64(field(head, "seen"), &f->seen) ||
      !to_u64(field(head, "count"), &count) || field(head, "writer").empty() ||
      field(head, "element").empty()) {
    *error = "bad header '" + std::string(head) + "'";
    return false;
  }
  f->writer = std::string(field(head, "writer"));
  f->element = std::string(field(head, "element"));
  size_t at = nl + 1;
  while (at < text.size()) {
    const size_t end = text.find('\n', at);
    if (end == std::string_view::npos || end == at) {
      *error = "torn or empty element line at byte " + std::to_string(at);
      return false;
    }
    f->elements.emplace_back(text.substr(at, end - at));
    at = end + 1;
  }
  if (f->elements.size() != count) {
    *error = "count=" + std::to_string(count) + " but " + std::to_string(f->elements.size()) +
             " element lines";
    return false;
  }
  return true;
}

inline bool read_all(const std::string& path, std::string* out) {
  out->clear();
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno == ENOENT;  // absent: empty
  char buf[65536];
  for (;;) {
    const ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      close(fd);
      return n == 0;
    }
    out->append(buf, static_cast<size_t>(n));
  }
}

inline bool write_all(int fd, std::string_view s) {
  while (!s.empty()) {
    const ssize_t n = write(fd, s.data(), s.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    s.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

// One line with one write(2) and O_APPEND: a SIGKILL leaves it whole or absent.
inline bool append_line(const std::string& path, const std::string& line) {
  const int fd = open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return false;
  const bool ok = write_all(fd, line);
  close(fd);
  return ok;
}

enum class Access : uint8_t { kAccepted, kRefused, kError };

class Guard {
 public:
  explicit Guard(const std::string& dir)
      : data_(dir + "/set"),
        lock_(dir + "/set.guard"),
        accepted_(dir + "/set.accepted"),
        refused_(dir + "/set.refused") {}

  // A fenced read: refused when `fence` is below the highest token seen; otherwise the token
  // becomes the highest seen and `elements` gets the contents.
  Access read(uint64_t fence, const std::string& writer, std::vector<std::string>* elements,
              std::string* error) {
    Locked l(this);
    SetFile f;
    if (!l.ok() || !load(&f, error)) return fail(l, error);
    if (fence < f.seen) {
      refuse("read", fence, f, writer, false);
      return Access::kRefused;
    }
    if (fence > f.seen) {
      f.seen = fence;
      if (!store(f, error)) return Access::kError;
    }
    *elements = std::move(f.elements);
    return Access::kAccepted;
  }

  // A fenced write of the whole contents, `element` being the one this write adds: refused
  // when `fence` is below the highest token seen or not above the last accepted write's.
  Access write(uint64_t fence, const std::string& writer, const std::string& element,
               std::vector<std::string> elements, std::string* error) {
    Locked l(this);
    SetFile f;
    if (!l.ok() || !load(&f, error)) return fail(l, error);
    if (fence < f.seen || fence <= f.accepted) {
      refuse("write", fence, f, writer, fence > f.accepted);
      return Access::kRefused;
    }
    SetFile next;
    next.accepted = fence;
    next.prev = f.accepted;
    next.seen = fence;
    next.writer = writer;
    next.element = element;
    next.elements = std::move(elements);
    if (!store(next, error)) return Access::kError;
    if (!append_line(accepted_, log_line(next, false))) {
      *error = "cannot append to " + accepted_;
      return Access::kError;
    }
    return Access::kAccepted;
  }

  const std::string& data_path() const { return data_; }
  const std::string& accepted_path() const { return accepted_; }
  const std::string& refused_path() const { return refused_; }

 private:
  // The guard's flock, held for one access. A process killed while holding it drops it.
  class Locked {
   public:
    explicit Locked(Guard* g) : fd_(open(g->lock_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600)) {
      if (fd_ < 0) return;
      while (flock(fd_, LOCK_EX) != 0) {
        if (errno != EINTR) {
          close(fd_);
          fd_ = -1;
          return;
        }
      }
    }
    ~Locked() {
      if (fd_ >= 0) close(fd_);  // drops the flock
    }
    Locked(const Locked&) = delete;
    Locked& operator=(const Locked&) = delete;
    bool ok() const { return fd_ >= 0; }

   private:
    int fd_;
  };

  static Access fail(const Locked& l, std::string* error) {
    if (!l.ok()) *error = std::string("cannot flock the guard: ") + std::strerror(errno);
    return Access::kError;
  }

  static std::string log_line(const SetFile& f, bool recovered) {
    return "accept fence=" + std::to_string(f.accepted) + " prev=" + std::to_string(f.prev) +
           " writer=" + f.writer + " element=" + f.element +
           " count=" + std::to_string(f.elements.size()) + (recovered ? " recovered=1" : "") + "\n";
  }

  // Reads the data file and, if the last accepted write's log line is missing (its writer was
  // killed between the rename and the append), appends it.
  bool load(SetFile* f, std::string* error) {
    std::string text;
    if (!read_all(data_, &text)) {
      *error = "cannot read " + data_;
      return false;
    }
    if (!parse(text, f, error)) {
      *error = data_ + ": " + *error;
      return false;
    }
    if (f->accepted == 0) return true;
    uint64_t last = 0;
    if (!last_logged_fence(&last)) {
      *error = "cannot read " + accepted_;
      return false;
    }
    if (last < f->accepted && !append_line(accepted_, log_line(*f, true))) {
      *error = "cannot append to " + accepted_;
      return false;
    }
    return true;
  }

  // The fence of the accepted log's last line (0 when the log is empty): its last 4 KiB only,
  // the log being read at every access.
  bool last_logged_fence(uint64_t* last) const {
    *last = 0;
    const int fd = open(accepted_.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return errno == ENOENT;
    struct stat st {};
    char buf[4096];
    ssize_t n = 0;
    if (fstat(fd, &st) == 0 && st.st_size > 0) {
      const off_t from = std::max<off_t>(0, st.st_size - static_cast<off_t>(sizeof buf));
      n = pread(fd, buf, sizeof buf, from);
    }
    close(fd);
    if (n < 0) return false;
    std::string_view tail(buf, static_cast<size_t>(n));
    if (tail.empty()) return true;
    if (tail.back() == '\n') tail.remove_suffix(1);
    const size_t nl = tail.rfind('\n');
    if (nl != std::string_view::npos) tail.remove_prefix(nl + 1);
    (void)to_u64(field(tail, "fence"), last);
    return true;
  }

  bool store(const SetFile& f, std::string* error) {
    const std::string tmp = data_ + ".tmp." + std::to_string(getpid());
    const int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
      *error = "cannot create " + tmp + ": " + std::strerror(errno);
      return false;
    }
    const bool written = write_all(fd, format(f));
    close(fd);
    if (!written || rename(tmp.c_str(), data_.c_str()) != 0) {
      *error = "cannot write " + data_ + " through " + tmp + ": " + std::strerror(errno);
      unlink(tmp.c_str());
      return false;
    }
    return true;
  }

  void refuse(const char* op, uint64_t fence, const SetFile& f, const std::string& writer,
              bool weak) {
    (void)append_line(refused_, std::string("refuse op=") + op + " fence=" + std::to_string(fence) +
                                    " seen=" + std::to_string(f.seen) +
                                    " accepted=" + std::to_string(f.accepted) +
                                    " writer=" + writer + " weak=" + (weak ? "1" : "0") + "\n");
  }

  std::string data_, lock_, accepted_, refused_;
};

}  // namespace cohort::lockset
