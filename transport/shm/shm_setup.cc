// Setup of the shm transport: directories, the member's own file, stale files of dead
// members, the control socket, and leaving. Control path only. Peers' files: shm_peers.cc.
#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>

#include "transport/shm/shm_files.h"
#include "transport/shm/shm_transport.h"

namespace cohort::transport::shm {

namespace {

using detail::kMaxLogBytes;
using detail::kMinLogBytes;
using detail::path_owner_gone;

uint64_t random_incarnation() {
  std::random_device rd;
  const uint64_t r =
      (static_cast<uint64_t>(rd()) << 32) ^ rd() ^
      static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
  return r != 0 ? r : 1;  // 0 means "no incarnation" in the position slots
}

}  // namespace

std::string default_shm_dir() {
  return "/dev/shm/cohort-" + std::to_string(geteuid());
}

ShmTransport::ShmTransport(const ShmOptions& options) : options_(options) {}

Result<std::unique_ptr<ShmTransport>> ShmTransport::create(const ShmOptions& options) {
  std::unique_ptr<ShmTransport> t(new ShmTransport(options));
  COHORT_TRY(t->setup());
  return t;
}

ShmTransport::~ShmTransport() {
  leave();
}

std::string ShmTransport::member_path(MemberId m, const char* suffix) const {
  return group_dir_ + "/m" + std::to_string(m) + suffix;
}

Status ShmTransport::setup() {
  const ShmOptions& o = options_;
  COHORT_TRY(check_group_and_self("shm", o.group, o.self, o.members));
  if (o.log_bytes < kMinLogBytes || o.log_bytes > kMaxLogBytes ||
      (o.log_bytes & (o.log_bytes - 1)) != 0) {
    return Error(Errc::kInvalidArgument, "shm: log size " + std::to_string(o.log_bytes) +
                                             " must be a power of two from 65536 to 1073741824");
  }
  if (options_.dir.empty()) options_.dir = default_shm_dir();
  group_dir_ = options_.dir + "/" + o.group;
  group_hash_ = group_hash(o.group.c_str());
  for (MemberId m = 0; m < options_.members; ++m) {
    peer_log_paths_[m] = member_path(m, ".log");
    peer_sock_paths_[m] = member_path(m, ".sock");
  }
  // Readers are counted from the moment this member attaches their files (shm_peers.cc), not
  // before: a slot may stay empty for as long as the group runs.
  auto dir_lock = lock_group_dir();
  if (!dir_lock.ok()) return std::move(dir_lock).error();
  Status s = remove_stale_files();
  if (s.ok()) s = create_own_file();
  if (s.ok()) s = open_control_socket();
  close(*dir_lock);  // drops the lock
  return s;
}

// Starting and the last leave change the group directory's entries, so they hold an exclusive
// flock on the directory: a member removing a dead member's files (a check, then an unlink by
// name) can never remove the files of a new process of that slot that is starting, and the
// last member out never removes the directory under one that is starting. Held for a few
// system calls (and the first touch of the new log's pages), on the control path only.
Result<int> ShmTransport::lock_group_dir() {
  for (int attempt = 0;; ++attempt) {
    COHORT_TRY(prepare_dirs());
    const int fd = open(group_dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
      if (errno == ENOENT && attempt < 8) continue;  // the last member out just removed it
      return system_error("shm: cannot open " + group_dir_, errno);
    }
    if (flock(fd, LOCK_EX) != 0) {
      const int err = errno;
      close(fd);
      return system_error("shm: cannot lock " + group_dir_, err);
    }
    // The directory may have been removed between open() and flock(): then lock the new one.
    struct stat held {};
    struct stat now {};
    if (fstat(fd, &held) == 0 && stat(group_dir_.c_str(), &now) == 0 && held.st_dev == now.st_dev &&
        held.st_ino == now.st_ino) {
      return fd;
    }
    close(fd);
    if (attempt >= 8) {
      return Error(Errc::kUnavailable, "shm: " + group_dir_ +
                                           " keeps being removed while this member starts; "
                                           "check for a process deleting it");
    }
  }
}

Status ShmTransport::prepare_dirs() {
  for (const std::string& dir : {options_.dir, group_dir_}) {
    if (mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
      return system_error("shm: cannot create " + dir + " (check shm.dir and its parent)", errno);
    }
    struct stat st {};
    if (lstat(dir.c_str(), &st) != 0) return system_error("shm: cannot stat " + dir, errno);
    if (!S_ISDIR(st.st_mode)) {
      return Error(Errc::kInvalidArgument, "shm: " + dir + " is not a directory; remove it");
    }
    // Logs are readable by anyone who can open them: the directory must be ours alone.
    if (st.st_uid != geteuid() || (st.st_mode & 077) != 0) {
      char mode[8];
      std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 0777));
      return Error(Errc::kUnavailable,
                   "shm: " + dir + " must be owned by uid " + std::to_string(geteuid()) +
                       " with mode 0700 (it is uid " + std::to_string(st.st_uid) + ", mode " +
                       mode + "); remove it or choose another shm.dir");
    }
  }
  return {};
}

