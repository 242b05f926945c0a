#include "apps/cli/stat.h"

#include <signal.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <thread>

#include "apps/cli/cache_cmd.h"
#include "apps/cli/stats_pages.h"
#include "cohort/stats.h"
#include "transport/shm/shm_transport.h"

namespace cohort::cli {
namespace {

const char* state_name(uint64_t s) {
  static const char* const kNames[] = {"idle", "joining", "active", "wedged", "left", "removed"};
  return s < 6 ? kNames[s] : "?";
}

// One pass over <dir>/<group>/stats-m*.page; returns how many live members it printed.
int print_once(const std::string& folder) {
  std::printf("%-12s %7s %-8s %6s %-30s %10s %10s %12s %8s %10s %6s\n", "member", "pid", "state",
              "view", "members", "sent", "delivered", "bytes", "relayed", "drops", "idle%");
  return for_each_live_page<StatsPage>(
      folder, "stats-m", kStatsMagic, kStatsVersion, [](const StatsPage* p) {
        constexpr auto r = std::memory_order_relaxed;
        char who[32];
        std::snprintf(who, sizeof who, "n%u.%u", p->node, p->incarnation);
        std::string members;
        const uint64_t count = std::min<uint64_t>(p->view_count.load(r), 32);
        for (uint64_t i = 0; i < count; ++i) {
          const uint64_t k = p->view_members[i].load(r);
          char m[32];
          std::snprintf(m, sizeof m, "%sn%u", members.empty() ? "" : ",",
                        static_cast<uint32_t>(k >> 32));
          members += m;
        }
        const uint64_t drops = p->records_malformed.load(r) + p->records_stale.load(r) +
                               p->control_malformed.load(r) + p->control_stale.load(r) +
                               p->control_send_failed.load(r);
        auto idle_pct = [](uint64_t rounds, uint64_t busy) {
          return rounds == 0
                     ? 0.0
                     : 100.0 * static_cast<double>(rounds - busy) / static_cast<double>(rounds);
        };
        const double idle = idle_pct(p->rounds.load(r), p->busy_rounds.load(r));
        const uint64_t control_rounds = p->control_rounds.load(r);
        std::printf("%-12s %7d %-8s %6" PRIu64 " %-30s %10" PRIu64 " %10" PRIu64 " %12" PRIu64
                    " %8" PRIu64 " %10" PRIu64 " %6.1f\n",
                    who, p->pid, state_name(p->state.load(r)), p->view_id.load(r),
                    members.empty() ? "-" : members.c_str(), p->sent.load(r), p->delivered.load(r),
                    p->delivered_bytes.load(r), p->relayed.load(r), drops, idle);
        std::printf("%-12s drops: records malformed %" PRIu64 ", stale %" PRIu64
                    "; control malformed %" PRIu64 ", stale %" PRIu64 ", send failed %" PRIu64
                    "; waits: log backpressure %" PRIu64 ", ticket %" PRIu64 "\n",
                    "", p->records_malformed.load(r), p->records_stale.load(r),
                    p->control_malformed.load(r), p->control_stale.load(r),
                    p->control_send_failed.load(r), p->append_backpressure.load(r),
                    p->ticket_waits.load(r));
        if (control_rounds != 0) {  // dedicated mode: the control core's own idle ratio
          std::printf("%-12s control core idle %.1f%%\n", "",
                      idle_pct(control_rounds, p->control_busy_rounds.load(r)));
        }
      });
}

std::atomic<bool> g_stop{false};

}  // namespace

int run_stat(const StatOptions& o) {
  const std::string dir = o.shm_dir.empty() ? transport::shm::default_shm_dir() : o.shm_dir;
  const std::string folder = dir + "/" + o.group;
  if (!std::filesystem::is_directory(folder)) {
    std::fprintf(stderr,
                 "cohort stat: no group '%s' in %s (no folder %s); start a member, or give "
                 "--group and --shm-dir as the members have them\n",
                 o.group.c_str(), dir.c_str(), folder.c_str());
    return 1;
  }
  signal(SIGINT, [](int) { g_stop.store(true); });
  for (;;) {
    const int live = print_once(folder);
    print_cache_pages(folder);  // members that run the cooperative cache
    if (live == 0)
      std::printf("(no running member of group '%s' in %s)\n", o.group.c_str(), dir.c_str());
    if (o.watch_ms == 0 || g_stop.load()) return 0;
    std::this_thread::sleep_for(std::chrono::milliseconds(o.watch_ms));
    std::printf("\n");
  }
}

}  // namespace cohort::cli
