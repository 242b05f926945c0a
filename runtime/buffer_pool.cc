#include "runtime/buffer_pool.h"

#include <sys/mman.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "runtime/cache_line.h"

namespace cohort {

namespace {
// 2^24 buffers of up to 1 GiB each is far past any sane config; the product is checked too.
constexpr uint32_t kMaxBuffers = uint32_t{1} << 24;
constexpr uint32_t kMaxBufferSize = uint32_t{1} << 30;
constexpr size_t kMaxPoolBytes = size_t{64} << 30;
}  // namespace

Result<std::unique_ptr<BufferPool>> BufferPool::create(uint32_t count, uint32_t buffer_size) {
  if (count == 0 || count > kMaxBuffers) {
    return Error(Errc::kInvalidArgument, "buffer pool: count " + std::to_string(count) +
                                             " must be between 1 and " +
                                             std::to_string(kMaxBuffers));
  }
  if (buffer_size == 0 || buffer_size > kMaxBufferSize) {
    return Error(Errc::kInvalidArgument, "buffer pool: buffer size " + std::to_string(buffer_size) +
                                             " must be between 1 and " +
                                             std::to_string(kMaxBufferSize) + " bytes");
  }
  const uint32_t stride =
      static_cast<uint32_t>((buffer_size + kCacheLine - 1) / kCacheLine * kCacheLine);
  const size_t bytes = static_cast<size_t>(count) * stride;
  if (bytes > kMaxPoolBytes) {
    return Error(Errc::kInvalidArgument,
                 "buffer pool: " + std::to_string(count) + " buffers of " + std::to_string(stride) +
                     " bytes need " + std::to_string(bytes >> 20) +
                     " MiB, over the 64 GiB limit; lower the count or the buffer size");
  }
  // MAP_POPULATE touches every page now, so the data path never takes a first-touch fault.
  void* mem = mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
  if (mem == MAP_FAILED) {
    return system_error("buffer pool: mmap of " + std::to_string(bytes) +
                            " bytes failed (check ulimit -v and free memory)",
                        errno);
  }
  return std::unique_ptr<BufferPool>(
      new BufferPool(static_cast<std::byte*>(mem), bytes, count, buffer_size, stride));
}

BufferPool::BufferPool(std::byte* base, size_t mapped_bytes, uint32_t count, uint32_t buffer_size,
                       uint32_t stride)
    : base_(base),
      mapped_bytes_(mapped_bytes),
      count_(count),
      buffer_size_(buffer_size),
      stride_(stride),
      free_count_(count),
      free_stack_(new uint32_t[count]),
      taken_(new uint8_t[count]()) {
  // Lowest index on top, so a fresh pool hands out buffers in address order.
  for (uint32_t i = 0; i < count; ++i) free_stack_[i] = count - 1 - i;
}

BufferPool::~BufferPool() {
  munmap(base_, mapped_bytes_);
}

uint32_t BufferPool::get_burst(void** out, uint32_t n) noexcept {
  const uint32_t count = n < free_count_ ? n : free_count_;
  if (count < n) ++stats_.empty;
  for (uint32_t i = 0; i < count; ++i) {
    const uint32_t index = free_stack_[--free_count_];
    mark_taken(index);
    out[i] = at(index);
  }
  stats_.gets += count;
  return count;
}

}  // namespace cohort
