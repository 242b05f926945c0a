// Reading the 4 KiB pages running members publish in their group's folder (include/cohort/
// stats.h): the member's own page (`cohort stat`) and the cache's page beside it (`cohort stat`,
// `cohort cache stats`). A page is read while its member writes it: each counter is whole, the
// set is not a consistent snapshot.
#pragma once

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <string>
#include <string_view>

namespace cohort::cli {

namespace detail {
// Maps <folder>/<prefix>*.page read-only one at a time, in name order, calling `visit(map)` on
// each 4 KiB mapping; files that cannot be opened or mapped are passed over.
void for_each_page_file(const std::string& folder, std::string_view prefix,
                        const std::function<void(const void* map)>& visit);
// The process that writes a page still runs (or runs as another user).
bool writer_alive(int32_t pid);
}  // namespace detail

// Calls `print(const Page*)` for each page <folder>/<prefix>*.page of a live member whose magic and
// version are `magic` and `version`; returns how many it printed. A live member's page of another
// version gets a line saying so (its member runs another build of cohort). `Page` starts like
// StatsPage: magic, version, pid.
template <typename Page, typename Print>
int for_each_live_page(const std::string& folder, std::string_view prefix, uint64_t magic,
                       uint32_t version, Print print) {
  int live = 0;
  detail::for_each_page_file(folder, prefix, [&](const void* map) {
    const auto* p = static_cast<const Page*>(map);
    // acquire: pairs with the writer's release store of the magic after the header.
    const uint64_t m = std::atomic_ref<const uint64_t>(p->magic).load(std::memory_order_acquire);
    if (m != magic || !detail::writer_alive(p->pid)) return;
    if (p->version == version) {
      print(p);
      ++live;
    } else {  // prefix "stats-m" or "cache-m": the stats or cache page
      std::printf(
          "(pid %d writes version %u of its %.*s page, and this cohort reads version %u: "
          "run the cohort of the members' build)\n",
          p->pid, p->version, static_cast<int>(prefix.size() - 2), prefix.data(), version);
    }
  });
  return live;
}

}  // namespace cohort::cli
