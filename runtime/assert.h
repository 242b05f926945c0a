// Assertions for cohort. COHORT_ASSERT stays on in every build (TigerBeetle, Seastar): a broken
// invariant is a bug, and running on with it corrupts logs that other members trust.
// COHORT_DASSERT is for checks too costly for the hot path of a release build.
#pragma once

namespace cohort::detail {
[[noreturn]] void assert_fail(const char* expr, const char* file, int line, const char* func,
                              const char* msg) noexcept;
}  // namespace cohort::detail

#define COHORT_ASSERT(cond)                                                        \
  do {                                                                             \
    if (__builtin_expect(!(cond), 0)) [[unlikely]]                                 \
      ::cohort::detail::assert_fail(#cond, __FILE__, __LINE__, __func__, nullptr); \
  } while (0)

#define COHORT_ASSERT_MSG(cond, msg)                                             \
  do {                                                                           \
    if (__builtin_expect(!(cond), 0)) [[unlikely]]                               \
      ::cohort::detail::assert_fail(#cond, __FILE__, __LINE__, __func__, (msg)); \
  } while (0)

#ifdef NDEBUG
#define COHORT_DASSERT(cond) \
  do {                       \
    (void)sizeof(cond);      \
  } while (0)
#else
#define COHORT_DASSERT(cond) COHORT_ASSERT(cond)
#endif
