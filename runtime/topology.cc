#include "runtime/topology.h"

#include <hwloc.h>

#include <algorithm>
#include <cerrno>
#include <memory>
#include <utility>

namespace cohort {
namespace {

struct BitmapFree {
  void operator()(hwloc_bitmap_t bitmap) const noexcept { hwloc_bitmap_free(bitmap); }
};
using BitmapPtr = std::unique_ptr<hwloc_bitmap_s, BitmapFree>;

BitmapPtr bitmap_alloc() {
  BitmapPtr bitmap(hwloc_bitmap_alloc());
  COHORT_ASSERT_MSG(bitmap != nullptr, "hwloc_bitmap_alloc: out of memory");
  return bitmap;
}

std::vector<int> bitmap_to_cpus(hwloc_const_bitmap_t bitmap) {
  std::vector<int> cpus;
  if (bitmap == nullptr) return cpus;
  // An infinite bitmap (hwloc's "all cpus, including ones not yet seen") has no last bit;
  // the sets we read are finite, and the bound keeps the loop finite regardless.
  for (int cpu = hwloc_bitmap_first(bitmap); cpu >= 0 && cpu < (1 << 20);
       cpu = hwloc_bitmap_next(bitmap, cpu)) {
    cpus.push_back(cpu);
  }
  return cpus;
}

std::string cpus_phrase(const std::vector<int>& cpus) {
  std::string phrase = cpus.size() == 1 ? "cpu " : "cpus ";
  phrase += format_cpu_list(cpus);
  return phrase;
}

}  // namespace

const char* threading_mode_name(ThreadingMode mode) noexcept {
  switch (mode) {
    case ThreadingMode::kDedicated: return "dedicated";
    case ThreadingMode::kShared: return "shared";
  }
  return "unknown";
}

std::string format_cpu_list(const std::vector<int>& os_cpus) {
  std::vector<int> sorted = os_cpus;
  std::sort(sorted.begin(), sorted.end());
  sorted.erase(std::unique(sorted.begin(), sorted.end()), sorted.end());
  std::string out;
  for (size_t i = 0; i < sorted.size();) {
    size_t end = i;
    while (end + 1 < sorted.size() && sorted[end + 1] == sorted[end] + 1) end++;
    if (!out.empty()) out += ',';
    out += std::to_string(sorted[i]);
    if (end > i) {
      // Appended in two steps: "-" + std::to_string() trips GCC 12's -Wrestrict false
      // positive (GCC bug 105329) at -O3.
      out += '-';
      out += std::to_string(sorted[end]);
    }
    i = end + 1;
  }
  return out.empty() ? "none" : out;
}

Result<Topology> Topology::create() {
  return load(nullptr);
}

Result<Topology> Topology::create_synthetic(const std::string& description) {
  return load(&description);
}

Result<Topology> Topology::load(const std::string* synthetic) {
  hwloc_topology_t handle = nullptr;
  if (hwloc_topology_init(&handle) != 0) {
    return system_error("topology: hwloc_topology_init failed (out of memory?)", errno);
  }
  // From here the Topology owns the handle, and every early return destroys it.
  Topology topology(handle, nullptr);
  if (synthetic != nullptr && hwloc_topology_set_synthetic(handle, synthetic->c_str()) != 0) {
    return Error(Errc::kParse, "topology: synthetic description '" + *synthetic +
                                   "' does not parse; write it like 'package:1 core:2 pu:2'");
  }
  if (hwloc_topology_load(handle) != 0) {
    return Error(Errc::kSystem,
                 system_error("topology: hwloc could not load the cpu topology", errno).message() +
                     "; check that /sys and /proc are mounted and readable");
  }
  topology.this_system_ = hwloc_topology_is_thissystem(handle) != 0;
  if (synthetic == nullptr && !topology.this_system_) {
    return Error(Errc::kInvalidArgument,
                 "topology: hwloc loaded a topology that is not this machine's, so pinning "
                 "cannot work; unset HWLOC_XMLFILE, HWLOC_SYNTHETIC and HWLOC_FSROOT");
  }

  // Allowed = present in the topology, inside the cgroup cpuset, and in the process affinity
  // (taskset). hwloc's own allowed set covers only the first two. A made-up machine has no
  // affinity to consult: all of it is allowed.
  BitmapPtr allowed(hwloc_bitmap_dup(hwloc_topology_get_topology_cpuset(handle)));
  COHORT_ASSERT_MSG(allowed != nullptr, "hwloc_bitmap_dup: out of memory");
  hwloc_bitmap_and(allowed.get(), allowed.get(), hwloc_topology_get_allowed_cpuset(handle));
  BitmapPtr affinity = bitmap_alloc();
  if (topology.this_system_ &&
      hwloc_get_cpubind(handle, affinity.get(), HWLOC_CPUBIND_PROCESS) == 0) {
    hwloc_bitmap_and(allowed.get(), allowed.get(), affinity.get());
  }
  if (hwloc_bitmap_iszero(allowed.get()) != 0) {
    return Error(Errc::kUnavailable,
                 "topology: no cpu is both in the topology (" +
                     cpus_phrase(bitmap_to_cpus(hwloc_topology_get_topology_cpuset(handle))) +
                     ") and in this process's affinity (" +
                     cpus_phrase(bitmap_to_cpus(affinity.get())) +
                     "); check taskset and the cgroup cpuset");
  }
  topology.allowed_ = allowed.release();
  return topology;
}

Topology::~Topology() {
  reset();
}

Topology::Topology(Topology&& other) noexcept
    : topology_(std::exchange(other.topology_, nullptr)),
      allowed_(std::exchange(other.allowed_, nullptr)),
      this_system_(other.this_system_) {}

Topology& Topology::operator=(Topology&& other) noexcept {
  if (this != &other) {
    reset();
    topology_ = std::exchange(other.topology_, nullptr);
    allowed_ = std::exchange(other.allowed_, nullptr);
    this_system_ = other.this_system_;
  }
  return *this;
}

void Topology::reset() noexcept {
  if (allowed_ != nullptr) hwloc_bitmap_free(allowed_);
  if (topology_ != nullptr) hwloc_topology_destroy(topology_);
  allowed_ = nullptr;
  topology_ = nullptr;
}

std::vector<CoreInfo> Topology::cores() const {
  COHORT_ASSERT_MSG(topology_ != nullptr, "Topology used after move");
  // Some virtual machines and unusual platforms expose PUs with no Core above them.
  const hwloc_obj_type_t type =
      hwloc_get_nbobjs_by_type(topology_, HWLOC_OBJ_CORE) > 0 ? HWLOC_OBJ_CORE : HWLOC_OBJ_PU;
  const int count = hwloc_get_nbobjs_by_type(topology_, type);
  std::vector<CoreInfo> cores;
  cores.reserve(static_cast<size_t>(std::max(count, 0)));
  for (int i = 0; i < count; i++) {
    hwloc_obj_t obj = hwloc_get_obj_by_type(topology_, type, static_cast<unsigned>(i));
    COHORT_ASSERT(obj != nullptr);
    CoreInfo info;
    info.core_index = i;
    hwloc_obj_t package = hwloc_get_ancestor_obj_by_type(topology_, HWLOC_OBJ_PACKAGE, obj);
    if (package != nullptr) info.package = static_cast<int>(package->logical_index);
    if (obj->nodeset != nullptr && hwloc_bitmap_weight(obj->nodeset) == 1) {
      info.numa_node = hwloc_bitmap_first(obj->nodeset);
    }
    info.os_cpus = bitmap_to_cpus(obj->cpuset);
    cores.push_back(std::move(info));
  }
  return cores;
}

int Topology::pu_count() const {
  COHORT_ASSERT_MSG(topology_ != nullptr, "Topology used after move");
  return hwloc_get_nbobjs_by_type(topology_, HWLOC_OBJ_PU);
}

std::vector<int> Topology::allowed_cpus() const {
  COHORT_ASSERT_MSG(allowed_ != nullptr, "Topology used after move");
  return bitmap_to_cpus(allowed_);
}

std::vector<int> Topology::all_cpus() const {
  COHORT_ASSERT_MSG(topology_ != nullptr, "Topology used after move");
  return bitmap_to_cpus(hwloc_topology_get_topology_cpuset(topology_));
}

bool Topology::cpu_exists(int os_cpu) const {
  COHORT_ASSERT_MSG(topology_ != nullptr, "Topology used after move");
  return os_cpu >= 0 &&
         hwloc_get_pu_obj_by_os_index(topology_, static_cast<unsigned>(os_cpu)) != nullptr;
}

bool Topology::cpu_allowed(int os_cpu) const {
  COHORT_ASSERT_MSG(allowed_ != nullptr, "Topology used after move");
  return os_cpu >= 0 && hwloc_bitmap_isset(allowed_, static_cast<unsigned>(os_cpu)) != 0;
}

int Topology::core_of(int os_cpu) const {
  if (!cpu_exists(os_cpu)) return -1;
  hwloc_obj_t pu = hwloc_get_pu_obj_by_os_index(topology_, static_cast<unsigned>(os_cpu));
  // Mirrors cores(): Core objects when hwloc has them, else each PU stands alone.
  if (hwloc_get_nbobjs_by_type(topology_, HWLOC_OBJ_CORE) <= 0) {
    return static_cast<int>(pu->logical_index);
  }
  hwloc_obj_t core = hwloc_get_ancestor_obj_by_type(topology_, HWLOC_OBJ_CORE, pu);
  return core != nullptr ? static_cast<int>(core->logical_index) : -1;
}

Status Topology::pin_current_thread(int os_cpu) const {
  const std::string allowed = cpus_phrase(allowed_cpus());
  if (!this_system_) {
    return Error(Errc::kUnsupported, "topology: cannot pin to cpu " + std::to_string(os_cpu) +
                                         " of a synthetic topology; pin with one from "
                                         "Topology::create()");
  }
  if (!cpu_exists(os_cpu)) {
    return Error(Errc::kNotFound,
                 "topology: cpu " + std::to_string(os_cpu) + " does not exist (this machine has " +
                     cpus_phrase(all_cpus()) + "); pin to one of the allowed " + allowed);
  }
  if (!cpu_allowed(os_cpu)) {
    return Error(Errc::kUnavailable, "topology: cpu " + std::to_string(os_cpu) +
                                         " is not allowed for this process (allowed: " + allowed +
                                         ", from taskset or the cgroup cpuset); pin to one of "
                                         "those or widen the affinity");
  }
  BitmapPtr target = bitmap_alloc();
  hwloc_bitmap_only(target.get(), static_cast<unsigned>(os_cpu));
  if (hwloc_set_cpubind(topology_, target.get(), HWLOC_CPUBIND_THREAD) != 0) {
    return Error(
        Errc::kSystem,
        system_error("topology: binding this thread to cpu " + std::to_string(os_cpu), errno)
                .message() +
            "; the cgroup cpuset may have changed since start (allowed then: " + allowed + ")");
  }
  return {};
}

Result<int> Topology::current_cpu() const {
  COHORT_ASSERT_MSG(topology_ != nullptr, "Topology used after move");
  if (!this_system_) {
    return Error(Errc::kUnsupported,
                 "topology: a synthetic topology cannot say where this thread runs; ask one "
                 "from Topology::create()");
  }
  BitmapPtr where = bitmap_alloc();
  if (hwloc_get_last_cpu_location(topology_, where.get(), HWLOC_CPUBIND_THREAD) != 0) {
    return system_error("topology: reading the calling thread's cpu (hwloc_get_last_cpu_location)",
                        errno);
  }
  const int cpu = hwloc_bitmap_first(where.get());
  if (cpu < 0) {
    return Error(Errc::kUnavailable,
                 "topology: the kernel reported no cpu for the calling thread; retry");
  }
  return cpu;
}

// ---- choose_layout ----

namespace {

enum class Role { kData, kControl };

std::string count_phrase(int n, const char* one, const char* many) {
  return std::to_string(n) + " " + (n == 1 ? one : many);
}

Status check_shape(const LayoutRequest& request) {
  if (request.data_core_count < 0) {
    return Error(Errc::kInvalidArgument,
                 "layout: data_core_count is " + std::to_string(request.data_core_count) +
                     "; use 1 or more, or 0 to take the count from data_cores");
  }
  const int listed = static_cast<int>(request.data_cores.size());
  if (request.data_core_count > 0 && listed > 0 && request.data_core_count != listed) {
    return Error(Errc::kInvalidArgument,
                 "layout: data_core_count is " + std::to_string(request.data_core_count) +
                     " but data_cores lists " + count_phrase(listed, "cpu", "cpus") + " (" +
                     format_cpu_list(request.data_cores) +
                     "); make them agree or set data_core_count to 0");
  }
  if (request.control_core < -1) {
    return Error(Errc::kInvalidArgument,
                 "layout: control_core " + std::to_string(request.control_core) +
                     " is not a cpu; give a cpu number or -1 to choose automatically");
  }
  return {};
}

Status check_cpu(const Topology& topology, int cpu, const char* role) {
  const std::string allowed = cpus_phrase(topology.allowed_cpus());
  if (!topology.cpu_exists(cpu)) {
    return Error(Errc::kNotFound, std::string("layout: ") + role + " cpu " + std::to_string(cpu) +
                                      " does not exist (this machine has " +
                                      cpus_phrase(topology.all_cpus()) +
                                      "); pick from the allowed " + allowed);
  }
  if (!topology.cpu_allowed(cpu)) {
    return Error(Errc::kUnavailable, std::string("layout: ") + role + " cpu " +
                                         std::to_string(cpu) +
                                         " is not allowed for this process (allowed: " + allowed +
                                         ", from taskset or the cgroup cpuset); pick one of "
                                         "those or widen the affinity");
  }
  return {};
}

Status check_explicit_cpus(const Topology& topology, const LayoutRequest& request) {
  std::vector<int> seen;
  for (int cpu : request.data_cores) {
    COHORT_TRY(check_cpu(topology, cpu, "data"));
    if (std::find(seen.begin(), seen.end(), cpu) != seen.end()) {
      return Error(Errc::kInvalidArgument,
                   "layout: data cpu " + std::to_string(cpu) +
                       " appears more than once in data_cores; each data thread needs its own "
                       "cpu, so list each cpu once");
    }
    seen.push_back(cpu);
  }
  if (request.control_core < 0) return {};
  COHORT_TRY(check_cpu(topology, request.control_core, "control"));
  const std::string control = std::to_string(request.control_core);
  if (request.mode == ThreadingMode::kDedicated &&
      std::find(seen.begin(), seen.end(), request.control_core) != seen.end()) {
    return Error(Errc::kInvalidArgument,
                 "layout: control cpu " + control +
                     " is also a data cpu, but dedicated mode gives the control thread its own "
                     "cpu; pick another control_core or use threading mode 'shared'");
  }
  if (request.mode == ThreadingMode::kShared && !seen.empty() && seen[0] != request.control_core) {
    return Error(Errc::kInvalidArgument,
                 "layout: in shared mode the first data thread does the control work, so "
                 "control_core " +
                     control + " must be the first data cpu (" + std::to_string(seen[0]) +
                     "); leave control_core at -1 or use threading mode 'dedicated'");
  }
  return {};
}

Status check_enough_cpus(const Topology& topology, int data_count, ThreadingMode mode) {
  const std::vector<int> allowed = topology.allowed_cpus();
  const int have = static_cast<int>(allowed.size());
  const bool dedicated = mode == ThreadingMode::kDedicated;
  const int needed = data_count + (dedicated ? 1 : 0);
  if (needed <= have) return {};
  const std::string data = count_phrase(data_count, "data core", "data cores");
  const std::string what =
      dedicated ? data + " and a dedicated control core" : data + " in shared mode";
  const char* fix = !dedicated       ? "use fewer data cores or allow more cpus (taskset)"
                    : data_count > 1 ? "use threading mode 'shared' or fewer data cores"
                                     : "use threading mode 'shared'";
  return Error(Errc::kInvalidArgument, "layout: " + what + " need " + std::to_string(needed) +
                                           " cpus, but only " + std::to_string(have) +
                                           (have == 1 ? " is" : " are") + " allowed (" +
                                           cpus_phrase(allowed) + "); " + fix);
}

// Tracks which physical cores already hold a data or the control thread, so automatic picks
// can prefer whole cores: two busy pollers on hyperthread siblings share one core's execution
// units and each runs markedly slower.
class CpuPicker {
 public:
  explicit CpuPicker(const Topology& topology)
      : topology_(topology), candidates_(topology.allowed_cpus()) {
    const size_t core_count = topology.cores().size();
    has_data_.assign(core_count, false);
    has_control_.assign(core_count, false);
  }

