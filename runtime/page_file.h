// A small page of shared memory in a file, for the stats pages that `cohort stat` reads
// (include/cohort/stats.h and the apps' own): created or emptied, mode 0600, mapped read-write
// and shared. Control path only.
#pragma once

#include <cstddef>
#include <string>

namespace cohort {

// The mapping of `bytes` zeroed bytes at `path`, or nullptr when any step fails: a member that
// cannot have its page runs without it.
void* map_page_file(const std::string& path, size_t bytes) noexcept;
// Unmaps a page from map_page_file() and removes its file (nothing for nullptr).
void unmap_page_file(void* page, size_t bytes, const std::string& path) noexcept;

}  // namespace cohort
