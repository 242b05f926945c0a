// Topology and choose_layout against the machine the test runs on. Nothing assumes a cpu
// count: tests that need more cpus than the process may use skip and say so.
#include "runtime/topology.h"

#include <gtest/gtest.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace cohort {
namespace {

Topology make_topology() {
  Result<Topology> created = Topology::create();
  EXPECT_TRUE(created.ok()) << (created.ok() ? "" : created.error().message());
  return std::move(created).value();
}

// A cpu number the machine does not have: 4096 unless the machine is that large.
int missing_cpu(const Topology& topology) {
  int cpu = 4096;
  while (topology.cpu_exists(cpu)) cpu *= 2;
  return cpu;
}

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

std::string allowed_phrase(const Topology& topology) {
  const std::vector<int> allowed = topology.allowed_cpus();
  return (allowed.size() == 1 ? "cpu " : "cpus ") + format_cpu_list(allowed);
}

TEST(Topology, CreateFindsCoresAndCpus) {
  const Topology topology = make_topology();
  const std::vector<CoreInfo> cores = topology.cores();
  ASSERT_FALSE(cores.empty());

  std::vector<int> from_cores;
  for (size_t i = 0; i < cores.size(); i++) {
    EXPECT_EQ(cores[i].core_index, static_cast<int>(i));
    EXPECT_FALSE(cores[i].os_cpus.empty()) << "core " << i;
    EXPECT_TRUE(std::is_sorted(cores[i].os_cpus.begin(), cores[i].os_cpus.end()));
    for (int cpu : cores[i].os_cpus) {
      EXPECT_EQ(topology.core_of(cpu), static_cast<int>(i)) << "cpu " << cpu;
      from_cores.push_back(cpu);
    }
  }
  std::sort(from_cores.begin(), from_cores.end());
  EXPECT_EQ(from_cores, topology.all_cpus());
  EXPECT_EQ(static_cast<int>(from_cores.size()), topology.pu_count());

  // hwloc drops cpus outside the cgroup cpuset, so either count is right.
  const long online = sysconf(_SC_NPROCESSORS_ONLN);
  const auto allowed_count = static_cast<long>(topology.allowed_cpus().size());
  EXPECT_TRUE(topology.pu_count() == online || topology.pu_count() == allowed_count)
      << "pu_count " << topology.pu_count() << ", online " << online << ", allowed "
      << allowed_count;
}

TEST(Topology, AllowedCpusFollowTheAffinity) {
  const Topology topology = make_topology();
  const std::vector<int> allowed = topology.allowed_cpus();
  ASSERT_FALSE(allowed.empty());
  cpu_set_t mask;
  CPU_ZERO(&mask);
  ASSERT_EQ(sched_getaffinity(0, sizeof mask, &mask), 0);
  for (int cpu : allowed) {
    EXPECT_TRUE(topology.cpu_exists(cpu)) << cpu;
    EXPECT_TRUE(topology.cpu_allowed(cpu)) << cpu;
    EXPECT_TRUE(CPU_ISSET(cpu, &mask)) << "cpu " << cpu << " is outside this thread's affinity";
  }
  EXPECT_FALSE(topology.cpu_allowed(-1));
  EXPECT_FALSE(topology.cpu_exists(-1));
  EXPECT_FALSE(topology.cpu_allowed(missing_cpu(topology)));
}

TEST(Topology, IsMovable) {
  Topology first = make_topology();
  const int pus = first.pu_count();
  Topology second(std::move(first));
  EXPECT_EQ(second.pu_count(), pus);
  Topology third = make_topology();
  third = std::move(second);
  EXPECT_EQ(third.pu_count(), pus);
}

TEST(Topology, PinsToEachAllowedCpu) {
  const Topology topology = make_topology();
  // A thread of its own, so the main thread's affinity (and later tests) stay untouched.
  std::thread worker([&topology] {
    for (int cpu : topology.allowed_cpus()) {
      const Status pinned = topology.pin_current_thread(cpu);
      ASSERT_TRUE(pinned.ok()) << pinned.error().message();
      const Result<int> where = topology.current_cpu();
      ASSERT_TRUE(where.ok()) << where.error().message();
      EXPECT_EQ(*where, cpu);
      EXPECT_EQ(sched_getcpu(), cpu);
    }
  });
  worker.join();
}

TEST(Topology, PinToMissingCpuNamesTheAllowedCpus) {
  const Topology topology = make_topology();
  const int cpu = missing_cpu(topology);
  const Status pinned = topology.pin_current_thread(cpu);
  ASSERT_FALSE(pinned.ok());
  EXPECT_EQ(pinned.error().code(), Errc::kNotFound);
  const std::string& message = pinned.error().message();
  EXPECT_TRUE(contains(message, "cpu " + std::to_string(cpu) + " does not exist")) << message;
  EXPECT_TRUE(contains(message, "allowed " + allowed_phrase(topology))) << message;

  EXPECT_FALSE(topology.pin_current_thread(-1).ok());
}

// Narrows the affinity of a child process to one cpu, as taskset would, then builds the
// topology there: every other cpu exists but is not allowed, and pinning to one is refused.
int pin_outside_the_allowed_set(int keep, int outside) {
  cpu_set_t one;
  CPU_ZERO(&one);
  CPU_SET(static_cast<size_t>(keep), &one);
  if (sched_setaffinity(0, sizeof one, &one) != 0) return 2;
  Result<Topology> topology = Topology::create();
  if (!topology.ok() || topology->cpu_allowed(outside)) return 3;
  const Status pinned = topology->pin_current_thread(outside);
  if (pinned.ok() || pinned.error().code() != Errc::kUnavailable) return 4;
  std::fprintf(stderr, "refused: %s\n", pinned.error().message().c_str());
  return contains(pinned.error().message(), allowed_phrase(*topology)) ? 0 : 5;
}

TEST(TopologyDeathTest, PinToDisallowedCpuIsRefused) {
  const std::vector<int> allowed = make_topology().allowed_cpus();
  if (allowed.size() < 2) GTEST_SKIP() << "needs two allowed cpus to disallow one of them";
  EXPECT_EXIT(std::exit(pin_outside_the_allowed_set(allowed[0], allowed[1])),
              ::testing::ExitedWithCode(0), "refused: .*allowed");
}

TEST(Topology, FormatsCpuLists) {
  EXPECT_EQ(format_cpu_list({}), "none");
  EXPECT_EQ(format_cpu_list({0}), "0");
  EXPECT_EQ(format_cpu_list({0, 1}), "0-1");
  EXPECT_EQ(format_cpu_list({5, 0, 2, 1, 2}), "0-2,5");
  EXPECT_EQ(format_cpu_list({1, 3, 4, 5, 9}), "1,3-5,9");
}

TEST(Layout, SharedModeNeedsOneCpu) {
  const Topology topology = make_topology();
  LayoutRequest request;
  request.mode = ThreadingMode::kShared;
  const Result<CoreLayout> layout = choose_layout(topology, request);
  ASSERT_TRUE(layout.ok()) << layout.error().message();
  ASSERT_EQ(layout->data_cpus.size(), 1U);
  EXPECT_EQ(layout->control_cpu, layout->data_cpus[0]);
  EXPECT_TRUE(topology.cpu_allowed(layout->control_cpu));
  EXPECT_EQ(layout->mode, ThreadingMode::kShared);
}

TEST(Layout, SharedModeRunsOnTheNamedControlCpu) {
  const Topology topology = make_topology();
  LayoutRequest request;
  request.mode = ThreadingMode::kShared;
  request.control_core = topology.allowed_cpus().back();
  const Result<CoreLayout> layout = choose_layout(topology, request);
  ASSERT_TRUE(layout.ok()) << layout.error().message();
  EXPECT_EQ(layout->data_cpus, std::vector<int>{request.control_core});
  EXPECT_EQ(layout->control_cpu, request.control_core);
}

TEST(Layout, DedicatedWithOneDataCore) {
  const Topology topology = make_topology();
  if (topology.allowed_cpus().size() < 2) {
    GTEST_SKIP() << "needs 2 allowed cpus; this process has " << allowed_phrase(topology);
  }
  LayoutRequest request;
  request.data_core_count = 1;
  const Result<CoreLayout> layout = choose_layout(topology, request);
  ASSERT_TRUE(layout.ok()) << layout.error().message();
  ASSERT_EQ(layout->data_cpus.size(), 1U);
  EXPECT_NE(layout->data_cpus[0], layout->control_cpu);
  EXPECT_TRUE(topology.cpu_allowed(layout->data_cpus[0]));
  EXPECT_TRUE(topology.cpu_allowed(layout->control_cpu));
}

TEST(Layout, DedicatedHonoursExplicitCpus) {
  const Topology topology = make_topology();
  const std::vector<int> allowed = topology.allowed_cpus();
  if (allowed.size() < 2) {
    GTEST_SKIP() << "needs 2 allowed cpus; this process has " << allowed_phrase(topology);
  }
  LayoutRequest request;
  request.data_cores = {allowed.back()};
  request.control_core = allowed.front();
  const Result<CoreLayout> layout = choose_layout(topology, request);
  ASSERT_TRUE(layout.ok()) << layout.error().message();
  EXPECT_EQ(layout->data_cpus, std::vector<int>{allowed.back()});
  EXPECT_EQ(layout->control_cpu, allowed.front());
}

TEST(Layout, DedicatedRefusedWhenCpusRunOut) {
  const Topology topology = make_topology();
  const auto have = static_cast<int>(topology.allowed_cpus().size());
  // As many data cores as allowed cpus leaves none for the control core, on any machine.
  LayoutRequest request;
  request.data_core_count = have;
  const Result<CoreLayout> layout = choose_layout(topology, request);
  ASSERT_FALSE(layout.ok());
  EXPECT_EQ(layout.error().code(), Errc::kInvalidArgument);
  const std::string& message = layout.error().message();
  EXPECT_TRUE(contains(message, "need " + std::to_string(have + 1) + " cpus")) << message;
  EXPECT_TRUE(contains(message, allowed_phrase(topology))) << message;
  EXPECT_TRUE(contains(message, "use threading mode 'shared'")) << message;
  if (have == 2) {
    EXPECT_EQ(message,
              "layout: 2 data cores and a dedicated control core need 3 cpus, but only 2 are "
              "allowed (" +
                  allowed_phrase(topology) + "); use threading mode 'shared' or fewer data cores");
  }
}

TEST(Layout, SharedRefusedWhenCpusRunOut) {
  const Topology topology = make_topology();
  const auto have = static_cast<int>(topology.allowed_cpus().size());
  LayoutRequest request;
  request.mode = ThreadingMode::kShared;
  request.data_core_count = have + 1;
  const Result<CoreLayout> layout = choose_layout(topology, request);
  ASSERT_FALSE(layout.ok());
  EXPECT_TRUE(contains(layout.error().message(), "use fewer data cores"))
      << layout.error().message();
}

TEST(Layout, DuplicateDataCpuRefused) {
  const Topology topology = make_topology();
  const int cpu = topology.allowed_cpus().front();
  LayoutRequest request;
  request.mode = ThreadingMode::kShared;
  request.data_cores = {cpu, cpu};
  const Result<CoreLayout> layout = choose_layout(topology, request);
  ASSERT_FALSE(layout.ok());
  EXPECT_EQ(layout.error().code(), Errc::kInvalidArgument);
  EXPECT_TRUE(contains(layout.error().message(),
                       "data cpu " + std::to_string(cpu) + " appears more than once"))
      << layout.error().message();
}

TEST(Layout, NonexistentCpuRefused) {
  const Topology topology = make_topology();
  const int cpu = missing_cpu(topology);
  LayoutRequest request;
  request.data_cores = {cpu};
  Result<CoreLayout> layout = choose_layout(topology, request);
  ASSERT_FALSE(layout.ok());
  EXPECT_EQ(layout.error().code(), Errc::kNotFound);
  EXPECT_TRUE(
      contains(layout.error().message(), "data cpu " + std::to_string(cpu) + " does not exist"))
      << layout.error().message();
  EXPECT_TRUE(contains(layout.error().message(), allowed_phrase(topology)))
      << layout.error().message();

  request.data_cores.clear();
  request.control_core = cpu;
  layout = choose_layout(topology, request);
  ASSERT_FALSE(layout.ok());
  EXPECT_TRUE(
      contains(layout.error().message(), "control cpu " + std::to_string(cpu) + " does not exist"))
      << layout.error().message();
}

TEST(Layout, ControlAmongDataCpusRefusedInDedicatedMode) {
  const Topology topology = make_topology();
  const int cpu = topology.allowed_cpus().front();
  LayoutRequest request;
  request.data_cores = {cpu};
  request.control_core = cpu;
  const Result<CoreLayout> layout = choose_layout(topology, request);
  ASSERT_FALSE(layout.ok());
  EXPECT_TRUE(contains(layout.error().message(),
                       "control cpu " + std::to_string(cpu) + " is also a data cpu"))
      << layout.error().message();
}

TEST(Layout, SharedControlMustBeTheFirstDataCpu) {
  const Topology topology = make_topology();
  const std::vector<int> allowed = topology.allowed_cpus();
  if (allowed.size() < 2) {
    GTEST_SKIP() << "needs 2 allowed cpus; this process has " << allowed_phrase(topology);
  }
  LayoutRequest request;
  request.mode = ThreadingMode::kShared;
  request.data_cores = {allowed[0], allowed[1]};
  request.control_core = allowed[1];
  const Result<CoreLayout> layout = choose_layout(topology, request);
  ASSERT_FALSE(layout.ok());
  EXPECT_TRUE(contains(layout.error().message(), "must be the first data cpu"))
      << layout.error().message();
}

TEST(Layout, MalformedRequestsRefused) {
  const Topology topology = make_topology();
  LayoutRequest negative;
  negative.data_core_count = -1;
  EXPECT_FALSE(choose_layout(topology, negative).ok());

  LayoutRequest mismatch;
  mismatch.mode = ThreadingMode::kShared;
  mismatch.data_core_count = 2;
  mismatch.data_cores = {topology.allowed_cpus().front()};
  const Result<CoreLayout> layout = choose_layout(topology, mismatch);
  ASSERT_FALSE(layout.ok());
  EXPECT_TRUE(contains(layout.error().message(), "data_core_count is 2 but data_cores lists 1 cpu"))
      << layout.error().message();

  LayoutRequest bad_control;
  bad_control.control_core = -7;
  EXPECT_FALSE(choose_layout(topology, bad_control).ok());
}

TEST(Layout, AutomaticPicksPreferWholeCores) {
  const Topology topology = make_topology();
  std::set<int> usable_cores;
  for (int cpu : topology.allowed_cpus()) usable_cores.insert(topology.core_of(cpu));
  if (usable_cores.size() < 2) {
    GTEST_SKIP() << "needs 2 physical cores with allowed cpus; this process has "
                 << usable_cores.size();
  }
  // One control core and as many data cores as whole cores remain (at most 4).
  LayoutRequest request;
  request.data_core_count = std::min(static_cast<int>(usable_cores.size()) - 1, 4);
  const Result<CoreLayout> layout = choose_layout(topology, request);
  ASSERT_TRUE(layout.ok()) << layout.error().message();
  std::set<int> used_cores{topology.core_of(layout->control_cpu)};
  for (int cpu : layout->data_cpus) {
    EXPECT_TRUE(used_cores.insert(topology.core_of(cpu)).second)
        << "data cpu " << cpu << " shares a physical core although whole cores were free";
  }
}

// Synthetic machines give the hyperthread rules shapes this machine may lack.
Topology make_synthetic(const std::string& description) {
  Result<Topology> created = Topology::create_synthetic(description);
  EXPECT_TRUE(created.ok()) << (created.ok() ? "" : created.error().message());
  return std::move(created).value();
}

CoreLayout layout_for(const Topology& topology, int data_count, ThreadingMode mode,
                      std::vector<int> data_cores = {}, int control_core = -1) {
  LayoutRequest request;
  request.data_core_count = data_count;
  request.data_cores = std::move(data_cores);
  request.control_core = control_core;
  request.mode = mode;
  Result<CoreLayout> layout = choose_layout(topology, request);
  EXPECT_TRUE(layout.ok()) << (layout.ok() ? "" : layout.error().message());
  return std::move(layout).value();
}

TEST(SyntheticTopology, DescribesCoresAndPackages) {
  const Topology topology = make_synthetic("package:2 core:2 pu:2");
  EXPECT_EQ(topology.pu_count(), 8);
  EXPECT_EQ(topology.allowed_cpus(), (std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7}));
  const std::vector<CoreInfo> cores = topology.cores();
  ASSERT_EQ(cores.size(), 4U);
  EXPECT_EQ(cores[0].os_cpus, (std::vector<int>{0, 1}));
  EXPECT_EQ(cores[3].os_cpus, (std::vector<int>{6, 7}));
  EXPECT_EQ(cores[1].package, 0);
  EXPECT_EQ(cores[2].package, 1);
  EXPECT_EQ(topology.core_of(5), 2);
}

