// cohort's public headers live in include/cohort/; the embedding API (group, lock, cache)
// joins this one as the layers under it are built. Safe to include from C++17 and later.
#pragma once

#define COHORT_VERSION_MAJOR 0
#define COHORT_VERSION_MINOR 1
#define COHORT_VERSION_PATCH 0

namespace cohort {
inline constexpr const char* kVersion = "0.1.0";
}  // namespace cohort
