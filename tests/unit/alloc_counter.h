// Counts heap allocations: alloc_counter.cc replaces the global operator new of the test
// executables that link it, so a test can show that a hot path allocates nothing.
#pragma once

#include <cstdint>

namespace cohort::testing {
// Allocations through operator new since the process started.
uint64_t heap_allocations() noexcept;
}  // namespace cohort::testing