TEST(SyntheticTopology, RefusesPinningAndBadDescriptions) {
  const Topology topology = make_synthetic("core:2 pu:1");
  const Status pinned = topology.pin_current_thread(0);
  ASSERT_FALSE(pinned.ok());
  EXPECT_EQ(pinned.error().code(), Errc::kUnsupported);
  EXPECT_FALSE(topology.current_cpu().ok());

  const Result<Topology> bad = Topology::create_synthetic("core:two");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code(), Errc::kParse);
  EXPECT_TRUE(contains(bad.error().message(), "'core:two'")) << bad.error().message();
}

TEST(SyntheticTopology, DataThreadsGetWholeCores) {
  // Four cores of two hyperthreads: cpus {0,1} {2,3} {4,5} {6,7}.
  const Topology topology = make_synthetic("core:4 pu:2");
  const CoreLayout one = layout_for(topology, 1, ThreadingMode::kDedicated);
  EXPECT_EQ(one.control_cpu, 0);
  EXPECT_EQ(one.data_cpus, std::vector<int>{2});  // not 1, the control core's sibling

  const CoreLayout three = layout_for(topology, 3, ThreadingMode::kDedicated);
  EXPECT_EQ(three.control_cpu, 0);
  EXPECT_EQ(three.data_cpus, (std::vector<int>{2, 4, 6}));

  const CoreLayout shared = layout_for(topology, 4, ThreadingMode::kShared);
  EXPECT_EQ(shared.data_cpus, (std::vector<int>{0, 2, 4, 6}));
  EXPECT_EQ(shared.control_cpu, 0);
}