  void take(int cpu, Role role) {
    const int core = topology_.core_of(cpu);
    COHORT_ASSERT(core >= 0 && static_cast<size_t>(core) < has_data_.size());
    COHORT_ASSERT(std::find(taken_.begin(), taken_.end(), cpu) == taken_.end());
    taken_.push_back(cpu);
    (role == Role::kData ? has_data_ : has_control_)[static_cast<size_t>(core)] = true;
  }

  // The lowest free allowed cpu on the best core: a free one, then one holding only the other
  // role, then one holding this role already. The caller has checked that enough cpus exist.
  int pick(Role role) {
    int best_cpu = -1;
    int best_score = 3;
    for (int cpu : candidates_) {
      if (std::find(taken_.begin(), taken_.end(), cpu) != taken_.end()) continue;
      const auto core = static_cast<size_t>(topology_.core_of(cpu));
      const bool same = role == Role::kData ? has_data_[core] : has_control_[core];
      const bool other = role == Role::kData ? has_control_[core] : has_data_[core];
      const int score = (same ? 2 : 0) + (other ? 1 : 0);
      if (score < best_score) {
        best_score = score;
        best_cpu = cpu;
      }
    }
    COHORT_ASSERT_MSG(best_cpu >= 0, "layout: no free cpu after the count check passed");
    take(best_cpu, role);
    return best_cpu;
  }

