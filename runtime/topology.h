// CPU topology and thread pinning through hwloc, and the chooser that places a member's data
// and control threads on cpus (DESIGN.md: a data core polls and delivers, a dedicated control
// core runs failure detection and view changes).
//
// "cpu" here always means an OS cpu number (what taskset, /proc/cpuinfo and sched_getcpu use),
// i.e. one hardware thread (hwloc's PU). A "core" is a physical core: one or more hyperthread
// siblings that share its execution units, which is why busy pollers want whole cores.
#pragma once

#include <string>
#include <vector>

#include "runtime/result.h"

// hwloc's handles, declared here so that includers do not pull in hwloc.h.
struct hwloc_topology;
struct hwloc_bitmap_s;

namespace cohort {

enum class ThreadingMode {
  kDedicated,  // data threads and a control thread, each on its own cpu
  kShared,     // the first data thread also does the control work (laptops, 1-2 cpu CI)
};

// "dedicated" or "shared", the words config and error messages use.
const char* threading_mode_name(ThreadingMode mode) noexcept;

struct CoreInfo {
  int core_index = -1;       // hwloc logical index: 0..cores-1 in topology order
  int package = -1;          // logical index of the package (socket); -1 if unknown
  int numa_node = -1;        // OS index of the NUMA node; -1 if unknown or several
  std::vector<int> os_cpus;  // OS cpu numbers of its hardware threads, ascending
};

// A loaded hwloc topology plus the cpus this process may use. Owns the hwloc handles; movable,
// not copyable. Read-only after create(), so any thread may call its const methods at once.
class Topology {
 public:
  // Loads the topology and records the allowed cpus: those in hwloc's allowed set (the cgroup
  // cpuset) and in the process's affinity (taskset) at this moment. Create it before pinning
  // threads: a thread pinned to one cpu narrows the affinity a later create() would see.
  static Result<Topology> create();

  // A made-up machine in hwloc's synthetic syntax ("package:1 core:4 pu:2", optionally with
  // "pu:8(indexes=0,4,1,5,2,6,3,7)" for OS numbering), every cpu allowed. For testing layouts
  // on shapes the test machine lacks (hyperthreads, many packages); pinning is refused.
  static Result<Topology> create_synthetic(const std::string& description);

  ~Topology();
  Topology(Topology&& other) noexcept;
  Topology& operator=(Topology&& other) noexcept;
  Topology(const Topology&) = delete;
  Topology& operator=(const Topology&) = delete;

  // Every physical core, in topology order. On machines where hwloc reports no cores, each
  // hardware thread is its own core.
  std::vector<CoreInfo> cores() const;
  // Hardware threads in the topology (online and, by hwloc's default, inside the cgroup).
  int pu_count() const;
  // The cpus this process may run on, ascending; never empty after a successful create().
  std::vector<int> allowed_cpus() const;
  bool cpu_exists(int os_cpu) const;
  bool cpu_allowed(int os_cpu) const;
  // Every cpu the topology holds, allowed or not, ascending.
  std::vector<int> all_cpus() const;
  // The physical core holding os_cpu, as an index into cores(); -1 if the cpu does not exist.
  int core_of(int os_cpu) const;

  // Binds the calling thread to os_cpu alone (hwloc_set_cpubind, HWLOC_CPUBIND_THREAD). The
  // cpu must exist and be allowed; the error lists the allowed cpus. Returns once the thread
  // runs there.
  Status pin_current_thread(int os_cpu) const;
  // The cpu the calling thread last ran on (it may move at once unless it is pinned).
  Result<int> current_cpu() const;

 private:
  Topology(hwloc_topology* topology, hwloc_bitmap_s* allowed) noexcept
      : topology_(topology), allowed_(allowed) {}
  // synthetic: null for this machine, else the description to load.
  static Result<Topology> load(const std::string* synthetic);
  void reset() noexcept;

  hwloc_topology* topology_ = nullptr;  // owned; null only once moved from
  hwloc_bitmap_s* allowed_ = nullptr;   // owned; the allowed cpus recorded by create()
  bool this_system_ = true;             // false for create_synthetic(): no pinning
};

// Formats cpu numbers the way taskset and hwloc print them: {0,1,2,5} -> "0-2,5".
std::string format_cpu_list(const std::vector<int>& os_cpus);

struct LayoutRequest {
  // How many data threads. 0 means: as many as data_cores lists, or 1 when it is empty.
  int data_core_count = 0;
  // Explicit OS cpus for the data threads; empty = choose automatically.
  std::vector<int> data_cores;
  // Explicit OS cpu for the control thread; -1 = choose automatically. In shared mode it must
  // be the first data cpu, since one thread does both.
  int control_core = -1;
  ThreadingMode mode = ThreadingMode::kDedicated;
};

struct CoreLayout {
  std::vector<int> data_cpus;  // one OS cpu per data thread, all distinct
  int control_cpu = -1;        // dedicated: not among data_cpus; shared: data_cpus[0]
  ThreadingMode mode = ThreadingMode::kDedicated;
};

// Places the threads of a member on allowed cpus, or explains why it cannot. Explicit cpus
// must exist, be allowed and be distinct. Automatic picks give each data thread a whole
// physical core when there are enough: never a sibling of another data cpu or of the control
// cpu if a free core remains. The automatic control cpu is the lowest free one on a free core,
// where the kernel's housekeeping tends to land and where the light control work minds it least.
Result<CoreLayout> choose_layout(const Topology& topology, const LayoutRequest& request);

}  // namespace cohort
