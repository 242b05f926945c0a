// Setup of the shm transport: directories, the member's own file, stale files of dead
// members, peers' files (validated before use), and the control socket. Control path only.
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
#include <cstring>
#include <random>
#include <string>
#include <thread>

#include "transport/shm/shm_transport.h"

namespace cohort::transport::shm {

namespace {

constexpr uint64_t kMinLogBytes = 64 << 10;
constexpr uint64_t kMaxLogBytes = 1ull << 30;

// The owner of a member file holds an exclusive flock on it for its whole life; the kernel
// drops the lock when the process dies, even by SIGKILL. So a file nobody holds is stale.
bool owner_gone(int fd) {
  if (flock(fd, LOCK_SH | LOCK_NB) == 0) {
    flock(fd, LOCK_UN);
    return true;
  }
  return false;
}

bool path_owner_gone(const std::string& path) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno == ENOENT;
  const bool gone = owner_gone(fd);
  close(fd);
  return gone;
}

uint64_t random_incarnation() {
  std::random_device rd;
  return (static_cast<uint64_t>(rd()) << 32) ^ rd() ^
         static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
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
  COHORT_TRY(prepare_dirs());
  COHORT_TRY(remove_stale_files());
  COHORT_TRY(create_own_file());
  COHORT_TRY(open_control_socket());
  for (MemberId m = 0; m < options_.members; ++m) {
    if (m != options_.self) publication_.expect_reader(m);
  }
  return {};
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
      return Error(Errc::kUnavailable,
                   "shm: " + dir + " must be owned by uid " + std::to_string(geteuid()) +
                       " with mode 0700 (it is uid " + std::to_string(st.st_uid) + ", mode " +
                       std::to_string(st.st_mode & 0777) + " octal-as-decimal); remove it or " +
                       "choose another shm.dir");
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
    if ((is_log || is_tmp) && path_owner_gone(path)) {
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
  map_bytes_ = kControlPageBytes + options_.log_bytes;
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
  own_page_->incarnation = random_incarnation();
  own_page_->pid = getpid();
  own_page_->log_capacity = options_.log_bytes;
  // release: pairs with the acquire load of state in try_attach(); the fields above first.
  own_page_->state.store(kStateActive, std::memory_order_release);
  publication_ = LogWriter(own_map_ + kControlPageBytes, options_.log_bytes, &own_page_->committed);

  // Publish under the final name only now, complete. link() refuses an existing name, so two
  // live processes can never both own one member id.
  for (int attempt = 0; attempt < 2; ++attempt) {
    if (link(tmp_path.c_str(), final_path.c_str()) == 0) {
      unlink(tmp_path.c_str());
      published_ = true;
      return {};
    }
    if (errno != EEXIST) break;
    if (!path_owner_gone(final_path)) {
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
  for (MemberId m = 0; m < options_.members; ++m) peer_sock_paths_[m] = member_path(m, ".sock");
  control_buffers_.reset(new std::byte[kControlBatch * kMaxControlBytes]);
  return {};
}

Result<bool> ShmTransport::try_attach(MemberId peer) {
  Peer& p = peers_[peer];
  if (p.map != nullptr || p.gone) return p.map != nullptr;
  const std::string path = member_path(peer, ".log");
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return false;  // not started yet
    return system_error("shm: cannot open " + path, errno);
  }
  ControlPage page;
  struct stat st {};
  const bool readable = fstat(fd, &st) == 0 &&
                        static_cast<uint64_t>(st.st_size) >= kControlPageBytes &&
                        pread(fd, &page, sizeof page, 0) == static_cast<ssize_t>(sizeof page);
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
  else if (cap < kMinLogBytes || cap > kMaxLogBytes || (cap & (cap - 1)) != 0)
    problem = "has an impossible log size";
  else if (static_cast<uint64_t>(st.st_size) != kControlPageBytes + cap)
    problem = "has a size that does not match its log";
  if (problem != nullptr) {
    close(fd);
    return Error(Errc::kParse,
                 "shm: " + path + " " + problem + "; if no member is running with it, remove it");
  }
  const size_t bytes = kControlPageBytes + cap;
  void* map = mmap(nullptr, bytes, PROT_READ, MAP_SHARED, fd, 0);
  if (map == MAP_FAILED) {
    const int err = errno;
    close(fd);
    return system_error("shm: cannot map " + path, err);
  }
  p.map = static_cast<std::byte*>(map);
  p.page = reinterpret_cast<const ControlPage*>(p.map);
  p.fd = fd;
  p.bytes = bytes;
  p.pid = page.pid;
  // acquire: pairs with the release store of state in create_own_file().
  if (p.page->state.load(std::memory_order_acquire) != kStateActive) {
    munmap(p.map, bytes);
    close(fd);
    p = Peer{};
    return false;  // leaving, or a leftover: try again later
  }
  publication_.attach_reader(peer, &p.page->read_positions[options_.self].position);
  subs_[peer] =
      LogReader(p.map + kControlPageBytes, cap, &own_page_->read_positions[peer].position);
  return true;
}

Result<uint32_t> ShmTransport::try_attach_peers() {
  uint32_t attached = 0;
  for (MemberId m = 0; m < options_.members; ++m) {
    if (m == options_.self) continue;
    auto r = try_attach(m);
    if (!r.ok()) return std::move(r).error();
    if (*r) ++attached;
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
        if (m != options_.self && peers_[m].map == nullptr) {
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
  if (p.page == nullptr) return !path_owner_gone(member_path(peer, ".log"));
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
  publication_.remove_reader(peer);
  subs_[peer] = LogReader();
  if (p.map != nullptr) {
    munmap(p.map, p.bytes);
    close(p.fd);
  }
  p = Peer{};
  p.gone = true;
}

void ShmTransport::leave() {
  if (left_) return;
  left_ = true;
  // Only what we created is ours to remove: a create() that failed because the member id
  // was taken must not remove the running member's files.
  if (own_page_ != nullptr && published_) {
    // release: peers that see kStateLeft see everything we committed before it.
    own_page_->state.store(kStateLeft, std::memory_order_release);
    unlink(member_path(options_.self, ".log").c_str());
  }
  publication_.close();
  if (bound_) unlink(member_path(options_.self, ".sock").c_str());
  if (sock_fd_ >= 0) {
    close(sock_fd_);
    sock_fd_ = -1;
  }
  for (MemberId m = 0; m < kMaxMembers; ++m) {
    if (peers_[m].map != nullptr) {
      munmap(peers_[m].map, peers_[m].bytes);
      close(peers_[m].fd);
    }
    peers_[m] = Peer{};
    subs_[m] = LogReader();
  }
  if (own_map_ != nullptr) munmap(own_map_, map_bytes_);
  own_map_ = nullptr;
  own_page_ = nullptr;
  if (own_fd_ >= 0) close(own_fd_);  // drops the flock
  own_fd_ = -1;
  // The group directory goes when its last member leaves; rmdir fails harmlessly otherwise.
  rmdir(group_dir_.c_str());
}

}  // namespace cohort::transport::shm