 private:
  const Topology& topology_;
  std::vector<int> candidates_;  // allowed cpus, ascending
  std::vector<int> taken_;
  std::vector<bool> has_data_;     // by core index
  std::vector<bool> has_control_;  // by core index
};

}  // namespace

Result<CoreLayout> choose_layout(const Topology& topology, const LayoutRequest& request) {
  COHORT_TRY(check_shape(request));
  COHORT_TRY(check_explicit_cpus(topology, request));
  const int listed = static_cast<int>(request.data_cores.size());
  const int data_count =
      request.data_core_count > 0 ? request.data_core_count : std::max(listed, 1);
  COHORT_TRY(check_enough_cpus(topology, data_count, request.mode));

  CpuPicker picker(topology);
  CoreLayout layout;
  layout.mode = request.mode;
  layout.data_cpus = request.data_cores;
  for (int cpu : layout.data_cpus) picker.take(cpu, Role::kData);
  if (request.mode == ThreadingMode::kDedicated) {
    // Control first: it takes the lowest free core, leaving the rest whole for data threads.
    if (request.control_core >= 0) {
      picker.take(request.control_core, Role::kControl);
      layout.control_cpu = request.control_core;
    } else {
      layout.control_cpu = picker.pick(Role::kControl);
    }
  } else if (layout.data_cpus.empty() && request.control_core >= 0) {
    // Shared mode with only the control cpu named: that thread is data thread 0.
    picker.take(request.control_core, Role::kData);
    layout.data_cpus.push_back(request.control_core);
  }
  while (static_cast<int>(layout.data_cpus.size()) < data_count) {
    layout.data_cpus.push_back(picker.pick(Role::kData));
  }
  if (request.mode == ThreadingMode::kShared) layout.control_cpu = layout.data_cpus[0];

  // The promises of the header, restated on the result.
  COHORT_ASSERT(static_cast<int>(layout.data_cpus.size()) == data_count);
  for (size_t i = 0; i < layout.data_cpus.size(); i++) {
    COHORT_ASSERT(topology.cpu_allowed(layout.data_cpus[i]));
    for (size_t j = i + 1; j < layout.data_cpus.size(); j++) {
      COHORT_ASSERT(layout.data_cpus[i] != layout.data_cpus[j]);
    }
    if (request.mode == ThreadingMode::kDedicated) {
      COHORT_ASSERT(layout.data_cpus[i] != layout.control_cpu);
    }
  }
  COHORT_ASSERT(topology.cpu_allowed(layout.control_cpu));
  return layout;
}

}  // namespace cohort