Status ShmTransport::remove_stale_files() {
  DIR* d = opendir(group_dir_.c_str());
  if (d == nullptr) return system_error("shm: cannot list " + group_dir_, errno);
  while (dirent* e = readdir(d)) {
    const std::string name = e->d_name;
    if (name.size() < 2 || name[0] != 'm') continue;
    const std::string path = group_dir_ + "/" + name;
    const bool is_log = name.size() > 4 && name.compare(name.size() - 4, 4, ".log") == 0;
    const bool is_tmp = name.find(".log.tmp-") != std::string::npos;
    if ((is_log || is_tmp) && path_owner_gone(path.c_str())) {
      unlink(path.c_str());
      if (is_log) unlink((path.substr(0, path.size() - 4) + ".sock").c_str());
    }
  }
  closedir(d);
  return {};
}

Status ShmTransport::create_own_file() {
  const std::string final_path = member_path(options_.self, ".log");
  const std::string tmp_path = final_path + ".tmp-" + std::to_string(getpid());
  own_fd_ = open(tmp_path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (own_fd_ < 0) return system_error("shm: cannot create " + tmp_path, errno);
  if (flock(own_fd_, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    unlink(tmp_path.c_str());
    return system_error("shm: cannot lock " + tmp_path, err);
  }
  map_bytes_ = kLogOffset + options_.log_bytes;
  if (ftruncate(own_fd_, static_cast<off_t>(map_bytes_)) != 0) {
    const int err = errno;
    unlink(tmp_path.c_str());
    return system_error("shm: cannot size " + tmp_path + " to " + std::to_string(map_bytes_) +
                            " bytes (is /dev/shm full? check df -h /dev/shm)",
                        err);
  }
  void* map =
      mmap(nullptr, map_bytes_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, own_fd_, 0);
  if (map == MAP_FAILED) {
    const int err = errno;
    unlink(tmp_path.c_str());
    return system_error("shm: cannot map " + tmp_path, err);
  }
  own_map_ = static_cast<std::byte*>(map);
  own_page_ = new (own_map_) ControlPage();  // the file is zero: this only sets the fields
  own_page_->magic = kFileMagic;
  own_page_->version = kLayoutVersion;
  own_page_->member = options_.self;
  own_page_->group_hash = group_hash_;
  incarnation_ = random_incarnation();
  own_page_->incarnation = incarnation_;
  own_page_->pid = getpid();
  own_page_->log_capacity = options_.log_bytes;
  own_page_->open_from_zero.store(1, std::memory_order_relaxed);  // published by the release below
  DoorbellPage* bell_page = new (own_map_ + kControlPageBytes) DoorbellPage();  // nobody parked
  bell_page->tickets.uses_tickets = options_.tickets ? 1 : 0;
  own_bell_ = &bell_page->bell;
  // release: pairs with the acquire load of state in map_peer_file(); the fields above first.
  own_page_->state.store(kStateActive, std::memory_order_release);
  publication_ = LogWriter(own_map_ + kLogOffset, options_.log_bytes, &own_page_->committed);
  // While the log is open from 0, a placeholder reader at 0 (our own slot, otherwise unused)
  // keeps the writer from lapping it: a reader may have started at 0 that we have not mapped.
  publication_.expect_reader(options_.self);

  // Publish under the final name only now, complete. link() refuses an existing name, so two
  // live processes can never both own one member id.
  for (int attempt = 0; attempt < 2; ++attempt) {
    if (link(tmp_path.c_str(), final_path.c_str()) == 0) {
      unlink(tmp_path.c_str());
      published_ = true;
      return {};
    }
    if (errno != EEXIST) break;
    if (!path_owner_gone(final_path.c_str())) {
      unlink(tmp_path.c_str());
      int32_t pid = 0;
      const int fd = open(final_path.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd >= 0) {
        ControlPage page;
        if (pread(fd, &page, sizeof page, 0) == static_cast<ssize_t>(sizeof page)) pid = page.pid;
        close(fd);
      }
      return Error(Errc::kUnavailable, "shm: member " + std::to_string(options_.self) +
                                           " of group '" + options_.group +
                                           "' is already running (pid " + std::to_string(pid) +
                                           "); stop it or choose another member id");
    }
    unlink(final_path.c_str());  // stale: its owner died after our scan
  }
  const int err = errno;
  unlink(tmp_path.c_str());
  return system_error("shm: cannot publish " + final_path, err);
}

Status ShmTransport::open_control_socket() {
  const std::string path = member_path(options_.self, ".sock");
  sockaddr_un addr{};
  if (path.size() >= sizeof addr.sun_path) {
    return Error(Errc::kInvalidArgument, "shm: socket path " + path + " is longer than " +
                                             std::to_string(sizeof addr.sun_path - 1) +
                                             " bytes; choose a shorter shm.dir or group name");
  }
  sock_fd_ = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (sock_fd_ < 0) return system_error("shm: cannot open a control socket", errno);
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  unlink(path.c_str());  // ours now: the member id is held by our locked log file
  if (bind(sock_fd_, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
    return system_error("shm: cannot bind the control socket " + path, errno);
  }
  bound_ = true;
  control_buffers_.reset(new std::byte[kControlBatch * kMaxControlBytes]);
  return {};
}

void ShmTransport::leave() {
  if (left_) return;
  left_ = true;
  // Only what we created is ours to remove: a create() that failed because the member id
  // was taken must not remove the running member's files.
  if (own_page_ != nullptr && published_) {
    // release: peers that see kStateLeft see everything we committed before it.
    own_page_->state.store(kStateLeft, std::memory_order_release);
  }
  // The socket before the log: while our locked log holds the member id, no new process of
  // this slot can have bound m<self>.sock, so the name we remove is ours.
  if (bound_) unlink(member_path(options_.self, ".sock").c_str());
  if (own_page_ != nullptr && published_) unlink(member_path(options_.self, ".log").c_str());
  publication_.close();
  if (sock_fd_ >= 0) {
    close(sock_fd_);
    sock_fd_ = -1;
  }
  for (MemberId m = 0; m < kMaxMembers; ++m) drop_peer(m);
  if (own_map_ != nullptr) munmap(own_map_, map_bytes_);
  own_map_ = nullptr;
  own_page_ = nullptr;
  own_bell_ = nullptr;
  if (own_fd_ >= 0) close(own_fd_);  // drops the flock
  own_fd_ = -1;
  // The group directory goes when its last member leaves; rmdir fails harmlessly otherwise.
  // Under the directory lock, so a member that is starting keeps its directory.
  if (group_dir_.empty()) return;
  const int dir_fd = open(group_dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd < 0) return;
  if (flock(dir_fd, LOCK_EX) == 0) rmdir(group_dir_.c_str());
  close(dir_fd);
}

}  // namespace cohort::transport::shm