TEST(SyntheticTopology, SiblingsOfControlBeforeSiblingsOfData) {
  // Two cores of two hyperthreads, numbered as Intel does: core 0 = {0,2}, core 1 = {1,3}.
  const Topology topology = make_synthetic("core:2 pu:2(indexes=0,2,1,3)");
  ASSERT_EQ(topology.cores()[0].os_cpus, (std::vector<int>{0, 2}));
  // Two data threads and a control thread on two cores: one data thread must share, and it
  // shares with the control thread, never with the other data thread.
  const CoreLayout layout = layout_for(topology, 2, ThreadingMode::kDedicated);
  EXPECT_EQ(layout.control_cpu, 0);
  EXPECT_EQ(layout.data_cpus, (std::vector<int>{1, 2}));
  EXPECT_NE(topology.core_of(layout.data_cpus[0]), topology.core_of(layout.data_cpus[1]));
}

TEST(SyntheticTopology, AutomaticControlAvoidsExplicitDataCores) {
  const Topology topology = make_synthetic("core:2 pu:2");  // {0,1} {2,3}
  const CoreLayout layout = layout_for(topology, 0, ThreadingMode::kDedicated, {0});
  EXPECT_EQ(layout.data_cpus, std::vector<int>{0});
  EXPECT_EQ(layout.control_cpu, 2);  // a whole core, not 1, the data thread's sibling
}

TEST(SyntheticTopology, OneCoreOfTwoSiblingsStillRunsDedicated) {
  const Topology topology = make_synthetic("core:1 pu:2");
  const CoreLayout layout = layout_for(topology, 1, ThreadingMode::kDedicated);
  EXPECT_EQ(layout.control_cpu, 0);
  EXPECT_EQ(layout.data_cpus, std::vector<int>{1});
}

}  // namespace
}  // namespace cohort
