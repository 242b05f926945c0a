// Cache-line constants and the spin hint shared by the rings, the pool and the poll loop.
#pragma once

#include <immintrin.h>

#include <cstddef>
#include <memory>
#include <new>

namespace cohort {

// 64 bytes on every x86-64 we target. Not std::hardware_destructive_interference_size:
// GCC warns that its value may change between compiler versions, and this one is an ABI of
// shared-memory layouts.
inline constexpr std::size_t kCacheLine = 64;

// One spin-wait iteration. _mm_pause lowers the core-to-core round trip here (196 ns vs
// 281 ns for a bounced line, shared/notes/measuring.md) and yields the pipeline to a sibling.
inline void cpu_relax() noexcept {
  _mm_pause();
}

// An array of n default-constructed T starting on a cache-line boundary, so that no element
// of a ring or pool straddles two lines. Allocated once at setup; freed with its owner.
template <typename T>
struct CacheAlignedDeleter {
  std::size_t count = 0;
  void operator()(T* p) const noexcept {
    for (std::size_t i = 0; i < count; ++i) p[i].~T();
    ::operator delete (p, std::align_val_t{kCacheLine});
  }
};

template <typename T>
using CacheAlignedArray = std::unique_ptr<T[], CacheAlignedDeleter<T>>;

template <typename T>
CacheAlignedArray<T> make_cache_aligned_array(std::size_t count) {
  void* raw = ::operator new (count * sizeof(T), std::align_val_t{kCacheLine});
  T* p = static_cast<T*>(raw);
  for (std::size_t i = 0; i < count; ++i) new (p + i) T();
  return CacheAlignedArray<T>(p, CacheAlignedDeleter<T>{count});
}

}  // namespace cohort
